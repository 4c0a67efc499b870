"""Files of the development stack that only its owner may read.

Logs can carry personal data and `var/` holds the generated JWT secret, so directories are
0700 and files 0600 from the moment they exist (created with the mode, not chmod-ed after
a window in which anyone could open them), and an existing file with a wider mode is
narrowed before it is written again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """`path` (and missing parents) as a directory only its owner can enter."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def open_private(path: Path, mode: str = "ab") -> IO:
    """Open `path` for writing (append by default) with mode 0600, whatever it had before."""
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, mode)


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically, mode 0600 (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open_private(tmp, "w") as out:
        out.write(text)
    os.replace(tmp, path)
