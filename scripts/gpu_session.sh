#!/usr/bin/env bash
# The ONE device command of a GPU training session (issue #11). Prepare on the CPU first:
#   python scripts/gpu_session.py pack --train ../shared/datasets/photos-train \
#       --train ../shared/datasets/extra-train --val ../shared/datasets/photos-val
#   python scripts/gpu_session.py run --cpu --tiny --out /tmp/dry    # the dry run, about a minute
# then call the device tool with: scripts/gpu_session.sh   (timeout_s 600, carry [".gpu_data"])
# Trains every shipped recipe concurrently for ~6 minutes, gates the candidates against the
# shipped weights on photos-val and leaves at most 7 better models + summary.json in $OUT.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total,utilization.gpu --format=csv,noheader || true
# MPS lets the concurrent jobs share the GPU without time-slicing their contexts; without it they still run
if nvidia-cuda-mps-control -d 2>/dev/null && timeout 30 python3 -c "import torch;torch.zeros(1,device='cuda')"; then
  echo "MPS daemon on"; MPS=1
else
  echo quit | nvidia-cuda-mps-control 2>/dev/null; echo "MPS not used"; MPS=0
fi
timeout 585 python3 scripts/gpu_session.py run --out "$OUT" --minutes "${SESSION_MINUTES:-9.2}" "$@"
rc=$?
[ "$MPS" = 1 ] && (echo quit | nvidia-cuda-mps-control 2>/dev/null)
ls -la "$OUT"
exit $rc
