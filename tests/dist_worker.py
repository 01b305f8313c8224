"""Run by test_distributed.py under torchrun: train a tiny model, then check on every rank that
the parameters are bit-identical across ranks."""

import os
import sys

import torch
import torch.distributed as dist

from edlnet.train import TrainConfig
from edlnet.train.loop import Trainer

torch.set_num_threads(1)
out = sys.argv[1]
cfg = TrainConfig(
    model="resnet10",
    model_kwargs={"width": 4},
    dl="vanilla",
    switch_to_elastic_epoch=1,
    epochs=2,
    train_subset=128,
    val_size=32,
    test_subset=32,
    batch_size=32,
    val_attack_steps=1,
    attack_steps=1,
    objective="pgd_at",
    out_dir=out,
    name="dist",
    seed=0,
)
trainer = Trainer(cfg, progress=False)
trainer.fit()
flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
dist.all_gather(gathered, flat)
if dist.get_rank() == 0:
    same = all(torch.equal(gathered[0], g) for g in gathered[1:])
    with open(f"{out}/ranks_identical.txt", "w") as f:
        f.write(f"{same} {dist.get_world_size()}\n")
dist.destroy_process_group()
# skip interpreter finalization, where torch 2.13's gloo/DDP teardown aborts about 1 run in 4
# (see edlnet.train.distributed.exit_torchrun_process)
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
