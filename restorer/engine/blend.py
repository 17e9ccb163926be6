"""Strength between two models: interpolate the weights of two networks of the same architecture.

A "denoise / detail" strength from faithful to strong is made the way Real-ESRGAN's general model does it:
the network that runs is ``(1 - t) * A + t * B`` parameter by parameter, for two models trained from the same
architecture (faithful <-> photo, photo <-> sharp). One forward pass, so it costs nothing at inference; t = 0
is exactly A and t = 1 exactly B. Only floating-point tensors are interpolated; integer buffers (counters)
come from A. Models that differ in task, architecture, parameters or tensor shapes cannot be blended and
raise a ModelError naming the difference.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from restorer.engine.errors import InputError, ModelError


def check_strength(strength: float) -> float:
    """A strength in [0, 1] (InputError otherwise)."""
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise InputError(f"strength must be a number between 0 and 1, got {strength!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InputError(f"strength must be between 0 and 1, got {strength}")
    return value


def blend_state_dicts(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], t: float,
                      names: tuple[str, str] = ("A", "B")) -> dict[str, torch.Tensor]:
    """``(1 - t) * a + t * b`` for every floating-point tensor; other tensors are copied from ``a``."""
    t = check_strength(t)
    if set(a) != set(b):
        only_a = sorted(set(a) - set(b))[:3]
        only_b = sorted(set(b) - set(a))[:3]
        raise ModelError(f"cannot blend {names[0]} and {names[1]}: their layers differ "
                         f"(only in {names[0]}: {only_a or '-'}; only in {names[1]}: {only_b or '-'})")
    out: dict[str, torch.Tensor] = {}
    for key, ta in a.items():
        tb = b[key]
        if ta.shape != tb.shape:
            raise ModelError(f"cannot blend {names[0]} and {names[1]}: layer '{key}' has shape "
                             f"{tuple(ta.shape)} in one and {tuple(tb.shape)} in the other")
        if ta.is_floating_point():
            if t == 0.0:
                out[key] = ta.clone()
            elif t == 1.0:
                out[key] = tb.clone().to(ta.dtype)
            else:
                out[key] = torch.lerp(ta.float(), tb.float(), t).to(ta.dtype)
        else:
            out[key] = ta.clone()
    return out


def _describe(payload: Mapping[str, Any]) -> tuple[Any, ...]:
    return (payload.get("task"), payload.get("arch"), dict(payload.get("params") or {}), payload.get("scale", 1))


def blend_payloads(a: Mapping[str, Any], b: Mapping[str, Any], t: float,
                   names: tuple[str, str] = ("A", "B")) -> dict[str, Any]:
    """A model-file payload (as read by the registry) whose weights are the blend of ``a`` and ``b``."""
    da, db = _describe(a), _describe(b)
    labels = ("task", "architecture", "parameters", "scale")
    for label, va, vb in zip(labels, da, db):
        if va != vb:
            raise ModelError(f"cannot blend {names[0]} and {names[1]}: their {label} differ ({va} vs {vb})")
    blended = dict(a)
    blended["state_dict"] = blend_state_dicts(a["state_dict"], b["state_dict"], t, names)
    meta = dict(a.get("meta") or {})
    meta["blend"] = {"from": names[0], "to": names[1], "strength": float(t)}
    blended["meta"] = meta
    return blended


def load_blended(model_a: str, model_b: str, strength: float, task: str | None = None) -> nn.Module:
    """Build the network of library models ``model_a`` / ``model_b`` blended at ``strength`` (eval mode)."""
    from restorer.engine import registry
    from restorer.engine.archs import build_arch

    strength = check_strength(strength)
    spec_a = registry.get_spec(model_a, task)
    spec_b = registry.get_spec(model_b, task)
    if strength == 0.0:
        return registry.load_model(spec_a)
    if strength == 1.0:
        return registry.load_model(spec_b)
    pa = registry.read_model_file(spec_a.path, spec_a.sha256)
    pb = registry.read_model_file(spec_b.path, spec_b.sha256)
    payload = blend_payloads(pa, pb, strength, (spec_a.id, spec_b.id))
    net = build_arch(payload["arch"], payload["params"])
    net.load_state_dict(payload["state_dict"], strict=True)
    return net.eval()
