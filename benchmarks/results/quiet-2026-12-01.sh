#!/usr/bin/env bash
# End-of-session measurements on the quiet machine (after the study's jobs), one at a time:
# the attack step with trainable vs frozen parameters, then the layer bench with the narrow
# shapes and the attack-step section (issue 13's before numbers).
set -u
while pgrep -f "session-2026-12-01[bc].sh" > /dev/null; do sleep 15; done
.venv/bin/python benchmarks/input_gradients_only.py > benchmarks/results/input_gradients_only.log 2>&1
.venv/bin/edlnet bench --layers --layer-sections layers,layers_bf16,attack_step \
  --out benchmarks/results/layer_bench_narrow > benchmarks/results/layer_bench_narrow.log 2>&1
