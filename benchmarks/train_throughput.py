"""GPU training throughput of the SR trainer's data paths (run on a CUDA machine).

    python benchmarks/train_throughput.py --data ../shared/datasets/photos-train [--iters 200]

Measures iterations/s of the x4 fidelity step and the share of each iteration spent waiting
for data, for three feeds: the in-memory bank (crops cut on the GPU), the DataLoader with
workers plus the CUDA side-stream prefetcher, and the same DataLoader without the prefetcher.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restorer.engine.archs import build_arch  # noqa: E402
from restorer.engine.training.common import auto_workers  # noqa: E402
from restorer.engine.training.data import ImageBank, LoaderFeed, bicubic_down, scan_folder  # noqa: E402


def measure(feed_next, net, opt, iters: int, warmup: int = 20) -> tuple[float, float]:
    wait = 0.0
    for i in range(warmup + iters):
        if i == warmup:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            wait = 0.0
        torch.cuda.synchronize()
        tw = time.perf_counter()
        hr = feed_next()
        torch.cuda.synchronize()
        wait += time.perf_counter() - tw
        lr = bicubic_down(hr, 4)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.l1_loss(net(lr.contiguous(memory_format=torch.channels_last)).float(), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    total = time.perf_counter() - t0
    return iters / total, wait / total


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workers", type=int, default=-1)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: this benchmark measures GPU training throughput")
        return 0
    dev = torch.device("cuda")
    paths = scan_folder(args.data).usable
    net = build_arch("srgan", {"scale": 4, "num_blocks": 16, "channels": 64, "norm": "none",
                               "image_residual": True}).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    gen = torch.Generator()
    bank = ImageBank.from_paths(paths, dev)
    workers = auto_workers(args.workers)
    rows = []
    rows.append(("in-memory bank (GPU crops)",) + measure(lambda: bank.crops(args.batch, 192, gen), net, opt, args.iters))
    for prefetch in (True, False):
        feed = LoaderFeed(paths, 192, args.batch, dev, workers, prefetch=prefetch)
        name = f"DataLoader x{workers} workers " + ("+ CUDA prefetcher" if prefetch else "without prefetcher")
        rows.append((name,) + measure(feed.next, net, opt, args.iters))
    print(f"## SR x4 training throughput, batch {args.batch}, HR crops 192, {torch.cuda.get_device_name()}\n")
    print("| data path | iterations/s | share of time waiting for data |\n|---|---|---|")
    for name, ips, w in rows:
        print(f"| {name} | {ips:.1f} | {100 * w:.1f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
