"""Training run folders: what is in one, reading them, and the arguments that continue a run.

A run lives in ``<user data>/runs/<name>/``: the trainer's ``checkpoint.pt`` and previews, and
what the app's supervisor writes beside them (the worker's events and log, ``worker.json`` with
the pid of the latest launch, ``gui-run.json`` with how the dialog started it). Nothing here
imports Qt: the training dialog, tests and scripts read runs through this module.

How resume works: :func:`read_run` loads only the small fields of the checkpoint (its iteration,
elapsed time and the config it was trained with); :func:`resume_args` turns that config back into
``restorer train <task> ... --resume`` arguments (restorer/engine/training/options.py), and the
trainer reloads the full state from the checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from restorer.engine.fileutil import atomic_write
from restorer.engine.vocab import TRAIN_TASKS

EVENTS_FILE = "events.jsonl"  # the worker's stdout: one JSON event per line, appended per launch
LOG_FILE = "worker.log"  # the worker's stderr, appended per launch
WORKER_FILE = "worker.json"  # pid and file offsets of the latest launch
SETTINGS_FILE = "gui-run.json"  # how the dialog started the run (length in minutes or iterations)
CHECKPOINT_FILE = "checkpoint.pt"
SAMPLE_FILE = "sample_latest.png"


def fmt_duration(seconds: Optional[float]) -> str:
    """1:05, 12:03, 1:02:03 (h:mm:ss); '?' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_count(n: int) -> str:
    return f"{n:,}".replace(",", "\u2009")  # thin space as thousands separator


def runs_dir() -> Path:
    """Where runs go by default: ``<user data>/runs``."""
    from restorer.engine import registry

    return registry.user_data_dir() / "runs"



def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}



def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=str)



# --------------------------------------------------------------------------- worker processes
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



def is_our_worker(pid: int, name: str) -> bool:
    """Guards against a recycled pid: on Linux the command line must be a training run of `name`."""
    path = Path(f"/proc/{pid}/cmdline")
    if not path.exists():
        return True  # not Linux: the pid and the recorded start are all there is
    try:
        argv = path.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"train" in argv and name.encode() in argv



def send_stop(pid: int) -> None:
    """Ask a worker to stop (it saves a checkpoint first)."""
    if sys.platform == "win32":
        os.kill(pid, signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
    else:
        os.kill(pid, signal.SIGTERM)



def send_kill(pid: int) -> None:
    if sys.platform == "win32":
        os.kill(pid, signal.SIGTERM)  # TerminateProcess
    else:
        os.kill(pid, signal.SIGKILL)



# --------------------------------------------------------------------------- runs on disk
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
        folders = [str(d) for d in data] if isinstance(data, (list, tuple)) else [str(data)]
        extra = self.config.get("extra_data") or []  # detect/colorize runs started by their older module commands
        return folders + [str(d) for d in extra if str(d) not in folders]

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
    info = read_json(run_dir / WORKER_FILE)
    pid = info.get("pid")
    if isinstance(pid, int) and pid_alive(pid) and is_our_worker(pid, run_dir.name):
        return info
    return None


def read_run(run_dir: Path) -> RunInfo:
    """What is known about one run folder (loads only the checkpoint's small fields, memory-mapped)."""
    run_dir = Path(run_dir)
    info = RunInfo(name=run_dir.name, run_dir=run_dir, gui=read_json(run_dir / SETTINGS_FILE))
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
    from restorer.engine.training.options import config_argv
    from restorer.engine.training.tasks import config_class

    cfg = info.config
    if not cfg or info.task not in TRAIN_TASKS:
        from restorer.engine.errors import RestorerError

        raise RestorerError(f"the checkpoint of '{info.name}' does not say how it was trained")
    values = dict(cfg, name=info.name, runs_dir=str(info.run_dir.parent), max_minutes=None)
    values["data"] = info.folders  # every folder (an older detect/colorize run kept more in `extra_data`)
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
