"""Failpoints: make the runner kill itself (SIGKILL) at a named step, to test crash safety.

``REANALYZER_FAILPOINT=name`` kills at the first hit of that step; ``name:N`` at the N-th hit.
Steps: ``journal.after_write`` (records written, not fsynced), ``sender.after_response``
(an answer is in, its outcomes not yet written), ``checkpoint.before_fsync``,
``checkpoint.before_rename``, ``checkpoint.after_rename``. Unset, a hit costs one comparison.
"""

from __future__ import annotations

import os
import signal

_NAME, _, _COUNT = os.environ.get("REANALYZER_FAILPOINT", "").partition(":")
_remaining = int(_COUNT or 1)


def hit(name: str) -> None:
    global _remaining
    if name != _NAME:
        return
    _remaining -= 1
    if _remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
