"""`restorer train` options derived from the config dataclasses (restorer/engine/training/options.py)."""

from __future__ import annotations

import dataclasses

import pytest

from restorer.cli import UsageError, build_parser
from restorer.engine.training.options import CLI_KEY, config_argv, config_values, option_specs
from restorer.engine.training.tasks import config_class


def parse(argv):
    return build_parser().parse_args(argv)


@pytest.mark.parametrize("task", ["sr", "inpaint", "latent"])
def test_argv_round_trips_through_the_parser(task, tmp_path):
    cls = config_class(task)
    values = {"name": "m", "data": [str(tmp_path / "a"), str(tmp_path / "b")], "iters": 123, "lr": 1.2345678e-4,
              "max_minutes": 2.5, "checkpoint_every": 7, "init_from": "x"}
    extra = {"sr": {"scale": 2, "phase": "gan", "num_blocks": 3, "vgg_weights": "w.pth"},
             "inpaint": {"crop": 64}, "latent": {"size": 128, "conditional": True, "loss": "wgan-gp"}}[task]
    values.update(extra)
    args = parse(["train", task, *config_argv(cls, values)])
    assert config_values(args, cls) == values  # floats exactly, list fields repeated, switches on


def test_options_not_given_leave_the_dataclass_defaults(tmp_path):
    args = parse(["train", "latent", "--data", str(tmp_path), "--name", "m"])
    values = config_values(args, config_class("latent"))
    assert values == {"name": "m", "data": [str(tmp_path)], "checkpoint_every": 500}  # the CLI's own default
    assert "--conditional" not in config_argv(config_class("latent"), {"conditional": False})


def test_every_option_has_a_flag_and_task_configs_keep_the_base_options():
    for task in ("sr", "inpaint", "latent"):
        specs = {s.name: s for s in option_specs(config_class(task))}
        flags = [s.cli.flag for s in specs.values()]
        assert len(flags) == len(set(flags))
        assert "lr" in specs  # inpaint and latent override lr's default; the option stays
    names = {f.name for f in dataclasses.fields(config_class("sr")) if CLI_KEY in f.metadata}
    assert {"scale", "num_blocks", "patch", "data", "name"} <= names
    with pytest.raises(UsageError, match="invalid choice"):
        parse(["train", "sr", "--data", "x", "--name", "m", "--scale", "5"])  # choices come from the field (x3 is one now)
