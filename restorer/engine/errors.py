"""Exceptions the engine raises. The CLI maps them to exit codes and one-line messages."""

from __future__ import annotations


class RestorerError(Exception):
    """Base class of every error the engine reports to users. Message is user-readable."""

    exit_code = 1


class InputError(RestorerError):
    """Bad input from the user: unreadable file, wrong size, bad option (exit code 2)."""

    exit_code = 2


class ImageReadError(InputError):
    """An image file could not be read (missing, truncated, not an image, too large)."""


class ModelError(RestorerError):
    """A model is unknown, its weights are missing or corrupted, or it cannot run."""


class UnknownModelError(ModelError):
    exit_code = 2


class Cancelled(RestorerError):
    """A long job was cancelled through its CancelToken."""


def is_out_of_memory(exc: BaseException) -> bool:
    """A torch allocation failure: CUDA's OutOfMemoryError ("CUDA out of memory") or the CPU
    allocator's RuntimeError ("DefaultCPUAllocator: not enough memory"). Told apart by message, so
    this module needs no torch."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "not enough memory" in text)
