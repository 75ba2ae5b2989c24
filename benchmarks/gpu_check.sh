#!/usr/bin/env bash
# The GPU checks of the pretraining issue, as one prepared run on a lent GPU machine:
#   benchmarks/gpu_check.sh OUT_DIR
# 1. the training-step benchmark against transformers' BertForMaskedLM (tokens/s, MFU);
# 2. a short pretraining with the h100 preset (bf16, torch.compile) through the command line;
# 3. the fp32 / bf16 / fp16 paths of pretrain.
set -uo pipefail
OUT=${1:-runs/gpu-check}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 MLM_LESSONS_CACHE=/tmp/mlm-cache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, tokenizers; print('torch', torch.__version__, '| transformers', transformers.__version__, '| tokenizers', tokenizers.__version__)" | tee -a "$OUT/gpu.txt"
python3 benchmarks/bench_pretrain.py --device cuda --reps 30 2>&1 | tee "$OUT/bench_pretrain.txt"
python3 benchmarks/bench_pretrain.py --device cuda --reps 30 --batch 256 2>&1 | tee -a "$OUT/bench_pretrain.txt"
start=$(date +%s)
python3 -m mlm_lessons pretrain --corpus python-docs --preset h100 --max-steps 300 --out /tmp/h100-run --quiet 2>&1 | tee "$OUT/pretrain_h100.txt"
echo "wall time: $(( $(date +%s) - start )) s (tokenizer, data, torch.compile and 300 steps)" | tee -a "$OUT/pretrain_h100.txt"
cp /tmp/h100-run/metrics.json "$OUT/h100_metrics.json" 2>/dev/null
cp /tmp/h100-run/config.json "$OUT/h100_config.json" 2>/dev/null
python3 benchmarks/precision_check.py 2>&1 | tee "$OUT/precision.txt"
