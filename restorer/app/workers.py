"""The one place that runs engine jobs off the GUI thread.

long: every job function of the app (upscale, clean-up, fill, detect, batch), the previews, the speed probe
and the model cache live here so that no other module starts a thread (the rule of app/).

A :class:`JobWorker` wraps a plain function ``fn(progress, cancel) -> result`` (engine code,
no Qt) and runs it on a private single-thread ``QThreadPool``, so jobs never overlap.  It
owns the :class:`~restorer.engine.progress.CancelToken` handed to the engine and reports
through four signals, which Qt delivers to slots in the GUI thread (the worker object lives
there; the signals are emitted from the pool thread, hence queued):

* ``progressed(done, total, message)`` - throttled to about 20 per second;
* ``finished(result)`` - the function's return value;
* ``failed(message)`` - a one-line, user-readable reason;
* ``cancelled()`` - the job stopped because :meth:`JobWorker.cancel` was called.

Exactly one of the last three is emitted per job.  Starting a job installs
:mod:`~restorer.app.gcguard` (cyclic garbage is then collected on the GUI thread only).  Widgets are never touched from the
worker thread.  Models are loaded inside jobs too, through :data:`MODEL_CACHE` (by id), so
the GUI never waits for torch.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional

import numpy as np
import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, QRunnable, QThreadPool, Signal, Slot

from restorer.app import gcguard

from restorer.engine.errors import Cancelled, RestorerError, is_out_of_memory
from restorer.engine.imageio import ImageData
from restorer.engine.progress import CancelToken, Progress, ProgressCallback

log = logging.getLogger(__name__)

JobFunction = Callable[[ProgressCallback, CancelToken], Any]

_POOL: Optional[QThreadPool] = None


def job_pool() -> QThreadPool:
    """The private pool jobs run on: one thread, so two jobs never compete for the device."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool()
        _POOL.setMaxThreadCount(1)
        _POOL.setExpiryTimeout(-1)
    return _POOL


class _Runnable(QRunnable):
    def __init__(self, worker: "JobWorker") -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._worker = worker

    def run(self) -> None:  # pool thread
        self._worker._run()


class JobWorker(QObject):
    """Runs one engine function in the background (see the module docstring)."""

    progressed = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    PROGRESS_INTERVAL_S = 0.05

    def __init__(self, fn: JobFunction, title: str = "", parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.title = title
        self.token = CancelToken()
        self._fn = fn
        self._started = False
        self._done = threading.Event()
        self._last_progress = 0.0

    # ------------------------------------------------------------------ GUI thread
    def start(self, pool: Optional[QThreadPool] = None) -> None:
        if self._started:
            raise RuntimeError("a JobWorker runs once")
        self._started = True
        app = QCoreApplication.instance()
        if app is not None:  # garbage with Qt objects must never be collected on the job thread
            gcguard.install(app)
        (pool or job_pool()).start(_Runnable(self))

    def cancel(self) -> None:
        """Ask the job to stop at its next check; ``cancelled`` follows."""
        self.token.cancel()

    @property
    def running(self) -> bool:
        return self._started and not self._done.is_set()

    def wait(self, timeout_s: Optional[float] = None) -> bool:
        """Block until the job's function returned (signals may still be queued)."""
        return self._done.wait(timeout_s)

    # ------------------------------------------------------------------ pool thread
    def _progress(self, p: Progress) -> None:
        now = time.monotonic()
        if p.done < p.total and p.done > 0 and now - self._last_progress < self.PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        self.progressed.emit(int(p.done), int(p.total), str(p.message))

    def _run(self) -> None:
        try:
            result = self._fn(self._progress, self.token)
        except Cancelled:
            self.cancelled.emit()
        except RestorerError as exc:
            self.failed.emit(str(exc))
        except MemoryError:
            self.failed.emit("not enough memory for this job; try a smaller image, a smaller tile size or the CPU")
        except Exception as exc:  # a bug or a torch failure: one line for the user, details in the log
            log.exception("job %r failed", self.title)
            if is_out_of_memory(exc):
                self.failed.emit("the device ran out of memory; try a smaller tile size in Preferences")
            else:
                self.failed.emit(f"unexpected {exc.__class__.__name__}: {exc}")
        else:
            if self.token.cancelled:
                self.cancelled.emit()
            else:
                self.finished.emit(result)
        finally:
            self._done.set()


# --------------------------------------------------------------------------- short calls
class _Call(QObject):
    """Runs `fn()` on the global thread pool and hands `(result, error)` to `callback` in the GUI thread."""

    _finished = Signal(object, object)
    _alive: set["_Call"] = set()

    def __init__(self, fn: Callable[[], Any], callback: Callable[[Any, Any], None],
                 owner: Optional[QObject] = None) -> None:
        super().__init__()  # lives in the GUI thread: the queued signal runs _deliver there
        self._fn = fn
        self._callback = callback
        self._owner = owner
        self._finished.connect(self._deliver)

    def start(self) -> "_Call":
        _Call._alive.add(self)
        call = self

        class Job(QRunnable):
            def run(self) -> None:  # pool thread
                try:
                    result, error = call._fn(), None
                except Exception as exc:  # reported, never raised in the pool
                    result, error = None, exc
                try:
                    call._finished.emit(result, error)
                except RuntimeError:  # the app is shutting down
                    pass

        app = QCoreApplication.instance()
        if app is not None:
            gcguard.install(app)
        QThreadPool.globalInstance().start(Job())
        return self

    @Slot(object, object)
    def _deliver(self, result: Any, error: Any) -> None:
        _Call._alive.discard(self)
        if self._owner is not None and not shiboken6.isValid(self._owner):
            return  # the widget that asked is gone
        self._callback(result, error)


def run_in_thread(fn: Callable[[], Any], callback: Callable[[Any, Any], None],
                  owner: Optional[QObject] = None) -> _Call:
    """Run a short `fn()` (a folder scan, a listing) off the GUI thread, in parallel with jobs;
    `callback(result, error)` runs in the GUI thread, unless `owner` was deleted meanwhile."""
    return _Call(fn, callback, owner).start()


# --------------------------------------------------------------------------- models
class ModelCache:
    """Loaded models by spec (and any extra key, e.g. the device), shared by jobs.

    Thread-safe; the newest `max_items` are kept.  `loader(spec, *extra)` loads one (by default
    :func:`restorer.engine.registry.load_model`).  A model file changed on disk is a new key.
    """

    def __init__(self, max_items: int = 3, loader: Optional[Callable[..., Any]] = None) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple, Any] = {}
        self._max = max_items
        self._loader = loader

    @staticmethod
    def _key(spec: Any, extra: tuple) -> tuple:
        try:
            mtime = spec.path.stat().st_mtime_ns
        except OSError:
            mtime = None
        return (spec.id, spec.source, str(spec.path), spec.sha256, mtime) + extra

    def get(self, spec: Any, *extra: Any) -> Any:
        key = self._key(spec, extra)
        with self._lock:
            model = self._items.pop(key, None)
            if model is None:
                if self._loader is None:
                    from restorer.engine import registry

                    model = registry.load_model(spec, *extra)
                else:
                    model = self._loader(spec, *extra)
            self._items[key] = model  # most recently used last
            while len(self._items) > self._max:
                self._items.pop(next(iter(self._items)))
            return model

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def _load_latent(spec: Any, device: str) -> Any:
    from restorer.engine.pipelines.latent import LatentModel

    return LatentModel.load(spec, device=device)


# The loaded models, cleared by restorer/app/library.py whenever the library changes.
MODEL_CACHE = ModelCache()  # upscale, fill and damage-detection models, by spec
LATENT_CACHE = ModelCache(max_items=2, loader=_load_latent)  # the explorer's latent models, by spec and device


# --------------------------------------------------------------------------- jobs
def upscale_job(image: ImageData, spec: Any, scale: int, *, device: str = "auto",
                tile: Optional[int] = None, size: Optional[tuple[int, int]] = None,
                strength: Optional[tuple[Any, float]] = None) -> JobFunction:
    """A job upscaling `image` by `scale` with the SR model `spec`, then (when `size` is given) resizing
    it to exactly `size` with Lanczos (engine/outsize.py); returns an UpscaleResult. With `strength`
    = (StrengthChain, t) the network is the chain's blend at t (engine/blend.py) instead of `spec`'s."""

    def run(progress: ProgressCallback, cancel: CancelToken) -> Any:
        from dataclasses import replace

        from restorer.engine.devices import pick_device
        from restorer.engine.outsize import resize_to
        from restorer.engine.pipelines.upscale import upscale_image

        dev = pick_device(device)
        progress(Progress(0, 1, f"loading {spec.id}"))
        model = MODEL_CACHE.get(spec) if strength is None else strength_network(*strength)
        cancel.raise_if_cancelled()
        # an exact size: the model runs at its own factor and one Lanczos resize makes the size
        factor = spec.scale if size is not None else scale
        result = upscale_image(image, model, spec.scale, factor, device=dev, tile=tile or None,
                               progress=progress, cancel=cancel)
        if size is not None and tuple(size) != result.image.size:
            cancel.raise_if_cancelled()
            result = replace(result, image=resize_to(result.image, tuple(size)))
        return result

    return run


# --------------------------------------------------------------------------- clean-up, strength, previews (issue #12)
def strength_network(chain: Any, strength: float) -> Any:
    """The network at `strength` on a StrengthChain, its models loaded through MODEL_CACHE (a blend is
    built fresh each time; the cached networks are only read)."""
    from restorer.engine.blend import chain_network

    return chain_network(chain, strength, load=MODEL_CACHE.get)


def clean_job(image: ImageData, spec: Any, *, strength: float = 1.0, device: str = "auto",
              tile: Optional[int] = None) -> JobFunction:
    """A job cleaning `image` with the x1 model `spec` at `strength` (engine/pipelines/clean.py);
    returns the ImageData (same size, depth, colour mode, alpha and metadata)."""

    def run(progress: ProgressCallback, cancel: CancelToken) -> ImageData:
        from restorer.engine.devices import pick_device
        from restorer.engine.pipelines.clean import clean_image

        dev = pick_device(device)
        progress(Progress(0, 1, f"loading {spec.id}"))
        model = MODEL_CACHE.get(spec)
        cancel.raise_if_cancelled()
        return clean_image(image, model, strength=strength, device=dev, tile=tile or None, progress=progress,
                           cancel=cancel)

    return run


PREVIEW_SIDE = 256  # the before / after previews show this many result pixels on each side


def preview_box(size: tuple[int, int], centre: tuple[float, float], side: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the `side` x `side` box (smaller for a smaller photo of `size` (w, h)) centred on
    `centre` (x, y), kept inside the photo."""
    w, h = size
    cw, ch = min(side, w), min(side, h)
    x0 = int(round(min(max(centre[0] - cw / 2, 0), w - cw)))
    y0 = int(round(min(max(centre[1] - ch / 2, 0), h - ch)))
    return x0, y0, x0 + cw, y0 + ch


def crop_image(image: ImageData, box: tuple[int, int, int, int]) -> ImageData:
    """The box (x0, y0, x1, y1) of `image`; metadata dropped, alpha and the grey flag kept."""
    x0, y0, x1, y1 = box
    rgb = np.ascontiguousarray(image.rgb[y0:y1, x0:x1])
    alpha = None if image.alpha is None else np.ascontiguousarray(image.alpha[y0:y1, x0:x1])
    return ImageData(rgb=rgb, alpha=alpha, gray=image.gray)


def preview_crop(image: ImageData, centre: tuple[float, float], side: int) -> ImageData:
    """The `side` x `side` crop of `image` (smaller for a smaller photo) centred on `centre` (x, y),
    kept inside the photo; metadata dropped, alpha kept."""
    return crop_image(image, preview_box(image.size, centre, side))


def clean_preview(crop: ImageData, spec: Any, device: str = "auto") -> ImageData:
    """The clean-up model's full-strength output for a preview crop (the strength is then a blend)."""
    from restorer.engine.devices import pick_device
    from restorer.engine.pipelines.clean import clean_image

    return clean_image(crop, MODEL_CACHE.get(spec), strength=1.0, device=pick_device(device))


def colorize_job(image: ImageData, spec: Any, *, strength: float, device: str = "auto") -> JobFunction:
    """A job colorizing `image` with the colorize model `spec` at `strength` (engine/pipelines/colorize.py:
    the luminance kept exactly); returns the ImageData (alpha and metadata kept, now in colour)."""

    def run(progress: ProgressCallback, cancel: CancelToken) -> ImageData:
        from restorer.engine.devices import pick_device
        from restorer.engine.pipelines.colorize import colorize_photo

        dev = pick_device(device)
        progress(Progress(0, 1, f"loading {spec.id}"))
        model = MODEL_CACHE.get(spec)
        cancel.raise_if_cancelled()
        return colorize_photo(image, model, strength=strength, device=dev, progress=progress, cancel=cancel)

    return run


def colorize_preview(image: ImageData, box: tuple[int, int, int, int], spec: Any, device: str = "auto") -> Any:
    """What the Colorize dialog's preview needs of `spec`: the luminance and the full-strength a/b of the
    crop `box`, taken from the model's prediction for the whole photo (so the crop shows what Apply
    gives). Returns (L, ab) tensors; the strength is then engine colorize.combine's."""
    from restorer.engine.devices import pick_device
    from restorer.engine.pipelines.colorize import luminance, predict_colour

    x0, y0, x1, y1 = box
    prediction = predict_colour(image.rgb, MODEL_CACHE.get(spec), device=pick_device(device))
    return luminance(np.ascontiguousarray(image.rgb[y0:y1, x0:x1])), prediction.region(box)


def upscale_preview(crop: ImageData, spec: Any, factor: int, device: str = "auto",
                    strength: Optional[tuple[Any, float]] = None) -> tuple[ImageData, ImageData]:
    """(before, after) for the Upscale dialog's preview: the crop enlarged by bicubic to the result's size,
    and the crop upscaled by `spec` (or the StrengthChain blend of `strength` = (chain, t))."""
    from PIL import Image

    from restorer.engine.devices import pick_device
    from restorer.engine.pipelines.upscale import upscale_image

    model = MODEL_CACHE.get(spec) if strength is None else strength_network(*strength)
    model_scale = spec.scale if strength is None else strength[0].scale
    after = upscale_image(crop, model, model_scale, factor, device=pick_device(device)).image
    w, h = after.size
    big = Image.fromarray(np.ascontiguousarray(crop.rgb if crop.rgb.dtype == np.uint8
                                               else (crop.rgb // 257).astype(np.uint8)))
    before = ImageData(rgb=np.asarray(big.resize((w, h), Image.BICUBIC)).copy())
    return before, after


class LatestCall(QObject):
    """Debounced, latest-only calls off the GUI thread (a live preview that follows a slider).

    :meth:`request` (GUI thread) waits `delay_ms` for the input to settle, then runs `fn()` through
    :func:`run_in_thread`; one call runs at a time, and a request made meanwhile replaces any waiting
    one. `callback(result, error)` runs in the GUI thread for the newest call only: the result of a
    call that a newer request overtook is dropped.
    """

    def __init__(self, delay_ms: int = 250, parent: Optional[QObject] = None) -> None:
        from PySide6.QtCore import QTimer

        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self._launch)
        self._waiting: Optional[tuple[int, Callable[[], Any], Callable[[Any, Any], None]]] = None
        self._running = False
        self._seq = 0

    @property
    def busy(self) -> bool:
        """A call is waiting or running."""
        return self._running or self._waiting is not None

    def request(self, fn: Callable[[], Any], callback: Callable[[Any, Any], None], *, now: bool = False) -> None:
        self._seq += 1
        self._waiting = (self._seq, fn, callback)
        if now:
            self._timer.stop()
            self._launch()
        else:
            self._timer.start()

    def cancel(self) -> None:
        """Forget a waiting call; a running one finishes and its result is dropped."""
        self._seq += 1
        self._waiting = None
        self._timer.stop()

    def _launch(self) -> None:
        if self._running or self._waiting is None:
            return  # the running call's end starts the waiting one
        seq, fn, callback = self._waiting
        self._waiting = None
        self._running = True

        def done(result: Any, error: Any) -> None:
            self._running = False
            if seq == self._seq:
                callback(result, error)
            self._launch()

        run_in_thread(fn, done, owner=self)


# --------------------------------------------------------------------------- speed probe
#: Seconds per output megapixel measured by `probe_upscale_rate`, by (model id, device type, precision),
#: for the session: the Upscale dialog's time estimate.
RATE_CACHE: dict[tuple[str, str, str], float] = {}
PROBE_SIDE = 64  # input side of the probe tile (a 4x model makes 256 x 256 px of output)


def rate_key(spec: Any, device: str = "auto") -> tuple[str, str, str]:
    from restorer.engine.devices import pick_device

    dev = pick_device(device)
    return (str(spec.id), dev.type, "fp16" if dev.type == "cuda" else "fp32")


def probe_upscale_rate(spec: Any, device: str = "auto", side: int = PROBE_SIDE) -> float:
    """Seconds per output megapixel of `spec` on `device`: one small tile through the model on this
    machine (after a smaller warm-up run), cached in RATE_CACHE. Runs off the GUI thread."""
    key = rate_key(spec, device)
    if key in RATE_CACHE:
        return RATE_CACHE[key]
    from restorer.engine.devices import pick_device
    from restorer.engine.pipelines.upscale import upscale_image

    dev = pick_device(device)
    model = MODEL_CACHE.get(spec)
    rng = np.random.default_rng(0)
    warm = ImageData(rgb=rng.integers(0, 256, (side // 2, side // 2, 3), dtype=np.uint8))
    upscale_image(warm, model, spec.scale, spec.scale, device=dev, tile=side)
    probe = ImageData(rgb=rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
    t0 = time.perf_counter()
    upscale_image(probe, model, spec.scale, spec.scale, device=dev, tile=side)
    seconds = time.perf_counter() - t0
    rate = seconds / ((side * spec.scale) ** 2 / 1e6)
    RATE_CACHE[key] = rate
    log.info("speed probe: %s on %s: %.1f s per output Mpx", spec.id, dev, rate)
    return rate


def inpaint_job(image: ImageData, mask: np.ndarray, spec: Any, *, device: str = "auto") -> JobFunction:
    """A job filling `mask` in `image` with the inpainting model `spec`; returns an ImageData."""
    mask = mask.copy()  # the GUI keeps editing its own

    def run(progress: ProgressCallback, cancel: CancelToken) -> ImageData:
        from restorer.engine.devices import pick_device
        from restorer.engine.pipelines.inpaint import inpaint_image

        dev = pick_device(device)
        progress(Progress(0, 1, f"loading {spec.id}"))
        model = MODEL_CACHE.get(spec)
        cancel.raise_if_cancelled()
        # the ImageData itself, not its rgb: the engine keeps a grey photo grey (ImageData.gray)
        rgb = inpaint_image(image, mask, model, device=dev, progress=progress, cancel=cancel)
        return image.with_pixels(rgb, image.alpha)

    return run


def detect_job(image: ImageData, spec: Any, *, device: str = "auto") -> JobFunction:
    """A job finding scratches, dust and stains in `image` with the detect model `spec`
    (restorer/engine/pipelines/detect.py); returns a DetectResult (its mask is the photo's size)."""

    def run(progress: ProgressCallback, cancel: CancelToken) -> Any:
        from restorer.engine.devices import pick_device
        from restorer.engine.pipelines.detect import detect_damage

        dev = pick_device(device)
        progress(Progress(0, 1, f"loading {spec.id}"))
        model = MODEL_CACHE.get(spec)
        cancel.raise_if_cancelled()
        return detect_damage(image, model, device=dev, progress=progress, cancel=cancel)

    return run


# --------------------------------------------------------------------------- batch
#: Progress steps per file of a batch job: done / total of its progress events count files in these
#: units, so one signal carries both the overall and the current file's progress.
FILE_STEPS = 1000


class BatchOutcome:
    """What a batch job has done so far (written on the job thread, read on the GUI thread when it ended):
    the files written, the failures (path, reason), and whether it was cancelled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.written: list[Any] = []
        self.failures: list[tuple[Any, str]] = []

    def add(self, written: Any = None, failure: Optional[tuple[Any, str]] = None) -> None:
        with self._lock:
            if written is not None:
                self.written.append(written)
            if failure is not None:
                self.failures.append(failure)


def batch_upscale_job(plan: Any, model_id: str, *, device: str = "auto", tile: Optional[int] = None,
                      fmt: Optional[str] = None, quality: int = 95, overwrite: bool = False,
                      outcome: Optional[BatchOutcome] = None) -> JobFunction:
    """A job upscaling every file of an `engine.batch.BatchPlan`, the same path as `restorer upscale DIR`
    (each file's budget check, then load, upscale, save); a failed file is listed and the next one runs.
    Returns the BatchOutcome (also filled in as it goes, for a cancelled job)."""
    outcome = outcome if outcome is not None else BatchOutcome()
    for failure in plan.failures:
        outcome.add(failure=failure)

    def run(progress: ProgressCallback, cancel: CancelToken) -> BatchOutcome:
        from restorer.engine import registry
        from restorer.engine.batch import check_memory, upscale_item
        from restorer.engine.choice import choose_upscaler
        from restorer.engine.devices import pick_device

        dev = pick_device(device)
        specs: dict[int, Any] = {}
        for f in plan.factors():
            if model_id:
                spec = registry.get_spec(model_id, task="sr")
                if spec.scale < f:
                    raise RestorerError(f"model '{model_id}' is x{spec.scale} and cannot upscale x{f}")
                specs[f] = spec
            else:
                specs[f] = choose_upscaler(f, dev.type).spec
        before = len(plan.failures)
        check_memory(plan, specs.__getitem__, tile=tile)
        for failure in plan.failures[before:]:
            outcome.add(failure=failure)
        n = len(plan.items)
        if plan.output is not None and plan.items:
            plan.output.mkdir(parents=True, exist_ok=True)
        for i, item in enumerate(plan.items):
            cancel.raise_if_cancelled()
            name = item.src.name
            progress(Progress(i * FILE_STEPS, n * FILE_STEPS, f"{i + 1}/{n} {name}: loading"))

            def file_progress(p: Progress, i: int = i, name: str = name) -> None:
                frac = p.done / p.total if p.total else 0.0
                progress(Progress(i * FILE_STEPS + int(frac * (FILE_STEPS - 1)), n * FILE_STEPS,
                                  f"{i + 1}/{n} {name}"))

            try:
                spec = specs[item.factor]
                model = MODEL_CACHE.get(spec)
                dest = upscale_item(item, model, spec, device=dev, tile=tile, fmt=fmt, quality=quality,
                                    overwrite=overwrite, protect=plan.files, progress=file_progress, cancel=cancel)
                outcome.add(written=dest)
            except Cancelled:
                raise
            except RestorerError as exc:
                outcome.add(failure=(item.src, str(exc)))
            except MemoryError:
                outcome.add(failure=(item.src, "not enough memory for this file"))
            progress(Progress((i + 1) * FILE_STEPS, n * FILE_STEPS, f"{i + 1}/{n} {name}: done"))
        return outcome

    return run
