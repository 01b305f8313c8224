#!/usr/bin/env bash
# Issue 13's layer target on the AVX2-only EPYC again, with 21 round-robin repeats and the paired
# ratio's 95% interval (the 10-repeat run in layer_bench_avx2/ had minima far below its medians:
# a noisy machine, so one median ratio alone does not say whether a layer misses 1.15).
set -u
cd "$(dirname "$0")/../.."
.venv/bin/python -m edlnet bench --layers --threads 2 --layer-precisions fp32 --repeats 21 \
  --layer-sections layers \
  --out benchmarks/results/layer_bench_avx2_paired > benchmarks/results/layer_bench_avx2_paired.log 2>&1
# second run (a later part of the session): the layers again and the two network steps, 21 repeats
.venv/bin/python -m edlnet bench --layers --threads 2 --layer-precisions fp32 --repeats 21 \
  --layer-sections layers,attack_step,train_step \
  --out benchmarks/results/layer_bench_avx2_paired/run2 > benchmarks/results/layer_bench_avx2_paired/run2.log 2>&1
