"""Replacing a file whole, so that a crash or a full disk leaves the old file or the new one.

Every file the tool replaces (the checkpoint, ``summary.json``, ``job.json``, a report written
with ``--output``) goes through ``replacing``: a temporary file beside it, fsynced, renamed over
it, then the directory fsynced so that the rename itself survives a power cut. On any failure
the temporary file is removed and the old file stays as it was.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from reanalyzer.core import failpoints
from reanalyzer.core.private import PRIVATE_FILE


@contextlib.contextmanager
def replacing(
    path: Path, *, tmp: Path | None = None, failpoint: str | None = None, mode: int = 0o666
) -> Iterator[TextIO]:
    """A text file to write; once the block ends without error it replaces ``path`` durably.

    ``tmp`` is the temporary file (by default a hidden one beside ``path``); ``failpoint`` names
    the steps ``<failpoint>.before_fsync``, ``.before_rename`` and ``.after_rename`` for the
    crash tests (see core/failpoints.py); ``mode`` the new file's (less the umask)."""
    tmp = tmp or path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(fd, "w", encoding="utf-8", newline="") as out:
            yield out
            out.flush()
            _hit(failpoint, "before_fsync")
            os.fsync(out.fileno())
        _hit(failpoint, "before_rename")
        os.replace(tmp, path)
        _hit(failpoint, "after_rename")
        fsync_directory(path.parent)
    except BaseException:
        # A half-written file is of no use to anyone: a full disk must not leave one behind.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def write_atomically(
    path: Path, text: str, *, tmp: Path | None = None, failpoint: str | None = None
) -> None:
    """Replace the job file ``path`` with ``text`` whole (see ``replacing``), or raise OSError
    and leave it as it was, with no temporary file behind. Like every job file, it is its
    owner's only (core/private.py)."""
    with replacing(path, tmp=tmp, failpoint=failpoint, mode=PRIVATE_FILE) as out:
        out.write(text)


def fsync_directory(directory: Path) -> None:
    """Make the names in a directory durable (a rename in it, a file created in it)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hit(failpoint: str | None, step: str) -> None:
    if failpoint is not None:
        failpoints.hit(f"{failpoint}.{step}")
