#!/usr/bin/env bash
# On the AVX512-BF16 EPYC (native bf16 convolutions, no AMX), after layer_bench_avx512bf16/
# (bf16-native-2026-12-02.sh, commit d333bb5):
# 1. tried: one reciprocal per residual instead of three divisions in the compiled path's loops
#    (the diff is layer_bench_avx512bf16_reciprocal/reciprocal.diff; not kept: no change measured);
# 2. kept: the compiled path's backward keeps activation-sized gradients in bf16 where the
#    convolutions are bf16 (edlnet/layers/rista_functional.py). Profiles before (commit 04bb7fd)
#    and after, then the bench's bf16 layer and network-step sections.
set -u
cd "$(dirname "$0")/../.."
# 1 (run on the reciprocal change, uncommitted):
#   python -m edlnet bench --layers --threads 2 --repeats 21 --layer-sections layers,layers_bf16 \
#     --out benchmarks/results/layer_bench_avx512bf16_reciprocal
# 2, before (the code of commit 04bb7fd; the record names f08e335-dirty):
#   python benchmarks/compiled_layer_profile.py --precision bf16 --shapes 16x32,32x32 \
#     --out benchmarks/results/compiled_layer_profile_bf16_before
.venv/bin/python benchmarks/compiled_layer_profile.py --precision bf16 --shapes 16x32,32x32 \
  --out benchmarks/results/compiled_layer_profile_bf16grad > benchmarks/results/compiled_layer_profile_bf16grad/compiled_layer_profile.log 2>&1
.venv/bin/python -m edlnet bench --layers --threads 2 --repeats 21 \
  --layer-sections layers_bf16,attack_step,train_step \
  --out benchmarks/results/layer_bench_avx512bf16_bf16grad > benchmarks/results/layer_bench_avx512bf16_bf16grad.log 2>&1
