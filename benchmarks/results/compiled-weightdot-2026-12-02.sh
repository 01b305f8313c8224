#!/usr/bin/env bash
# The compiled path's η gradient read off the weight gradient (edlnet/layers/rista_functional.py):
# the fused loops' bytes and profiled time before (commit ee8e26a) and after, both with this
# commit's profile script (which now keeps freed memory, as edlnet bench does), then the layer
# bench's Targets (layers and both network steps, fp32, 21 rounds) on this AVX2-only EPYC.
set -u
cd "$(dirname "$0")/../.."
# before: from a checkout of ee8e26a with this commit's benchmarks/compiled_layer_profile.py copied in
#   python benchmarks/compiled_layer_profile.py --out benchmarks/results/compiled_layer_profile_before_weightdot
.venv/bin/python benchmarks/compiled_layer_profile.py \
  --out benchmarks/results/compiled_layer_profile_weightdot > benchmarks/results/compiled_layer_profile_weightdot/compiled_layer_profile.log 2>&1
.venv/bin/python -m edlnet bench --layers --threads 2 --layer-precisions fp32 --repeats 21 \
  --layer-sections layers,attack_step,train_step \
  --out benchmarks/results/layer_bench_avx2_weightdot > benchmarks/results/layer_bench_avx2_weightdot.log 2>&1
