"""Run by test_distributed.py under torchrun: rank 1's loss turns NaN in the first step of epoch
2; every rank must stop with TrainingDiverged (none left waiting in a collective)."""

import os
import sys

import torch
import torch.distributed as dist

from edlnet.train import TrainConfig, TrainingDiverged
from edlnet.train.loop import Trainer

torch.set_num_threads(1)
out = sys.argv[1]
cfg = TrainConfig(
    model="resnet10",
    model_kwargs={"width": 4},
    dl="vanilla",
    switch_to_elastic_epoch=None,
    epochs=3,
    train_subset=160,
    val_size=32,
    test_subset=32,
    batch_size=32,
    val_attack_steps=0,
    out_dir=out,
    name="nan",
    seed=0,
)
trainer = Trainer(cfg, progress=False)
epoch_now = [0]
train_epoch, objective = trainer.train_epoch, trainer.objective


def tracked_epoch(epoch):
    epoch_now[0] = epoch
    return train_epoch(epoch)


def poisoned(model, x, y, ctx):
    loss, logits = objective(model, x, y, ctx)
    if dist.get_rank() == 1 and epoch_now[0] == 1:
        loss = loss * float("nan")
    return loss, logits


trainer.train_epoch, trainer.objective = tracked_epoch, poisoned
try:
    trainer.fit()
    outcome = "finished"
except TrainingDiverged as e:
    outcome = f"diverged: {e}"
with open(f"{out}/rank{dist.get_rank()}.txt", "w") as f:
    f.write(outcome + "\n")
dist.destroy_process_group()
# skip interpreter finalization, where torch 2.13's gloo/DDP teardown aborts about 1 run in 4
# (see edlnet.train.distributed.exit_torchrun_process)
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
