#!/usr/bin/env bash
# Third session's heavy jobs, one at a time (repository root). Each command stops starting new
# epochs (or evaluation batches) after --max-minutes; running it again resumes.
#   1. the seed-1 arms of the main comparison (Vanilla DL, then Elastic DL forked at epoch 6):
#      .venv/bin/python benchmarks/reproduce.py --scale cpu --stage train --max-minutes 55 \
#        --only fgsm-vanilla-s1 fgsm-elastic-s1 >> $LOG/train-4.log
#   2. (below) the rest of fgsm-elastic-s1 and the naturally trained arms of Tables 1-2, then the
#      evaluations.
set -u
LOG=benchmarks/results/reproduce/cpu
export EDLNET_DATA=../shared/data
while pgrep -f "reproduce.py --scale cpu --stage train --max-minutes 55 --only fgsm-vanilla-s1" > /dev/null; do
  sleep 20
done
.venv/bin/python benchmarks/reproduce.py --scale cpu --stage train --max-minutes 55 \
  --only fgsm-elastic-s1 natural-plain-s0 natural-vanilla-s0 natural-robust-s0 >> $LOG/train-5.log 2>&1
for piece in 1 2 3 4; do
  .venv/bin/python benchmarks/reproduce.py --scale cpu --stage eval --max-minutes 55 \
    --only natural-plain-s0 natural-vanilla-s0 natural-robust-s0 fgsm-plain-s1 fgsm-elastic-s1 \
           fgsm-vanilla-s0 >> $LOG/eval-6.log 2>&1 && break
done
