"""Every network a trainer can export is a model file the library accepts (task, architecture, parameters).

Guards the whitelist of engine/modelfile.py against new architectures, tasks and parameters: a trainer that
exports what `load_model` then refuses would train for nothing.
"""

from __future__ import annotations

import pytest

from restorer.engine.archs import ARCHS, build_arch
from restorer.engine.modelfile import PARAM_BOUNDS, TASK_ARCHS, TASKS, build_and_load
from restorer.engine.vocab import TASKS as VOCAB_TASKS

TINY = {
    ("sr", "srgan"): {"scale": 2, "num_blocks": 1, "channels": 8, "norm": "none", "image_residual": True},
    ("sr", "compact_sr"): {"scale": 1, "num_convs": 2, "channels": 8, "unshuffle": 2},
    ("sr", "fast_sr"): {"scale": 3, "num_blocks": 1, "channels": 8},
    ("inpaint", "deepfill"): {"base_channels": 4, "gated": True, "fourier_blocks": 1},
    ("latent", "dcgan"): {"latent_dim": 8, "image_size": 64, "channels": 4, "num_classes": 0},
    ("detect", "damage_unet"): {"base_channels": 4, "levels": 2, "head_channels": 4, "in_channels": 3},
    ("colorize", "colorize_unet"): {"base_channels": 4, "depth": 3, "dropout_layers": 1},
}
NOT_MODELS = {"vgg_discriminator"}  # critics train beside a generator and are never a model file


def test_every_model_architecture_is_whitelisted_for_a_task():
    listed = {arch for archs in TASK_ARCHS.values() for arch in archs}
    assert listed == set(ARCHS) - NOT_MODELS
    assert set(PARAM_BOUNDS) == listed
    assert set(TASKS) == set(TASK_ARCHS) == set(VOCAB_TASKS)
    assert set(TINY) == {(t, a) for t, archs in TASK_ARCHS.items() for a in archs}


@pytest.mark.parametrize("task,arch", sorted(TINY))
def test_a_model_of_each_architecture_loads_strictly(task, arch):
    params = TINY[(task, arch)]
    net = build_arch(arch, params)
    payload = {"format": "restorer-model/1", "task": task, "arch": arch, "params": params,
               "scale": params.get("scale", 1) if task == "sr" else 1, "state_dict": net.state_dict(), "meta": {}}
    loaded = build_and_load(payload, "test model")
    assert set(loaded.state_dict()) == set(net.state_dict())
