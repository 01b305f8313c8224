#!/bin/sh
# Session of 2026-12-02 (AMD EPYC, AVX2 only). Run from the repository root, nothing else busy.
# runs/variants/reorder.py is edlnet/layers/rista_functional.py with variant_ab_reorder/reorder.diff applied:
#   mkdir -p runs/variants && cp edlnet/layers/rista_functional.py runs/variants/reorder.py &&
#   patch runs/variants/reorder.py benchmarks/results/variant_ab_reorder/reorder.diff
set -e
export OMP_NUM_THREADS=2
python benchmarks/variant_ab.py --variant reorder=runs/variants/reorder.py --shapes 16x32,32x32 \
  --formats channels_last,contiguous --rounds 21 --out benchmarks/results/variant_ab_reorder \
  > benchmarks/results/variant_ab_reorder.log 2>&1
# the bench's Targets table of this code on this machine (fp32: bf16 is not native here)
edlnet bench --layers --threads 2 --layer-precisions fp32 --repeats 21 \
  --layer-sections layers,attack_step,train_step --out benchmarks/results/layer_bench_avx2_traffic \
  > benchmarks/results/layer_bench_avx2_traffic.log 2>&1
