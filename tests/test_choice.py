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
