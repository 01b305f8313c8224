#!/usr/bin/env bash
# A second run of the network steps before and after the bf16 backward gradients, one after the
# other (same session, same CPU): "before" from a checkout of commit 04bb7fd run with
# PYTHONPATH pointing at it, "after" from this commit.
set -u
cd "$(dirname "$0")/../.."
#   (in a checkout of 04bb7fd) python -m edlnet bench --layers --threads 2 --repeats 21 \
#     --layer-sections attack_step,train_step --out benchmarks/results/layer_bench_avx512bf16/steps_run2
.venv/bin/python -m edlnet bench --layers --threads 2 --repeats 21 --layer-sections attack_step,train_step \
  --out benchmarks/results/layer_bench_avx512bf16_bf16grad/steps_run2 > benchmarks/results/layer_bench_avx512bf16_bf16grad/steps_run2.log 2>&1
