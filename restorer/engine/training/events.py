"""What the training worker says: the typed event stream of `restorer train ... --events jsonl`.

Every event a trainer, the CLI or the app exchanges is one of the dataclasses below, one per
:class:`EventKind`. On the wire (the worker's stdout, ``<run>/events.jsonl``) an event is one JSON
object per line: ``{"event": "<kind>", "time": <unix seconds>, <its fields>...}``. :func:`encode`
writes such a line and :func:`decode` reads one back (``None`` for a line that is not an event), so
the worker, the app's training dialog and the tests share this one definition of the protocol.

Fields a trainer adds beyond the dataclass (e.g. ``usable=`` on an info event) travel in
:attr:`TrainingEvent.extra` and are written flat on the line, so a newer worker never breaks an
older reader. Trainers keep calling ``sink.emit("info", message=...)``; :meth:`EventSink.emit`
builds the typed event (an unknown kind is a programming error: ``ValueError``) and hands it to
:meth:`EventSink.send`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional, TextIO, Union

log = logging.getLogger(__name__)


class EventKind(str, Enum):
    """Every kind of event the training worker sends."""

    STARTED = "started"  # the run is built (and resumed); training begins
    PROGRESS = "progress"  # every `log_every` iterations and at least every few seconds: losses and speed
    SAMPLE = "sample"  # a preview image was written
    CHECKPOINT = "checkpoint"  # a checkpoint was saved
    FINISHED = "finished"  # the run reached its iterations; the model is in the library
    STOPPED = "stopped"  # stopped early (Stop, a signal, the time budget); a checkpoint is saved
    ERROR = "error"  # the run failed; the worker exits non-zero
    INFO = "info"  # a line for the log (what data was found, how the network started, ...)
    WARNING = "warning"  # something worth a look (skipped files, mode collapse)
    DATA = "data"  # what the latent trainer loaded

    @property
    def terminal(self) -> bool:
        """Whether the run ends with this event."""
        return self in (EventKind.FINISHED, EventKind.STOPPED, EventKind.ERROR)


@dataclass
class TrainingEvent:
    """Base of the events: when it was sent, and fields this version does not know."""

    KIND: ClassVar[EventKind]
    time: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def event_kind(self) -> EventKind:
        return self.KIND


@dataclass
class StartedEvent(TrainingEvent):
    KIND: ClassVar[EventKind] = EventKind.STARTED
    task: str = ""
    name: str = ""
    iteration: int = 0
    total: int = 0
    device: str = ""
    resumed: bool = False
    run_dir: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    world_size: int = 1  # data-parallel workers (1: a plain run)
    rank_batch: int = 0  # images each worker draws per iteration
    batch: int = 0  # the effective batch: rank_batch * world_size
    lr: float = 0.0  # the learning rate (not scaled with the number of workers)


@dataclass
class ProgressEvent(TrainingEvent):
    KIND: ClassVar[EventKind] = EventKind.PROGRESS
    iteration: int = 0
    total: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    it_per_s: float = 0.0
    eta_s: Optional[float] = None
    elapsed_s: float = 0.0


@dataclass
class SampleEvent(TrainingEvent):
    KIND: ClassVar[EventKind] = EventKind.SAMPLE
    iteration: int = 0
    path: str = ""


@dataclass
class CheckpointEvent(TrainingEvent):
    KIND: ClassVar[EventKind] = EventKind.CHECKPOINT
    iteration: int = 0
    path: str = ""


@dataclass
class FinishedEvent(TrainingEvent):
    KIND: ClassVar[EventKind] = EventKind.FINISHED
    iteration: int = 0
    total: int = 0
    elapsed_s: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    model_id: Optional[str] = None
    model_file: Optional[str] = None
    checkpoint: str = ""
    iters_run: int = 0


@dataclass
class StoppedEvent(TrainingEvent):
    KIND: ClassVar[EventKind] = EventKind.STOPPED
    iteration: int = 0
    total: int = 0
    checkpoint: str = ""
    elapsed_s: float = 0.0


@dataclass
class ErrorEvent(TrainingEvent):
    KIND: ClassVar[EventKind] = EventKind.ERROR
    message: str = ""


@dataclass
class InfoEvent(TrainingEvent):
    KIND: ClassVar[EventKind] = EventKind.INFO
    message: str = ""


@dataclass
class WarningEvent(TrainingEvent):
    KIND: ClassVar[EventKind] = EventKind.WARNING
    kind: str = ""  # what is wrong: "skipped_images", "mode_collapse", ...
    message: str = ""
    count: int = 0  # skipped_images: how many files
    reasons: dict[str, int] = field(default_factory=dict)  # skipped_images: why, with counts


@dataclass
class DataEvent(TrainingEvent):
    KIND: ClassVar[EventKind] = EventKind.DATA
    images: int = 0
    skipped: int = 0
    classes: list[str] = field(default_factory=list)
    bytes: int = 0
    device: str = ""


EVENT_TYPES: dict[EventKind, type[TrainingEvent]] = {
    cls.KIND: cls for cls in (StartedEvent, ProgressEvent, SampleEvent, CheckpointEvent, FinishedEvent,
                              StoppedEvent, ErrorEvent, InfoEvent, WarningEvent, DataEvent)
}
assert set(EVENT_TYPES) == set(EventKind), "every kind has its dataclass"

_BASE_FIELDS = {"time", "extra"}


def _coerce(value: Any, default: Any, name: str) -> Any:
    """`value` as the type of the field's default (the wire is JSON: an int may come as 5.0)."""
    if value is None:
        return None
    try:
        if isinstance(default, bool):
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):
            return str(value)
        if isinstance(default, dict):
            return dict(value) if isinstance(value, dict) else {}
        if isinstance(default, list):
            return list(value) if isinstance(value, (list, tuple)) else []
    except (TypeError, ValueError):
        log.debug("event field %s: cannot read %r", name, value)
        return default
    return value


def _defaults(cls: type[TrainingEvent]) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
    return out


def make(kind: Union[str, EventKind], /, **fields: Any) -> TrainingEvent:
    """The typed event of `kind` with `fields`; fields it does not define go to `extra`.

    Raises ValueError for a kind that is not an :class:`EventKind`."""
    try:
        kind = EventKind(kind)
    except ValueError:
        raise ValueError(f"unknown training event kind {kind!r}; known: {', '.join(k.value for k in EventKind)}")
    cls = EVENT_TYPES[kind]
    defaults = _defaults(cls)
    known: dict[str, Any] = {}
    extra: dict[str, Any] = dict(fields.pop("extra", None) or {})
    for key, value in fields.items():
        if key in defaults and key not in _BASE_FIELDS:
            known[key] = _coerce(value, defaults[key], key)
        elif key == "time":
            known["time"] = _coerce(value, 0.0, key)
        else:
            extra[key] = value
    return cls(extra=extra, **known)


def to_record(event: TrainingEvent) -> dict[str, Any]:
    """The wire form of `event` as a dict: ``{"event": kind, "time": t, fields..., extra...}``."""
    record: dict[str, Any] = {"event": event.KIND.value, "time": event.time}
    for f in dataclasses.fields(event):
        if f.name not in _BASE_FIELDS:
            record[f.name] = getattr(event, f.name)
    for key, value in event.extra.items():
        record.setdefault(key, value)
    return record


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy and torch scalars
        try:
            return obj.item()
        except (TypeError, ValueError):
            pass
    return str(obj)


def encode(event: TrainingEvent) -> str:
    """One JSON line (without the newline) for the events stream."""
    return json.dumps(to_record(event), default=_json_default)


def decode(line: Union[str, bytes, dict[str, Any]]) -> Optional[TrainingEvent]:
    """The event of one stream line (or an already parsed record); None when it is not an event
    (not JSON, not an object, no or an unknown ``event``)."""
    if isinstance(line, dict):
        record = line
    else:
        try:
            record = json.loads(line)
        except (ValueError, TypeError):
            return None
    if not isinstance(record, dict) or "event" not in record:
        return None
    fields = dict(record)
    kind = fields.pop("event")
    try:
        return make(kind, **fields)
    except (ValueError, TypeError):
        log.debug("not a training event: %r", str(record)[:200])
        return None


def read_events(path: Path, start: int = 0, end: Optional[int] = None) -> list[TrainingEvent]:
    """The events of an events file between two byte offsets (lines that are not events are skipped)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read() if end is None else fh.read(max(0, end - start))
    except OSError:
        return []
    return [ev for ev in (decode(line) for line in data.splitlines() if line.strip()) if ev is not None]


# --------------------------------------------------------------------------- sinks
def fmt_seconds(seconds: Optional[float]) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class EventSink:
    """Receives training events. Trainers call :meth:`emit` (kind and fields) or :meth:`send`
    (a typed event); a sink implements :meth:`send`."""

    def emit(self, event: Union[str, EventKind], /, **fields: Any) -> None:
        self.send(make(event, **fields))

    def send(self, event: TrainingEvent) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class NullEventSink(EventSink):
    def send(self, event: TrainingEvent) -> None:
        return None


class LogEventSink(EventSink):
    """Human-readable events through `logging` (the default for the command line)."""

    def send(self, event: TrainingEvent) -> None:
        if isinstance(event, ProgressEvent):
            losses = " ".join(f"{k}={v:.4g}" for k, v in event.losses.items())
            log.info("iter %d/%d  %s  %.2f it/s  eta %s", event.iteration, event.total, losses,
                     event.it_per_s or 0.0, fmt_seconds(event.eta_s))
        else:
            shown = {k: v for k, v in to_record(event).items() if k not in ("event", "time", "image")}
            log.info("%s %s", event.KIND.value, json.dumps(shown, default=str))


class JsonlEventSink(EventSink):
    """One JSON object per line on a stream: the protocol of the training worker process."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, event: TrainingEvent) -> None:
        line = encode(event)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


class CallbackEventSink(EventSink):
    """Calls `callback` with each event's wire record (a dict with ``"event"``)."""

    def __init__(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._callback = callback

    def send(self, event: TrainingEvent) -> None:
        self._callback(to_record(event))


class TeeEventSink(EventSink):
    def __init__(self, *sinks: EventSink) -> None:
        self._sinks = sinks

    def send(self, event: TrainingEvent) -> None:
        for sink in self._sinks:
            sink.send(event)
