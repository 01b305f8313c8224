#!/usr/bin/env bash
# The speed issue's "after" measurements, on a quiet machine: the reproduction study (running
# from the main checkout) is paused (SIGSTOP) while they run and resumed afterwards.
#   1. the allocator's effect on one layer and its floor (bitwise check included);
#   2. edlnet bench --layers: layers and layers_bf16 (16, 32, 64 channels at 32x32, 256 at 8x8;
#      fast, detached, compiled), the attack step and the single-step adversarial training step
#      of ResNet-10 against EDLNet-10 (eager and compiled). The compiled variants' Inductor
#      caches were filled beforehand by the same command with --batch 8 (first-call times are
#      reported apart and are cache loads, not compiles).
set -u
cd "$(dirname "$0")/../.."
STUDY=$(pgrep -f "benchmarks/reproduce.py --scale cpu" | tr '\n' ' ')
resume() { [ -n "$STUDY" ] && kill -CONT $STUDY; }
trap resume EXIT
[ -n "$STUDY" ] && kill -STOP $STUDY
sleep 5
.venv/bin/python benchmarks/allocator.py > benchmarks/results/allocator.log 2>&1
.venv/bin/python -m edlnet bench --layers --threads 2 \
  --layer-sections layers,layers_bf16,attack_step,train_step \
  --out benchmarks/results/layer_bench_speed > benchmarks/results/layer_bench_speed.log 2>&1
# 3. the network steps with glibc's allocator defaults (the eager paths only), for before/after
EDLNET_ALLOCATOR=system .venv/bin/python -m edlnet bench --layers --threads 2 --no-compiled \
  --layer-sections attack_step,train_step \
  --out benchmarks/results/layer_bench_speed_system_allocator > benchmarks/results/layer_bench_speed_system_allocator.log 2>&1
