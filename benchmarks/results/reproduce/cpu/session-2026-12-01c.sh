#!/usr/bin/env bash
# After session-2026-12-01b.sh: the last two epochs of the seed-1 Vanilla DL arm and its evaluation.
set -u
LOG=benchmarks/results/reproduce/cpu
export EDLNET_DATA=../shared/data
while pgrep -f "session-2026-12-01b.sh" > /dev/null; do sleep 20; done
.venv/bin/python benchmarks/reproduce.py --scale cpu --stage train --max-minutes 12 \
  --only fgsm-vanilla-s1 >> $LOG/train-7.log 2>&1
.venv/bin/python benchmarks/reproduce.py --scale cpu --stage eval --max-minutes 14 \
  --only fgsm-vanilla-s1 >> $LOG/eval-7.log 2>&1
