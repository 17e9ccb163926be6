"""Compare the training chain's degradations with TARGETS.md's fixed realistic protocol on real photos.

    python scripts/degradation_check.py --data ../shared/datasets/photos-val --limit 8 --scale 4

For each photo: a 192 px HR crop from the centre, degraded by the protocol (blur radius 1, bicubic,
noise 4, JPEG 60) and by 16 draws of the training chain (`RealisticDegradation`; at x1
`REALISTIC_X1`); prints noise level, sharpness ratio and
8-px blockiness (`data.degradation_stats`, against the clean bicubic LR) as the protocol's median and the
chain's 10th / 50th / 90th percentiles, and where the protocol falls in the chain's distribution.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from restorer.engine.training.data import read_rgb  # noqa: E402
from restorer.engine.training.degradations import degradation_stats, degrade, protocol_realistic_lr  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--draws", type=int, default=16)
    args = ap.parse_args(argv)
    s, side = args.scale, 192
    paths = sorted(p for p in args.data.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[: args.limit]
    proto, chain = [], []
    g = torch.Generator().manual_seed(0)
    rng = random.Random(0)
    for i, p in enumerate(paths):
        arr = read_rgb(p)
        if arr is None or min(arr.shape[:2]) < side:
            continue
        h, w = arr.shape[:2]
        hr = np.ascontiguousarray(arr[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side])
        clean = np.asarray(Image.fromarray(hr).resize((side // s, side // s), Image.BICUBIC))
        proto.append(degradation_stats(protocol_realistic_lr(hr, s, i), clean))
        batch = torch.from_numpy(hr).permute(2, 0, 1)[None].float().div(255).repeat(args.draws, 1, 1, 1)
        lr = degrade(batch, s, "realistic", rng, g)  # the chain training uses (REALISTIC_X1 at x1)
        for t in lr:
            chain.append(degradation_stats((t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), clean))
    print(f"{len(proto)} photos x {args.draws} draws, x{s}, {side} px crops\n")
    print("| statistic | protocol (median) | chain p10 | chain p50 | chain p90 | protocol's percentile in the chain |")
    print("|---|---|---|---|---|---|")
    for key in ("noise_std", "sharpness_ratio", "blockiness"):
        c = np.array([d[key] for d in chain])
        pm = float(np.median([d[key] for d in proto]))
        pct = 100.0 * float((c < pm).mean())
        print(f"| {key} | {pm:.3f} | {np.percentile(c, 10):.3f} | {np.percentile(c, 50):.3f} | "
              f"{np.percentile(c, 90):.3f} | {pct:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
