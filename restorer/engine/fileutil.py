"""Atomic, verified file writes: write a temp file in the target's folder, fsync, check, rename.

An interrupted write (crash, full disk, exception) leaves the previous file intact and no
temp file behind. Every byte goes through :func:`_write_all`, which loops over ``os.write``
until the whole buffer is on disk and turns a short write that makes no progress into an
error, so a full disk can never produce a silently truncated file (Pillow's JPEG encoder
and torch's zip writer ignore or obscure short writes when given a real file descriptor;
here they only ever see a Python object whose ``write`` either writes everything or raises).
After the data the file size is compared with the number of bytes written.

The new file gets the permissions of the file it replaces, or the usual ones for a new file
(0666 less the umask) - not the 0600 of a temp file.

Write errors become :class:`WriteError` with one readable line: "the disk is full" for
ENOSPC/EDQUOT, whatever torch or Pillow wrapped around it.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Optional, Union

from restorer.engine.errors import RestorerError

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class WriteError(RestorerError):
    """A file could not be written (disk full, permission, I/O error); the old file is intact."""


def describe_os_error(exc: BaseException) -> str:
    """A short readable reason for an OSError: 'the disk is full' for ENOSPC, else its strerror."""
    if isinstance(exc, OSError):
        if exc.errno in _DISK_FULL:
            return "the disk is full"
        if exc.errno == errno.EFBIG:
            return "the file is larger than this file system (or a size limit) allows"
        if exc.strerror:
            return exc.strerror[0].lower() + exc.strerror[1:]
    text = str(exc).strip()
    if "No space left" in text:
        return "the disk is full"
    return text.splitlines()[0] if text else exc.__class__.__name__


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


def _write_all(fd: int, data: memoryview) -> int:
    """Write all of `data` to `fd` (os.write may write less than asked); raise if the disk takes nothing."""
    total = 0
    while total < len(data):
        n = os.write(fd, data[total:])
        if n <= 0:  # a full disk may accept part of a buffer and then nothing
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        total += n
    return total


class _FdWriter(io.RawIOBase):
    """A raw, write-only file over a descriptor that records the first OSError it raised
    (torch re-raises it as RuntimeError without the errno)."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self.written = 0
        self.error: Optional[OSError] = None
        self.discard = False  # after a failure: buffered data must never reach the (maybe reused) fd

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        if self.discard:
            return len(view)
        try:
            n = _write_all(self.fd, view)
        except OSError as exc:
            self.error = self.error or exc
            raise
        self.written += n
        return n


def probe_writable_folder(folder: Path) -> Optional[str]:
    """None if a file can be created in `folder` (or in the nearest existing folder above it, if it
    does not exist yet), else the reason. Creates and removes a tiny probe file; writes nothing else."""
    folder = Path(folder)
    probe_dir = folder
    while not probe_dir.exists():
        if probe_dir.parent == probe_dir:
            break
        probe_dir = probe_dir.parent
    if probe_dir.exists() and not probe_dir.is_dir():
        return f"'{probe_dir}' is not a folder"
    try:
        fd, name = tempfile.mkstemp(prefix=".restorer-probe.", suffix=".tmp", dir=probe_dir)
    except OSError as exc:
        return f"cannot write in '{probe_dir}' ({describe_os_error(exc)})"
    os.close(fd)
    try:
        os.unlink(name)
    except OSError:
        pass
    return None


@contextmanager
def atomic_write(path: Union[str, Path], mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Yield a file handle whose content replaces `path` only when the block finishes cleanly.

    A failed write (full disk...) raises :class:`WriteError` naming the file; `path` is untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise WriteError(f"cannot write '{path}': {describe_os_error(exc)}") from exc
    raw = _FdWriter(fd)
    buffered = io.BufferedWriter(raw, buffer_size=1 << 20)
    fh: IO = io.TextIOWrapper(buffered, encoding=encoding or "utf-8") if "b" not in mode else buffered
    try:
        try:
            yield fh
            fh.flush()
            os.fsync(fd)
            size = os.fstat(fd).st_size
            if size != raw.written:
                raise OSError(errno.EIO, f"wrote {raw.written} bytes but the file holds {size}")
        except BaseException:
            raw.discard = True
            raise
        finally:
            try:
                fh.close()  # closes the buffer chain; the descriptor is closed here, once
            except Exception:
                pass
            os.close(fd)
        os.chmod(tmp, new_file_mode(path))
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if raw.error is not None:
            raise WriteError(f"cannot write '{path}': {describe_os_error(raw.error)}") from exc
        if isinstance(exc, OSError):
            raise WriteError(f"cannot write '{path}': {describe_os_error(exc)}") from exc
        raise


def write_bytes_atomic(path: Union[str, Path], data: bytes, *, replace: bool = True,
                       mode: Optional[int] = None) -> Path:
    """Write `data` to `path` atomically and verify it (size, then the bytes read back).

    With ``replace=False`` an existing file is never clobbered, not even one created while we
    wrote (a hard link publishes the file; filesystems without links fall back to a re-check):
    FileExistsError is raised instead.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise WriteError(f"cannot write '{path}': {describe_os_error(exc)}") from exc
    published = False
    try:
        try:
            _write_all(fd, memoryview(data))
            os.fsync(fd)
            if os.fstat(fd).st_size != len(data):
                raise OSError(errno.EIO, "the file is shorter than the data written")
        finally:
            os.close(fd)
        with open(tmp, "rb") as check:
            if check.read() != data:
                raise OSError(errno.EIO, "the file read back differs from the data written")
        os.chmod(tmp, new_file_mode(path) if mode is None else mode)
        if replace:
            os.replace(tmp, path)
            published = True
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:
                if path.exists():
                    raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
                os.replace(tmp, path)
                published = True
    except FileExistsError:
        raise
    except OSError as exc:
        raise WriteError(f"cannot write '{path}': {describe_os_error(exc)}") from exc
    finally:
        if not published:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def remove_stale_temp_files(folder: Path, pattern: str = ".*.tmp") -> list[Path]:
    """Delete temp files that killed writers left in `folder` (call only while holding the folder's lock)."""
    removed = []
    try:
        candidates = list(Path(folder).glob(pattern))
    except OSError:
        return removed
    for p in candidates:
        try:
            if p.is_file():
                p.unlink()
                removed.append(p)
        except OSError:
            pass
    return removed
