"""Job files are their owner's only: the outcome log names every sample an organisation holds.

Directories are created 0700 and files 0600; the umask may make them stricter, never looser.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def open_private(path: Path, *, append: bool = False) -> BinaryIO:
    """`path` opened to write (truncated, or appended to), created readable by its owner only."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, PRIVATE_FILE), "ab" if append else "wb")
