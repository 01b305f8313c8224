#!/bin/sh
# Session of 2026-12-02 (AMD EPYC, AVX2 only): the compiled layer against its memory-traffic bound.
# Run from the repository root, nothing else busy.
set -e
export OMP_NUM_THREADS=2
python benchmarks/traffic_bound.py --out benchmarks/results/traffic_bound_avx2 > benchmarks/results/traffic_bound_avx2.log 2>&1
