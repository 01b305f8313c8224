#!/usr/bin/env bash
# bf16 on a CPU without native bf16 (AMD EPYC, AVX2 only): the training step in fp32 and bf16 at
# the bench's slow-bf16 batch (16), eager paths only. Shows what precision=bf16 costs there.
set -u
cd "$(dirname "$0")/../.."
while pgrep -f quiet-2026-12-01e.sh > /dev/null; do sleep 20; done
.venv/bin/python -m edlnet bench --layers --threads 2 --no-compiled \
  --layer-sections train_step \
  --out benchmarks/results/layer_bench_avx2/bf16_emulated > benchmarks/results/layer_bench_avx2/bf16_emulated.log 2>&1
