#!/usr/bin/env bash
# One leg of the shipped-model training session on the lent GPU machine (see docs/models.md).
#   scripts/device_phase.sh start SECONDS   set up, launch every job, watch for SECONDS, snapshot to $OUT
#   scripts/device_phase.sh watch SECONDS   (later calls) launch the photo model if due, watch, snapshot
#   scripts/device_phase.sh finish SECONDS  wait for the jobs (at most SECONDS), evaluate, copy models to $OUT
set -u
mode=$1; budget=$2
R=/tmp/restorer-runs
export RESTORER_DATA_DIR=/tmp/restorer-data PYTHONUNBUFFERED=1
t_end=$(( $(date +%s) + budget ))
jobs_all="sr-x4-faithful sr-x2-faithful sr-x8-faithful sr-x4-compact inpaint latent sr-x4-photo"

status() {
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  for j in $jobs_all; do
    [ -f $R/$j.log ] && echo "== $j: $(grep -E 'iter |stopped|finished|Error|error' $R/$j.log | tail -n 1 | cut -c1-220)"
  done
}

snapshot() {
  mkdir -p $OUT
  for j in $jobs_all; do
    if [ -f $R/$j/model.pt ]; then cp $R/$j/model.pt $OUT/$j.pt
    elif [ -f $R/$j/checkpoint.pt ]; then python3 scripts/train_shipped.py $j --data x --runs $R --minutes 0 --snapshot $OUT/$j.pt; fi
  done
  tar czf $OUT/logs.tgz -C $R $(cd $R && ls *.log */events.jsonl */summary.json 2>/dev/null) 2>/dev/null
}

case $mode in
start)
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch,torchvision,PIL;print('torch',torch.__version__,'tv',torchvision.__version__,'PIL',PIL.__version__)"
  ls ~/.cache/torch/hub/checkpoints 2>/dev/null
  if nvidia-cuda-mps-control -d 2>/dev/null && python3 -c "import torch;torch.zeros(1,device='cuda')"; then
    echo "MPS daemon on"
  else
    echo quit | nvidia-cuda-mps-control 2>/dev/null; echo "MPS not used"
  fi
  scripts/device_launch.sh $R sr-x4-faithful:21.5 sr-x2-faithful:20.5 sr-x8-faithful:20 sr-x4-compact:20 inpaint:21.5 latent:13
  ;;
watch)
  if [ ! -f $R/sr-x4-photo.log ]; then
    python3 scripts/train_shipped.py sr-x4-faithful --data x --runs $R --minutes 0 --snapshot $R/x4-init.pt \
      && scripts/device_launch.sh $R sr-x4-photo:10.5:$R/x4-init.pt
  fi
  ;;
finish)
  while [ $(date +%s) -lt $(( t_end - 100 )) ] && pgrep -f train_shipped.py >/dev/null; do sleep 10; done
  status
  W=""
  for j in sr-x4-faithful sr-x4-compact sr-x4-photo; do m=$R/$j/model.pt; [ -f $m ] && W="$W --weights $m"; done
  timeout 60 python3 benchmarks/sr_benchmark.py --data .data/photos-val --scale 4 --device cuda --no-seed-timing $W --out /tmp/sr_x4_gpu.md 2>/dev/null | tail -8
  snapshot; exit 0
  ;;
esac
sleep 45; status
while [ $(date +%s) -lt $(( t_end - 40 )) ]; do sleep 60; status | tail -n 8; done
snapshot; status; ls -la $OUT
