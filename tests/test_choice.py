"""Automatic model choice: the best model on a GPU, the fastest nearly-as-good one on a CPU."""

from __future__ import annotations

from restorer.engine.choice import choose_upscaler
from restorer.engine.registry import ModelSpec


def _spec(id, scale, psnr=None, secs=None, default=False, title=""):
    measured = {k: v for k, v in (("psnr_y", psnr), ("cpu_s_per_mpx", secs)) if v is not None}
    return ModelSpec(id=id, task="sr", arch="srgan", params={}, file=f"{id}.pt", scale=scale, title=title or id,
                     provenance={"measured": measured, "default": default})


FAITHFUL = _spec("x4-faithful", 4, 29.92, 12.7, default=True, title="x4 faithful")
COMPACT = _spec("x4-compact", 4, 29.88, 1.1, title="x4 fast")
X2 = _spec("x2-faithful", 2, 36.32, 25.8, default=True)
X8 = _spec("x8-faithful", 8, 24.0, 30.0, default=True)
ALL = [FAITHFUL, COMPACT, X2, X8]


def test_cpu_takes_the_fastest_model_within_a_tenth_of_a_db_and_says_why():
    choice = choose_upscaler(4, "cpu", ALL)
    assert choice.spec is COMPACT
    assert "0.04 dB" in choice.reason and "12x faster" in choice.reason


def test_gpu_takes_the_best_model():
    assert choose_upscaler(4, "cuda", ALL).spec is FAITHFUL


def test_a_clearly_better_model_wins_on_a_cpu_too():
    better = _spec("x4-best", 4, 30.4, 9.0)
    assert choose_upscaler(4, "cpu", [*ALL, better]).spec is better


def test_missing_factor_uses_the_next_larger_model_and_says_so():
    choice = choose_upscaler(3, "cpu", ALL)
    assert choice.spec is COMPACT and "then resized to x3" in choice.reason


def test_models_without_figures_fall_back_to_the_default():
    plain = [_spec("u1", 2), _spec("u2", 2, default=True)]
    assert choose_upscaler(2, "cpu", plain).spec.id == "u2"


# ----------------------------------------------------------------------------- the fast CPU models (issue #20)
def _fast(id, scale, psnr, secs):
    spec = _spec(id, scale, psnr, secs, title=id)
    return ModelSpec(id=spec.id, task="sr", arch="fast_sr", params={"scale": scale}, file=spec.file, scale=scale,
                     title=id, provenance=spec.provenance)


def test_cpu_takes_a_shipped_fast_model_that_measures_best_and_fastest():
    fast = _fast("sr-x4-fast", 4, 30.45, 1.05)
    choice = choose_upscaler(4, "cpu", [*ALL, fast])
    assert choice.spec is fast and "best measured" in choice.reason
    # as good as the faithful model within a tenth of a dB and faster than compact: still the fast one
    near = _fast("sr-x4-fast", 4, 29.90, 1.0)
    assert choose_upscaler(4, "cpu", [*ALL, near]).spec is near
    # on a GPU the default (faithful) model still runs: the fast model is the CPU default only
    assert choose_upscaler(4, "cuda", [*ALL, fast]).spec is FAITHFUL


def test_cpu_keeps_the_compact_model_when_the_fast_one_is_slower_for_the_same_quality():
    slow = _fast("sr-x4-fast", 4, 29.93, 1.6)  # within 0.1 dB of compact, but slower than it
    choice = choose_upscaler(4, "cpu", [*ALL, slow])
    assert choice.spec is COMPACT


def test_native_fast_x3_and_x2_models_are_used_for_their_factors():
    x3 = _fast("sr-x3-fast", 3, 31.2, 1.9)
    choice = choose_upscaler(3, "cpu", [*ALL, x3])
    assert choice.spec is x3 and "resized" not in choice.reason
    x2 = _fast("sr-x2-fast", 2, 36.35, 4.0)
    choice = choose_upscaler(2, "cpu", [*ALL, x2])
    assert choice.spec is x2 and "x faster" not in choice.reason  # the best measured x2 model
    worse = _fast("sr-x2-fast", 2, 35.9, 4.0)  # more than 0.1 dB below faithful: not chosen
    assert choose_upscaler(2, "cpu", [*ALL, worse]).spec is X2
