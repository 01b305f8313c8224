#!/usr/bin/env bash
# The speed issue's network-step measurements after the bf16-output change, with EDLNet-10's
# convolution floor beside them, on an idle machine (nothing else running): the attack step and
# the single-step adversarial training step, run twice (their ratios move by ±5-10% between
# runs here, so two records show the spread).
set -u
cd "$(dirname "$0")/../.."
for run in 1 2; do
  .venv/bin/python -m edlnet bench --layers --threads 2 --layer-sections attack_step,train_step \
    --out benchmarks/results/layer_bench_steps/run$run > benchmarks/results/layer_bench_steps/run$run.log 2>&1
done
