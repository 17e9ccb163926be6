"""The "denoise / detail" strength (issue #12): which models a factor blends (engine/blend.py strength_chain),
the photo model as the default (engine/choice.py), and `restorer upscale --strength`.

Tiny user models registered in the test's own RESTORER_DATA_DIR, with the training settings `restorer train sr`
stores (degradation, phase) saying which is faithful, photo or sharp; the shipped table is emptied.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import synthetic_photo
from restorer.engine.registry import ModelSpec

SRGAN = {"num_blocks": 1, "channels": 8, "norm": "none", "image_residual": True}
STYLE_META = {"faithful": {"degradation": "bicubic", "phase": "psnr"},
              "photo": {"degradation": "realistic", "phase": "psnr"},
              "sharp": {"degradation": "realistic", "phase": "gan"}}

pytestmark = pytest.mark.usefixtures("no_shipped_models")  # conftest.py: only the models a test registers


def register(name: str, style: str, scale: int = 4, seed: int = 0, channels: int = 8, arch: str = "srgan"):
    from restorer.engine import registry
    from restorer.engine.archs import build_arch
    from restorer.engine.modelfile import ExportedModel

    torch.manual_seed(seed)
    params = ({"scale": scale, **SRGAN, "channels": channels} if arch == "srgan"
              else {"scale": scale, "num_convs": 1, "channels": channels})
    net = build_arch(arch, params)
    return registry.register_user_model(name, ExportedModel(task="sr", arch=arch, params=params,
                                                            state_dict=net.state_dict(), scale=scale,
                                                            meta=dict(STYLE_META[style])))


# --------------------------------------------------------------------------- styles
def test_model_style_from_shipped_ids_and_stored_training_settings():
    from restorer.engine.choice import model_style, style_name

    def shipped(mid, **prov):
        return ModelSpec(id=mid, task="sr", arch="srgan", params={}, file="x.pt", scale=4, provenance=prov)

    assert model_style(shipped("sr-x4-photo")) == "photo"
    assert model_style(shipped("sr-x4-photo-sharp")) == "sharp"
    assert model_style(shipped("sr-x4-faithful")) == "faithful"
    assert model_style(shipped("sr-x4-compact")) == "faithful"
    assert model_style(shipped("sr-x4-compact-photo")) == "photo"  # the compact photo partner of sr-x4-compact
    assert model_style(shipped("sr-x4-fast-photo")) == "photo"
    assert model_style(shipped("anything", style="sharp")) == "sharp"
    user = register("mine", "photo")
    assert model_style(user) == "photo" and style_name(user) == "Photo"
    assert model_style(register("gan", "sharp", seed=1)) == "sharp"
    assert style_name(register("plain", "faithful", seed=2)) == "Clean"
    trained = ModelSpec(id="t", task="sr", arch="srgan", params={}, file="t.pt", scale=4, source="user",
                        provenance={"config": {"degradation": "realistic", "phase": "gan"}})
    assert model_style(trained) == "sharp"
    unknown = ModelSpec(id="u", task="sr", arch="srgan", params={}, file="u.pt", scale=4, source="user")
    assert model_style(unknown) is None


def test_photo_model_is_the_default_once_installed():
    from restorer.engine import registry
    from restorer.engine.choice import choose_upscaler

    register("a-faithful", "faithful")
    assert choose_upscaler(4, "cpu").spec.id == "a-faithful"
    assert registry.default_model("sr", 4).id == "a-faithful"
    register("z-photo", "photo", seed=1)
    for device in ("cpu", "cuda"):
        choice = choose_upscaler(4, device)
        assert choice.spec.id == "z-photo" and "photo" in choice.reason
    assert choose_upscaler(3, "cpu").spec.id == "z-photo"  # x3 through the x4 photo model
    assert registry.default_model("sr", 4).id == "z-photo"


# --------------------------------------------------------------------------- the chain
def test_chain_orders_faithful_photo_sharp_and_maps_the_strength():
    from restorer.engine.blend import strength_chain

    register("m-faithful", "faithful", seed=0)
    register("m-photo", "photo", seed=1)
    register("m-sharp", "sharp", seed=2)
    register("other-arch", "faithful", arch="compact_sr")
    register("wide-photo", "photo", channels=16)  # photo, but another shape: not in m-photo's chain
    chain = strength_chain(4, around=None)
    assert [s.id for s in chain.specs] == ["m-faithful", "m-photo", "m-sharp"]
    a, b, t = chain.at(0.25)
    assert (a.id, b.id, t) == ("m-faithful", "m-photo", 0.5)
    a, b, t = chain.at(0.5)
    assert (a.id, t) == ("m-photo", 0.0)  # the photo model exactly, in the middle
    a, b, t = chain.at(1.0)
    assert (b.id, t) == ("m-sharp", 1.0)
    assert chain.position(chain.specs[1]) == 0.5
    assert "50% m-faithful + 50% m-photo" == chain.describe(0.25)
    assert chain.ends() == ("Clean", "Photo, sharp")
    assert strength_chain(3).specs == chain.specs  # x3 runs the x4 models
    from restorer.engine import registry

    assert strength_chain(4, around=registry.get_spec("other-arch")) is None  # nothing of its shape
    assert strength_chain(4, around=registry.get_spec("wide-photo")) is None
    assert strength_chain(2).scale == 4  # x2 through the x4 models, as the upscaler does it
    assert strength_chain(8) is None  # nothing makes x8


def test_only_installed_compatible_pairs_form_a_chain():
    from restorer.engine.blend import no_chain_reason, strength_chain

    register("only-photo", "photo")
    assert strength_chain(4) is None
    register("wide-faithful", "faithful", channels=16)  # another shape: cannot blend with only-photo
    assert strength_chain(4) is None
    assert "two installed ×4 models" in no_chain_reason(4)
    register("p-sharp", "sharp", seed=3)
    chain = strength_chain(4)
    assert [s.id for s in chain.specs] == ["only-photo", "p-sharp"]
    assert chain.at(0.0)[0].id == "only-photo" and chain.position(chain.specs[0]) == 0.0


def test_chain_network_ends_are_the_models_and_the_middle_their_weight_average():
    from restorer.engine import registry
    from restorer.engine.blend import chain_network, strength_chain

    register("f", "faithful", seed=0)
    register("p", "photo", seed=1)
    chain = strength_chain(4)
    f, p = registry.load_model("f"), registry.load_model("p")
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(chain_network(chain, 0.0)(x), f(x))
        assert torch.equal(chain_network(chain, 1.0)(x), p(x))
        mid = chain_network(chain, 0.3)
    sd = mid.state_dict()
    for key, value in f.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(sd[key], 0.7 * value + 0.3 * p.state_dict()[key], atol=1e-6)


# --------------------------------------------------------------------------- restorer upscale --strength
def _cli(*args) -> int:
    from restorer.cli import main

    return main([str(a) for a in args])


def test_cli_upscale_strength(tmp_path, capsys):
    src = tmp_path / "photo.png"
    Image.fromarray(synthetic_photo(20, 24)).save(src)
    register("f", "faithful", seed=0)
    assert _cli("upscale", src, "-o", tmp_path / "n.png", "--strength", "0.5") == 2  # one model: no pair
    err = capsys.readouterr().err
    assert "two installed ×4 models" in err and err.count("\n") == 1
    register("p", "photo", seed=1)
    outs = {}
    for t in ("0", "0.5", "1"):
        out = tmp_path / f"s{t}.png"
        assert _cli("upscale", src, "-o", out, "--strength", t, "--precision", "fp32") == 0, capsys.readouterr().err
        outs[t] = np.asarray(Image.open(out)).astype(int)
        assert outs[t].shape == (80, 96, 3)
    for model in ("f", "p"):
        out = tmp_path / f"{model}.png"
        assert _cli("upscale", src, "-o", out, "--model", model, "--precision", "fp32") == 0
        outs[model] = np.asarray(Image.open(out)).astype(int)
    assert np.array_equal(outs["0"], outs["f"]) and np.array_equal(outs["1"], outs["p"])
    assert not np.array_equal(outs["0.5"], outs["0"]) and not np.array_equal(outs["0.5"], outs["1"])
    # without --model the default is the photo model
    assert _cli("upscale", src, "-o", tmp_path / "d.png", "--precision", "fp32") == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "d.png")).astype(int), outs["p"])
    capsys.readouterr()
    assert _cli("upscale", src, "-o", tmp_path / "bad.png", "--strength", "2") == 2
    assert "between 0 and 1" in capsys.readouterr().err
    register("c", "faithful", arch="compact_sr")
    assert _cli("upscale", src, "-o", tmp_path / "c.png", "--model", "c", "--strength", "0.5") == 2
    assert "no faithful / photo / sharp partner" in capsys.readouterr().err
