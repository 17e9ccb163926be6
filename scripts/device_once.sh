#!/usr/bin/env bash
# Single-call GPU session: launch all shipped-model jobs for MINUTES, wait, copy the models to $OUT.
set -u
minutes=$1
R=/tmp/restorer-runs
export RESTORER_DATA_DIR=/tmp/restorer-data PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
if nvidia-cuda-mps-control -d 2>/dev/null && timeout 20 python3 -c "import torch;torch.zeros(1,device='cuda')"; then echo "MPS on"
else echo quit | nvidia-cuda-mps-control 2>/dev/null; echo "MPS off"; fi
scripts/device_launch.sh $R sr-x4-faithful:$minutes sr-x2-faithful:$minutes sr-x8-faithful:$minutes sr-x4-compact:$minutes inpaint:$minutes latent:$minutes
t0=$(date +%s)
while pgrep -f train_shipped.py >/dev/null && [ $(( $(date +%s) - t0 )) -lt $(( ${minutes%.*} * 60 + 100 )) ]; do
  sleep 30; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  for f in $R/*.log; do echo "$(basename $f): $(grep -E 'iter |Error|error|stopped' $f | tail -n 1 | cut -c1-160)"; done
done
mkdir -p $OUT
for j in sr-x4-faithful sr-x2-faithful sr-x8-faithful sr-x4-compact inpaint latent; do
  [ -f $R/$j/model.pt ] && cp $R/$j/model.pt $OUT/$j.pt || echo "NO MODEL for $j"
done
tar czf $OUT/logs.tgz -C $R $(cd $R && ls *.log */events.jsonl */summary.json 2>/dev/null)
ls -la $OUT; tail -n 5 $R/*.log
