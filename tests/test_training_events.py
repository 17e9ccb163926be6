"""The training worker's event stream (restorer/engine/training/events.py): kinds, encode/decode."""

from __future__ import annotations

import io
import json

import pytest

from restorer.engine.training import events as ev


def test_every_kind_has_a_dataclass_and_round_trips():
    for kind in ev.EventKind:
        event = ev.make(kind)
        assert event.event_kind is kind and type(event) is ev.EVENT_TYPES[kind]
        back = ev.decode(ev.encode(event))
        assert back == event


def test_fields_are_typed_and_unknown_fields_travel_in_extra():
    line = json.dumps({"event": "progress", "time": 5, "iteration": 7.0, "total": "10",
                       "losses": {"l1": 0.5}, "eta_s": None, "future_field": [1, 2]})
    event = ev.decode(line)
    assert isinstance(event, ev.ProgressEvent)
    assert event.iteration == 7 and event.total == 10 and event.losses == {"l1": 0.5} and event.eta_s is None
    assert event.extra == {"future_field": [1, 2]}
    record = json.loads(ev.encode(event))
    assert record["event"] == "progress" and record["future_field"] == [1, 2] and record["time"] == 5.0


def test_lines_that_are_not_events_decode_to_none():
    for line in ("", "not json", "[1, 2]", '{"no": "event"}', '{"event": "teleported"}', b'{"event": "info"'):
        assert ev.decode(line) is None


def test_emit_builds_the_typed_event_and_rejects_unknown_kinds():
    received: list[ev.TrainingEvent] = []

    class Recorder(ev.EventSink):
        def send(self, event):
            received.append(event)

    sink = Recorder()
    sink.emit("info", message="hello", usable=3)
    sink.emit(ev.EventKind.FINISHED, iteration=4, model_id="m")
    assert isinstance(received[0], ev.InfoEvent) and received[0].message == "hello"
    assert received[0].extra == {"usable": 3}
    assert isinstance(received[1], ev.FinishedEvent) and received[1].model_id == "m"
    with pytest.raises(ValueError, match="unknown training event kind"):
        sink.emit("teleported")


def test_jsonl_and_callback_sinks_write_the_wire_form(tmp_path):
    stream = io.StringIO()
    records: list[dict] = []
    ev.TeeEventSink(ev.JsonlEventSink(stream), ev.CallbackEventSink(records.append)).emit(
        "warning", kind="skipped_images", count=2, reasons={"too small": 2})
    line = stream.getvalue()
    assert line.endswith("\n") and json.loads(line) == records[0]
    assert records[0]["event"] == "warning" and records[0]["kind"] == "skipped_images"
    path = tmp_path / "events.jsonl"
    path.write_text(line + "garbage\n" + ev.encode(ev.make("stopped", iteration=3)) + "\n")
    kinds = [type(e) for e in ev.read_events(path)]
    assert kinds == [ev.WarningEvent, ev.StoppedEvent]
    assert ev.read_events(path, 0, len(line))[0].count == 2
