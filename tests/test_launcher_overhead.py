"""benchmarks/launcher_overhead.py: the steady-state rate and the launcher's cost from training events."""

from __future__ import annotations

import json

import pytest

from benchmarks.launcher_overhead import overhead, parse_events, steady_rate


def _events(rates, t0=100.0, startup=0.5):
    """A started event, then progress events once a second with the given iterations per second."""
    ev = [{"event": "started", "time": t0}]
    t, it = t0 + startup, 0
    for r in rates:
        t += 1.0
        it += r
        ev.append({"event": "progress", "time": t, "iteration": it})
    ev.append({"event": "stopped", "time": t + 0.5, "iteration": it})
    return ev


def test_steady_rate_leaves_out_the_slow_first_steps():
    ev = _events([1, 2, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10])
    assert steady_rate(ev) == pytest.approx(10.0)
    assert steady_rate(ev, skip=0.0) < 10.0  # from the first event on, the slow start counts


def test_steady_rate_needs_a_start_and_two_progress_events():
    assert steady_rate([{"event": "progress", "time": 1.0, "iteration": 5}]) is None
    assert steady_rate(_events([4])) is None
    assert steady_rate([e for e in _events([5] * 6) if e["event"] != "started"]) is None


def test_overhead_is_one_minus_the_median_ratio():
    assert overhead([10.0, 10.0, 10.0], [9.0, 9.9, 10.2]) == pytest.approx(0.01)
    assert overhead([10.0], [10.5]) == pytest.approx(-0.05)


def test_parse_events_skips_log_lines():
    text = "starting 1 workers: torchrun ...\n" + "\n".join(json.dumps(e) for e in _events([3, 3])) + "\n{broken"
    ev = parse_events(text)
    assert [e["event"] for e in ev] == ["started", "progress", "progress", "stopped"]


def test_bad_folder_is_exit_2(tmp_path, capsys):
    from benchmarks.launcher_overhead import main

    assert main(["--data", str(tmp_path / "missing"), "--device", "cpu"]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_too_short_runs_are_refused(tmp_path, capsys):
    from benchmarks.launcher_overhead import main

    assert main(["--data", str(tmp_path), "--device", "cpu", "--seconds", "3"]) == 2
    assert "at least 8" in capsys.readouterr().err
