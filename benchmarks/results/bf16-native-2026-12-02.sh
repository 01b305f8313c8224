#!/usr/bin/env bash
# The first session since the compiled path's hand-derived gradients (and η off the weight
# gradient) on a CPU with native bf16 convolutions (AMD EPYC, AVX512-BF16, no AMX): the layer
# bench's Targets in fp32 and bf16 — one layer at every shape, the attack step and the
# single-step training step — 21 rounds. (The networks sections, full-width EDLNet-18, are not
# targets of issue 13 and are left out to keep the run under an hour.)
set -u
cd "$(dirname "$0")/../.."
.venv/bin/python -m edlnet bench --layers --threads 2 --repeats 21 \
  --layer-sections layers,layers_bf16,attack_step,train_step \
  --out benchmarks/results/layer_bench_avx512bf16 > benchmarks/results/layer_bench_avx512bf16.log 2>&1
echo "rc=$?" >> benchmarks/results/layer_bench_avx512bf16.log
