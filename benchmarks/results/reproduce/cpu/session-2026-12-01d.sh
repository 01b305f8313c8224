#!/usr/bin/env bash
# Fourth session's heavy jobs, one at a time (repository root). Each command stops starting new
# epochs (or evaluation batches) after --max-minutes and exits 3; running it again resumes.
#   1. the PGD-3 AT arms (plain, Vanilla DL, Elastic DL forked at epoch 6), trained and evaluated;
#   2. the Robust DL arm of the single-step comparison;
#   3. the TRADES arms.
set -u
LOG=benchmarks/results/reproduce/cpu
export EDLNET_DATA=../shared/data
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
run train train-10.log trades-plain-s0 trades-vanilla-s0 trades-elastic-s0
run eval eval-10.log trades-plain-s0 trades-vanilla-s0 trades-elastic-s0
