"""Strength between two models: interpolate the weights of two networks of the same architecture.

A "denoise / detail" strength from faithful to strong is made the way Real-ESRGAN's general model does it:
the network that runs is ``(1 - t) * A + t * B`` parameter by parameter, for two models trained from the same
architecture (faithful <-> photo, photo <-> sharp). One forward pass, so it costs nothing at inference; t = 0
is exactly A and t = 1 exactly B. Only floating-point tensors are interpolated; integer buffers (counters)
come from A. Models that differ in task, architecture, parameters or tensor shapes cannot be blended and
raise a ModelError naming the difference.

Which models a factor's slider moves between is decided here, once (:func:`strength_chain`): the installed
models of the factor on the faithful <-> photo <-> sharp axis (`styles.model_style`) that share one
architecture; the CLI's ``--strength``, the Upscale dialog's slider and its preview all use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

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


# ----------------------------------------------------------------------------- which models blend
def blend_compatible(a: Any, b: Any) -> bool:
    """Two specs whose weights can be interpolated: same task, architecture, parameters and factor."""
    return (a.task == b.task and a.arch == b.arch and dict(a.params or {}) == dict(b.params or {})
            and int(a.scale) == int(b.scale))


@dataclass(frozen=True)
class StrengthChain:
    """The models of one factor that the "denoise / detail" strength moves between, faithful to strong.

    ``specs`` holds two or three specs of one architecture in the order of ``styles.STYLES``
    (faithful <-> photo <-> sharp, e.g. sr-x4-faithful <-> sr-x4-photo <-> sr-x4-photo-sharp). Strength 0 is
    the first model, 1 the last; with three models 0.5 is the middle one exactly, and a strength between
    two neighbours interpolates those two models' weights (:meth:`at`).
    """

    scale: int
    specs: tuple

    def at(self, strength: float) -> tuple[Any, Any, float]:
        """(model A, model B, t): the network for `strength` is ``(1 - t) * A + t * B``."""
        strength = check_strength(strength)
        steps = len(self.specs) - 1
        pos = strength * steps
        i = min(int(math.floor(pos)), steps - 1)
        t = min(1.0, max(0.0, pos - i))
        return self.specs[i], self.specs[i + 1], t

    def position(self, spec: Any) -> float:
        """The strength at which `spec` (one of the chain) runs unblended."""
        ids = [s.id for s in self.specs]
        return ids.index(spec.id) / (len(ids) - 1)

    def contains(self, spec: Any) -> bool:
        return any(s.id == getattr(spec, "id", None) for s in self.specs)

    def describe(self, strength: float) -> str:
        """What runs at `strength`, in words: one model's title, or "70% A + 30% B"."""
        a, b, t = self.at(strength)
        if t <= 0.0:
            return _title(a)
        if t >= 1.0:
            return _title(b)
        pb = int(round(100 * t))
        return f"{100 - pb}% {_title(a)} + {pb}% {_title(b)}"

    def ends(self) -> tuple[str, str]:
        """The slider's two end labels: the first and last models' styles ("Clean", "Photo, sharp")."""
        from restorer.engine.styles import style_name

        return style_name(self.specs[0]) or "faithful", style_name(self.specs[-1]) or "strong"


def _title(spec: Any) -> str:
    return getattr(spec, "title", "") or spec.id


def _by_style(specs: Sequence[Any]) -> dict[str, list]:
    from restorer.engine.styles import STYLES, model_style

    out: dict[str, list] = {style: [] for style in STYLES}
    for spec in specs:
        style = model_style(spec)
        if style in out:
            out[style].append(spec)
    for style in out:  # shipped before the user's, then by id: the same chain every time
        out[style].sort(key=lambda s: (s.source != "shipped", s.id))
    return out


def strength_chain(factor: int, specs: Optional[Sequence[Any]] = None,
                   around: Optional[Any] = None) -> Optional[StrengthChain]:
    """The strength chain for upscaling by `factor` (the model factor that makes it, as the upscaler
    picks it), or None when fewer than two installed models of one architecture span it.

    The chain is built around one model: `around` when given (the model the user chose; None when it
    has no style), else the factor's photo model, else its faithful one, else its sharp one. Its
    neighbours on the faithful <-> photo <-> sharp axis join when they are blend-compatible with it.
    """
    from restorer.engine.styles import STYLES, model_style
    from restorer.engine.pipelines.upscale import model_scale_for

    if specs is None:
        from restorer.engine import registry

        specs = registry.all_models("sr")
    specs = [s for s in specs if s.task == "sr" and s.scale > 1]
    try:
        scale = model_scale_for(int(factor), [s.scale for s in specs])
    except InputError:
        return None
    styled = _by_style([s for s in specs if s.scale == scale])
    if around is not None:
        if around.scale != scale or model_style(around) not in STYLES:
            return None
        anchor = around
    else:
        anchor = next((styled[st][0] for st in ("photo", "faithful", "sharp") if styled[st]), None)
        if anchor is None:
            return None
    k = STYLES.index(model_style(anchor))
    chain = [anchor]
    for style in reversed(STYLES[:k]):  # towards faithful, each step compatible with the chain's end
        nxt = next((s for s in styled[style] if blend_compatible(s, chain[0])), None)
        if nxt is None:
            break
        chain.insert(0, nxt)
    for style in STYLES[k + 1:]:  # towards sharp
        nxt = next((s for s in styled[style] if blend_compatible(s, chain[-1])), None)
        if nxt is None:
            break
        chain.append(nxt)
    return StrengthChain(scale, tuple(chain)) if len(chain) >= 2 else None


def no_chain_reason(factor: int) -> str:
    """One line for a hidden strength slider (or a refused --strength): why `factor` has no chain."""
    example = f"sr-x{factor}-faithful and sr-x{factor}-photo" if factor in (2, 4) else "a faithful and a photo model"
    return (f"Strength needs two installed ×{factor} models of one architecture to blend "
            f"(e.g. {example})")


def blend_networks(spec_a: Any, net_a: nn.Module, net_b: nn.Module, t: float,
                   names: tuple[str, str] = ("A", "B")) -> nn.Module:
    """A new network of `spec_a`'s architecture with the weights ``(1 - t) * net_a + t * net_b``.

    The two loaded networks are only read (they may be cached and in use elsewhere); the result is
    built fresh, so nothing attached to them (hooks, precision casts) carries over.
    """
    from restorer.engine.archs import build_arch

    t = check_strength(t)
    state = blend_state_dicts(net_a.state_dict(), net_b.state_dict(), t, names)
    net = build_arch(spec_a.arch, dict(spec_a.params))
    net.load_state_dict(state, strict=True)
    return net.eval()


def chain_network(chain: StrengthChain, strength: float,
                  load: Optional[Callable[[Any], nn.Module]] = None) -> nn.Module:
    """The network that runs at `strength` on `chain`: one model as it is at a model's own position,
    else the blend of its two neighbours. `load(spec)` loads a model (default: registry.load_model;
    the app passes its model cache)."""
    if load is None:
        from restorer.engine import registry

        load = registry.load_model
    a, b, t = chain.at(strength)
    if t <= 0.0:
        return load(a)
    if t >= 1.0:
        return load(b)
    return blend_networks(a, load(a), load(b), t, (a.id, b.id))
