"""Progress reporting and cooperative cancellation for long engine jobs (no Qt)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional

from restorer.engine.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """One progress report: `done` of `total` steps finished, with a short message.

    `elapsed` is the seconds of work since the job's first report (0 when the job does not say),
    so a display can estimate the time left from `done`, `total` and `elapsed`.
    """

    done: int
    total: int
    message: str = ""
    elapsed: float = 0.0

    @property
    def seconds_left(self) -> float | None:
        """Estimated seconds to finish, from the rate so far; None before there is a rate."""
        if self.done <= 0 or self.elapsed <= 0 or self.total <= 0:
            return None
        return max(0.0, self.elapsed * (self.total - self.done) / self.done)

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]


class CancelToken:
    """Thread-safe flag a caller sets to ask a running job to stop between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


def report(callback: Optional[ProgressCallback], done: int, total: int, message: str = "",
           elapsed: float = 0.0) -> None:
    if callback is not None:
        callback(Progress(done, total, message, elapsed))


def check(token: Optional[CancelToken]) -> None:
    if token is not None:
        token.raise_if_cancelled()


class cancel_between_layers:
    """While active, every forward call of `model`'s sub-modules first checks `token` (Cancelled if set).

    One network evaluation (a tile of a x4 model on a CPU) can take many seconds; checking only between
    tiles makes Cancel wait for the whole tile. A forward pre-hook on each layer stops the evaluation at the
    next layer instead, within a fraction of a second, at the cost of one Python call per layer.
    Use as ``with cancel_between_layers(net, cancel): net(x)``; a None token installs nothing.
    """

    def __init__(self, model, token: Optional[CancelToken]) -> None:
        self._model = model
        self._token = token
        self._handles: list = []

    def __enter__(self) -> "cancel_between_layers":
        if self._token is None:
            return self
        token = self._token

        def hook(_module, _inputs) -> None:
            if token.cancelled:
                raise Cancelled("cancelled")

        for name, module in self._model.named_modules():
            if name:  # not the root: its own call is checked by the caller
                self._handles.append(module.register_forward_pre_hook(hook))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
