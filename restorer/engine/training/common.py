"""Machinery shared by every trainer: events, atomic checkpoints, EMA, stop/resume, the loop.

A task-specific trainer subclasses :class:`Trainer` and implements `build`, `step`,
`state`/`load_state`, `sample` and `export`. The loop here owns iteration counting,
time budgets, periodic checkpoints, progress events, cancellation (CancelToken, SIGINT,
SIGTERM) and registration of the finished model in the user's model library.
long: the loop, its checkpoints, resume and the data-parallel stop agreement share one state (iteration,
random streams, run lock, which rank writes); split apart, one protocol would be spread over files.

Data-parallel runs (issue #16; `restorer train ... --gpus N` or torchrun) go through the same loop: each
worker joins the process group from the launcher's environment, trains on its shard of every batch
(`rank_batch`) with its own seeds, and only rank 0 takes the run lock and writes checkpoints, samples,
events and the model file. A trainer opts in by naming the attributes to wrap in DistributedDataParallel
(`ddp_modules`) and by calling `average_gradients` for critics trained with a gradient penalty (double
backward, which DDP does not support). Stop requests are agreed by all ranks at the same iteration
(`_agree`, about once a second of training, never every step). See training/distributed.py.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import os
import random
import signal
import threading
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import nn

from restorer.engine.errors import InputError, RestorerError
from restorer.engine.fileutil import atomic_write, remove_stale_temp_files
from restorer.engine.locks import FileLock, LockBusy
from restorer.engine.modelfile import ExportedModel, atomic_torch_save  # noqa: F401 - re-exported for trainers
from restorer.engine.progress import CancelToken
from restorer.engine.training import distributed
from restorer.engine.training.options import option

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "restorer-checkpoint/1"

#: A progress event at least this often (wall seconds), however slow the iterations are.
PROGRESS_SECONDS = 3.0
#: Ranks of a data-parallel run agree on stop requests about this often (wall seconds of training).
AGREE_SECONDS = 1.0


# --------------------------------------------------------------------------- events
# The event stream (kinds, dataclasses, encode/decode) and its sinks live in events.py;
# these names stay importable from here for the trainers and scripts.
from restorer.engine.training.events import (  # noqa: E402,F401
    CallbackEventSink, EventSink, JsonlEventSink, LogEventSink, NullEventSink, TeeEventSink)


# --------------------------------------------------------------------------- checkpoints
def load_torch_file(path: Path, what: str = "file") -> dict[str, Any]:
    """Load a torch file safely (weights_only=True); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise RestorerError(f"{what} '{path}' does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupted, truncated or hostile file
        raise RestorerError(f"{what} '{path}' is corrupted or not a Restorer file ({exc.__class__.__name__})") from exc
    if not isinstance(obj, dict):
        raise RestorerError(f"{what} '{path}' is not a Restorer file")
    return obj


# --------------------------------------------------------------------------- EMA
class EMA:
    """Exponential moving average of a model's parameters (buffers copied).

    The decay warms up as min(decay, (1 + n) / (10 + n)) over the first updates, so a short run's
    average is not dominated by the random initial weights. One update is two foreach kernels
    (lerp of the parameters, copy of the buffers) and never waits for the device: the decay is a
    host float computed from the update count.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._ema_params = list(self.module.parameters())

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        self.updates += 1
        params = [p.detach() for p in model.parameters()]
        if params:
            torch._foreach_lerp_(self._ema_params, params, 1.0 - decay)
        buffers = list(model.buffers())
        if buffers:
            ema_buffers = list(self.module.buffers())
            torch._foreach_copy_(ema_buffers, buffers)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any], updates: Optional[int] = None) -> None:
        """Restore averaged weights and the update count (its warm-up); without a count (an older
        checkpoint) the average counts as fully warmed up."""
        self.module.load_state_dict(state)
        self.updates = updates if updates is not None else 10**9


class LossAccumulator:
    """Sums the losses a step returns (device tensors or floats) without reading them; `read()`
    gives the means since the last read as floats with ONE host sync (on logging steps only)."""

    def __init__(self) -> None:
        self._sums: dict[str, Any] = {}
        self._counts: dict[str, int] = {}

    def add(self, losses: dict[str, Any]) -> None:
        for k, v in losses.items():
            if isinstance(v, torch.Tensor):
                v = v.detach().float().reshape(())
            self._sums[k] = self._sums[k] + v if k in self._sums else v
            self._counts[k] = self._counts.get(k, 0) + 1

    def __bool__(self) -> bool:
        return bool(self._sums)

    def read(self) -> dict[str, float]:
        keys = list(self._sums)
        tensors = [k for k in keys if isinstance(self._sums[k], torch.Tensor)]
        values: dict[str, float] = {k: float(self._sums[k]) for k in keys if k not in tensors}
        if tensors:
            dev = self._sums[tensors[0]].device
            for k, v in zip(tensors, torch.stack([self._sums[k].to(dev) for k in tensors]).tolist()):
                values[k] = v  # .tolist() is the one sync
        out = {k: values[k] / self._counts[k] for k in keys}
        self._sums.clear()
        self._counts.clear()
        return out


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module behind torch.compile's and DistributedDataParallel's wrappers."""
    return distributed.unwrap(model)


# --------------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """Options every trainer shares. Task configs subclass this dataclass."""

    # option(): also a `restorer train` option (flag, help); see restorer/engine/training/options.py
    name: str = option(flag="--name", help="name of the model to create", required=True)
    # TODO(lead): the trainers read one folder (cli.py passes data[0]) until the engine reads several
    data: list[str] = option(flag="--data", required=True,
                             help="folder of training images (searched recursively); repeat for several folders")
    iters: int = option(10_000, "--iters", "training iterations")
    batch: int = option(16, "--batch", "images per iteration")
    device: str = option("auto", "--device", "auto, cpu, cuda or mps")
    lr: float = option(2e-4, "--lr", "learning rate")
    seed: int = option(0, "--seed", "random seed")
    workers: int = option(-1, "--workers", "data loader processes (-1: from the CPU count)")
    checkpoint_every: int = option(1000, "--checkpoint-every", "save a checkpoint every N iterations",
                                   cli_default=500)
    log_every: int = 25
    sample_every: int = option(1000, "--sample-every", "write a preview image every N iterations")
    max_minutes: Optional[float] = option(None, "--minutes", "stop (saving a checkpoint) after this many minutes")
    runs_dir: Optional[str] = option(None, "--runs-dir", "where run checkpoints go (default: the user data folder)")
    init_from: Optional[str] = option(None, "--init-from",
                                      "start from this model (id or file) instead of from scratch")
    register: bool = True  # add the finished model to the user's model library
    replace: bool = option(False, "--replace",
                           "replace a library model of the same name (else the run is refused before it starts)")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    status: str  # "finished" | "stopped"
    iteration: int
    checkpoint: Path
    model_file: Optional[Path] = None
    model_id: Optional[str] = None
    metrics: dict[str, float] = field(default_factory=dict)


def default_runs_dir() -> Path:
    from restorer.engine import paths

    return paths.runs_dir()


def run_dir_for(config: TrainConfig) -> Path:
    base = Path(config.runs_dir) if config.runs_dir else default_runs_dir()
    return base / config.name


# --------------------------------------------------------------------------- stop signals
@contextmanager
def stop_on_signals(token: CancelToken) -> Iterator[None]:
    """While active, SIGINT/SIGTERM (and SIGBREAK on Windows, which the app sends there as
    CTRL_BREAK_EVENT) set `token` (a clean stop after a checkpoint) instead of killing.

    Only installs handlers from the main thread; elsewhere it is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        log.warning("received signal %d: stopping after the current step and saving a checkpoint", signum)
        token.cancel()

    signals = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGBREAK"):  # Windows only
        signals.append(signal.SIGBREAK)  # type: ignore[attr-defined]
    for sig in signals:
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):
            pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --------------------------------------------------------------------------- the loop
class Trainer(ABC):
    """Base of all trainers. Subclasses build models in `build` and do one iteration in `step`."""

    task: str = ""
    #: attributes holding the networks (their training callables) that DistributedDataParallel wraps after
    #: `build` in a data-parallel run, e.g. ("train_net",). Critics trained with a gradient penalty are not
    #: listed: their step calls `self.average_gradients(critic)` after backward instead (see distributed.py).
    ddp_modules: tuple[str, ...] = ()

    def __init__(self, config: TrainConfig, events: Optional[EventSink] = None,
                 cancel: Optional[CancelToken] = None) -> None:
        self.config = config
        self.events = events or NullEventSink()
        self.cancel = cancel or CancelToken()
        self.run_dir = run_dir_for(config)
        self.checkpoint_path = self.run_dir / "checkpoint.pt"
        self.iteration = 0
        self.device = torch.device("cpu")
        self.train_seconds = 0.0  # training time so far, resumed runs included
        self.dist: distributed.DistContext = distributed.SINGLE  # this process's place in a data-parallel run
        self.rank_batch = config.batch  # images this process draws per iteration (the whole batch alone)

    # ---- hooks
    @abstractmethod
    def build(self) -> None:
        """Create data, models and optimizers (on self.device)."""

    @abstractmethod
    def step(self, iteration: int) -> dict[str, float]:
        """One training iteration; returns scalar losses for the log."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """Everything needed to resume: models, EMA, optimizers, schedulers (tensors and plain data)."""

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None:
        ...

    @abstractmethod
    def export(self) -> ExportedModel:
        """The model to put in the user's library (EMA weights where there are some)."""

    def read_init_model(self, source: str) -> dict[str, Any]:
        """The model file that `init_from` names (a file path or a library id of this task), verified."""
        from restorer.engine import registry

        path = Path(source)
        if path.is_file():
            return registry.read_model_file(path)
        spec = registry.get_spec(source, task=self.task)
        return registry.read_model_file(spec.path, spec.sha256)

    def sample(self) -> Optional[np.ndarray]:
        """An RGB uint8 preview (e.g. input | output | target); None when there is nothing to show."""
        return None

    def validate(self) -> dict[str, float]:
        """Validation figures on held-out data, reported with the finished model."""
        return {}

    # ---- machinery
    def _seed(self, seed: Optional[int] = None) -> None:
        seed = self.config.seed if seed is None else seed
        random.seed(seed)
        np.random.seed(seed % (2**32))
        torch.manual_seed(seed)

    def reseed_for_rank(self) -> None:
        """Reseed every random source of this process from the run's seed, this rank and the iteration.

        Used in data-parallel runs (each rank draws other crops, degradations and masks) and when a run
        resumes on another number of workers than it saved with (the checkpoint holds rank 0's random
        state only). The trainer's own generators (torch.Generator / random.Random / numpy Generator
        attributes) are found by type and seeded by name, so a trainer needs no code for this.
        """
        reseed_rngs(self, distributed.rank_seed(self.config.seed, self.dist) + 7919 * self.iteration)

    def average_gradients(self, *modules: Optional[nn.Module]) -> None:
        """Average the gradients of `modules` over the ranks (no-op alone): for networks not wrapped in
        DDP, i.e. critics trained with a WGAN gradient penalty (double backward is not supported by DDP)."""
        if self.dist.enabled:
            distributed.average_gradients([p for m in modules if m is not None for p in m.parameters()],
                                          self.dist)

    def learning_rate(self) -> float:
        """The (generator's) learning rate the run states in its `started` event."""
        resolved = getattr(self.config, "resolved_lr", None)  # latent: None means the loss's default
        value = resolved() if callable(resolved) else self.config.lr
        return float(value) if value is not None else 0.0

    def _wrap_modules(self) -> None:
        for name in self.ddp_modules:
            module = getattr(self, name, None)
            if isinstance(module, nn.Module):
                setattr(self, name, distributed.wrap_module(module, self.dist, self.device))

    def save_checkpoint(self, elapsed: float) -> Path:
        payload = {
            "format": CHECKPOINT_FORMAT,
            "task": self.task,
            "iteration": self.iteration,
            "elapsed_s": elapsed,
            "config": self.config.to_json(),
            "state": self.state(),
            "torch_rng": torch.get_rng_state(),
            "world_size": self.dist.world_size,
        }
        if self.device.type == "cuda":
            payload["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        atomic_torch_save(payload, self.checkpoint_path)
        self.events.emit("checkpoint", iteration=self.iteration, path=str(self.checkpoint_path))
        return self.checkpoint_path

    def _checkpoint_now(self, elapsed: float) -> None:
        """Rank 0 writes the checkpoint (atomically) while the other ranks wait for it."""
        if self.dist.is_main:
            self.save_checkpoint(elapsed)
        distributed.barrier(self.dist)

    def _load_checkpoint(self) -> float:
        ckpt = load_torch_file(self.checkpoint_path, "checkpoint")
        if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("task") != self.task:
            raise RestorerError(f"checkpoint '{self.checkpoint_path}' is not a {self.task} training checkpoint")
        self.load_state(ckpt["state"])
        self.iteration = int(ckpt["iteration"])
        saved_world = int(ckpt.get("world_size", 1))
        if saved_world == 1 and not self.dist.enabled:  # the same layout: continue the exact random streams
            torch.set_rng_state(ckpt["torch_rng"])
            if self.device.type == "cuda" and "cuda_rng" in ckpt:
                torch.cuda.set_rng_state(ckpt["cuda_rng"], self.device)
        else:  # saved by rank 0 of another layout: every rank gets its own streams from seed and iteration
            self.reseed_for_rank()
        if saved_world != self.dist.world_size:
            self.events.emit("info", message=f"resuming a run saved on {saved_world} worker(s) on "
                                             f"{self.dist.world_size}")
        return float(ckpt.get("elapsed_s", 0.0))

    def _model_is_this_runs(self) -> bool:
        """The library's model of this name was registered by this run folder (a resumed run may replace it)."""
        from restorer.engine import registry

        meta = registry.user_model_meta(self.config.name) or {}
        config = meta.get("config") if isinstance(meta, dict) else None
        if not isinstance(config, dict) or config.get("name") != self.config.name:
            return False
        theirs = Path(config["runs_dir"]) if config.get("runs_dir") else default_runs_dir()
        try:
            return (theirs / self.config.name).resolve() == self.run_dir.resolve()
        except OSError:
            return False

    def _may_replace_model(self) -> bool:
        return self.config.replace or self._model_is_this_runs()

    def run(self, resume: bool = False) -> RunResult:
        """Train (or resume) while holding the run folder's lock; see `_run_locked` for the loop.

        Refused before any work: a run of this name already going on in another process (its PID
        is named), and a library model of this name that this run did not make (unless `replace`).
        A start that fails leaves no empty run folder; stale temp files of killed checkpoint
        writes are removed.

        Under a distributed launcher (WORLD_SIZE > 1 in the environment) this process first joins the
        process group; only rank 0 takes the lock and checks the names, the others wait for its verdict.
        A worker the elastic launcher restarted (TORCHELASTIC_RESTART_COUNT > 0) resumes from the last
        checkpoint when there is one.
        """
        ctx = distributed.context_from_env()
        restarts = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        if restarts not in ("", "0") and self.checkpoint_path.exists():
            log.info("restart %s of the distributed run: resuming from %s", restarts, self.checkpoint_path)
            resume = True
        if not ctx.enabled:
            return self._run_main(resume)
        from restorer.engine.devices import pick_device

        self.device = distributed.device_for(ctx, pick_device(self.config.device))
        self.dist = distributed.init_process_group(ctx, self.device)
        try:
            if self.dist.is_main:
                return self._run_main(resume)
            self.events = NullEventSink()  # rank 0 speaks for the run
            logging.getLogger("restorer").setLevel(max(logging.WARNING, logging.getLogger("restorer").level))
            return self._run_locked(resume)
        finally:
            distributed.destroy_process_group(self.dist)

    def _run_main(self, resume: bool) -> RunResult:
        from restorer.engine import registry

        cfg = self.config
        self._started = False  # set once all ranks agreed to start (see _run_locked)
        lock = FileLock(self.run_dir.parent / f".{cfg.name}.lock", timeout=0,
                        busy_message=f"the training run '{cfg.name}' is in use by process {{pid}}; "
                                     "wait for it to finish or stop it, or choose another name")
        existed = self.run_dir.is_dir()
        try:
            try:
                lock.acquire()
            except LockBusy as exc:
                raise InputError(str(exc)) from None
            try:
                if cfg.register and registry.has_user_model(cfg.name) and not self._may_replace_model():
                    raise InputError(f"a model named '{cfg.name}' is already in your library; choose another "
                                     "name, or replace it (--replace)")
                if existed:
                    for stale in (remove_stale_temp_files(self.run_dir, ".checkpoint.pt.*.tmp")
                                  + remove_stale_temp_files(self.run_dir, ".sample_*.tmp")):
                        log.info("removed %s, left by an interrupted write", stale.name)
                return self._run_locked(resume)
            finally:
                lock.release()
        except BaseException:
            if self.dist.enabled and not self._started:  # tell the waiting ranks not to start
                try:
                    distributed.any_rank(True, self.dist, self.device)
                except Exception:  # noqa: BLE001 - the group is going away anyway
                    pass
            if not existed:
                try:
                    self.run_dir.rmdir()  # only when empty: a failed start leaves nothing behind
                except OSError:
                    pass
            raise

    def _agree(self, stop: bool, diverged: bool, seconds_per_iter: float) -> tuple[bool, bool, int]:
        """All ranks: (stop, diverged, iterations until the next agreement); one small all-reduce."""
        values = torch.tensor([float(stop), float(diverged), seconds_per_iter], device=self.device)
        if self.dist.enabled:
            import torch.distributed as dist

            dist.all_reduce(values, op=dist.ReduceOp.MAX)
        stop_all, diverged_all, slowest = values.tolist()
        every = int(AGREE_SECONDS / slowest) if slowest > 0 else 1
        return stop_all > 0, diverged_all > 0, max(1, min(self.config.log_every, every))

    def _run_locked(self, resume: bool = False) -> RunResult:
        from restorer.engine.devices import pick_device

        cfg = self.config
        dist_on = self.dist.enabled
        main = self.dist.is_main
        if not dist_on:
            self.device = pick_device(cfg.device)
        if main:
            if not resume and self.checkpoint_path.exists():
                raise InputError(
                    f"a training run named '{cfg.name}' already exists in {self.run_dir}; "
                    "resume it (--resume) or choose another name")
            if resume and not self.checkpoint_path.exists():
                raise InputError(f"nothing to resume: no checkpoint for '{cfg.name}' in {self.run_dir}")
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if dist_on:
            self._started = True
            if distributed.any_rank(False, self.dist, self.device):  # rank 0 refused the start
                raise RestorerError(f"rank 0 could not start the run '{cfg.name}' (see its error)")
        self.rank_batch = distributed.shard_batch(cfg.batch, self.dist)
        self._seed()  # the same seed on every rank: identical networks and held-out images
        self.build()
        elapsed_before = self._load_checkpoint() if resume else 0.0
        if dist_on and not resume:
            self.reseed_for_rank()  # each rank its own crops, degradations and masks
        self._wrap_modules()
        start_iter = self.iteration
        self.events.emit("started", task=self.task, name=cfg.name, iteration=self.iteration,
                         total=cfg.iters, device=str(self.device), resumed=resume,
                         run_dir=str(self.run_dir), config=cfg.to_json(),
                         world_size=self.dist.world_size, rank_batch=self.rank_batch, batch=cfg.batch,
                         lr=self.learning_rate())

        t0 = time.monotonic()
        window_t, window_it = t0, self.iteration
        last_progress = t0
        rate = 0.0
        last_ckpt = self.iteration
        losses: dict[str, float] = {}
        accumulated = LossAccumulator()
        status = "finished"
        diverged = False
        next_agree, agree_t, agree_it = self.iteration + 1, t0, self.iteration

        def over_time() -> bool:
            return cfg.max_minutes is not None and time.monotonic() - t0 >= cfg.max_minutes * 60

        def diverged_error() -> RestorerError:
            return RestorerError(
                f"training diverged by iteration {self.iteration} (a loss is not finite); "
                "the last checkpoint is kept - try a lower learning rate")

        with stop_on_signals(self.cancel):
            while self.iteration < cfg.iters:
                if not dist_on:  # host flags only: no device sync
                    if self.cancel.cancelled or over_time():
                        status = "stopped"
                        break
                elif self.iteration >= next_agree:  # every rank reaches this at the same iteration
                    now = time.monotonic()
                    per_iter = (now - agree_t) / max(1, self.iteration - agree_it)
                    stop, bad_any, every = self._agree(self.cancel.cancelled or over_time(), diverged, per_iter)
                    if bad_any:
                        raise diverged_error()
                    agree_t, agree_it, next_agree = now, self.iteration, self.iteration + every
                    if stop:
                        status = "stopped"
                        break
                self.train_seconds = elapsed_before + time.monotonic() - t0
                # the step returns device tensors: they are summed here and read (one host sync) only
                # when an event needs them or a checkpoint is due, so the step never waits for the GPU
                accumulated.add(self.step(self.iteration))
                self.iteration += 1
                log_now = self.iteration % cfg.log_every == 0 or self.iteration == cfg.iters
                ckpt_due = bool(cfg.checkpoint_every) and self.iteration - last_ckpt >= cfg.checkpoint_every
                now = time.monotonic()
                progress_now = main and (log_now or now - last_progress >= PROGRESS_SECONDS)
                if (progress_now or ckpt_due or log_now) and accumulated:
                    losses = accumulated.read()
                    if any(not math.isfinite(v) for v in losses.values()):
                        bad = [k for k, v in losses.items() if not math.isfinite(v)]
                        if not dist_on:
                            raise RestorerError(
                                f"training diverged by iteration {self.iteration} (loss {', '.join(bad)} is not "
                                "finite); the last checkpoint is kept - try a lower learning rate")
                        diverged = True  # all ranks stop together at the next agreement
                        next_agree = self.iteration
                if progress_now and (log_now or losses):  # by time: once there are losses to show
                    if now > window_t:
                        rate = (self.iteration - window_it) / (now - window_t)
                    window_t, window_it, last_progress = now, self.iteration, now
                    eta = (cfg.iters - self.iteration) / rate if rate > 0 else None
                    if cfg.max_minutes is not None:  # the time budget ends the run first?
                        left = max(0.0, cfg.max_minutes * 60 - (now - t0))
                        eta = left if eta is None else min(eta, left)
                    self.events.emit("progress", iteration=self.iteration, total=cfg.iters,
                                     losses={k: float(v) for k, v in losses.items()},
                                     it_per_s=rate, eta_s=eta,
                                     elapsed_s=elapsed_before + now - t0)
                if main and cfg.sample_every and self.iteration % cfg.sample_every == 0:
                    self._emit_sample()
                if ckpt_due:
                    # every rank read its losses just now: agree that none diverged before rank 0 saves
                    # (never diverged weights over the last good checkpoint)
                    if dist_on and self._agree(False, diverged, 0.0)[1]:
                        raise diverged_error()
                    self._checkpoint_now(elapsed_before + time.monotonic() - t0)
                    last_ckpt = self.iteration
            if dist_on and self._agree(False, diverged, 0.0)[1]:  # a rank diverged on the last iterations
                raise diverged_error()
        elapsed = elapsed_before + time.monotonic() - t0
        self._checkpoint_now(elapsed)
        ckpt = self.checkpoint_path
        result = RunResult(status=status, iteration=self.iteration, checkpoint=ckpt)
        if status == "stopped":
            self.events.emit("stopped", iteration=self.iteration, total=cfg.iters,
                             checkpoint=str(ckpt), elapsed_s=elapsed)
            return result
        if not main:  # rank 0 validates, exports and registers the model
            return result
        self._emit_sample()
        metrics = self.validate()
        result.metrics = metrics
        if cfg.register:
            from restorer.engine import registry

            exported = self.export()
            exported.meta.update({
                "source_folder": ", ".join(map(str, cfg.data)) if isinstance(cfg.data, (list, tuple)) else str(cfg.data), "iterations": self.iteration,
                "train_seconds": round(elapsed, 1), "device": str(self.device),
                "trained_at": time.strftime("%Y-%m-%d %H:%M:%S"), "metrics": metrics,
                "config": cfg.to_json(), "world_size": self.dist.world_size,
            })
            spec = registry.register_user_model(cfg.name, exported, replace=self._may_replace_model())
            result.model_id, result.model_file = spec.id, Path(spec.file)
        self.events.emit("finished", iteration=self.iteration, total=cfg.iters, elapsed_s=elapsed,
                         metrics=metrics, model_id=result.model_id,
                         model_file=str(result.model_file) if result.model_file else None,
                         checkpoint=str(ckpt), iters_run=self.iteration - start_iter)
        return result

    def _emit_sample(self) -> None:
        image = self.sample()
        if image is None:
            return
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        path = self.run_dir / f"sample_{self.iteration:07d}.png"
        for target in (path, self.run_dir / "sample_latest.png"):
            with atomic_write(target, "wb") as fh:
                fh.write(buf.getvalue())
        self.events.emit("sample", iteration=self.iteration, path=str(path))


def reseed_rngs(obj: Any, seed: int) -> None:
    """Seed the global random sources and every generator attribute of `obj` (by name) from `seed`."""
    import zlib

    seed = int(seed) % (2**63)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    for name, value in sorted(vars(obj).items()):
        sub = (seed + zlib.crc32(name.encode())) % (2**63)
        if isinstance(value, torch.Generator):
            value.manual_seed(sub)
        elif isinstance(value, random.Random):
            value.seed(sub)
        elif isinstance(value, np.random.Generator):
            value.bit_generator.state = np.random.default_rng(sub).bit_generator.state


def auto_workers(requested: int) -> int:
    if requested >= 0:
        return requested
    n = os.cpu_count() or 1
    return max(0, min(8, n - 1)) if n > 2 else 0


def module_argv(args: "list[str]") -> list[str]:
    """The `restorer train TASK` arguments of an older module command line: `--extra-data A B` becomes
    `--data A --data B`; everything else is kept as it is."""
    out: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "--extra-data":
            i += 1
            while i < len(args) and not args[i].startswith("--"):
                out += ["--data", args[i]]
                i += 1
            continue
        out.append(args[i])
        i += 1
    return out


def module_command(task: str, argv: Optional[list[str]] = None) -> int:
    """`python -m restorer.engine.training.TASK ARGS`, kept for older scripts: runs `restorer train TASK ARGS`
    (the same options, events, run folder and exit codes: 0 finished, 130 stopped, 2 bad input, 1 otherwise).

    The older spelling `--extra-data A B` is read as `--data A --data B`. The command is started as
    `python -m restorer` (the process is replaced where the OS can), not imported: the CLI imports the trainers."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "restorer", "train", task, *module_argv(sys.argv[1:] if argv is None else argv)]
    if argv is None and os.name == "posix":
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, cmd)  # the alias becomes the training process (signals reach the trainer)
    return subprocess.call(cmd)


def export_ema_checkpoint(checkpoint: str, dest: str, task: str, arch: str, config_keys: Sequence[str],
                          extra_meta: Optional[dict[str, Any]] = None, prepare: Optional[Any] = None) -> str:
    """Write a run's EMA weights (a detect or colorize checkpoint: `state["ema"]`, `state["arch_params"]`)
    as a model file, e.g. a stopped run's for shipping; returns its sha256.

    The file's meta: the run's `config_keys`, iterations, seconds and batch, then `extra_meta`, then
    whatever `prepare(ckpt, meta)` adds or changes (detect: the threshold)."""
    from restorer.engine import registry

    ckpt = load_torch_file(Path(checkpoint), "checkpoint")
    if ckpt.get("task") != task:
        raise InputError(f"'{checkpoint}' is not a {task} training checkpoint")
    state = ckpt["state"]
    cfg = ckpt.get("config", {})
    meta = {k: cfg.get(k) for k in config_keys}
    meta.update(iterations=int(ckpt["iteration"]), train_seconds=round(float(ckpt.get("elapsed_s", 0.0)), 1),
                batch=cfg.get("batch"), **(extra_meta or {}))
    if prepare is not None:
        prepare(ckpt, meta)
    payload = {"format": registry.MODEL_FORMAT, "task": task, "arch": arch,
               "params": dict(state["arch_params"]), "scale": 1,
               "state_dict": {k: v.detach().float().cpu().contiguous() for k, v in state["ema"].items()},
               "meta": meta}
    atomic_torch_save(payload, Path(dest))
    return registry.sha256_file(Path(dest))


def export_or_train_command(task: str, what: str, export: Any, argv: Optional[list[str]] = None,
                            flags: Sequence[tuple[str, str]] = ()) -> int:
    """`python -m restorer.engine.training.TASK --export-checkpoint CKPT --to FILE [FLAGS]` writes a run's
    `what` as a model file and prints its sha256 (`export(ckpt, dest, **flags)`); any other arguments train, as
    `restorer train TASK` (see `module_command`). `flags`: (store_true flag, help) pairs passed to `export`."""
    import argparse
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if "--export-checkpoint" not in args:
        return module_command(task, argv)
    ap = argparse.ArgumentParser(prog=f"python -m restorer.engine.training.{task}",
                                 description=f"Write a {task} run's {what} as a model file "
                                             f"(training: restorer train {task} --help).")
    ap.add_argument("--export-checkpoint", metavar="CKPT", required=True, help="the run's checkpoint.pt")
    ap.add_argument("--to", required=True, help="model file to write")
    for flag, help_text in flags:
        ap.add_argument(flag, action="store_true", help=help_text)
    ns = vars(ap.parse_args(args))
    ckpt, dest = ns.pop("export_checkpoint"), ns.pop("to")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    try:
        print(export(ckpt, dest, **ns))
    except RestorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
