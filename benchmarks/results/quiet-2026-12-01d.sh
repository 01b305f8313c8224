#!/usr/bin/env bash
# The compiled path with the partitioner's activation-memory budget (rista_compiled.
# ACTIVATION_MEMORY_BUDGET = 0.5), on an idle machine: edlnet bench --layers, the layer sections
# (fp32 and bf16) and the two network steps. Compare with layer_bench_speed/ (before, the same
# sections) and layer_bench_steps/ (the steps earlier today).
set -u
cd "$(dirname "$0")/../.."
.venv/bin/python -m edlnet bench --layers --threads 2 \
  --layer-sections layers,layers_bf16,attack_step,train_step \
  --out benchmarks/results/layer_bench_budget > benchmarks/results/layer_bench_budget.log 2>&1
# a second run of the two network steps (their ratios move by ±5-10% between runs here)
.venv/bin/python -m edlnet bench --layers --threads 2 --layer-sections attack_step,train_step \
  --out benchmarks/results/layer_bench_budget/steps_run2 > benchmarks/results/layer_bench_budget/steps_run2.log 2>&1
