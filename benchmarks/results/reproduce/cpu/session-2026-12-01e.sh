#!/usr/bin/env bash
# Replaces session-2026-12-01d.sh after its first piece (same commands, TRADES left for the next
# session so that the speed issue's quiet measurements fit in this one): the PGD-3 AT arms,
# trained and evaluated, then the Robust DL arm of the single-step comparison.
set -u
LOG=benchmarks/results/reproduce/cpu
export EDLNET_DATA=../shared/data
while pgrep -f "benchmarks/reproduce.py --scale cpu" > /dev/null; do sleep 15; done
run() {  # run STAGE LOGFILE ARM...: repeat 50-minute pieces until the stage is complete
  local stage=$1 log=$2; shift 2
  for piece in 1 2 3 4 5; do
    .venv/bin/python benchmarks/reproduce.py --scale cpu --stage "$stage" --max-minutes 50 \
      --only "$@" >> "$LOG/$log" 2>&1
    [ $? -ne 3 ] && break
  done
}
run train train-8.log pgd-plain-s0 pgd-vanilla-s0 pgd-elastic-s0
run eval eval-8.log pgd-plain-s0 pgd-vanilla-s0 pgd-elastic-s0
run train train-9.log fgsm-robust-s0
run eval eval-9.log fgsm-robust-s0
