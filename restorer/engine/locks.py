"""A cross-process file lock (Linux, macOS, Windows) that names its holder.

Shared state (the model library index, a training run folder) is changed only while holding
its lock, so read-modify-write sequences of concurrent commands cannot lose each other's
updates. The lock is an OS lock on an open file (``fcntl.flock`` on POSIX, ``msvcrt.locking``
on Windows): it is released by the OS when the holder exits or is killed, so a crash never
leaves a stale lock. The holder writes its PID into the file, so a refused caller can say
which process holds it.

The lock file itself is never deleted (deleting it would let two processes lock two
different files of the same name).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional, Union

from restorer.engine.errors import RestorerError

# Windows locks byte ranges, and a locked range cannot be read by others: lock a byte far past
# the PID text so the PID stays readable.
_WIN_LOCK_OFFSET = 1 << 20


class LockBusy(RestorerError):
    """The lock is held by another process (``holder`` is its PID when known)."""

    def __init__(self, message: str, holder: Optional[int] = None) -> None:
        super().__init__(message)
        self.holder = holder


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (BlockingIOError, PermissionError):
        return False


def _unlock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


def read_holder(path: Union[str, Path]) -> Optional[int]:
    """The PID written in a lock file, or None."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace").strip()
        return int(text.split()[0]) if text else None
    except (OSError, ValueError, IndexError):
        return None


class FileLock:
    """An exclusive lock on `path`, usable as a context manager.

    ``timeout=None`` waits forever, ``0`` fails at once, otherwise waits up to `timeout` seconds;
    a lock not obtained raises :class:`LockBusy` with `busy_message` (``{pid}`` is replaced by the
    holder's PID). Not re-entrant.
    """

    def __init__(self, path: Union[str, Path], *, timeout: Optional[float] = None,
                 busy_message: str = "'{path}' is locked by process {pid}") -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.busy_message = busy_message
        self._fd: Optional[int] = None

    @property
    def locked(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "FileLock":
        if self._fd is not None:
            raise RuntimeError(f"lock '{self.path}' is already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        delay = 0.005
        try:
            while not _try_lock(fd):
                if deadline is not None and time.monotonic() >= deadline:
                    holder = read_holder(self.path)
                    raise LockBusy(self.busy_message.format(path=self.path, pid=holder or "unknown"), holder)
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
            try:  # the PID is for messages only: a full disk must not stop the lock from working
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            except OSError:
                pass
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
