"""Atomic file writes: write a temp file in the target's folder, fsync, then rename over it.

An interrupted write (crash, full disk, exception) leaves the previous file intact and no
temp file behind. The new file gets the permissions of the file it replaces, or the usual
ones for a new file (0666 less the umask) - not the 0600 of a temp file.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Union


def _current_umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def new_file_mode(path: Path) -> int:
    """Permission bits for a file written at `path`: the existing file's, else 0666 less the umask."""
    try:
        return path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_current_umask()
    except OSError:
        return 0o644


@contextmanager
def atomic_write(path: Union[str, Path], mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Yield a file handle whose content replaces `path` only when the block finishes cleanly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
