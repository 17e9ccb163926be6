"""Atomic file writes: write a temp file in the target's folder, fsync, then rename over it.

An interrupted write (crash, full disk, exception) leaves the previous file intact and no
temp file behind.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Union


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
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
