"""Data-parallel training on PyTorch's distributed engine (torchrun / elastic launcher, DDP, gloo or NCCL).

Restorer adds no launcher or protocol of its own:

* ``restorer train ... --gpus N`` runs PyTorch's elastic launcher in this process
  (`torch.distributed.run`, the code behind ``torchrun``) with ``--standalone --nproc-per-node N``; it
  starts N copies of the same ``restorer train ...`` command (without ``--gpus``) and restarts them from
  the last checkpoint when ``--max-restarts`` allows.
* ``torchrun --nproc-per-node N --nnodes M --rdzv-backend c10d --rdzv-endpoint HOST:PORT -m restorer train ...``
  works unchanged across machines: each worker reads RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR from the
  environment the launcher sets (:func:`context_from_env`).

Inside a worker the trainer (training/common.py) asks this module for the process group
(:func:`init_process_group`), wraps its networks (:func:`wrap_module`: DistributedDataParallel, synchronised
batch norm on CUDA), draws its data with per-rank seeds (:func:`rank_seed`) and its share of the batch
(:func:`shard_batch`), and lets only rank 0 write checkpoints, samples, events and the model file
(:attr:`DistContext.is_main`). Stop requests (Ctrl+C, a time budget) are agreed by all ranks at the same
iteration (:func:`any_rank`), so no rank waits forever in a collective that the others left.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import torch
from torch import nn

from restorer.engine.errors import InputError, RestorerError

log = logging.getLogger(__name__)

#: How long a collective may wait for the other ranks before the run fails (a dead worker).
TIMEOUT = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: Optional[str] = None  # "nccl" | "gloo" once the process group exists

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistContext()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InputError(f"the launcher set {name}={value!r}, which is not a number") from None


def context_from_env() -> DistContext:
    """The rank layout the launcher (torchrun, `--gpus`) put in the environment; single process otherwise."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"inconsistent launcher environment: RANK={rank}, WORLD_SIZE={world}")
    return DistContext(rank=rank, local_rank=local, world_size=world)


def init_process_group(ctx: DistContext, device: torch.device) -> DistContext:
    """Join the process group (NCCL on CUDA, gloo on the CPU); a no-op for a single process."""
    if not ctx.enabled:
        return ctx
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        try:
            store = _restart_store(ctx)
            if store is not None:
                dist.init_process_group(backend=backend, timeout=TIMEOUT, store=store, rank=ctx.rank,
                                        world_size=ctx.world_size)
            else:
                dist.init_process_group(backend=backend, timeout=TIMEOUT)
        except Exception as exc:  # rendezvous failures, a missing MASTER_ADDR ...
            raise RestorerError(f"cannot join the distributed run (rank {ctx.rank} of {ctx.world_size}, "
                                f"{backend}): {exc}") from exc
    return DistContext(rank=ctx.rank, local_rank=ctx.local_rank, world_size=ctx.world_size, backend=backend)


def _restart_store(ctx: DistContext):
    """After an elastic restart, the launcher's store with this attempt's prefix (None: the default env://).

    The elastic agent keeps one key-value store for all attempts; the workers of a restarted attempt
    would otherwise read the addresses the dead attempt's workers published there and fail to connect.
    """
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    if attempt in ("", "0") or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    from torch.distributed import PrefixStore, TCPStore

    base = TCPStore(host_name=os.environ["MASTER_ADDR"], port=int(os.environ["MASTER_PORT"]),
                    world_size=ctx.world_size, is_master=False, timeout=TIMEOUT)
    return PrefixStore(f"restorer/attempt_{attempt}", base)


def destroy_process_group(ctx: DistContext) -> None:
    if ctx.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def device_for(ctx: DistContext, device: torch.device) -> torch.device:
    """Each local rank gets its own GPU; CPU ranks share the CPU."""
    if ctx.enabled and device.type == "cuda":
        if ctx.local_rank >= torch.cuda.device_count():
            raise InputError(f"rank {ctx.rank} wants GPU {ctx.local_rank} but only "
                             f"{torch.cuda.device_count()} are visible")
        return torch.device("cuda", ctx.local_rank)
    return device


def rank_seed(seed: int, ctx: DistContext) -> int:
    """A different, reproducible seed per rank (rank 0 keeps the run's seed)."""
    return int(seed) + 1_000_003 * ctx.rank


def shard_batch(batch: int, ctx: DistContext) -> int:
    """This rank's share of the run's batch; the effective (global) batch stays `batch`."""
    if not ctx.enabled:
        return batch
    if batch % ctx.world_size:
        raise InputError(f"the batch of {batch} does not split over {ctx.world_size} workers; "
                         f"use a multiple of {ctx.world_size}")
    return batch // ctx.world_size


def wrap_module(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `module` (batch norm synchronised on CUDA); `module` alone otherwise."""
    if not ctx.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    if device.type == "cuda" and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules()):
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if not any(p.requires_grad for p in module.parameters()):
        return module
    ids = [device.index] if device.type == "cuda" else None
    import warnings

    with warnings.catch_warnings():  # rank-local buffers (batch-norm statistics) are meant: no broadcast
        warnings.filterwarnings("ignore", message=".*broadcast_buffers.*", category=FutureWarning)
        return DDP(module, device_ids=ids, broadcast_buffers=False)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain network behind DistributedDataParallel and torch.compile wrappers."""
    seen = 0
    while seen < 4:
        inner = getattr(module, "_orig_mod", None) or (
            module.module if type(module).__name__ == "DistributedDataParallel" else None)
        if inner is None:
            return module
        module = inner
        seen += 1
    return module


def average_gradients(params: Iterable[torch.Tensor], ctx: DistContext) -> None:
    """Average the gradients of `params` over the ranks (for steps DDP cannot reduce, e.g. double backward)."""
    if not ctx.enabled:
        return
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch._utils._flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= ctx.world_size
    for g, synced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
        g.copy_(synced)


def any_rank(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    """True on every rank when `flag` is true on at least one (all ranks must call it at the same point)."""
    if not ctx.enabled:
        return bool(flag)
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        import torch.distributed as dist

        dist.barrier()


# --------------------------------------------------------------------------- the local launcher (--gpus N)
def launcher_argv(nproc: int, worker: Sequence[str], max_restarts: int = 0) -> list[str]:
    """Arguments of `torch.distributed.run` for N local workers running `worker` (a `restorer ...` argv).

    `worker` is what :func:`restorer.engine.worker_command.worker_argv` returns: ``[python, -m, restorer, ...]``
    from source, ``[bundle-exe, ...]`` when frozen (run with ``--no-python``).
    """
    if nproc < 1:
        raise InputError(f"--gpus must be at least 1, got {nproc}")
    args = ["--standalone", "--nproc-per-node", str(nproc), "--max-restarts", str(max_restarts)]
    worker = list(worker)
    if len(worker) >= 3 and worker[1] == "-m":
        return [*args, "-m", *worker[2:]]
    return [*args, "--no-python", *worker]


def strip_launcher_flags(argv: Sequence[str]) -> list[str]:
    """`restorer train ...` argv without `--gpus N` / `--max-restarts N` (the workers must not relaunch)."""
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in ("--gpus", "--max-restarts"):
            skip = True
            continue
        if arg.startswith("--gpus=") or arg.startswith("--max-restarts="):
            continue
        out.append(arg)
    return out


def launch_local(nproc: int, train_argv: Sequence[str], max_restarts: int = 0) -> int:
    """Run `restorer <train_argv>` on `nproc` local workers through PyTorch's elastic launcher; exit code."""
    from torch.distributed import run as torchrun

    from restorer.engine.worker_command import worker_argv

    if torch.cuda.is_available() and nproc > torch.cuda.device_count():
        raise InputError(f"--gpus {nproc}: only {torch.cuda.device_count()} CUDA devices are visible")
    argv = launcher_argv(nproc, worker_argv(strip_launcher_flags(train_argv)), max_restarts)
    log.info("starting %d workers: torchrun %s", nproc, " ".join(argv))
    try:
        torchrun.main(argv)
    except SystemExit as exc:  # the launcher exits with the workers' code
        return int(exc.code or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if type(exc).__name__ == "SignalException":  # Ctrl+C / SIGTERM: the workers saved a checkpoint and stopped
            log.warning("the launcher got signal %s; the workers were asked to stop", getattr(exc, "sigval", "?"))
            return 130
        raise _failed(exc) from exc
    return 0


def _failed(exc: BaseException) -> RestorerError:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else exc.__class__.__name__
    return RestorerError(f"distributed training failed: {first} (the last completed checkpoint is kept; "
                         "resume with --resume)")

