#!/usr/bin/env bash
# The fp32 targets of issue 13 on a CPU without native bf16 (AMD EPYC, AVX2 only; bf16 convolutions
# run in PyTorch's slow fallback here, so the bf16 targets cannot be measured on this machine):
# the fp32 layer section and the two network steps in fp32 at batch 128, two runs of the steps.
set -u
cd "$(dirname "$0")/../.."
.venv/bin/python -m edlnet bench --layers --threads 2 --layer-precisions fp32 \
  --layer-sections layers,attack_step,train_step \
  --out benchmarks/results/layer_bench_avx2 > benchmarks/results/layer_bench_avx2.log 2>&1
.venv/bin/python -m edlnet bench --layers --threads 2 --layer-precisions fp32 \
  --layer-sections attack_step,train_step \
  --out benchmarks/results/layer_bench_avx2/steps_run2 > benchmarks/results/layer_bench_avx2/steps_run2.log 2>&1
