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
    # the workers' own error comes first in stderr, the launcher's summary last: show both
    assert proc.returncode == 0, proc.stderr[:3000] + "\n[...]\n" + proc.stderr[-1500:]
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


# --------------------------------------------------------------------------- the trainers, end to end
import json  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from restorer.engine.training import events as E  # noqa: E402
from restorer.engine.training.common import load_torch_file, reseed_rngs  # noqa: E402
from restorer.engine.training.sr import SRConfig, SRTrainer  # noqa: E402

# a tiny x2 compact network, 4 images per iteration; a big learning rate so 6 Adam steps move the weights
# far beyond the tolerance (the warm-up of 500 iterations scales it down to 1e-3..6e-3)
TINY = ["--device", "cpu", "--batch", "4", "--patch", "16", "--scale", "2", "--arch", "compact_sr",
        "--channels", "8", "--lr", "0.5", "--seed", "3"]


def _images(folder: Path, n: int = 6) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        small = (rng.random((12, 12, 3)) * 255).astype(np.uint8)
        Image.fromarray(np.kron(small, np.ones((4, 4, 1), dtype=np.uint8))).save(folder / f"img{i}.png")
    return folder


def _train_env(base: Path) -> dict[str, str]:
    env = _env(base)
    env["RESTORER_DATA_DIR"] = str(base / "data")
    env["RESTORER_CONFIG_DIR"] = str(base / "config")
    return env


def _events(stdout: str) -> list[E.TrainingEvent]:
    return [e for e in map(E.decode, stdout.splitlines()) if e is not None]


def _config(data: Path, runs: Path, name: str, iters: int, **kw) -> SRConfig:
    return SRConfig(name=name, data=[str(data)], iters=iters, batch=4, device="cpu", lr=0.5, seed=3, patch=16,
                    scale=2, arch="compact_sr", channels=8, runs_dir=str(runs), register=False,
                    checkpoint_every=500, **kw)


class ShardsInOneProcess(SRTrainer):
    """One process that draws, every iteration, exactly the shards the ranks `ranks` of a 2-worker run draw
    (each rank's generators seeded the way `Trainer.reseed_for_rank` seeds them) and trains on them together."""

    ranks: tuple[int, ...] = (0, 1)

    def build(self) -> None:
        super().build()
        self._streams = []
        for r in self.ranks:
            reseed_rngs(self, D.rank_seed(self.config.seed, D.DistContext(rank=r, world_size=2)))
            self._streams.append((self.dev_gen.get_state(), self.rng.getstate()))

    def _batch(self):
        parts = []
        for i, (dev_state, py_state) in enumerate(self._streams):
            self.dev_gen.set_state(dev_state)
            self.rng.setstate(py_state)
            self.rank_batch = self.config.batch // 2
            parts.append(super()._batch())
            self._streams[i] = (self.dev_gen.get_state(), self.rng.getstate())
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


@pytest.fixture(scope="module")
def two_worker_run(tmp_path_factory):
    """`restorer train sr --gpus 2 --device cpu`: two gloo workers through PyTorch's elastic launcher."""
    base = tmp_path_factory.mktemp("ddp")
    data = _images(base / "images")
    cmd = [sys.executable, "-m", "restorer", "train", "sr", "--data", str(data), "--name", "d2", "--gpus", "2",
           "--iters", "6", "--runs-dir", str(base / "runs"), "--events", "jsonl", *TINY]
    proc = subprocess.run(cmd, env=_train_env(base), timeout=240, capture_output=True, text=True)
    return base, data, proc


def test_two_workers_through_restorer_train_gpus_equal_one_process_with_the_same_shards(two_worker_run, tmp_path):
    """Two gloo workers (`--gpus 2 --device cpu`, batch 4: 2 images each) against one process that draws, every
    iteration, rank 0's 2 images and rank 1's 2 images with the ranks' own seeds and trains on the 4 together.

    Comparing against a process that draws the same per-rank shards (rather than an unrelated single run)
    makes the claim exact: DDP's averaged gradient of the two shard means is the gradient of the mean over
    the whole batch, so the weights agree to float rounding. A control run on rank 0's shard alone (what a
    worker would learn without gradient averaging) must differ.
    """
    base, data, proc = two_worker_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = _events(proc.stdout)
    started = [e for e in events if e.event_kind is E.EventKind.STARTED]
    assert len(started) == 1  # only rank 0 speaks
    assert (started[0].world_size, started[0].rank_batch, started[0].batch) == (2, 2, 4)
    assert started[0].lr == pytest.approx(0.5)
    assert any(e.event_kind is E.EventKind.FINISHED for e in events)
    assert (base / "data" / "models" / "d2.pt").is_file()  # rank 0 registered the model
    two = load_torch_file(base / "runs" / "d2" / "checkpoint.pt")
    assert two["world_size"] == 2 and two["iteration"] == 6
    assert not any(k.startswith("module.") for k in two["state"]["generator"])  # unwrapped state dicts

    one = ShardsInOneProcess(_config(data, tmp_path / "runs", "ref", 6))
    one.run()
    ref = load_torch_file(one.checkpoint_path)
    alone = type("RankZeroAlone", (ShardsInOneProcess,), {"ranks": (0,)})(_config(data, tmp_path / "runs", "r0", 6))
    alone.run()
    solo = load_torch_file(alone.checkpoint_path)
    moved = worst = control = 0.0
    for key, value in two["state"]["generator"].items():
        worst = max(worst, (value - ref["state"]["generator"][key]).abs().max().item())
        control = max(control, (value - solo["state"]["generator"][key]).abs().max().item())
    for key, value in two["state"]["ema"].items():
        worst = max(worst, (value - ref["state"]["ema"][key]).abs().max().item())
    init = SRTrainer(_config(data, tmp_path / "runs", "init", 1))
    init._seed()
    init.build()
    for key, value in init.net.state_dict().items():
        moved = max(moved, (value - two["state"]["generator"][key]).abs().max().item())
    assert moved > 5e-3, "the weights must have moved for the comparison to mean anything"
    assert worst < 2e-5, worst
    assert control > 50 * max(worst, 1e-6), (control, worst)


def test_a_run_of_two_workers_resumes_on_one(two_worker_run, tmp_path):
    import shutil

    base, data, proc = two_worker_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = tmp_path / "runs"
    shutil.copytree(base / "runs" / "d2", runs / "d2")
    seen: list[dict] = []
    trainer = SRTrainer(_config(data, runs, "d2", 9), E.CallbackEventSink(seen.append))
    result = trainer.run(resume=True)
    assert result.status == "finished" and result.iteration == 9
    after = load_torch_file(trainer.checkpoint_path)
    assert after["world_size"] == 1 and after["iteration"] == 9
    assert any("saved on 2 worker(s) on 1" in str(e.get("message", "")) for e in seen), seen
    started = [e for e in seen if e["event"] == "started"][0]
    assert started["resumed"] and started["world_size"] == 1 and started["rank_batch"] == 4


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _rank_of(pid: int):
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"RANK="):
            return int(item[5:])
    return None


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the workers through /proc")
def test_a_killed_worker_leaves_a_loadable_checkpoint_and_max_restarts_resumes_from_it(tmp_path):
    data = _images(tmp_path / "images")
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "restorer", "train", "sr", "--data", str(data), "--name", "k2", "--gpus", "2",
           "--max-restarts", "1", "--iters", "60", "--checkpoint-every", "10", "--runs-dir", str(runs),
           "--events", "jsonl", *TINY]
    proc = subprocess.Popen(cmd, env=_train_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:  # wait for the first checkpoint of the first launch
            lines.append(line)
            event = E.decode(line)
            if event is not None and event.event_kind is E.EventKind.CHECKPOINT:
                break
        workers = [p for p in _children(proc.pid) if _rank_of(p) is not None]
        victim = [p for p in workers if _rank_of(p) == 1]
        assert victim, (workers, "".join(lines)[-2000:])
        os.kill(victim[0], signal.SIGKILL)
        ckpt = load_torch_file(runs / "k2" / "checkpoint.pt")  # the last completed save, never a torn one
        assert ckpt["iteration"] % 10 == 0 and ckpt["iteration"] >= 10
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    events = _events("".join(lines) + out)
    started = [e for e in events if e.event_kind is E.EventKind.STARTED]
    assert proc.returncode == 0, err[-3000:]
    assert len(started) == 2 and not started[0].resumed and started[1].resumed, [e.event_kind for e in events]
    assert started[1].iteration >= 10 and started[1].iteration % 10 == 0
    assert events[-1].event_kind is E.EventKind.FINISHED and events[-1].iteration == 60
    assert load_torch_file(runs / "k2" / "checkpoint.pt")["iteration"] == 60


GAN_WORKER = textwrap.dedent('''
    import sys, torch
    from pathlib import Path
    from restorer.engine.training.inpaint import InpaintConfig, InpaintTrainer
    data, runs, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    common = dict(data=[data], iters=2, batch=4, device="cpu", runs_dir=runs, register=False, checkpoint_every=0,
                  sample_every=0)
    inpaint = InpaintTrainer(InpaintConfig(name="inp", crop=32, base_channels=4, critic_channels=4, local_size=16,
                                           gan_start=0, mask_pool=8, freq_weight=0.0, **common))
    inpaint.run()
    rank = inpaint.dist.rank
    torch.save({"rank": rank, "world": inpaint.dist.world_size, "rank_batch": inpaint.rank_batch,
                "d_global": inpaint.d_global.state_dict(), "d_local": inpaint.d_local.state_dict(),
                "G": inpaint.net.state_dict()}, out / f"rank{rank}.pt")
''')


def test_wgan_gp_critics_stay_identical_on_every_rank_through_averaged_gradients(tmp_path):
    """The inpainting critics (WGAN-GP: double backward, so no DDP) get their gradients averaged after
    backward: after GAN steps on different shards they are still equal on both ranks, as is the DDP-wrapped
    generator. (Without the averaging each rank's critics would follow their own shard and drift apart.)"""
    data = tmp_path / "images"
    from PIL import Image

    data.mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):
        Image.fromarray((rng.random((72, 72, 3)) * 255).astype(np.uint8)).save(data / f"p{i}.png")
    script = tmp_path / "gan_worker.py"
    script.write_text(GAN_WORKER)
    argv = D.launcher_argv(2, [sys.executable, str(script), str(data), str(tmp_path / "runs"), str(tmp_path)])
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", *argv], env=_train_env(tmp_path),
                          timeout=150, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert (a["world"], a["rank_batch"], b["rank"]) == (2, 2, 1)
    for part in ("d_global", "d_local", "G"):
        for key, value in a[part].items():
            if value.is_floating_point():
                assert torch.allclose(value, b[part][key], atol=1e-6), (part, key)
    inp = load_torch_file(tmp_path / "runs" / "inp" / "checkpoint.pt")
    assert inp["world_size"] == 2 and inp["iteration"] == 2


def test_the_latent_gan_trains_on_two_workers_through_restorer_train_gpus(tmp_path):
    """WGAN-GP critic averaged by hand, generator and encoder in DDP: a real 2-worker run finishes and registers."""
    from PIL import Image

    data = tmp_path / "images"
    data.mkdir()
    rng = np.random.default_rng(2)
    for i in range(8):
        Image.fromarray((rng.random((72, 72, 3)) * 255).astype(np.uint8)).save(data / f"p{i}.png")
    cmd = [sys.executable, "-m", "restorer", "train", "latent", "--data", str(data), "--name", "lat2", "--gpus", "2",
           "--device", "cpu", "--size", "64", "--channels", "4", "--iters", "2", "--batch", "4", "--loss", "wgan-gp",
           "--runs-dir", str(tmp_path / "runs"), "--events", "jsonl"]
    proc = subprocess.run(cmd, env=_train_env(tmp_path), timeout=150, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = _events(proc.stdout)
    started = [e for e in events if e.event_kind is E.EventKind.STARTED]
    assert len(started) == 1 and (started[0].world_size, started[0].rank_batch) == (2, 2)
    assert events[-1].event_kind is E.EventKind.FINISHED
    assert load_torch_file(tmp_path / "runs" / "lat2" / "checkpoint.pt")["world_size"] == 2
    assert (tmp_path / "data" / "models" / "lat2.pt").is_file()


def test_train_gpus_refuses_bad_layouts_before_starting_workers(tmp_path, capsys):
    from restorer import cli

    data = _images(tmp_path / "images", 2)
    base = ["train", "sr", "--data", str(data), "--name", "bad", "--device", "cpu", "--runs-dir", str(tmp_path)]
    assert cli.main([*base, "--gpus", "2", "--batch", "5"]) == 2
    assert "does not split over 2 workers" in capsys.readouterr().err
    assert cli.main([*base, "--gpus", "0"]) == 2
    assert "--gpus must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
