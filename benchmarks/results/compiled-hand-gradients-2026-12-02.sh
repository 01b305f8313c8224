#!/usr/bin/env bash
# The compiled path with the fast path's hand-written gradients (edlnet/layers/rista_functional.py)
# against the plain iteration differentiated by AOTAutograd under a memory budget (the commit
# before): where the fused loops' bytes and time go, before and after, then the layer bench's
# Targets (layers and both network steps, fp32, 21 rounds) on this AVX2-only EPYC.
set -u
cd "$(dirname "$0")/../.."
mkdir -p benchmarks/results/compiled_layer_profile_hand benchmarks/results/layer_bench_avx2_hand/steps_run2
# before: run from a checkout of the previous commit with this commit's profile script copied in
#   python benchmarks/compiled_layer_profile.py --out benchmarks/results/compiled_layer_profile_before
.venv/bin/python benchmarks/compiled_layer_profile.py \
  --out benchmarks/results/compiled_layer_profile_hand > benchmarks/results/compiled_layer_profile_hand/compiled_layer_profile.log 2>&1
.venv/bin/python -m edlnet bench --layers --threads 2 --layer-precisions fp32 --repeats 21 \
  --layer-sections layers,attack_step,train_step \
  --out benchmarks/results/layer_bench_avx2_hand > benchmarks/results/layer_bench_avx2_hand.log 2>&1
# the two network steps again after the fix of the next commit (the attack step computed the
# frozen dictionaries' weight gradients: 6.14x the ResNet in layer_bench_avx2_hand/)
.venv/bin/python -m edlnet bench --layers --threads 2 --layer-precisions fp32 --repeats 21 \
  --layer-sections attack_step,train_step \
  --out benchmarks/results/layer_bench_avx2_hand/steps_run2 > benchmarks/results/layer_bench_avx2_hand/steps_run2.log 2>&1
