"""Progress events by wall time as well as by iterations (slow CPU runs still report, #18)."""

from __future__ import annotations

import pytest

from helpers import StubTrainer, loop_config
from restorer.engine.training import common
from restorer.engine.training.common import CallbackEventSink
from restorer.engine.training.events import decode, encode, make


def test_progress_comes_by_time_when_iterations_are_slow(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "PROGRESS_SECONDS", 0.1)
    cfg = loop_config(tmp_path, "slow", iters=12, log_every=1000, max_minutes=10.0)
    events = []
    StubTrainer(cfg, step_seconds=0.03, events=CallbackEventSink(events.append)).run()
    progress = [e for e in events if e["event"] == "progress"]
    # 12 steps of 30 ms: a progress event about every 0.1 s, plus the last iteration's
    assert 3 <= len(progress) <= 8, [p["iteration"] for p in progress]
    assert progress[-1]["iteration"] == 12
    mid = progress[0]
    assert mid["iteration"] < 12 and mid["elapsed_s"] > 0.05 and mid["it_per_s"] > 0
    assert mid["eta_s"] is not None and mid["eta_s"] <= 10 * 60
    assert mid["losses"]["loss"] == pytest.approx(sum(range(mid["iteration"])) / mid["iteration"])


def test_eta_is_bounded_by_the_time_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "PROGRESS_SECONDS", 0.05)
    cfg = loop_config(tmp_path, "budget", iters=10_000, log_every=1000, max_minutes=0.005)  # 0.3 s
    events = []
    result = StubTrainer(cfg, step_seconds=0.03, events=CallbackEventSink(events.append)).run()
    assert result.status == "stopped"
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and all(p["eta_s"] <= 0.3 + 1e-6 for p in progress)  # not the 5 minutes 10k iterations take


def test_started_event_states_the_data_parallel_layout():
    event = decode(encode(make("started", task="sr", world_size=4, rank_batch=4, batch=16, lr=2e-4)))
    assert (event.world_size, event.rank_batch, event.batch, event.lr) == (4, 4, 16, 2e-4)
    assert decode(encode(make("started", task="sr"))).world_size == 1  # older workers: a plain run
