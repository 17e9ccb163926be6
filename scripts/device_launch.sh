#!/usr/bin/env bash
# Start the shipped-model training jobs in the background on the GPU machine (see docs/models.md).
# Usage: scripts/device_launch.sh RUNS_DIR JOB:MINUTES[:INIT] ...
set -u
runs=$1; shift
mkdir -p "$runs"
export RESTORER_DATA_DIR=/tmp/restorer-data OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1
for spec in "$@"; do
  IFS=: read -r job minutes init <<<"$spec"
  extra=()
  [ -n "${init:-}" ] && extra=(--init-from "$init")
  setsid nohup python3 scripts/train_shipped.py "$job" --data .data/photos-train --runs "$runs" \
      --minutes "$minutes" "${extra[@]}" >"$runs/$job.log" 2>&1 < /dev/null &
  echo "started $job ($minutes min) pid $!"
done
