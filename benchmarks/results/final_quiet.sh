#!/usr/bin/env bash
# The end-of-session measurements, run with nothing else on the machine (repository root):
# study throughput (Table 7 row), the demo (README run command) and its evaluations after the
# evaluation changes, the before/after tables, the reproduction report.
set -eu
R=benchmarks/results
.venv/bin/python benchmarks/train_throughput.py --study --threads 2 --out $R > $R/train_throughput_study.log 2>&1
rm -rf runs/demo
.venv/bin/edlnet demo --out runs/demo > $R/demo/demo.log 2>&1
cp runs/demo/summary.md runs/demo/summary.json $R/demo/
mkdir -p $R/eval_quick/after
for m in edlnet resnet; do
  rm -rf $R/eval_quick/after/$m; cp -r runs/demo/$m/eval/quick $R/eval_quick/after/$m
done
Q=$R/eval_before_after/demo-edlnet-quick
mkdir -p $Q; rm -rf $Q/before $Q/after
cp -r $R/eval_quick/edlnet $Q/before; cp -r $R/eval_quick/after/edlnet $Q/after
.venv/bin/python benchmarks/eval_before_after.py $Q > /dev/null
B=$R/eval_before_after/demo-edlnet
mkdir -p $B; rm -rf $B/before $B/after
cp -r $R/eval_table4/edlnet $B/before
.venv/bin/edlnet eval runs/demo/edlnet --suite table4 --n-examples 100 --checkpoint best \
  --surrogate runs/demo/resnet --out $B/after > $B/after.log 2>&1
.venv/bin/python benchmarks/eval_before_after.py $B > /dev/null
A=$R/eval_before_after/fgsm-elastic-s0
[ -f $A/after/results.json ] && .venv/bin/python benchmarks/eval_before_after.py $A > /dev/null
.venv/bin/python benchmarks/reproduce.py --scale cpu --stage report
