"""Data-parallel training primitives on PyTorch's distributed engine, with real processes (gloo on the CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from restorer.engine.errors import InputError
from restorer.engine.training import distributed as D

ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent('''
    import sys, torch
    from restorer.engine.training import distributed as D
    out = sys.argv[1]
    ctx = D.context_from_env()
    dev = torch.device("cpu")
    ctx = D.init_process_group(ctx, dev)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    model = D.wrap_module(net, ctx, dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 6, generator=g), torch.randn(8, 2, generator=g)
    per = D.shard_batch(8, ctx)
    xs, ys = x[ctx.rank * per:(ctx.rank + 1) * per], y[ctx.rank * per:(ctx.rank + 1) * per]
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(xs), ys).backward()
        opt.step()
    stop = D.any_rank(ctx.rank == 1, ctx, dev)
    if ctx.is_main:
        torch.save({"state": D.unwrap(model).state_dict(), "world": ctx.world_size, "stop": stop}, out)
    D.destroy_process_group(ctx)
''')


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_two_gloo_workers_through_the_launcher_equal_one_process_with_the_whole_batch(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    single, double = tmp_path / "one.pt", tmp_path / "two.pt"
    env = _env(tmp_path)
    subprocess.run([sys.executable, str(script), str(single)], check=True, env=env, timeout=120)
    argv = D.launcher_argv(2, [sys.executable, str(script), str(double)])
    assert argv[:4] == ["--standalone", "--nproc-per-node", "2", "--max-restarts"]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", *argv], env=env, timeout=180,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = torch.load(single, weights_only=True)
    b = torch.load(double, weights_only=True)
    assert a["world"] == 1 and b["world"] == 2
    assert a["stop"] is False and b["stop"] is True  # rank 1's stop request reached rank 0
    for key in a["state"]:
        assert torch.allclose(a["state"][key], b["state"][key], atol=1e-5), key
    assert not torch.allclose(a["state"]["0.weight"], torch.nn.Linear(6, 8).weight)


def test_single_process_is_a_no_op_context(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    ctx = D.context_from_env()
    assert ctx == D.SINGLE and ctx.is_main and not ctx.enabled
    net = torch.nn.Linear(2, 2)
    assert D.wrap_module(net, ctx, torch.device("cpu")) is net
    assert D.shard_batch(7, ctx) == 7
    assert D.rank_seed(5, ctx) == 5


def test_bad_layouts_are_bad_input(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(InputError, match="inconsistent"):
        D.context_from_env()
    with pytest.raises(InputError, match="multiple of 3"):
        D.shard_batch(16, D.DistContext(rank=0, world_size=3))
    with pytest.raises(InputError):
        D.launcher_argv(0, ["restorer"])


def test_launcher_arguments_from_source_and_from_the_bundle():
    src = D.launcher_argv(4, [sys.executable, "-m", "restorer", "train", "sr"], max_restarts=2)
    assert src == ["--standalone", "--nproc-per-node", "4", "--max-restarts", "2", "-m", "restorer", "train", "sr"]
    frozen = D.launcher_argv(2, ["/opt/Restorer/Restorer", "train", "sr"])
    assert frozen[-4:] == ["--no-python", "/opt/Restorer/Restorer", "train", "sr"]
    assert D.strip_launcher_flags(["train", "sr", "--gpus", "2", "--data", "d", "--max-restarts=3"]) == \
        ["train", "sr", "--data", "d"]
