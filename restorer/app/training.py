"""Train a model on a folder of your own photos: Tools ▸ Train a Model… (issue #6).

The dialog (:class:`TrainingDialog`) has three pages and a progress panel:

* **New model** - a folder (scanned off the GUI thread: how many photos are usable and why the
  others are skipped), the task (upscale ×2/×4 in the *faithful* or *photo* style, fill, or the
  latent generator of the explorer), the model's name, the length (iterations or minutes), the
  batch size and what to start from (an installed model of the same task and scale to fine-tune,
  or from scratch). Defaults follow the compute device (small batches and patches on a CPU).
* **Runs** - runs found in ``<user data>/runs/*/checkpoint.pt`` with their iteration,
  including runs still training in the background after the app was closed: Resume, show the
  progress of a background run, save a model from a stopped run now, or delete a run.
* **My models** - the user's models: rename, delete, export to one file, import a file.

Training runs in a separate worker process, ``restorer train ... --events jsonl`` (the command
from :func:`restorer.engine.worker_command.worker_argv`), handled by :class:`TrainingProcess`.
Its stdout (one JSON event per line) goes to ``<run>/events.jsonl`` and its stderr to
``<run>/worker.log``; the dialog reads new bytes of the events file as they arrive (keeping a
partial last line for the next read) and watches the process. Files rather than pipes because a
run may outlive the window: with pipes the worker would die of a broken pipe when the app quits,
and a ``QProcess`` kills its child when it is destroyed (and PySide's ``startDetached()`` does
not report the pid), so the worker is a ``subprocess.Popen`` in its own session. That is also
what lets a reopened app find a run still training, show its progress and stop it.

Stop sends SIGTERM: the trainer finishes its step, saves a checkpoint and exits (SIGKILL only if
it has not ended after :data:`STOP_TIMEOUT_S`). Resume starts the worker again with
``--resume`` and the run's own settings (read back from its checkpoint). A run measured in
minutes stops on its time budget like a stopped run; the dialog then finishes it (``--resume
--iters <iteration reached>``), which saves the model. A finished model is registered in the user
library by the trainer; the dialog emits :attr:`TrainingDialog.modelsChanged` at once.

:func:`install_training_menu` adds the menu action to the main window and asks, when the main
window is closed during a run, whether to stop it (a checkpoint is saved) or to let it go on
training in the background.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QFont, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QComboBox, QDialog, QDialogButtonBox,
                               QFileDialog, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QHeaderView,
                               QInputDialog, QLabel, QLineEdit, QMenu, QMessageBox, QPlainTextEdit, QProgressBar,
                               QPushButton, QRadioButton, QSizePolicy, QSpinBox, QTabWidget, QToolButton,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from restorer.app.workers import run_in_thread
from restorer.engine.training import events as ev_mod
from restorer.engine.training.events import (CheckpointEvent, DataEvent, ErrorEvent, FinishedEvent, InfoEvent,
                                              ProgressEvent, SampleEvent, StartedEvent, StoppedEvent,
                                              TrainingEvent, WarningEvent, read_events)
from restorer.engine.fileutil import atomic_write

log = logging.getLogger(__name__)

EVENTS_FILE = "events.jsonl"  # the worker's stdout: one JSON event per line, appended per launch
LOG_FILE = "worker.log"  # the worker's stderr, appended per launch
WORKER_FILE = "worker.json"  # pid and file offsets of the latest launch
SETTINGS_FILE = "gui-run.json"  # how the dialog started the run (length in minutes or iterations)
CHECKPOINT_FILE = "checkpoint.pt"
SAMPLE_FILE = "sample_latest.png"

STOP_TIMEOUT_S = 120.0  # after Stop, SIGKILL only when the worker has not ended by then
POLL_MS = 100
MINUTES_ITERS = 10_000_000  # the iteration budget of a run measured in minutes
MIN_SR_PHOTOS_FOR_PREVIEW = 20  # the SR trainer holds out 5 % of the photos for previews and scores

TASK_LABELS = {"sr": "Upscale", "inpaint": "Fill", "latent": "Latent"}
STYLES = {  # SR style -> (phase, degradation)
    "faithful": ("psnr", "bicubic"),
    "photo": ("gan", "realistic"),
}


# ============================================================================ small helpers
def fmt_duration(seconds: Optional[float]) -> str:
    """1:05, 12:03, 1:02:03 (h:mm:ss); '?' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=False)


def fmt_count(n: int) -> str:
    return f"{n:,}".replace(",", "\u2009")  # thin space as thousands separator


def runs_dir() -> Path:
    from restorer.engine import registry

    return registry.user_data_dir() / "runs"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=str)


def pid_alive(pid: Optional[int]) -> bool:
    """Whether process `pid` is running (a zombie counts as ended)."""
    if not pid or pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, int(pid))  # QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        try:
            ok = ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        finally:
            ctypes.windll.kernel32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
    except (OSError, IndexError):
        pass
    return True


def _is_our_worker(pid: int, name: str) -> bool:
    """Guards against a recycled pid: on Linux the command line must be a training run of `name`."""
    path = Path(f"/proc/{pid}/cmdline")
    if not path.exists():
        return True  # not Linux: the pid and the recorded start are all there is
    try:
        argv = path.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"train" in argv and name.encode() in argv


def _send_stop(pid: int) -> None:
    if sys.platform == "win32":
        os.kill(pid, signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
    else:
        os.kill(pid, signal.SIGTERM)


def _send_kill(pid: int) -> None:
    if sys.platform == "win32":
        os.kill(pid, signal.SIGTERM)  # TerminateProcess
    else:
        os.kill(pid, signal.SIGKILL)


# ============================================================================ settings -> arguments
@dataclass
class TrainingSettings:
    """What the New model page chose; :meth:`args` turns it into `restorer train` arguments."""

    task: str  # sr | inpaint | latent
    data: Any  # list[str]: the photo folders (one folder is taken as a list of one)
    name: str
    scale: int = 4  # sr
    style: str = "faithful"  # sr: faithful | photo
    length_mode: str = "iterations"  # iterations | minutes
    iterations: int = 10_000
    minutes: float = 30.0
    batch: int = 16
    device: str = "auto"
    init_from: str = ""  # model id to fine-tune, "" = from scratch
    arch: str = "srgan"  # sr
    blocks: int = 16  # sr (srgan)
    channels: int = 64  # sr; latent when continuing a model
    patch: int = 48  # sr: LR patch side
    crop: int = 256  # inpaint
    size: int = 64  # latent
    checkpoint_every: int = 500
    sample_every: int = 0  # passed only when the CLI has --sample-every; 0 = the trainer's default
    runs_dir: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.data, (str, Path)):  # one folder (the New model page) or several
            self.data = [str(self.data)]

    def config(self) -> dict[str, Any]:
        """The config-dataclass fields (restorer/engine/training/options.py) this run sets."""
        v: dict[str, Any] = {
            "name": self.name, "data": [str(Path(d).expanduser().resolve()) for d in self.data],
            "batch": self.batch, "device": self.device, "checkpoint_every": self.checkpoint_every,
            "runs_dir": self.runs_dir or str(runs_dir()), "init_from": self.init_from or None,
            "sample_every": self.sample_every or None}
        if self.length_mode == "minutes":
            v.update(max_minutes=self.minutes, iters=MINUTES_ITERS)
        else:
            v["iters"] = self.iterations
        if self.task == "sr":
            phase, degradation = STYLES[self.style]
            v.update(scale=self.scale, phase=phase, degradation=degradation, arch=self.arch,
                     channels=self.channels, patch=self.patch)
            if self.arch == "srgan":
                v["num_blocks"] = self.blocks
        elif self.task == "inpaint":
            v["crop"] = self.crop
        elif self.task == "latent":
            v["size"] = self.size
            if self.init_from:  # the generator's width comes from the model it continues
                v["channels"] = self.channels
        return v

    def args(self) -> list[str]:
        """`restorer train` arguments starting this run."""
        from restorer.engine.training.options import config_argv, config_class

        return ["train", self.task, *config_argv(config_class(self.task), self.config()), "--events", "jsonl"]


def device_kind(preference: str = "auto") -> str:
    """'cuda', 'mps' or 'cpu': where a run with this device preference will train."""
    try:
        from restorer.engine.devices import pick_device

        return pick_device(preference).type
    except Exception:
        return "cpu"


def defaults_for(task: str, device: str, scale: int = 4) -> dict[str, Any]:
    """Sensible starting values for a task on a device kind (CPU: small batches, patches and nets)."""
    gpu = device in ("cuda", "mps")
    d: dict[str, Any] = {"length_mode": "iterations" if device == "cuda" else "minutes",
                         "iterations": 10_000, "minutes": 30.0 if not gpu else 60.0,
                         "checkpoint_every": 1000 if gpu else 100, "sample_every": 1000 if gpu else 100}
    if task == "sr":
        if gpu:
            d.update(batch=16 if device == "cuda" else 8, patch=48, blocks=16, channels=64)
        else:
            d.update(batch=4, patch=24 if scale >= 4 else 32, blocks=6, channels=32)
    elif task == "inpaint":
        d.update(batch=16 if device == "cuda" else (8 if gpu else 2), crop=256 if gpu else 128)
    else:
        d.update(batch=128 if device == "cuda" else (64 if gpu else 32), size=64)
    return d


def start_from_params(spec: Any, task: str, scale: int) -> Optional[dict[str, Any]]:
    """Settings a run must use to start from `spec`, or None when `restorer train` cannot build a
    matching network (the trainer would refuse it)."""
    params = dict(spec.params or {})
    try:
        if task == "sr":
            from restorer.engine.training.sr import SRConfig, generator_params

            if spec.task != "sr" or int(spec.scale) != scale or spec.arch not in ("srgan", "compact_sr"):
                return None
            out = {"arch": spec.arch, "channels": int(params.get("channels", 64)),
                   "blocks": int(params.get("num_blocks", 16))}
            cfg = SRConfig(name="x", data="x", scale=scale, arch=spec.arch, num_blocks=out["blocks"],
                           channels=out["channels"])
            return out if generator_params(cfg) == (spec.arch, params) else None
        if task == "inpaint":
            from restorer.engine.training.inpaint import InpaintConfig, generator_params as inpaint_params

            ok = spec.task == "inpaint" and spec.arch == "deepfill" and params == inpaint_params(
                InpaintConfig(name="x", data="x"))
            return {} if ok else None
        if task == "latent":
            from restorer.engine.training.latent import LatentConfig

            size = int(params.get("image_size", 0))
            if spec.task != "latent" or spec.arch != "dcgan" or size not in (64, 128):
                return None
            channels = int(params.get("channels", 0))  # any width: `restorer train latent --channels` keeps it
            cfg = LatentConfig(name="x", data="x", size=size, channels=channels)
            want = {"latent_dim": cfg.latent_dim, "image_size": size, "channels": channels, "num_classes": 0}
            return {"size": size, "channels": channels} if params == want and channels > 0 else None
    except Exception:  # an odd spec never breaks the dialog
        log.debug("cannot check %s as a starting point", getattr(spec, "id", spec), exc_info=True)
    return None


# ============================================================================ runs on disk
@dataclass
class RunInfo:
    """A training run folder: its checkpoint's iteration and settings, and a worker still running."""

    name: str
    run_dir: Path
    task: str = ""
    iteration: int = 0
    total: int = 0
    elapsed_s: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    gui: dict[str, Any] = field(default_factory=dict)
    pid: Optional[int] = None  # a worker still training this run
    error: str = ""  # the checkpoint could not be read
    has_checkpoint: bool = False

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def folders(self) -> list[str]:
        """The photo folders the run trains on (a checkpoint holds one folder or a list)."""
        data = self.config.get("data")
        if not data:
            return []
        return [str(d) for d in data] if isinstance(data, (list, tuple)) else [str(data)]

    @property
    def minutes_mode(self) -> bool:
        return self.gui.get("length_mode") == "minutes"

    @property
    def budget_minutes(self) -> float:
        return float(self.gui.get("minutes") or 0.0)

    @property
    def remaining_s(self) -> float:
        return max(0.0, self.budget_minutes * 60 - self.elapsed_s)

    @property
    def finished(self) -> bool:
        return self.has_checkpoint and not self.error and self.total > 0 and self.iteration >= self.total

    def progress_text(self) -> str:
        if not self.has_checkpoint:
            return "starting"
        if self.minutes_mode and not self.finished:
            return f"{fmt_count(self.iteration)} it, {fmt_duration(self.elapsed_s)} of {self.budget_minutes:g} min"
        return f"{fmt_count(self.iteration)} / {fmt_count(self.total)} it"

    def state_text(self) -> str:
        if self.running:
            return "training in the background"
        if self.error:
            return f"unreadable ({self.error})"
        if self.finished:
            return "finished"
        return "stopped"


def live_worker(run_dir: Path) -> Optional[dict[str, Any]]:
    """worker.json of `run_dir` when its process is still running, else None."""
    info = _read_json(run_dir / WORKER_FILE)
    pid = info.get("pid")
    if isinstance(pid, int) and pid_alive(pid) and _is_our_worker(pid, run_dir.name):
        return info
    return None


def read_run(run_dir: Path) -> RunInfo:
    """What is known about one run folder (loads only the checkpoint's small fields, memory-mapped)."""
    run_dir = Path(run_dir)
    info = RunInfo(name=run_dir.name, run_dir=run_dir, gui=_read_json(run_dir / SETTINGS_FILE))
    worker = live_worker(run_dir)
    if worker is not None:
        info.pid = int(worker["pid"])
    ckpt_path = run_dir / CHECKPOINT_FILE
    if ckpt_path.is_file():
        info.has_checkpoint = True
        try:
            import torch

            try:
                ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
            except Exception:
                ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            info.task = str(ckpt.get("task", ""))
            info.iteration = int(ckpt.get("iteration", 0))
            info.elapsed_s = float(ckpt.get("elapsed_s", 0.0))
            info.config = dict(ckpt.get("config") or {})
            info.total = int(info.config.get("iters", 0))
            del ckpt
        except Exception as exc:
            info.error = exc.__class__.__name__
    if not info.task:
        info.task = str(info.gui.get("task", ""))
    return info


def list_runs(base: Optional[Path] = None) -> list[RunInfo]:
    """Runs with a checkpoint or a running worker under `base` (default ``<user data>/runs``), newest first."""
    base = Path(base) if base is not None else runs_dir()
    if not base.is_dir():
        return []
    out = []
    for d in base.iterdir():
        if d.is_dir() and ((d / CHECKPOINT_FILE).is_file() or live_worker(d) is not None):
            out.append(read_run(d))

    def mtime(r: RunInfo) -> float:
        try:
            return max(p.stat().st_mtime for p in r.run_dir.iterdir())
        except (OSError, ValueError):
            return 0.0

    return sorted(out, key=mtime, reverse=True)


def resume_args(info: RunInfo, *, finish_at: Optional[int] = None) -> list[str]:
    """`restorer train` arguments continuing `info` with its own settings.

    With `finish_at`, the run ends at that iteration: resuming a stopped run with that many
    iterations saves its model at once (how a run measured in minutes, or "Save model now", ends).
    """
    from restorer.engine.training.options import config_argv, config_class

    cfg = info.config
    if not cfg or info.task not in ("sr", "inpaint", "latent"):
        from restorer.engine.errors import RestorerError

        raise RestorerError(f"the checkpoint of '{info.name}' does not say how it was trained")
    values = dict(cfg, name=info.name, runs_dir=str(info.run_dir.parent), max_minutes=None)
    values.setdefault("data", "")
    if finish_at is not None:
        values["iters"] = int(finish_at)
    else:
        values["iters"] = int(cfg.get("iters", info.total))
        if info.minutes_mode:
            values["max_minutes"] = round(max(info.remaining_s, 1.0) / 60, 4)
        elif cfg.get("max_minutes"):
            values["max_minutes"] = cfg["max_minutes"]
    # init_from only seeds a new run: a resumed one has its own weights (and the model may be gone)
    return ["train", info.task, *config_argv(config_class(info.task), values, exclude=("init_from",)),
            "--resume", "--events", "jsonl"]


@dataclass
class RunState:
    """The run the progress panel shows: how it was launched and what its events said so far."""

    name: str
    run_dir: Path
    task: str = ""
    kind: str = "view"  # new | resume | finish | attach | view (not training, only shown)
    gui: dict[str, Any] = field(default_factory=dict)  # gui-run.json: how the dialog started it
    iteration: int = 0
    total: int = 0
    user_stop: bool = False  # Stop was pressed (not the time budget)
    ckpt_iteration: Optional[int] = None  # iteration of the last checkpoint saved
    started_time: Optional[float] = None  # worker time of this launch's `started` event
    stop_time: Optional[float] = None  # worker time of the `stopped` event
    elapsed_s: float = 0.0  # training time so far, earlier launches included
    device: str = ""
    it_per_s: float = 0.0
    eta_s: Optional[float] = None
    progress_time: Optional[float] = None
    metrics: dict[str, float] = field(default_factory=dict)
    model_id: Optional[str] = None

    @property
    def minutes_mode(self) -> bool:
        return self.gui.get("length_mode") == "minutes"


# ============================================================================ the worker process
class TrainingProcess(QObject):
    """One `restorer train` worker: its JSON events as they arrive, and how it ended.

    ``event(TrainingEvent)`` for every event written since this launch; ``ended(outcome, message)`` once,
    with outcome ``finished`` | ``stopped`` | ``failed`` (an ``error`` event, or a worker that
    exited without one: a crash) | ``killed`` (did not stop within the timeout).
    """

    event = Signal(object)  # a restorer.engine.training.events.TrainingEvent
    ended = Signal(str, str)

    def __init__(self, run_dir: Path, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.events_path = self.run_dir / EVENTS_FILE
        self.log_path = self.run_dir / LOG_FILE
        self.pid: Optional[int] = None
        self.launched_at = 0.0
        self.events_offset = 0  # where this launch's events begin in the events file
        self.exit_code: Optional[int] = None
        self._popen: Optional[subprocess.Popen] = None
        self._log_offset = 0
        self._pos = 0
        self._partial = b""
        self._last_terminal: Optional[TrainingEvent] = None
        self._stop_sent_at: Optional[float] = None
        self._killed = False
        self._done = False
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self.stop_timeout_s = STOP_TIMEOUT_S

    # ------------------------------------------------------------------ starting
    def start(self, args: Sequence[str]) -> None:
        """Launch `restorer ARGS` (raises RestorerError when the process cannot be started)."""
        from restorer.engine.errors import RestorerError
        from restorer.engine.worker_command import is_frozen, worker_argv

        argv = worker_argv(list(args))
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        if not is_frozen():  # `python -m restorer` must find this very package
            root = str(Path(__file__).resolve().parents[2])
            env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = (subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
                                       | getattr(subprocess, "CREATE_NO_WINDOW", 0))
        else:
            kwargs["start_new_session"] = True  # a terminal's Ctrl+C or hang-up does not reach it
        try:  # any file error (full disk, permissions) is reported, and no worker is left running untracked
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with open(self.events_path, "ab") as out, open(self.log_path, "ab") as err:
                self.events_offset = out.tell()
                err.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
                err.flush()
                self._log_offset = err.tell()
                self._popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                               **kwargs)
            self.pid = self._popen.pid
            self.launched_at = time.time()
            self._pos = self.events_offset
            _write_json(self.run_dir / WORKER_FILE, {
                "pid": self.pid, "argv": argv, "events_offset": self.events_offset, "log_offset": self._log_offset,
                "started_at": self.launched_at})
        except OSError as exc:
            if self._popen is not None and self._popen.poll() is None:
                self._popen.kill()
            self._popen = None
            raise RestorerError(f"cannot start the training process ({exc})") from exc
        self._timer.start()

    def attach(self) -> bool:
        """Follow a worker started earlier (by another session of the app) that is still running."""
        info = live_worker(self.run_dir)
        if info is None:
            return False
        self.pid = int(info["pid"])
        self.events_offset = int(info.get("events_offset", 0))
        self._log_offset = int(info.get("log_offset", 0))
        self.launched_at = float(info.get("started_at", time.time()))
        self._pos = self.events_offset
        self._timer.start()
        self._poll()
        return True

    # ------------------------------------------------------------------ control
    @property
    def running(self) -> bool:
        return self.pid is not None and not self._done

    @property
    def stopping(self) -> bool:
        return self._stop_sent_at is not None and not self._done

    def stop(self) -> None:
        """Ask the worker to stop: it saves a checkpoint and exits (killed after the timeout)."""
        if not self.running or self.pid is None:
            return
        if self._stop_sent_at is None:
            self._stop_sent_at = time.monotonic()
        try:
            _send_stop(self.pid)
        except OSError as exc:
            log.warning("cannot signal the training process %s: %s", self.pid, exc)

    def kill(self) -> None:
        if not self.running or self.pid is None:
            return
        self._killed = True
        try:
            if self._popen is not None:
                self._popen.kill()
            else:
                _send_kill(self.pid)
        except OSError:
            pass

    def detach(self) -> None:
        """Stop following the worker; it goes on training (a reopened app can attach to it)."""
        self._timer.stop()
        self._done = True
        self._popen = None  # a Popen that is dropped does not kill its process

    def wait(self, timeout_s: float) -> bool:
        """Block (processing events) until the worker ended; True when it did."""
        deadline = time.monotonic() + timeout_s
        while self.running and time.monotonic() < deadline:
            QApplication.processEvents()
            self._poll()
            time.sleep(0.02)
        return not self.running

    # ------------------------------------------------------------------ reading
    def _read_new(self) -> None:
        try:
            with open(self.events_path, "rb") as fh:
                fh.seek(self._pos)
                data = fh.read()
        except OSError:
            return
        if not data:
            return
        self._pos += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for the rest
        for line in lines:
            self._handle_line(line)

    def _handle_line(self, line: bytes) -> None:
        line = line.strip()
        if not line:
            return
        ev = ev_mod.decode(line)
        if ev is None:
            log.debug("training worker wrote a line that is not an event: %r", line[:200])
            return
        if ev.event_kind.terminal:
            self._last_terminal = ev
        self.event.emit(ev)

    def _alive(self) -> bool:
        if self._popen is not None:
            code = self._popen.poll()
            if code is None:
                return True
            self.exit_code = code
            return False
        return pid_alive(self.pid)

    def _poll(self) -> None:
        if self._done:
            return
        self._read_new()
        if self._alive():
            if (self._stop_sent_at is not None and not self._killed
                    and time.monotonic() - self._stop_sent_at > self.stop_timeout_s):
                log.warning("the training process did not stop within %.0f s; killing it", self.stop_timeout_s)
                self.kill()
            return
        self._read_new()
        if self._partial:
            self._handle_line(self._partial)
            self._partial = b""
        self._timer.stop()
        self._done = True
        outcome, message = self._outcome()
        self.ended.emit(outcome, message)

    def stderr_text(self) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _stderr_reason(self) -> str:
        lines = [ln.strip() for ln in self.stderr_text().splitlines() if ln.strip()]
        for ln in reversed(lines):
            if ln.startswith("error: "):
                return ln[len("error: "):]
        return lines[-1] if lines else ""

    def _outcome(self) -> tuple[str, str]:
        ev = self._last_terminal
        if isinstance(ev, FinishedEvent):
            return "finished", str(ev.model_id or "")
        if isinstance(ev, StoppedEvent):
            return "stopped", ""
        if isinstance(ev, ErrorEvent):
            return "failed", str(ev.message or self._stderr_reason() or "unknown error")
        if self._killed:
            return "killed", (f"the training process did not stop within {self.stop_timeout_s:.0f} s "
                              "and was ended")
        if self.exit_code == 130 or (self._stop_sent_at is not None and self.exit_code in (None, -15, 143)):
            return "stopped", ""
        reason = self._stderr_reason()
        code = "" if self.exit_code is None else f" (exit code {self.exit_code})"
        return "failed", f"the training process ended unexpectedly{code}" + (f": {reason}" if reason else "")


# ============================================================================ the loss curve
class LossPlot(QWidget):
    """Loss curves against the iteration, drawn with QPainter (log scale when every value is > 0)."""

    COLORS = ("#2f7fd8", "#e0663a", "#2ea05a", "#9b59b6", "#c0392b", "#7f8c8d")
    MAX_POINTS = 20_000  # per series; older points are thinned out beyond that

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._series: dict[str, list[tuple[int, float]]] = {}
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(420, 200)

    # ------------------------------------------------------------------ data
    def add(self, iteration: int, losses: dict[str, float]) -> None:
        for name, value in losses.items():
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(v):
                continue
            pts = self._series.setdefault(str(name), [])
            pts.append((int(iteration), v))
            if len(pts) > self.MAX_POINTS:
                pts[:] = pts[::2]
        self.update()

    def trim(self, iteration: int) -> None:
        """Forget points after `iteration` (a resumed run repeats them from its checkpoint)."""
        for pts in self._series.values():
            pts[:] = [p for p in pts if p[0] <= iteration]
        self.update()

    def clear(self) -> None:
        self._series.clear()
        self.update()

    def series(self) -> dict[str, list[tuple[int, float]]]:
        return {k: list(v) for k, v in self._series.items()}

    def point_count(self) -> int:
        return sum(len(v) for v in self._series.values())

    # ------------------------------------------------------------------ painting
    @staticmethod
    def _nice_step(span: float, target: int) -> float:
        raw = span / max(1, target)
        mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
        for m in (1, 2, 2.5, 5, 10):
            if raw <= m * mag:
                return m * mag
        return 10 * mag

    @staticmethod
    def _fmt_value(v: float) -> str:
        if v == 0:
            return "0"
        a = abs(v)
        if a >= 1000 or a < 0.001:
            return f"{v:.0e}"
        return f"{v:.3g}"

    @staticmethod
    def _path(points: Sequence[tuple[float, float]]) -> QPainterPath:
        path = QPainterPath()
        for j, (x, y) in enumerate(points):
            if j == 0:
                path.moveTo(x, y)
            else:
                path.lineTo(x, y)
        return path

    def paintEvent(self, _event: Any) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        text_color = pal.color(QPalette.ColorRole.Text)
        grid = QColor(text_color)
        grid.setAlpha(40)
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        p.setFont(font)
        fm = p.fontMetrics()
        series = {k: v for k, v in self._series.items() if v}
        if not series:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "The loss curve appears after the first iterations")
            p.end()
            return
        xs = [pt[0] for pts in series.values() for pt in pts]
        ys = [pt[1] for pts in series.values() for pt in pts]
        x0, x1 = min(xs), max(xs)
        if x1 <= x0:
            x1 = x0 + 1
        log_y = min(ys) > 0
        fy = (lambda v: math.log10(v)) if log_y else (lambda v: v)
        ty = [fy(v) for v in ys]
        y0, y1 = min(ty), max(ty)
        if y1 - y0 < 1e-9:
            y0, y1 = y0 - 0.5, y1 + 0.5
        pad = (y1 - y0) * 0.06
        y0, y1 = y0 - pad, y1 + pad

        legend_h = fm.height() + 6
        left = fm.horizontalAdvance("0.0000") + 10
        plot = QRectF(left, legend_h + 4, self.width() - left - 10, self.height() - legend_h - fm.height() - 12)
        if plot.width() < 20 or plot.height() < 20:
            p.end()
            return

        def px(x: float) -> float:
            return plot.left() + (x - x0) / (x1 - x0) * plot.width()

        def py(y: float) -> float:
            return plot.bottom() - (y - y0) / (y1 - y0) * plot.height()

        # grid and axis labels
        p.setPen(QPen(grid, 1))
        p.drawRect(plot)
        if log_y:
            ticks = []
            for mults in ((1, 2, 5), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9)):
                ticks = [(e + math.log10(m), 10 ** (e + math.log10(m)))
                         for e in range(math.floor(y0), math.ceil(y1) + 1) for m in mults
                         if y0 <= e + math.log10(m) <= y1]
                if len(ticks) >= 3:
                    break
            if len(ticks) > 6:
                decades = [t for t in ticks if abs(t[0] - round(t[0])) < 1e-9]
                ticks = decades if len(decades) >= 2 else ticks[::math.ceil(len(ticks) / 5)]
        else:
            step = self._nice_step(y1 - y0, 5)
            ticks = [(v, v) for v in [math.ceil(y0 / step) * step + i * step for i in range(12)] if v <= y1]
        for t, label in ticks:
            y = py(t)
            p.setPen(QPen(grid, 1))
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(text_color)
            p.drawText(QRectF(0, y - fm.height() / 2, left - 5, fm.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, self._fmt_value(label))
        xstep = self._nice_step(x1 - x0, max(2, int(plot.width() // 90)))
        xstep = max(1.0, xstep)
        v = math.ceil(x0 / xstep) * xstep
        while v <= x1:
            x = px(v)
            p.setPen(QPen(grid, 1))
            p.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            p.setPen(text_color)
            p.drawText(QRectF(x - 40, plot.bottom() + 2, 80, fm.height()), Qt.AlignmentFlag.AlignHCenter,
                       fmt_count(int(v)))
            v += xstep

        # curves: one point per pixel column (mean) so long runs stay cheap to draw; the noisy
        # per-report values faint, their running average (the trend) on top
        p.save()
        p.setClipRect(plot.adjusted(-1, -1, 1, 1))
        legend_x = left
        for i, (name, pts) in enumerate(series.items()):
            color = QColor(self.COLORS[i % len(self.COLORS)])
            columns: dict[int, list[float]] = {}
            for it, val in pts:
                columns.setdefault(int(px(it)), []).append(fy(val))
            cols = [(col, sum(vals) / len(vals)) for col, vals in sorted(columns.items())]
            p.setBrush(Qt.BrushStyle.NoBrush)
            if len(cols) == 1:
                p.setPen(QPen(color, 1.6))
                p.setBrush(color)
                p.drawEllipse(QPointF(cols[0][0], py(cols[0][1])), 2.5, 2.5)
                continue
            smooth = len(cols) >= 8
            faint = QColor(color)
            faint.setAlpha(90)
            p.setPen(QPen(faint if smooth else color, 1.0 if smooth else 1.6))
            p.drawPath(self._path([(c, py(v)) for c, v in cols]))
            if smooth:
                alpha = min(0.5, max(0.02, 8.0 / len(cols)))
                avg, trend = cols[0][1], []
                for c, v in cols:
                    avg += alpha * (v - avg)
                    trend.append((c, py(avg)))
                p.setPen(QPen(color, 2.0))
                p.drawPath(self._path(trend))
        p.restore()
        for i, (name, pts) in enumerate(series.items()):
            color = QColor(self.COLORS[i % len(self.COLORS)])
            text = f"{name} {self._fmt_value(pts[-1][1])}"
            p.fillRect(QRectF(legend_x, 4 + fm.height() / 2 - 2, 12, 4), color)
            p.setPen(text_color)
            p.drawText(QPointF(legend_x + 16, 4 + fm.ascent()), text)
            legend_x += 16 + fm.horizontalAdvance(text) + 14
        p.end()


class ImagePreview(QLabel):
    """A picture scaled to the label's width, kept sharp on resize."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._pixmap: Optional[QPixmap] = None
        self.placeholder = ""
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_image(self, path: Optional[Path]) -> bool:
        pm = QPixmap(str(path)) if path else QPixmap()
        self._pixmap = None if pm.isNull() else pm
        self._rescale()
        return self._pixmap is not None

    def has_image(self) -> bool:
        return self._pixmap is not None

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._rescale()

    def hasHeightForWidth(self) -> bool:
        return self._pixmap is not None

    def heightForWidth(self, w: int) -> int:
        if self._pixmap is None:
            return self.minimumHeight()
        return max(40, min(360, int(w * self._pixmap.height() / max(1, self._pixmap.width()))))

    def _rescale(self) -> None:
        if self._pixmap is None:
            self.clear()
            self.setText(self.placeholder)
            return
        w = max(40, self.width() - 4)
        h = self.heightForWidth(w)
        self.setPixmap(self._pixmap.scaled(w, h, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation))


# ============================================================================ the dialog
def _message(parent: Optional[QWidget], kind: str, title: str, text: str) -> None:
    """Errors and notes (tests replace QMessageBox.critical / information / warning)."""
    {"critical": QMessageBox.critical, "warning": QMessageBox.warning,
     "information": QMessageBox.information}[kind](parent, title, text)


def _confirm(parent: Optional[QWidget], title: str, text: str, yes: str) -> bool:
    box = QMessageBox(QMessageBox.Icon.Question, title, text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, parent)
    box.button(QMessageBox.StandardButton.Yes).setText(yes)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    return box.exec() == QMessageBox.StandardButton.Yes


class TrainingDialog(QDialog):
    """Train, resume and manage your own models (see the module docstring)."""

    modelsChanged = Signal()  # the user model library changed (a run finished, rename, delete, import)
    runStateChanged = Signal(str)  # "running" | "stopping" | "finished" | "stopped" | "failed" | "idle"
    scanFinished = Signal()
    runsListed = Signal()

    def __init__(self, prefs: Any = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train a Model")
        self.setObjectName("trainingDialog")
        self.prefs = prefs
        self.process: Optional[TrainingProcess] = None
        self.scan: Any = None  # the FolderScan of the chosen folder
        self.scan_error = ""
        self._scan_gen = 0
        self._scan_key: tuple[str, int] = ("", 0)
        self._runs: list[RunInfo] = []
        self._runs_gen = 0
        self._specs: dict[str, Any] = {}
        self._run: Optional[RunState] = None  # the run shown in the progress panel
        self._state = "idle"
        device_pref = getattr(prefs, "device", "auto") if prefs is not None else "auto"
        self.device_pref = device_pref if device_pref in ("auto", "cpu", "cuda", "mps") else "auto"
        self.device = device_kind(self.device_pref)
        self._applying_defaults = False

        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_new_page(), "New model")
        self.tabs.addTab(self._build_runs_page(), "Runs")
        self.tabs.addTab(self._build_models_page(), "My models")
        self.tabs.setMinimumWidth(440)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        panel = self._build_progress_panel()

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setToolTip(
            "Close this window; a run keeps training and its progress is here when you come back")
        top = QHBoxLayout()
        top.addWidget(self.tabs, 0)
        top.addWidget(panel, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top, 1)
        layout.addWidget(buttons)
        self.resize(1040, 660)

        self._apply_defaults()
        self._refresh_start_from()
        self.refresh_models()
        self.refresh_runs()
        self._set_state("idle")
        self._validate()

    # ================================================================== building
    def _build_new_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        row = QHBoxLayout()
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("A folder of your photos (sub-folders too)")
        self.folder_edit.editingFinished.connect(self.scan_folder)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse_folder)
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        form.addRow(self._buddy("&Photos:", self.folder_edit), row)
        self.folder_label = QLabel("Choose a folder of photos to learn from.")
        self.folder_label.setWordWrap(True)
        self.folder_label.setTextFormat(Qt.TextFormat.RichText)
        self.folder_label.linkActivated.connect(lambda _l: self.show_skipped())
        form.addRow("", self.folder_label)

        self.task_combo = QComboBox()
        self.task_combo.addItem("Upscale (super-resolution)", "sr")
        self.task_combo.addItem("Fill (inpainting)", "inpaint")
        self.task_combo.addItem("Latent generator (for the explorer)", "latent")
        form.addRow("&Task:", self.task_combo)
        self.scale_combo = QComboBox()
        self.scale_combo.addItem("×2", 2)
        self.scale_combo.addItem("×4", 4)
        self.scale_combo.setCurrentIndex(1)
        self.scale_label = QLabel("&Scale:")
        self.scale_label.setBuddy(self.scale_combo)
        form.addRow(self.scale_label, self.scale_combo)
        style_box = QWidget()
        sl = QVBoxLayout(style_box)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.setSpacing(2)
        self.style_faithful = QRadioButton("Faithful: true to the original, no invented detail")
        self.style_faithful.setToolTip("Pixel loss on clean (bicubic) downscaling: the safest choice")
        self.style_photo = QRadioButton("Photo: crisper texture for real, noisy or JPEG photos")
        self.style_photo.setToolTip("Adversarial (GAN) training on realistic damage: blur, noise, JPEG. "
                                    "Best started from a faithful model.")
        self.style_faithful.setChecked(True)
        sl.addWidget(self.style_faithful)
        sl.addWidget(self.style_photo)
        self.style_label = QLabel("Style:")
        form.addRow(self.style_label, style_box)
        self.style_box = style_box

        self.start_combo = QComboBox()
        self.start_combo.setToolTip("Fine-tuning an installed model needs far less time than training from scratch")
        form.addRow("Start &from:", self.start_combo)
        self.start_note = QLabel()
        self.start_note.setWordWrap(True)
        self.start_note.setStyleSheet("color: palette(placeholder-text);")
        form.addRow("", self.start_note)

        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("letters, digits, - _ .")
        form.addRow("Model &name:", self.name_edit)
        self.name_note = QLabel()
        self.name_note.setWordWrap(True)
        form.addRow("", self.name_note)

        row = QHBoxLayout()
        self.length_spin = QSpinBox()
        self.length_spin.setRange(1, 10_000_000)
        self.length_spin.setGroupSeparatorShown(True)
        self.length_unit = QComboBox()
        self.length_unit.addItem("minutes", "minutes")
        self.length_unit.addItem("iterations", "iterations")
        row.addWidget(self.length_spin, 1)
        row.addWidget(self.length_unit)
        form.addRow(self._buddy("&Length:", self.length_spin), row)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 512)
        self.batch_spin.setToolTip("Photos per training step: larger is smoother but needs more memory")
        form.addRow("&Batch size:", self.batch_spin)

        self.advanced_button = QToolButton()
        self.advanced_button.setText("Advanced")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setAutoRaise(True)
        form.addRow(self.advanced_button)
        self.advanced = QGroupBox()
        af = QFormLayout(self.advanced)
        self.device_combo = QComboBox()
        self.device_combo.addItem("Automatic", "auto")
        self.device_combo.addItem("CPU", "cpu")
        self.device_combo.addItem("NVIDIA GPU (CUDA)", "cuda")
        self.device_combo.addItem("Apple GPU (MPS)", "mps")
        for key in ("cuda", "mps"):
            if self.device != key:
                self.device_combo.model().item(self.device_combo.findData(key)).setEnabled(False)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(self.device_pref)))
        af.addRow("&Device:", self.device_combo)
        self.patch_spin = QSpinBox()
        self.patch_spin.setRange(8, 256)
        self.patch_spin.setSuffix(" px")
        self.patch_spin.setToolTip("Side of the low-resolution training patches")
        af.addRow("&Patch:", self.patch_spin)
        self.blocks_spin = QSpinBox()
        self.blocks_spin.setRange(1, 64)
        self.blocks_spin.setToolTip("Residual blocks of the network (set by the model you start from)")
        af.addRow("B&locks:", self.blocks_spin)
        self.channels_spin = QSpinBox()
        self.channels_spin.setRange(4, 256)
        self.channels_spin.setToolTip("Feature channels of the network (set by the model you start from)")
        af.addRow("&Channels:", self.channels_spin)
        self.crop_spin = QSpinBox()
        self.crop_spin.setRange(64, 512)
        self.crop_spin.setSingleStep(8)
        self.crop_spin.setSuffix(" px")
        af.addRow("C&rop:", self.crop_spin)
        self.size_combo = QComboBox()
        self.size_combo.addItem("64 × 64", 64)
        self.size_combo.addItem("128 × 128", 128)
        af.addRow("Image si&ze:", self.size_combo)
        self.advanced.setVisible(False)
        form.addRow(self.advanced)
        self.advanced_button.toggled.connect(self._toggle_advanced)

        self.start_button = QPushButton("Start Training")
        self.start_button.setDefault(False)
        self.start_button.setAutoDefault(False)
        self.start_button.clicked.connect(self.start_training)
        self.start_hint = QLabel()
        self.start_hint.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.start_button)
        row.addWidget(self.start_hint, 1)
        form.addRow(row)

        self.task_combo.currentIndexChanged.connect(self._on_task_changed)
        self.scale_combo.currentIndexChanged.connect(self._on_task_changed)
        self.style_photo.toggled.connect(lambda _c: self._update_start_note())
        self.start_combo.currentIndexChanged.connect(self._on_start_from_changed)
        self.name_edit.textChanged.connect(self._validate)
        self.length_unit.currentIndexChanged.connect(self._on_length_unit_changed)
        self.device_combo.currentIndexChanged.connect(self._on_device_changed)
        self.patch_spin.valueChanged.connect(self._maybe_rescan)
        return page

    def _build_runs_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        note = QLabel("Your training runs, also those still training after Restorer was closed. A stopped "
                      "run continues from its last checkpoint; deleting a finished run frees its name.")
        note.setWordWrap(True)
        v.addWidget(note)
        self.runs_tree = QTreeWidget()
        self.runs_tree.setHeaderLabels(["Run", "Task", "Progress", "State"])
        self.runs_tree.setRootIsDecorated(False)
        self.runs_tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.runs_tree.itemSelectionChanged.connect(self._on_run_selected)
        self.runs_tree.itemClicked.connect(lambda *_: self._on_run_selected())
        self.runs_tree.itemDoubleClicked.connect(lambda *_: self.resume_selected())
        v.addWidget(self.runs_tree, 1)
        row = QHBoxLayout()
        self.resume_run_button = QPushButton("Resume")
        self.resume_run_button.clicked.connect(self.resume_selected)
        self.finish_run_button = QPushButton("Save Model Now")
        self.finish_run_button.setToolTip("End this run here and add what it has learned to your models")
        self.finish_run_button.clicked.connect(self.finish_selected)
        self.delete_run_button = QPushButton("Delete Run…")
        self.delete_run_button.setToolTip("Delete the run's checkpoint and previews (your models are kept)")
        self.delete_run_button.clicked.connect(self.delete_selected_run)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh_runs)
        for b in (self.resume_run_button, self.finish_run_button, self.delete_run_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(refresh)
        v.addLayout(row)
        return page

    def _build_models_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        self.models_tree = QTreeWidget()
        self.models_tree.setHeaderLabels(["Model", "Task", "Trained", "Added"])
        self.models_tree.setRootIsDecorated(False)
        self.models_tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.models_tree.itemSelectionChanged.connect(self._update_model_buttons)
        v.addWidget(self.models_tree, 1)
        self.models_empty = QLabel("You have no models of your own yet. Train one, or import a model file.")
        self.models_empty.setWordWrap(True)
        v.addWidget(self.models_empty)
        row = QHBoxLayout()
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self.rename_selected_model)
        self.delete_model_button = QPushButton("Delete…")
        self.delete_model_button.clicked.connect(self.delete_selected_model)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the model as one file, to share it or keep a copy")
        self.export_button.clicked.connect(self.export_selected_model)
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Add a model file exported by Restorer")
        self.import_button.clicked.connect(self.import_model_file)
        for b in (self.rename_button, self.delete_model_button, self.export_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.import_button)
        v.addLayout(row)
        return page

    def _build_progress_panel(self) -> QWidget:
        box = QGroupBox("Progress")
        v = QVBoxLayout(box)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        v.addWidget(self.status_label)
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        v.addWidget(self.progress_bar)
        self.detail_label = QLabel()
        self.detail_label.setWordWrap(True)
        v.addWidget(self.detail_label)
        self.loss_plot = LossPlot()
        v.addWidget(self.loss_plot, 3)
        self.sample_caption = QLabel()
        v.addWidget(self.sample_caption)
        self.sample_view = ImagePreview()
        self.sample_view.placeholder = ("Previews (the input, the network's output and the original) appear here "
                                        "as training goes on.")
        self.sample_view.setStyleSheet("color: palette(placeholder-text);")
        self.sample_view.set_image(None)
        self.sample_view.setFrameShape(QFrame.Shape.NoFrame)
        v.addWidget(self.sample_view, 2)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(300)
        self.log_view.setFixedHeight(64)
        self.log_view.setPlaceholderText("Messages from the training process")
        v.addWidget(self.log_view)
        row = QHBoxLayout()
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step; a checkpoint is saved so you can resume")
        self.stop_button.clicked.connect(self.stop_training)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue this run from its last checkpoint")
        self.resume_button.clicked.connect(self.resume_current)
        row.addStretch(1)
        row.addWidget(self.stop_button)
        row.addWidget(self.resume_button)
        v.addLayout(row)
        return box

    @staticmethod
    def _buddy(text: str, widget: QWidget) -> QLabel:
        label = QLabel(text)
        label.setBuddy(widget)
        return label

    # ================================================================== new-model page
    @property
    def task(self) -> str:
        return str(self.task_combo.currentData())

    @property
    def scale(self) -> int:
        return int(self.scale_combo.currentData())

    def _toggle_advanced(self, on: bool) -> None:
        self.advanced.setVisible(on)
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def _on_task_changed(self, *_args: Any) -> None:
        self._apply_defaults()
        self._refresh_start_from()
        self._maybe_rescan()
        self._validate()

    def _on_device_changed(self, *_args: Any) -> None:
        self.device = device_kind(str(self.device_combo.currentData()))
        self._apply_defaults()
        self._on_start_from_changed()

    def _on_length_unit_changed(self, *_args: Any) -> None:
        if self._applying_defaults:
            return
        d = defaults_for(self.task, self.device, self.scale)
        unit = str(self.length_unit.currentData())
        self.length_spin.setValue(int(d["minutes"]) if unit == "minutes" else int(d["iterations"]))

    def _apply_defaults(self) -> None:
        task = self.task
        d = defaults_for(task, self.device, self.scale)
        self._applying_defaults = True
        try:
            self.length_unit.setCurrentIndex(self.length_unit.findData(d["length_mode"]))
            self.length_spin.setValue(int(d["minutes"] if d["length_mode"] == "minutes" else d["iterations"]))
            self.batch_spin.setValue(int(d["batch"]))
            if task == "sr":
                self.patch_spin.setValue(int(d["patch"]))
                self.blocks_spin.setValue(int(d["blocks"]))
                self.channels_spin.setValue(int(d["channels"]))
            elif task == "inpaint":
                self.crop_spin.setValue(int(d["crop"]))
            else:
                self.size_combo.setCurrentIndex(self.size_combo.findData(int(d["size"])))
            self._checkpoint_every = int(d["checkpoint_every"])
        finally:
            self._applying_defaults = False
        sr = task == "sr"
        for w in (self.scale_combo, self.scale_label, self.style_box, self.style_label):
            w.setVisible(sr)
        af: QFormLayout = self.advanced.layout()  # type: ignore[assignment]
        for w, show in ((self.patch_spin, sr), (self.blocks_spin, sr), (self.channels_spin, sr),
                        (self.crop_spin, task == "inpaint"), (self.size_combo, task == "latent")):
            af.setRowVisible(w, show)
        self._suggest_name()

    def _suggest_name(self) -> None:
        base = {"sr": f"my-upscale-x{self.scale}", "inpaint": "my-fill", "latent": "my-latent"}[self.task]
        current = self.name_edit.text().strip()
        if current and not current.startswith(("my-upscale-x", "my-fill", "my-latent")):
            return  # the user's own name stays
        taken = self._taken_names()
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        self.name_edit.setText(name)

    def _taken_names(self) -> set[str]:
        names: set[str] = set()
        try:
            from restorer.engine import registry

            names |= {s.id for s in registry.all_models()}
        except Exception:
            pass
        base = runs_dir()
        if base.is_dir():
            names |= {d.name for d in base.iterdir() if (d / CHECKPOINT_FILE).exists()}
        return names

    def _refresh_start_from(self) -> None:
        from restorer.engine.errors import RestorerError

        task, scale = self.task, self.scale
        previous = self.start_combo.currentData()
        try:
            from restorer.engine import registry

            specs = registry.all_models(task)
        except RestorerError as exc:
            specs = []
            self.start_note.setText(str(exc))
        self._specs = {}
        self.start_combo.blockSignals(True)
        self.start_combo.clear()
        skipped = 0
        defaults = []
        for spec in specs:
            if task == "sr" and spec.scale != scale:
                continue
            params = start_from_params(spec, task, scale)
            if params is None:
                skipped += 1
                continue
            self._specs[spec.id] = (spec, params)
            origin = "shipped" if spec.source == "shipped" else "yours"
            label = f"{spec.title or spec.id} ({origin})"
            if spec.provenance.get("default"):
                defaults.append(spec.id)
            self.start_combo.addItem(label, spec.id)
        self.start_combo.addItem("Nothing: train from scratch", "")
        want = previous if previous in self._specs else (defaults[0] if defaults else None)
        idx = self.start_combo.findData(want) if want else 0
        self.start_combo.setCurrentIndex(max(0, idx))
        self.start_combo.blockSignals(False)
        self._incompatible = skipped
        self._on_start_from_changed()

    def _on_start_from_changed(self, *_args: Any) -> None:
        sid = str(self.start_combo.currentData() or "")
        fixed = sid in self._specs
        if self.task == "sr":
            d = defaults_for("sr", self.device, self.scale)
            if fixed:
                params = self._specs[sid][1]
                self.blocks_spin.setValue(int(params.get("blocks", d["blocks"])))
                self.channels_spin.setValue(int(params.get("channels", d["channels"])))
            self.blocks_spin.setEnabled(not fixed and self._arch() == "srgan")
            self.channels_spin.setEnabled(not fixed)
        elif self.task == "latent":
            if fixed:
                self.size_combo.setCurrentIndex(self.size_combo.findData(int(self._specs[sid][1]["size"])))
                self.channels_spin.setValue(int(self._specs[sid][1]["channels"]))
            self.size_combo.setEnabled(not fixed)
        self._update_start_note()

    def _arch(self) -> str:
        sid = str(self.start_combo.currentData() or "")
        if sid in self._specs and self.task == "sr":
            return str(self._specs[sid][1].get("arch", "srgan"))
        return "srgan"

    def _update_start_note(self) -> None:
        sid = str(self.start_combo.currentData() or "")
        notes = []
        if sid:
            notes.append("Fine-tunes this model on your photos; its network settings are kept.")
        elif self.task == "sr" and self.style_photo.isChecked():
            notes.append("The photo style works best started from a faithful model of the same scale.")
        elif self.device == "cpu":
            notes.append("Training from scratch on a CPU is slow: expect hours for good results.")
        if getattr(self, "_incompatible", 0):
            n = self._incompatible
            notes.append(f"{n} installed model{'s' if n > 1 else ''} of this kind cannot be continued here "
                         "(other network settings).")
        self.start_note.setText(" ".join(notes))
        self.start_note.setVisible(bool(notes))

    # ------------------------------------------------------------------ folder
    def browse_folder(self) -> None:
        start = self.folder_edit.text() or (getattr(self.prefs, "last_folder", "") if self.prefs else "")
        folder = QFileDialog.getExistingDirectory(self, "Folder of Photos to Learn From", start)
        if folder:
            self.folder_edit.setText(folder)
            self.scan_folder()

    def _min_side(self) -> int:
        return max(32, int(self.patch_spin.value())) if self.task == "sr" else 64

    def _maybe_rescan(self, *_args: Any) -> None:
        if self.folder_edit.text().strip() and self._scan_key != (self.folder_edit.text().strip(), self._min_side()):
            self.scan_folder()

    def scan_folder(self) -> None:
        """Count the usable photos of the folder in a background thread."""
        folder = self.folder_edit.text().strip()
        self._scan_gen += 1
        gen = self._scan_gen
        self.scan, self.scan_error = None, ""
        if not folder:
            self._scan_key = ("", 0)
            self.folder_label.setText("Choose a folder of photos to learn from.")
            self._validate()
            return
        min_side = self._min_side()
        self._scan_key = (folder, min_side)
        self.folder_label.setText("<i>Looking at the photos in this folder…</i>")
        self._validate()

        def work() -> Any:
            from restorer.engine.training.data import scan_folder

            return scan_folder(Path(folder).expanduser(), min_side=min_side)

        def done(result: Any, error: Any) -> None:
            if gen != self._scan_gen:
                return  # another folder was chosen meanwhile
            if error is not None:
                self.scan, self.scan_error = None, str(error)
            else:
                self.scan, self.scan_error = result, ""
            self._show_scan()
            self._validate()
            self.scanFinished.emit()

        run_in_thread(work, done, self)

    def _show_scan(self) -> None:
        if self.scan_error:
            self.folder_label.setText(f"<span style='color:#c0392b'>{_esc(self.scan_error)}</span>")
            return
        scan = self.scan
        if scan is None:
            return
        n = len(scan.usable)
        parts = []
        if n:
            mp = scan.total_pixels / 1e6
            parts.append(f"<b>{n} usable photo{'s' if n != 1 else ''}</b> ({mp:.0f} megapixels)"
                         if mp >= 1 else f"<b>{n} usable photo{'s' if n != 1 else ''}</b>")
        else:
            parts.append("<span style='color:#c0392b'><b>No usable photos in this folder.</b></span>")
        if scan.skipped:
            reasons: dict[str, int] = {}
            for _p, why in scan.skipped:
                reasons[why] = reasons.get(why, 0) + 1
            why = ", ".join(f"{c} {_esc(r)}" for r, c in sorted(reasons.items(), key=lambda kv: -kv[1]))
            parts.append(f"{len(scan.skipped)} file{'s' if len(scan.skipped) != 1 else ''} skipped: {why} "
                         "(<a href='skipped'>which?</a>)")
        if n == 0 and not scan.skipped:
            parts.append("It is empty. Choose a folder with JPEG, PNG, WebP, TIFF or BMP photos.")
        elif n and self.task == "sr" and n < MIN_SR_PHOTOS_FOR_PREVIEW:
            parts.append(f"<span style='color:palette(placeholder-text)'>With fewer than "
                         f"{MIN_SR_PHOTOS_FOR_PREVIEW} photos none is held out, so there are no preview "
                         "images or quality scores.</span>")
        self.folder_label.setText("<br>".join(parts))

    def show_skipped(self) -> None:
        if self.scan is None or not self.scan.skipped:
            return
        lines = [f"{p.relative_to(self.scan.folder) if p.is_relative_to(self.scan.folder) else p}: {why}"
                 for p, why in self.scan.skipped[:40]]
        more = len(self.scan.skipped) - len(lines)
        if more > 0:
            lines.append(f"… and {more} more")
        _message(self, "information", "Skipped files", "\n".join(lines))

    # ------------------------------------------------------------------ validation
    def _name_problem(self, name: str) -> str:
        from restorer.engine import registry
        from restorer.engine.errors import RestorerError

        try:
            registry.validate_name(name)
        except RestorerError as exc:
            return str(exc)
        try:
            if any(s.id == name for s in registry.all_models()):
                return f"You already have a model named '{name}' (rename or delete it under My models)."
        except RestorerError:
            pass
        if (runs_dir() / name / CHECKPOINT_FILE).exists():
            return f"A run named '{name}' exists: resume or delete it under Runs."
        if (self.process is None or self.process.run_dir.name != name) and live_worker(runs_dir() / name):
            return f"A run named '{name}' is training in the background (see Runs)."
        return ""

    def _validate(self, *_args: Any) -> bool:
        name = self.name_edit.text().strip()
        problem = self._name_problem(name) if name else "Give the model a name."
        self.name_note.setText(f"<span style='color:#c0392b'>{_esc(problem)}</span>" if problem else "")
        self.name_note.setVisible(bool(problem))
        folder = self.folder_edit.text().strip()
        hint = ""
        if self.process is not None and self.process.running:
            hint = "A run is in progress."
        elif not folder:
            hint = "Choose a folder of photos."
        elif self.scan_error:
            hint = "Choose another folder."
        elif self.scan is None:
            hint = "Looking at the folder…"
        elif not self.scan.usable:
            hint = "The folder has no usable photos."
        elif problem:
            hint = "Choose another name."
        ok = not hint
        self.start_button.setEnabled(ok or (hint == "Looking at the folder…" and not problem))
        self.start_hint.setText(hint)
        return ok

    def settings(self) -> TrainingSettings:
        d = defaults_for(self.task, self.device, self.scale)
        unit = str(self.length_unit.currentData())
        return TrainingSettings(
            task=self.task, data=self.folder_edit.text().strip(), name=self.name_edit.text().strip(),
            scale=self.scale, style="photo" if self.style_photo.isChecked() else "faithful",
            length_mode=unit, iterations=int(self.length_spin.value()), minutes=float(self.length_spin.value()),
            batch=int(self.batch_spin.value()), device=str(self.device_combo.currentData()),
            init_from=str(self.start_combo.currentData() or ""), arch=self._arch(),
            blocks=int(self.blocks_spin.value()), channels=int(self.channels_spin.value()),
            patch=int(self.patch_spin.value()), crop=int(self.crop_spin.value()),
            size=int(self.size_combo.currentData()),
            checkpoint_every=int(getattr(self, "_checkpoint_every", d["checkpoint_every"])),
            sample_every=int(d["sample_every"]),
            runs_dir=str(runs_dir()))

    # ================================================================== running
    def start_training(self) -> bool:
        """Start a new run with the New model page's settings; False (after saying why) if it cannot."""
        if self.process is not None and self.process.running:
            _message(self, "information", "Training is running", "Stop the current run before starting another.")
            return False
        folder = self.folder_edit.text().strip()
        if not folder:
            _message(self, "warning", "No photos", "Choose a folder of photos to learn from.")
            return False
        if self.scan_error:
            _message(self, "warning", "Cannot use this folder", self.scan_error)
            return False
        if self.scan is not None and not self.scan.usable:
            _message(self, "warning", "No usable photos",
                     f"There is nothing to learn from in '{folder}': {self.scan.summary()}.\n\n"
                     "Choose a folder with JPEG, PNG, WebP, TIFF or BMP photos at least "
                     f"{self._min_side()} pixels on each side.")
            return False
        name = self.name_edit.text().strip()
        problem = self._name_problem(name) if name else "Give the model a name."
        if problem:
            _message(self, "warning", "Choose another name", problem)
            return False
        s = self.settings()
        run_dir = Path(s.runs_dir) / s.name
        for stale in (EVENTS_FILE, LOG_FILE, WORKER_FILE, SAMPLE_FILE):  # leftovers of a run that never began
            try:
                (run_dir / stale).unlink()
            except OSError:
                pass
        gui = {"task": s.task, "length_mode": s.length_mode, "minutes": s.minutes if s.length_mode == "minutes"
               else None, "settings": asdict(s), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            _write_json(run_dir / SETTINGS_FILE, gui)
        except OSError as exc:
            _message(self, "critical", "Cannot start training", f"cannot write to '{run_dir}' ({exc})")
            return False
        self.loss_plot.clear()
        self.sample_view.set_image(None)
        self.sample_caption.setText("")
        self.log_view.clear()
        return self._launch(s.name, run_dir, s.args(), kind="new", task=s.task, gui=gui)

    def _launch(self, name: str, run_dir: Path, args: list[str], *, kind: str, task: str,
                gui: dict[str, Any], iteration: int = 0, total: int = 0) -> bool:
        from restorer.engine.errors import RestorerError

        proc = TrainingProcess(run_dir, self)
        self._run = RunState(name=name, run_dir=run_dir, task=task, kind=kind, gui=gui, iteration=iteration,
                             total=total, ckpt_iteration=iteration if kind in ("resume", "finish") else None)
        proc.event.connect(self._on_event)
        proc.ended.connect(self._on_ended)
        try:
            proc.start(args)
        except RestorerError as exc:
            proc.deleteLater()
            self._set_state("failed", str(exc))
            _message(self, "critical", "Cannot start training", str(exc))
            return False
        self.process = proc
        log.info("training worker %s: %s", proc.pid, " ".join(args))
        self._set_state("finishing" if kind == "finish" else "starting")
        self._validate()
        return True

    def _continue(self, info: RunInfo, *, finish: bool = False) -> bool:
        """Resume `info` (or, with `finish`, end it at its iteration and save the model)."""
        from restorer.engine.errors import RestorerError

        if self.process is not None and self.process.running:
            _message(self, "information", "Training is running", "Stop the current run first.")
            return False
        if info.running:
            return self.attach(info)
        if info.error or not info.has_checkpoint:
            _message(self, "warning", "Cannot resume", f"The checkpoint of '{info.name}' cannot be read "
                                                       f"({info.error or 'missing'}).")
            return False
        missing = [d for d in info.folders or [""] if not Path(d).is_dir()]
        if missing:
            _message(self, "warning", "Photos not found",
                     f"The photo folder of '{info.name}' is gone:\n{chr(10).join(missing)}\n\nPut the folder back "
                     "(the run needs it even to save its model).")
            return False
        if info.finished and not finish:
            _message(self, "information", "Already finished", f"'{info.name}' has finished training.")
            return False
        minutes_done = info.minutes_mode and info.remaining_s < 30
        try:
            args = resume_args(info, finish_at=info.iteration if (finish or minutes_done) else None)
        except RestorerError as exc:
            _message(self, "warning", "Cannot resume", str(exc))
            return False
        self.loss_plot.clear()
        self.log_view.clear()
        self._load_history(info.run_dir, None)
        self.loss_plot.trim(info.iteration)
        sample = info.run_dir / SAMPLE_FILE
        if self.sample_view.set_image(sample if sample.exists() else None):
            self.sample_caption.setText("Latest preview: input · output · target")
        ok = self._launch(info.name, info.run_dir, args, kind="finish" if (finish or minutes_done) else "resume",
                          task=info.task, gui=info.gui, iteration=info.iteration, total=info.total)
        if ok:
            self._run.elapsed_s = info.elapsed_s
            self._show_progress()
        return ok

    def _load_history(self, run_dir: Path, upto: Optional[int]) -> None:
        """Replay the loss curve of earlier launches of a run from its events file."""
        for ev in read_events(run_dir / EVENTS_FILE, 0, upto):
            if isinstance(ev, StartedEvent):
                self.loss_plot.trim(ev.iteration)
            elif isinstance(ev, ProgressEvent) and ev.losses:
                self.loss_plot.add(ev.iteration, ev.losses)

    def attach(self, info: RunInfo) -> bool:
        """Show the progress of a run training in the background (started by an earlier session)."""
        if self.process is not None and self.process.running:
            return False
        proc = TrainingProcess(info.run_dir, self)
        self._run = RunState(name=info.name, run_dir=info.run_dir, task=info.task, kind="attach", gui=info.gui,
                             iteration=info.iteration, total=info.total, elapsed_s=info.elapsed_s,
                             ckpt_iteration=info.iteration if info.has_checkpoint else None)
        self.loss_plot.clear()
        self.log_view.clear()
        worker = _read_json(info.run_dir / WORKER_FILE)
        self._load_history(info.run_dir, int(worker.get("events_offset", 0)))
        sample = info.run_dir / SAMPLE_FILE
        if self.sample_view.set_image(sample if sample.exists() else None):
            self.sample_caption.setText("Latest preview: input · output · target")
        proc.event.connect(self._on_event)
        proc.ended.connect(self._on_ended)
        self.process = proc
        self._set_state("running")
        if not proc.attach():
            self.process = None
            proc.deleteLater()
            self._set_state("idle")
            self.refresh_runs()
            return False
        self._show_progress()
        self._validate()
        return True

    def stop_training(self) -> None:
        """Stop the run: the worker saves a checkpoint first (it is killed only after a timeout)."""
        proc = self.process
        if proc is None or not proc.running:
            return
        if self._run is not None:
            self._run.user_stop = True
        proc.stop()
        self._set_state("stopping")

    def resume_current(self) -> bool:
        if self._run is None:
            return False
        return self._continue(read_run(self._run.run_dir))

    def resume_selected(self) -> bool:
        info = self._selected_run()
        return self._continue(info) if info is not None else False

    def finish_selected(self) -> bool:
        info = self._selected_run()
        if info is None or info.running:
            return False
        if not _confirm(self, "Save Model Now",
                        f"End '{info.name}' at iteration {fmt_count(info.iteration)} and add it to your models?\n\n"
                        "The run cannot be continued afterwards.", "Save Model"):
            return False
        return self._continue(info, finish=True)

    def delete_selected_run(self) -> bool:
        info = self._selected_run()
        if info is None or info.running:
            return False
        if self._shows(info) and self.process is not None and self.process.running:
            return False
        if not _confirm(self, "Delete Run", f"Delete the run '{info.name}' and its checkpoint?\n\n"
                                            "Models in your library are not affected.", "Delete"):
            return False
        base = runs_dir().resolve()
        target = info.run_dir.resolve()
        if target.parent != base:
            _message(self, "warning", "Delete Run", f"'{target}' is not in the runs folder; delete it yourself.")
            return False
        shutil.rmtree(target, ignore_errors=True)
        if self._shows(info):
            self._run = None
            self._set_state("idle")
        self.refresh_runs()
        self._validate()
        return True

    # ------------------------------------------------------------------ events
    def _shows(self, info: RunInfo) -> bool:
        """Whether the progress panel shows the run `info`."""
        return self._run is not None and self._run.run_dir == info.run_dir

    def _on_event(self, ev: TrainingEvent) -> None:
        run = self._run
        if run is None:
            return
        if isinstance(ev, StartedEvent):
            run.iteration, run.total = ev.iteration, ev.total
            run.started_time, run.device = ev.time, ev.device
            self.loss_plot.trim(run.iteration)
            if self._state in ("starting", "running"):
                self._set_state("running")
            self._show_progress()
        elif isinstance(ev, ProgressEvent):
            run.iteration, run.total = ev.iteration, ev.total or run.total
            run.it_per_s, run.eta_s = ev.it_per_s or 0.0, ev.eta_s
            run.elapsed_s, run.progress_time = ev.elapsed_s or 0.0, ev.time
            if ev.losses:
                self.loss_plot.add(run.iteration, ev.losses)
            if self._state == "starting":
                self._set_state("running")
            self._show_progress()
        elif isinstance(ev, SampleEvent):
            if self.sample_view.set_image(Path(ev.path)):
                self.sample_caption.setText(
                    f"Preview at iteration {fmt_count(ev.iteration)}: input · output · target")
        elif isinstance(ev, CheckpointEvent):
            run.ckpt_iteration = ev.iteration
            self._show_progress()
        elif isinstance(ev, (InfoEvent, WarningEvent, DataEvent)):
            self._log_event(ev)
        elif isinstance(ev, ErrorEvent):
            self._log(f"Error: {ev.message}")
        elif isinstance(ev, StoppedEvent):
            run.iteration = ev.iteration
            run.stop_time = ev.time
            run.elapsed_s = ev.elapsed_s or run.elapsed_s
        elif isinstance(ev, FinishedEvent):
            run.iteration = ev.iteration
            run.metrics = ev.metrics or {}
            run.model_id = ev.model_id

    def _log_event(self, ev: TrainingEvent) -> None:
        message = getattr(ev, "message", "")
        if message:
            text = str(message)
        elif isinstance(ev, DataEvent):
            skipped = f", {ev.skipped} skipped" if ev.skipped else ""
            text = f"{ev.images} photos loaded{skipped}"
        elif isinstance(ev, WarningEvent) and ev.kind == "skipped_images":
            text = f"skipped {ev.count} file(s): {ev.reasons}"
        else:
            record = ev_mod.to_record(ev)
            text = json.dumps({k: v for k, v in record.items() if k not in ("event", "time")}, default=str)[:300]
        self._log(("Warning: " if isinstance(ev, WarningEvent) else "") + text)

    def _log(self, text: str) -> None:
        self.log_view.appendPlainText(text)

    def _on_ended(self, outcome: str, message: str) -> None:
        proc = self.sender()
        if proc is not self.process:
            return
        run = self._run
        if run is not None and outcome == "stopped" and not run.user_stop and self._spent_time_budget():
            # a run measured in minutes ran out of time: end it there, which saves the model
            info = read_run(run.run_dir)
            self.process = None
            if self._continue(info, finish=True):
                if isinstance(proc, TrainingProcess):
                    proc.deleteLater()
                return
        self.process = None
        if outcome == "finished":
            self._set_state("finished", message)
            self.refresh_models()
            self._refresh_start_from()
            self.modelsChanged.emit()
        elif outcome == "stopped":
            self._set_state("stopped")
        else:
            self._set_state("failed", message)
            if run is None or run.kind != "attach":
                self._log(proc.stderr_text().strip()[-2000:] if isinstance(proc, TrainingProcess) else "")
        self.refresh_runs()
        self._validate()
        if isinstance(proc, TrainingProcess):
            proc.deleteLater()

    def _spent_time_budget(self) -> bool:
        run = self._run
        if run is None or not run.minutes_mode or run.kind == "finish":
            return False
        budget_s = float(run.gui.get("minutes") or 0) * 60
        return run.elapsed_s >= budget_s - 20 or (
            run.started_time is not None and run.stop_time is not None
            and run.stop_time - run.started_time >= float(self._minutes_this_launch()) * 60 - 20)

    def _minutes_this_launch(self) -> float:
        if self._run is None:
            return float("inf")
        worker = _read_json(self._run.run_dir / WORKER_FILE)
        argv = worker.get("argv") or []
        if "--minutes" in argv:
            try:
                return float(argv[argv.index("--minutes") + 1])
            except (ValueError, IndexError):
                pass
        return float("inf")

    # ------------------------------------------------------------------ display
    def _set_state(self, state: str, message: str = "") -> None:
        self._state = state
        run = self._run
        name = _esc(run.name if run is not None else "")
        ckpt = run.ckpt_iteration if run is not None else None
        kept = (f" The last checkpoint (iteration {fmt_count(int(ckpt))}) is kept: Resume continues from there."
                if ckpt is not None else "")
        if state == "idle":
            self.status_label.setText("No training is running. Choose photos and a task, then Start Training.")
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("")
            self.detail_label.setText("")
        elif state == "starting":
            self.status_label.setText(f"<b>Starting '{name}'…</b> loading the photos and building the network")
            self.progress_bar.setRange(0, 0)
        elif state == "finishing":
            self.status_label.setText(f"<b>Saving '{name}' as a model…</b>")
            self.progress_bar.setRange(0, 0)
        elif state == "running":
            self._show_progress()
        elif state == "stopping":
            self.status_label.setText(f"<b>Stopping '{name}'…</b> saving a checkpoint")
            self.progress_bar.setRange(0, 0)
        elif state == "stopped":
            if run is not None and (run.run_dir / CHECKPOINT_FILE).exists():
                self.status_label.setText(f"<b>'{name}' stopped</b> at iteration "
                                          f"{fmt_count(run.iteration)}. Its checkpoint is saved: "
                                          "Resume continues from there.")
            else:
                self.status_label.setText(f"<b>'{name}' stopped</b> before its first checkpoint: there is nothing "
                                          "to resume.")
            self._show_progress(final=True)
        elif state == "finished":
            metrics = run.metrics if run is not None else {}
            score = ""
            if "val_psnr_y" in metrics:
                score = (f" Quality on held-out photos: {metrics['val_psnr_y']:.2f} dB PSNR "
                         f"(plain bicubic: {metrics.get('val_bicubic_psnr_y', float('nan')):.2f} dB).")
            self.status_label.setText(f"<b>Finished:</b> '{_esc(message or (run.name if run is not None else ''))}' is in "
                                      f"your models and ready to use.{_esc(score)}")
            self._show_progress(final=True)
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(1)
            self.progress_bar.setFormat("done")
        elif state == "failed":
            self.status_label.setText(f"<b><span style='color:#c0392b'>Training '{name}' failed:</span></b> "
                                      f"{_esc(message)}.{_esc(kept)}")
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("failed")
        running = self.process is not None and self.process.running
        self.stop_button.setEnabled(running and state in ("starting", "running"))
        can_resume = (not running and run is not None and state in ("stopped", "failed")
                      and (run.run_dir / CHECKPOINT_FILE).exists())
        self.resume_button.setEnabled(can_resume)
        self._update_run_buttons()
        self.runStateChanged.emit(state)

    def _show_progress(self, final: bool = False) -> None:
        run = self._run
        if run is None:
            return
        it, total = run.iteration, run.total
        gui = run.gui
        elapsed = run.elapsed_s
        minutes_mode = run.minutes_mode and total >= MINUTES_ITERS
        if minutes_mode:
            budget = float(gui.get("minutes") or 0) * 60
            frac = min(1.0, elapsed / budget) if budget else 0.0
            eta: Optional[float] = max(0.0, budget - elapsed)
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(frac * 1000))
            length = f"{fmt_duration(elapsed)} of {gui.get('minutes'):g} min"
        else:
            eta = run.eta_s
            self.progress_bar.setRange(0, max(1, total))
            self.progress_bar.setValue(min(it, max(1, total)))
            length = f"iteration {fmt_count(it)} of {fmt_count(total)}"
        left = f" · {fmt_duration(eta)} left" if eta is not None and not final else ""
        self.progress_bar.setFormat(f"%p%{left}")
        details = [length.capitalize() if not minutes_mode else f"Iteration {fmt_count(it)}, {length}"]
        if run.it_per_s:
            details.append(f"{run.it_per_s:.2f} it/s")
        if elapsed and not minutes_mode:
            details.append(f"trained for {fmt_duration(elapsed)}")
        if run.device:
            details.append(f"on {run.device}")
        if run.ckpt_iteration is not None:
            details.append(f"checkpoint at {fmt_count(run.ckpt_iteration)}")
        self.detail_label.setText(" · ".join(details))
        if self._state == "running":
            task = TASK_LABELS.get(run.task, "")
            self.status_label.setText(f"<b>Training '{_esc(run.name)}'</b>"
                                      + (f" ({task.lower()} model)" if task else ""))

    # ================================================================== runs list
    def refresh_runs(self) -> None:
        self._runs_gen += 1
        gen = self._runs_gen

        def done(result: Any, error: Any) -> None:
            if gen != self._runs_gen:
                return
            self._runs = list(result or [])
            if error is not None:
                log.warning("cannot list training runs: %s", error)
            self._fill_runs()
            self.runsListed.emit()

        run_in_thread(lambda: list_runs(runs_dir()), done, self)

    def _fill_runs(self) -> None:
        selected = self._selected_run()
        keep = selected.name if selected else None
        self._filling = True
        self.runs_tree.clear()
        for info in self._runs:
            here = self.run_active and self._shows(info)
            item = QTreeWidgetItem([info.name, TASK_LABELS.get(info.task, info.task or "?")
                                    + (f" ×{info.config.get('scale')}" if info.task == "sr" and info.config else ""),
                                    info.progress_text(), "training (see Progress)" if here else info.state_text()])
            item.setData(0, Qt.ItemDataRole.UserRole, info.name)
            self.runs_tree.addTopLevelItem(item)
            if info.name == keep:
                item.setSelected(True)
        if keep is None and self.runs_tree.topLevelItemCount():
            self.runs_tree.topLevelItem(0).setSelected(True)
        self._filling = False
        self._update_run_buttons()

    def runs(self) -> list[RunInfo]:
        return list(self._runs)

    def select_run(self, name: str) -> bool:
        for i in range(self.runs_tree.topLevelItemCount()):
            item = self.runs_tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == name:
                self.runs_tree.setCurrentItem(item)
                item.setSelected(True)
                self._on_run_selected()
                return True
        return False

    def _selected_run(self) -> Optional[RunInfo]:
        items = self.runs_tree.selectedItems() if hasattr(self, "runs_tree") else []
        if not items:
            return None
        name = items[0].data(0, Qt.ItemDataRole.UserRole)
        return next((r for r in self._runs if r.name == name), None)

    def _on_run_selected(self) -> None:
        self._update_run_buttons()
        info = self._selected_run()
        if getattr(self, "_filling", False):
            return  # only a choice of the user replaces what the panel shows
        if info is not None and not self.run_active and self._state in ("idle", "stopped", "finished", "failed") \
                and not self._shows(info):
            self.show_run(info)

    def show_run(self, info: RunInfo) -> None:
        """Show a run that is not training (its curve so far and latest preview) in the progress panel."""
        self._run = RunState(name=info.name, run_dir=info.run_dir, task=info.task, kind="view", gui=info.gui,
                             iteration=info.iteration, total=info.total, elapsed_s=info.elapsed_s,
                             ckpt_iteration=info.iteration if info.has_checkpoint else None)
        self.loss_plot.clear()
        self.log_view.clear()
        self._load_history(info.run_dir, None)
        self.loss_plot.trim(info.iteration)
        sample = info.run_dir / SAMPLE_FILE
        self.sample_view.set_image(sample if sample.exists() else None)
        self.sample_caption.setText("Latest preview: input · output · target" if self.sample_view.has_image() else "")
        if info.running:
            self._set_state("idle")
            self.status_label.setText(f"<b>'{_esc(info.name)}' is training in the background.</b> "
                                      "Show Progress follows it here.")
        elif info.finished:
            self._set_state("finished", info.name)
        else:
            self._set_state("stopped")

    def _update_run_buttons(self) -> None:
        if not hasattr(self, "resume_run_button"):
            return
        info = self._selected_run()
        busy = self.process is not None and self.process.running
        self.resume_run_button.setText("Show Progress" if info is not None and info.running else "Resume")
        self.resume_run_button.setEnabled(info is not None and not busy and (
            info.running or (not info.finished and info.has_checkpoint and not info.error)))
        self.finish_run_button.setEnabled(info is not None and not busy and not info.running and not info.finished
                                          and info.has_checkpoint and not info.error)
        self.delete_run_button.setEnabled(info is not None and not info.running and not (
            busy and self._shows(info)))

    def _on_tab_changed(self, index: int) -> None:
        if index == 1:
            self.refresh_runs()
        elif index == 2:
            self.refresh_models()

    # ================================================================== my models
    def refresh_models(self) -> None:
        from restorer.engine import registry
        from restorer.engine.errors import RestorerError

        selected = self._selected_model()
        self.models_tree.clear()
        try:
            specs = registry.user_models()
        except RestorerError as exc:
            specs = []
            self.models_empty.setText(str(exc))
        for spec in specs:
            prov = dict(spec.provenance or {})
            task = TASK_LABELS.get(spec.task, spec.task) + (f" ×{spec.scale}" if spec.task == "sr" else "")
            style = prov.get("phase")
            if spec.task == "sr" and style:
                task += " photo" if style == "gan" else " faithful"
            trained = ""
            if prov.get("iterations"):
                trained = f"{fmt_count(int(prov['iterations']))} it"
                if prov.get("train_seconds"):
                    trained += f", {fmt_duration(float(prov['train_seconds']))}"
            added = str(prov.get("trained_at", ""))[:16]
            item = QTreeWidgetItem([spec.id, task, trained, added])
            item.setData(0, Qt.ItemDataRole.UserRole, spec.id)
            folder = prov.get("source_folder")
            if folder:
                item.setToolTip(0, f"Trained on {folder}")
            self.models_tree.addTopLevelItem(item)
            if spec.id == selected:
                item.setSelected(True)
        self.models_empty.setVisible(not specs)
        self._update_model_buttons()

    def select_model(self, model_id: str) -> bool:
        for i in range(self.models_tree.topLevelItemCount()):
            item = self.models_tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == model_id:
                self.models_tree.setCurrentItem(item)
                item.setSelected(True)
                return True
        return False

    def _selected_model(self) -> Optional[str]:
        items = self.models_tree.selectedItems() if hasattr(self, "models_tree") else []
        return str(items[0].data(0, Qt.ItemDataRole.UserRole)) if items else None

    def _update_model_buttons(self) -> None:
        has = self._selected_model() is not None
        for b in (self.rename_button, self.delete_model_button, self.export_button):
            b.setEnabled(has)

    def _library_changed(self) -> None:
        self.refresh_models()
        self._refresh_start_from()
        self._validate()
        self.modelsChanged.emit()

    def rename_selected_model(self, new_name: Optional[str] = None) -> bool:
        from restorer.engine import registry
        from restorer.engine.errors import RestorerError

        old = self._selected_model()
        if old is None:
            return False
        if new_name is None:
            new_name, ok = QInputDialog.getText(self, "Rename Model", f"New name for '{old}':",
                                                QLineEdit.EchoMode.Normal, old)
            if not ok:
                return False
        new_name = new_name.strip()
        if not new_name or new_name == old:
            return False
        try:
            registry.rename_user_model(old, new_name)
        except (RestorerError, OSError) as exc:
            _message(self, "warning", "Cannot rename", str(exc))
            return False
        self._update_prefs_model_ids(old, new_name)
        self._library_changed()
        self.select_model(new_name)
        return True

    def delete_selected_model(self, confirm: bool = True) -> bool:
        from restorer.engine import registry
        from restorer.engine.errors import RestorerError

        model_id = self._selected_model()
        if model_id is None:
            return False
        if confirm and not _confirm(self, "Delete Model", f"Delete the model '{model_id}'? This cannot be undone "
                                                          "(export it first to keep a copy).", "Delete"):
            return False
        try:
            registry.delete_user_model(model_id)
        except (RestorerError, OSError) as exc:
            _message(self, "warning", "Cannot delete", str(exc))
            return False
        self._update_prefs_model_ids(model_id, "")
        self._library_changed()
        return True

    def export_selected_model(self, dest: Optional[str] = None) -> Optional[Path]:
        from restorer.engine import registry
        from restorer.engine.errors import RestorerError

        model_id = self._selected_model()
        if model_id is None:
            return None
        asked = dest is None  # the file dialog asks whether to replace an existing file
        if dest is None:
            start = str(Path(getattr(self.prefs, "last_folder", "") or Path.home()) / f"{model_id}.pt")
            dest, _f = QFileDialog.getSaveFileName(self, "Export Model", start, "Restorer model (*.pt)")
            if not dest:
                return None
        try:
            out = registry.export_model(model_id, Path(dest), overwrite=asked)
        except (RestorerError, OSError) as exc:
            _message(self, "warning", "Cannot export", str(exc))
            return None
        self._parent_status(f"Exported '{model_id}' to {out}")
        return out

    def import_model_file(self, src: Optional[str] = None, name: Optional[str] = None) -> Optional[str]:
        from restorer.engine import registry
        from restorer.engine.errors import RestorerError

        if src is None:
            start = getattr(self.prefs, "last_folder", "") or str(Path.home())
            src, _f = QFileDialog.getOpenFileName(self, "Import Model", start, "Restorer model (*.pt);;All files (*)")
            if not src:
                return None
        if name is None:
            name = Path(src).stem
            problem = self._import_name_problem(name)
            while problem:
                name, ok = QInputDialog.getText(self, "Import Model", f"{problem}\n\nName for the imported model:",
                                                QLineEdit.EchoMode.Normal, name)
                if not ok:
                    return None
                name = name.strip()
                problem = self._import_name_problem(name)
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            spec = registry.import_model(Path(src), name)
        except (RestorerError, OSError) as exc:
            QApplication.restoreOverrideCursor()
            _message(self, "warning", "Cannot import", str(exc))
            return None
        QApplication.restoreOverrideCursor()
        self._library_changed()
        self.select_model(spec.id)
        return spec.id

    @staticmethod
    def _import_name_problem(name: str) -> str:
        from restorer.engine import registry
        from restorer.engine.errors import RestorerError

        try:
            registry.validate_name(name)
            if any(s.id == name for s in registry.all_models()):
                return f"A model named '{name}' already exists."
        except RestorerError as exc:
            return str(exc)
        return ""

    def _update_prefs_model_ids(self, old: str, new: str) -> None:
        prefs = self.prefs
        if prefs is None:
            return
        changed = False
        for attr in ("default_upscale_model", "default_inpaint_model"):
            if getattr(prefs, attr, None) == old:
                setattr(prefs, attr, new)
                changed = True
        if changed and hasattr(prefs, "save"):
            prefs.save()

    def _parent_status(self, text: str, ms: int = 8000) -> None:
        parent = self.parent()
        bar = getattr(parent, "statusBar", None)
        if callable(bar):
            bar().showMessage(text, ms)

    # ================================================================== closing
    @property
    def run_name(self) -> str:
        """The name of the run the progress panel shows ('' when none)."""
        return self._run.name if self._run is not None else ""

    @property
    def run_active(self) -> bool:
        return self.process is not None and self.process.running

    def closeEvent(self, event: Any) -> None:
        # the run goes on; its progress is here when the dialog is opened again
        event.accept()

    def app_closing(self, keep_training: bool) -> None:
        """The main window is closing: stop the run (it saves a checkpoint), or let it train on.

        Nothing has to happen for the second: the worker is a process of its own, with its output
        in files, and dropping the dialog does not end it. A reopened app finds it under
        Runs and can follow it again.
        """
        if not self.run_active:
            return
        if keep_training:
            self._log("Restorer was closed: the run goes on in the background.")
        else:
            self.stop_training()


# ============================================================================ main window glue
class TrainingController(QObject):
    """The main window's side: the menu action, one dialog, and the close-while-training question."""

    modelsChanged = Signal()

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.dialog: Optional[TrainingDialog] = None
        self.action = QAction("&Train a Model…", window)
        self.action.setToolTip("Train an upscale, fill or latent model on a folder of your own photos")
        self.action.setStatusTip(self.action.toolTip())
        self.action.triggered.connect(lambda _checked=False: self.open())
        window.installEventFilter(self)

    def open(self) -> TrainingDialog:
        if self.dialog is None:
            self.dialog = TrainingDialog(getattr(self.window, "prefs", None), self.window)
            self.dialog.modelsChanged.connect(self._on_models_changed)
            self.dialog.runStateChanged.connect(self._on_run_state)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def _on_models_changed(self) -> None:
        try:
            from restorer.app.workers import MODEL_CACHE

            MODEL_CACHE.clear()  # renamed or deleted models must not linger
        except Exception:
            pass
        # the main window reads the library whenever it needs a model; windows of its own that
        # keep a model chooser (the latent explorer) offer refresh_models()
        targets = [self.window] + [w for w in self.window.findChildren(
            QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly) if w is not self.dialog]
        for target in targets:
            refresh = getattr(target, "refresh_models", None)
            if callable(refresh):
                try:
                    refresh()
                except Exception:  # one window's trouble must not hide the news from the others
                    log.exception("refresh_models of %r failed", target)
        self.modelsChanged.emit()

    def _on_run_state(self, state: str) -> None:
        dlg = self.dialog
        if dlg is None or dlg.isVisible():
            return
        name = dlg.run_name
        bar = getattr(self.window, "statusBar", None)
        if not callable(bar):
            return
        if state == "finished":
            bar().showMessage(f"Training finished: '{name}' is in your models", 15000)
        elif state == "failed":
            bar().showMessage(f"Training '{name}' failed: see Tools ▸ Train a Model…", 15000)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.window and event.type() == QEvent.Type.Close and self.dialog is not None \
                and self.dialog.run_active:
            answer = ask_keep_training(self.window, self.dialog.run_name)
            if answer == "cancel":
                event.ignore()
                return True
            self.dialog.app_closing(keep_training=answer == "keep")
        return super().eventFilter(obj, event)


def ask_keep_training(parent: Optional[QWidget], name: str) -> str:
    """'stop' | 'keep' | 'cancel' (tests replace this function)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Training is running")
    box.setText(f"The model '{name}' is still training.")
    box.setInformativeText("Stop it (a checkpoint is saved, so you can resume it later), or let it go on training "
                           "in the background? The next time you open Train a Model you can follow it again.")
    stop = box.addButton("Stop Training", QMessageBox.ButtonRole.DestructiveRole)
    keep = box.addButton("Keep Training", QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(keep)
    box.setEscapeButton(cancel)
    box.exec()
    clicked = box.clickedButton()
    return "stop" if clicked is stop else "keep" if clicked is keep else "cancel"


def install_training_menu(window: Any) -> QAction:
    """Add Tools ▸ Train a Model… to `window` (a QMainWindow) and return the action."""
    ctl = TrainingController(window)
    window.training = ctl
    mb = window.menuBar()
    tools: Optional[QMenu] = None
    help_action = None
    for act in mb.actions():
        menu = act.menu()
        title = act.text().replace("&", "")
        if menu is not None and title == "Tools":
            tools = menu
        elif title == "Help":
            help_action = act
    if tools is None:
        tools = QMenu("&Tools", window)
        if help_action is not None:
            mb.insertMenu(help_action, tools)
        else:
            mb.addMenu(tools)
    tools.addAction(ctl.action)
    window.addAction(ctl.action)
    return ctl.action


# ============================================================================ documentation screenshots
def _screenshot_main(argv: Optional[Sequence[str]] = None) -> int:
    """Screenshot of the dialog during a real run (docs/images/training-dialog.png)::

        xvfb-run -s "-screen 0 1600x1000x24" python -m restorer.app.training PHOTO_FOLDER OUT.png

    Trains a small ×2 network from scratch (in a throw-away data folder unless RESTORER_DATA_DIR
    is set) until the first preview arrives, then waits `--after` seconds and saves the window.
    The folder needs at least 20 photos for previews (the trainer holds one in twenty out).
    """
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(prog="python -m restorer.app.training")
    ap.add_argument("photos")
    ap.add_argument("out")
    ap.add_argument("--after", type=float, default=40.0, help="seconds of training to show after the first preview")
    ap.add_argument("--timeout", type=float, default=1800.0)
    args = ap.parse_args(argv)
    os.environ.setdefault("RESTORER_DATA_DIR", tempfile.mkdtemp(prefix="restorer-shot-"))
    os.environ.setdefault("RESTORER_CONFIG_DIR", os.path.join(os.environ["RESTORER_DATA_DIR"], "config"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    dlg = TrainingDialog()
    dlg.show()

    def wait(cond: Callable[[], bool], seconds: float) -> bool:
        end = time.monotonic() + seconds
        while not cond() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.03)
        return cond()

    dlg.folder_edit.setText(args.photos)
    dlg.scan_folder()
    wait(lambda: dlg.scan is not None or bool(dlg.scan_error), 120)
    dlg.scale_combo.setCurrentIndex(dlg.scale_combo.findData(2))
    dlg.start_combo.setCurrentIndex(dlg.start_combo.findData(""))
    dlg.blocks_spin.setValue(2)
    dlg.channels_spin.setValue(16)
    dlg.patch_spin.setValue(24)
    dlg.name_edit.setText("garden-x2")
    if not dlg.start_training():
        return 1
    wait(lambda: dlg.sample_view.has_image() or not dlg.run_active, args.timeout)
    wait(lambda: not dlg.run_active, args.after)
    dlg.grab().save(args.out)
    dlg.stop_training()
    wait(lambda: not dlg.run_active, STOP_TIMEOUT_S)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(_screenshot_main())
