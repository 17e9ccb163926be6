"""What a training run can do in the time chosen, on this device: a short measured probe.

:func:`probe_step_seconds` times training steps of the chosen upscale network at the chosen
batch and patch (forward, L1 loss, backward, Adam step, as sr.py's pixel phase does) on random
data, after one warm-up step; results are cached per setting, so the New model page can ask as
often as its fields change. :func:`plan_line` turns a step time into the page's one line: about
how many iterations the chosen minutes give, and on a CPU the compact architecture and a
duration that gives a fine-tune enough steps to show a measurable gain. Qt-free; the training
dialog calls the probe on a worker thread (restorer/app/workers.py), never on the GUI thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Optional

log = logging.getLogger(__name__)

PROBE_STEPS = 2  # timed steps after the warm-up one (fewer when a step is slow)
PROBE_BUDGET_S = 2.0  # past this (warm-up included), a slow device is timed on one step
OVERHEAD = 1.15  # data feed, EMA, previews and checkpoints on top of the bare step
FINE_TUNE_STEPS = 1000  # about what a fine-tune needs before held-out scores move on a CPU
SCRATCH_STEPS = 20_000


@dataclass(frozen=True)
class ProbeKey:
    """The settings that decide the cost of one SR training step."""

    arch: str
    scale: int
    blocks: int
    channels: int
    patch: int
    batch: int
    device: str  # cpu | cuda | mps


_CACHE: dict[ProbeKey, float] = {}
_LOCK = threading.Lock()


def cached_step_seconds(key: ProbeKey) -> Optional[float]:
    with _LOCK:
        return _CACHE.get(key)


def probe_step_seconds(key: ProbeKey) -> float:
    """Seconds per training step of `key` on its device, measured once (then cached)."""
    hit = cached_step_seconds(key)
    if hit is not None:
        return hit
    import torch
    import torch.nn.functional as F

    from restorer.engine.archs import build_arch
    from restorer.engine.training.sr import SRConfig, generator_params

    cfg = SRConfig(name="probe", data="probe", scale=key.scale, arch=key.arch, num_blocks=key.blocks,
                   channels=key.channels, patch=key.patch, batch=key.batch)
    arch, params = generator_params(cfg)
    device = torch.device(key.device)
    net = build_arch(arch, params).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    lr = torch.rand(key.batch, 3, key.patch, key.patch, generator=gen).to(device)
    hr = torch.rand(key.batch, 3, key.patch * key.scale, key.patch * key.scale, generator=gen).to(device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.l1_loss(net(lr), hr)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    t0 = time.perf_counter()
    step()  # warm-up: allocations, kernel choice
    warm = time.perf_counter() - t0
    times = []
    spent = warm
    for _ in range(PROBE_STEPS):
        if spent > PROBE_BUDGET_S and times:
            break
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    seconds = sum(times) / len(times) if times else warm
    log.info("training step probe %s: %.3f s/step", key, seconds)
    with _LOCK:
        _CACHE[key] = seconds
    return seconds


def iterations_in(minutes: float, step_s: float) -> int:
    """About how many iterations `minutes` give at `step_s` per bare step."""
    if step_s <= 0 or minutes <= 0:
        return 0
    return int(minutes * 60 / (step_s * OVERHEAD))


def recommended_minutes(step_s: float, fine_tune: bool) -> int:
    """A duration (minutes, a multiple of 5, at least 10) giving enough steps for a visible gain."""
    steps = FINE_TUNE_STEPS if fine_tune else SCRATCH_STEPS
    return max(10, int(math.ceil(steps * step_s * OVERHEAD / 60 / 5)) * 5)


def _round(n: int) -> str:
    if n >= 1000:
        digits = 2 if n < 10_000 else 3
        return f"{round(n, -(len(str(n)) - digits)):,}"
    if n >= 100:
        return f"{round(n, -1)}"
    return str(n)


def plan_line(step_s: float, *, length_mode: str, minutes: float, iterations: int, device: str,
              fine_tune: bool, compact: bool, compact_choice: str = "") -> str:
    """The New model page's line: what the chosen length gives here, and what to choose on a CPU.

    `compact` says whether the chosen network is the compact one; `compact_choice` names the
    installed compact model to start from ('' when there is none)."""
    where = "this CPU" if device == "cpu" else f"this {device.upper()} device"
    if length_mode == "minutes":
        n = iterations_in(minutes, step_s)
        text = f"On {where}: about {_round(n)} iterations in {minutes:g} min ({step_s:.2f} s per step)."
    else:
        total_min = iterations * step_s * OVERHEAD / 60
        text = (f"On {where}: {iterations:,} iterations take about "
                f"{_fmt_minutes(total_min)} ({step_s:.2f} s per step).")
    if device != "cpu":
        return text
    advice = []
    if not compact and compact_choice:
        advice.append(f"start from {compact_choice} (compact, several times faster here)")
    want = recommended_minutes(step_s, fine_tune)
    enough = (iterations_in(minutes, step_s) if length_mode == "minutes" else iterations) >= (
        FINE_TUNE_STEPS if fine_tune else SCRATCH_STEPS)
    if not enough and (fine_tune or not advice):  # from scratch, the compact start comes first
        advice.append(f"train {_fmt_minutes(want)} or more for a measurable gain" if want <= 600 else
                      "fine-tune an installed model (from scratch takes many hours here)")
    if advice:
        text += " Recommended on a CPU: " + " and ".join(advice) + "."
    return text


def _fmt_minutes(m: float) -> str:
    if m < 1:
        return "under a minute"
    if m < 90:
        return f"{int(round(m))} min"
    return f"{m / 60:.1f} hours"
