#!/usr/bin/env bash
# The end of this session's heavy jobs, one at a time (repository root). Training so far ran as
#   EDLNET_DATA=../shared/data python benchmarks/reproduce.py --scale cpu --stage train --max-minutes 58
# (train-1.log; stopped after fgsm-plain-s1 to evaluate). Here: evaluate the seed-0 plain and
# Elastic arms, then the before/after of the evaluation code on fgsm-elastic-s0 if time allows,
# then the end-of-session measurements (benchmarks/results/final_quiet.sh).
set -u
ROOT=$(pwd)
OLD=${OLD:-../edlnet-aa44529}   # a checkout of commit aa44529 (the evaluation before this session)
LOG=benchmarks/results/reproduce/cpu
export EDLNET_DATA=../shared/data
.venv/bin/python benchmarks/reproduce.py --scale cpu --stage eval --max-minutes 45 \
  --only fgsm-plain-s0 fgsm-elastic-s0 >> $LOG/eval-3.log 2>&1
if [ "$(date +%H%M)" -lt 1105 ]; then
  ARM=$LOG/fgsm-elastic-s0
  OUT=benchmarks/results/eval_before_after/fgsm-elastic-s0
  mkdir -p $OUT
  ( cd $OLD && PYTHONPATH=$OLD .venv/bin/python -m edlnet eval $ARM \
      --suite table4 --n-examples 50 --dataset cifar10-sample --checkpoint last \
      --surrogate $LOG/fgsm-plain-s0 --out $OUT/before ) > $OUT/before.log 2>&1
  .venv/bin/python -m edlnet eval $ARM --suite table4 --n-examples 50 --checkpoint last \
      --surrogate $LOG/fgsm-plain-s0 --out $OUT/after > $OUT/after.log 2>&1
fi
benchmarks/results/final_quiet.sh > benchmarks/results/final_quiet.log 2>&1
