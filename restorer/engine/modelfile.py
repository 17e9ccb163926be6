"""The model-file format: read, write and verify Restorer model files.

A model file (shipped or user) is a torch file loaded with ``weights_only=True`` (so it can
never run code) holding::

    {"format": "restorer-model/1", "task": "sr"|"inpaint"|"latent", "arch": str,
     "params": {...}, "scale": int, "state_dict": {...}, "meta": {...}}

:func:`verify_model` is what "verified" means: the task and the architecture are on the
whitelist below, every parameter of the architecture is within bounds (checked *before* the
network is built, so ``channels=200000`` is refused instead of allocating a terabyte), the
tensors are not absurdly large, the network is built from ``ARCHS`` and the weights load with
``strict=True``. Every failure is one readable line.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional

from restorer.engine import vocab
from restorer.engine.errors import ModelError
from restorer.engine.fileutil import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

log = logging.getLogger(__name__)

MODEL_FORMAT = "restorer-model/1"
TASKS = vocab.TASKS
#: the architectures a model file of each task may name
TASK_ARCHS: dict[str, tuple[str, ...]] = {"sr": ("srgan", "compact_sr", "fast_sr"), "inpaint": ("deepfill",),
                                          "latent": ("dcgan",), "detect": ("damage_unet",),
                                          "colorize": ("colorize_unet",)}
#: bounds of each architecture's parameters: name -> (allowed values) or (min, max) for numbers
_INT, _FLOAT, _BOOL, _STR = "int", "float", "bool", "str"
PARAM_BOUNDS: dict[str, dict[str, tuple[str, Any]]] = {
    "srgan": {"scale": (_INT, (2, 4, 8)), "num_blocks": (_INT, (0, 64)), "channels": (_INT, (1, 512)),
              "norm": (_STR, ("none", "batch")), "res_scale": (_FLOAT, (0.0, 10.0)),
              "image_residual": (_BOOL, None)},
    "compact_sr": {"scale": (_INT, (1, 2, 3, 4, 8)), "num_convs": (_INT, (0, 64)), "channels": (_INT, (1, 512)),
                   "unshuffle": (_INT, (1, 2, 4))},
    "fast_sr": {"scale": (_INT, (2, 3, 4, 8)), "num_blocks": (_INT, (0, 64)), "channels": (_INT, (1, 512))},
    "deepfill": {"base_channels": (_INT, (4, 256)), "gated": (_BOOL, None), "fourier_blocks": (_INT, (0, 32))},
    "damage_unet": {"base_channels": (_INT, (1, 256)), "levels": (_INT, (2, 8)), "head_channels": (_INT, (1, 256)),
                    "in_channels": (_INT, (1, 4))},
    "colorize_unet": {"base_channels": (_INT, (1, 512)), "depth": (_INT, (2, 10)), "dropout_layers": (_INT, (0, 10))},
    "dcgan": {"latent_dim": (_INT, (1, 4096)), "image_size": (_INT, (64, 128)), "channels": (_INT, (1, 512)),
              "num_classes": (_INT, (0, 10000))},
}
_CHOICE_PARAMS = {("srgan", "scale"), ("compact_sr", "scale"), ("compact_sr", "unshuffle"), ("fast_sr", "scale"),
                  ("srgan", "norm"),
                  ("dcgan", "image_size")}
MAX_TENSOR_BYTES = 4 << 30  # no Restorer model comes near 4 GB of weights


class BadModelFile(ModelError):
    """A model file given by the user (`models import`) is not a valid Restorer model: bad input."""

    exit_code = 2


@dataclass
class ExportedModel:
    """What a trainer hands over for the model library."""

    task: str
    arch: str
    params: dict[str, Any]
    state_dict: "dict[str, torch.Tensor]"
    scale: int = 1
    meta: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The dict stored in a model file."""
        return {
            "format": MODEL_FORMAT, "task": self.task, "arch": self.arch, "params": dict(self.params),
            "scale": int(self.scale),
            "state_dict": {k: v.detach().cpu().contiguous() for k, v in self.state_dict.items()},
            "meta": dict(self.meta),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "ExportedModel":
        return cls(task=payload["task"], arch=payload["arch"], params=dict(payload["params"]),
                   state_dict=dict(payload["state_dict"]), scale=int(payload.get("scale", 1)),
                   meta=dict(payload.get("meta") or {}))


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save through an atomic, verified write: an interrupted or failed save (a full disk
    says "the disk is full") leaves the previous file intact."""
    import torch

    with atomic_write(path, "wb") as fh:
        torch.save(obj, fh)


def write_model_file(exported: ExportedModel, path: Path) -> Path:
    atomic_torch_save(exported.payload(), Path(path))
    return Path(path)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_model_file(path: Path, expected_sha256: Optional[str] = None) -> dict[str, Any]:
    """Load a model file's dict (weights only; never runs code). Missing, corrupted or tampered
    files are clear ModelErrors. Does not build the network: see :func:`verify_model`."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model weights '{path}' are missing")
    if expected_sha256 and sha256_file(path) != expected_sha256:
        raise ModelError(f"model weights '{path}' are corrupted (sha256 mismatch); reinstall or re-download them")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"model weights '{path}' are corrupted or not a Restorer model ({exc.__class__.__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelError(f"'{path}' is not a Restorer model file")
    return payload


def _check_param(where: str, arch: str, name: str, value: Any) -> None:
    kind, bounds = PARAM_BOUNDS[arch][name]
    if kind == _BOOL:
        if not isinstance(value, bool):
            raise ModelError(f"{where}: parameter '{name}' must be true or false, not {value!r}")
        return
    if kind == _STR:
        if value not in bounds:
            raise ModelError(f"{where}: parameter '{name}' must be one of {', '.join(bounds)}, not {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == _INT and not isinstance(value, int)):
        raise ModelError(f"{where}: parameter '{name}' must be a number, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ModelError(f"{where}: parameter '{name}' is not finite")
    if (arch, name) in _CHOICE_PARAMS:
        if value not in bounds:
            raise ModelError(f"{where}: parameter '{name}' must be one of {', '.join(map(str, bounds))}, not {value}")
    elif not bounds[0] <= value <= bounds[1]:
        raise ModelError(f"{where}: parameter '{name}' = {value} is outside {bounds[0]}..{bounds[1]}")


def check_header(payload: Mapping[str, Any], where: str = "model file") -> None:
    """Task, architecture, parameters and tensor sizes of a model dict are plausible (cheap; builds nothing)."""
    task, arch, params = payload.get("task"), payload.get("arch"), payload.get("params")
    if task not in TASKS:
        raise ModelError(f"{where}: unknown task {task!r} (known: {', '.join(TASKS)})")
    if arch not in TASK_ARCHS[task]:
        raise ModelError(f"{where}: architecture {arch!r} is not one for task '{task}' "
                         f"(known: {', '.join(TASK_ARCHS[task])})")
    if not isinstance(params, dict):
        raise ModelError(f"{where}: 'params' must be a mapping")
    for name, value in params.items():
        if name not in PARAM_BOUNDS[arch]:
            raise ModelError(f"{where}: unknown parameter '{name}' for architecture '{arch}'")
        _check_param(where, arch, name, value)
    scale = payload.get("scale", 1)
    if isinstance(scale, bool) or not isinstance(scale, int):
        raise ModelError(f"{where}: 'scale' must be an integer, not {scale!r}")
    if task == "sr" and scale != int(params.get("scale", 4)):
        raise ModelError(f"{where}: says scale x{scale} but its network is x{params.get('scale', 4)}")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not state:
        raise ModelError(f"{where}: it holds no weights")
    total = 0
    for key, tensor in state.items():
        if not hasattr(tensor, "numel") or not hasattr(tensor, "element_size"):
            raise ModelError(f"{where}: weight '{key}' is not a tensor")
        total += int(tensor.numel()) * int(tensor.element_size())
    if total > MAX_TENSOR_BYTES:
        raise ModelError(f"{where}: {total / 2**30:.1f} GB of weights is more than any Restorer model holds")
    meta = payload.get("meta", {})
    if meta is not None and not isinstance(meta, dict):
        raise ModelError(f"{where}: 'meta' must be a mapping")


def describe_mismatch(model: "nn.Module", state: Mapping[str, Any]) -> str:
    """One line summarising why `state` does not fit `model` (instead of torch's 90-line list)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(getattr(state[k], "shape", ()))]
    parts = []
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} with the wrong shape (e.g. '{k}': {list(state[k].shape)}, "
                     f"expected {list(own[k].shape)})")
    if missing:
        parts.append(f"{len(missing)} missing (e.g. '{missing[0]}')")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. '{unexpected[0]}')")
    return "; ".join(parts) or "the weights cannot be loaded"


def build_and_load(payload: Mapping[str, Any], where: str = "model file") -> "nn.Module":
    """The network of a model dict with its weights loaded strictly (eval mode), after :func:`check_header`."""
    from restorer.engine.archs import build_arch

    check_header(payload, where)
    try:
        model = build_arch(payload["arch"], payload["params"])
    except ModelError as exc:
        raise ModelError(f"{where}: {exc}") from exc
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{where}: bad parameters for architecture '{payload['arch']}' ({exc})") from exc
    except MemoryError:
        raise ModelError(f"{where}: the network is too large to build") from None
    state = payload["state_dict"]
    problem = None
    try:
        own = model.state_dict()
        if set(own) != set(state) or any(tuple(own[k].shape) != tuple(state[k].shape) for k in own):
            problem = describe_mismatch(model, state)
        else:
            model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError, AttributeError):
        problem = describe_mismatch(model, state)
    if problem:
        raise ModelError(f"{where} does not match architecture '{payload['arch']}': {problem}")
    model.eval()
    meta = payload.get("meta") or {}
    if payload.get("task") == "detect":
        # the detector's own thresholds, chosen on held-out data (the low one: its hysteresis, if any)
        for key, attr in (("threshold", "damage_threshold"), ("low_threshold", "damage_low_threshold")):
            value = meta.get(key)
            if isinstance(value, (int, float)) and 0.0 < float(value) < 1.0:
                setattr(model, attr, float(value))
    return model


def verify_model(payload: Mapping[str, Any], where: str = "model file") -> "nn.Module":
    """Alias of :func:`build_and_load`: a model dict is verified by building it and loading it strictly."""
    return build_and_load(payload, where)
