#!/usr/bin/env bash
# The adaptation issue's GPU runs, as one prepared script on a lent GPU machine:
#   benchmarks/adaptation_gpu.sh OUT_DIR
# 1. a DAPT run long enough for early stopping to act;
# 2. chapter 8's fine-tuning grid without the CPU step cap (up to 5 seeds, 10/50/all labels per
#    class), seed by seed until the time budget (second argument, seconds for both) is spent.
set -uo pipefail
OUT=${1:-runs/adaptation-gpu}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 MLM_LESSONS_CACHE=/tmp/mlm-cache
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
BUDGET=${2:-520}  # seconds for both steps
start=$(date +%s)
python3 benchmarks/dapt_long.py --device cuda --steps 6000 --out "$OUT/dapt_long.json" 2>&1 | tee "$OUT/dapt_long.txt"
left=$(( BUDGET - ($(date +%s) - start) ))
python3 benchmarks/finetune_grid.py --device cuda --seeds 5 --time-budget $(( left > 60 ? left - 60 : 1 )) \
    --out "$OUT/finetune_grid.json" 2>&1 | tee "$OUT/finetune_grid.txt"
