"""The network a task benchmark measures: a training checkpoint's EMA weights, a model file, or an installed model.

`--checkpoint` (a run's checkpoint.pt: its EMA generator), `--weights` (a model file, loaded as the app loads
it, with a detector's own thresholds) or `--model` (an installed model id; default: the task's default model).
Returns ``(description, network in eval mode)``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def load_task_model(args: argparse.Namespace, task: str, arch: str) -> tuple[str, torch.nn.Module]:
    from restorer.engine import registry
    from restorer.engine.archs import build_arch
    from restorer.engine.modelfile import build_and_load

    if getattr(args, "checkpoint", None):
        ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        state = ckpt["state"]
        net = build_arch(arch, state["arch_params"])
        net.load_state_dict(state["ema"])
        return f"checkpoint {args.checkpoint} (iteration {ckpt['iteration']}, EMA)", net.eval()
    if getattr(args, "weights", None):
        payload = registry.read_model_file(Path(args.weights))
        return f"weights {args.weights}", build_and_load(payload, args.weights)
    spec = registry.get_spec(args.model, task=task) if args.model else registry.default_model(task)
    return f"model {spec.id}", registry.load_model(spec)
