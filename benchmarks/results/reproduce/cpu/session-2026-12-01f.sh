#!/usr/bin/env bash
# The TRADES arms (plain, the Vanilla DL stage and Elastic DL forked from it), trained and
# evaluated, then the claims report regenerated.
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
run train train-10.log trades-plain-s0 trades-vanilla-s0 trades-elastic-s0
run eval eval-10.log trades-plain-s0 trades-vanilla-s0 trades-elastic-s0
.venv/bin/python benchmarks/reproduce.py --scale cpu --stage report >> "$LOG/eval-10.log" 2>&1
