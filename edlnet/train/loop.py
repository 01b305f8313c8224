"""The training loop: data on the device, any objective, the two-stage schedule, run folders,
exact resume, bf16/channels_last, and DistributedDataParallel under torchrun."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import checkpoint as ckpt
from ..allocator import keep_freed_memory
from ..data import BatchIterator, ImageDataset, crop_flip, cutout, load_dataset, mixup, read_npz
from ..data.loader import stream_seed
from ..layers.dict_conv import betas, dict_layers, set_mode
from ..layers.impl_choice import (
    LOW_PRECISION,
    ImplChoice,
    after_fallback,
    choose_impl,
    fallback_reason,
    use_impl,
)
from ..layers.rista_fast import native_low_precision
from ..models.registry import create_model
from ..records import append_jsonl, environment, new_run_dir, timestamp, write_json, write_yaml
from . import commits
from .config import TrainConfig, load_config
from .distributed import (
    DistInfo,
    all_reduce_sum,
    any_rank,
    broadcast_object,
    compute_device,
    init_distributed,
    resolve_device,
)
from .legacy import new_key
from .objectives import create_objective
from .objectives.base import Context
from .penalty import weight_penalty
from .progress import Progress
from .resume import RESUME_FILES, check_resume_changes, config_changes, resumable
from .state import collect_train_state, load_train_state, write_train_state

NATIVE_CPU_FEATURES = {"bf16": "AVX512-BF16 or AMX", "fp16": "AVX512-FP16 or AMX-FP16"}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def lr_at(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate of ``epoch`` (0-based): step decay at milestones, cosine or constant, with
    optional linear warmup."""
    if cfg.warmup_epochs and epoch < cfg.warmup_epochs:
        return cfg.lr * (epoch + 1) / cfg.warmup_epochs
    if cfg.schedule == "step":
        return cfg.lr * cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.schedule == "cosine":
        return 0.5 * cfg.lr * (1 + math.cos(math.pi * epoch / cfg.epochs))
    return cfg.lr


def load_data(cfg: TrainConfig, device: torch.device) -> ImageDataset:
    data = load_dataset(cfg.dataset, cfg.data_root)
    data = data.subset(cfg.train_subset, cfg.test_subset)
    if cfg.val_size:
        data = data.split_validation(cfg.val_size, seed=cfg.seed)
    return data.to(device)


def build_model(cfg: TrainConfig, num_classes: int) -> nn.Module:
    return create_model(
        cfg.model,
        num_classes=num_classes,
        dl=cfg.dl,
        dl_layers=cfg.dl_layers,
        **cfg.model_kwargs,
        **cfg.dl_options,
    )


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD with three groups: weights (decayed), BN/bias (not decayed), β (not decayed).

    β is in the optimizer from the start; it has no gradient (and so is skipped) until the
    two-stage switch makes it trainable, so the switch needs no optimizer surgery."""
    groups: dict[str, list[nn.Parameter]] = {"decay": [], "no_decay": [], "beta": []}
    for name, p in model.named_parameters():
        if name.endswith("beta_logit"):
            groups["beta"].append(p)
        elif p.dim() > 1:
            groups["decay"].append(p)
        else:
            groups["no_decay"].append(p)
    param_groups = [
        {"params": groups["decay"], "weight_decay": cfg.weight_decay, "name": "decay"},
        {"params": groups["no_decay"], "weight_decay": 0.0, "name": "no_decay"},
        {"params": groups["beta"], "weight_decay": 0.0, "name": "beta"},
    ]
    return torch.optim.SGD(
        [g for g in param_groups if g["params"]], lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov
    )


def autocast_factory(cfg: TrainConfig, device: torch.device):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


def run_name(cfg: TrainConfig) -> str:
    dl = cfg.dl or "plain"
    two = (
        "-2stage"
        if cfg.dl == "vanilla"
        and cfg.switch_to_elastic_epoch is not None
        and cfg.switch_to_elastic_epoch < cfg.epochs
        else ""
    )
    return cfg.name or f"{cfg.model}-{dl}{two}-{cfg.objective}-{time.strftime('%Y%m%d-%H%M%S')}"


@torch.no_grad()
def _clean_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> int:
    return sum(
        int((model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum()) for i in range(0, len(x), batch)
    )


def validate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, info: DistInfo, batch: int = 256
) -> dict[str, float]:
    """Clean and PGD-k accuracy (fp32, eval mode, the library's attack) on this rank's shard,
    summed over ranks."""
    from ..attacks import PGD

    idx = torch.tensor_split(torch.arange(len(x)), info.world_size)[info.rank]
    x, y = x[idx.to(x.device)], y[idx.to(y.device)]
    was = model.training
    model.eval()
    clean = _clean_correct(model, x.float() / 255, y, batch) if len(x) else 0
    robust = 0
    if cfg.val_attack_steps > 0 and len(x):
        attack = PGD(model, eps=cfg.eps, norm=cfg.attack_norm, steps=cfg.val_attack_steps, seed=cfg.seed)
        for i in range(0, len(x), batch):
            robust += int(attack.run(x[i : i + batch].float() / 255, y[i : i + batch]).robust.sum())
    model.train(was)
    # float64 counts on the CPU (some devices, e.g. MPS, have no float64); moved for the all-reduce
    t = all_reduce_sum(torch.tensor([clean, robust, len(x)], dtype=torch.float64), info)
    n = max(float(t[2]), 1.0)
    out = {"clean_acc": float(t[0]) / n}
    if cfg.val_attack_steps > 0:
        out["robust_acc"] = float(t[1]) / n
    return out


def _augment(cfg: TrainConfig):
    def fn(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if cfg.augment == "crop_flip":
            batch = crop_flip(batch, generator=generator)
        if cfg.cutout:
            batch = cutout(batch, cfg.cutout, generator=generator)
        return batch

    return fn if (cfg.augment != "none" or cfg.cutout) else None


class Trainer:
    """Owns one training run. ``Trainer(cfg).fit()`` returns the run folder."""

    def __init__(
        self, cfg: TrainConfig, run_dir: Path | None = None, progress: bool = True, trust_pickle: bool = False
    ) -> None:
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        # under torchrun with CUDA: cuda:LOCAL_RANK, made current before NCCL starts
        self.info = init_distributed(resolve_device(cfg.device))
        self.device = compute_device(resolve_device(cfg.device), self.info)
        if self.device.type == "cpu":
            keep_freed_memory()  # a CPU step reuses the last step's memory (edlnet.allocator)
        torch.manual_seed(cfg.seed)
        self.data = load_data(cfg, self.device)
        self.model = build_model(cfg, self.data.num_classes).to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(cfg, self.model)
        self.layer_impl = self._choose_layer_impl()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.precision == "fp16")
        self.autocast = autocast_factory(cfg, self.device)
        self.objective = create_objective(cfg.objective, cfg.objective_options)
        self.helper_model = self._load_helper_model()
        self.adversary = cfg.adversary()
        # the objective's class names the training accuracy; read once, here, so that the step
        # only calls the objective (tests replace it by a plain function)
        self.train_acc_key = "train_adv_acc" if self.objective.adversarial else "train_clean_acc"
        self.extra = read_npz(cfg.extra_data).to(self.device) if cfg.extra_data else None
        self.start_epoch, self.best, self.best_epoch, self.stale = 0, -math.inf, -1, 0
        self.history: list[dict[str, Any]] = []  # metrics.jsonl's records, committed with `last`
        self.stop: dict[str, str] | None = None  # why a resumed run had already stopped
        self.trust_pickle = trust_pickle
        self.config_changes: dict[str, tuple[Any, Any]] = {}
        self.run_dir = run_dir
        self.progress = progress and self.info.is_main
        self.ddp: nn.Module | None = None

    # -- setup -------------------------------------------------------------------------------
    def _load_helper_model(self) -> nn.Module | None:
        """The frozen model an objective asks for by class (HAT's naturally trained model)."""
        type(self.objective).check_options(self.objective.options)
        path = self.objective.helper_checkpoint()
        if path is None:
            return None
        model = ckpt.load(ckpt.resolve_checkpoint(path), map_location=self.device)
        model.requires_grad_(False)
        return model.eval()

    def _choose_layer_impl(self) -> ImplChoice:
        """The RISTA implementation of the training steps (``layer_impl``; see
        edlnet.layers.impl_choice): validation and checkpoints keep the layers' own."""
        c = self.cfg
        if not dict_layers(self.model):
            return ImplChoice(c.layer_impl, "fast", "no dictionary layers")
        return choose_impl(c.layer_impl, c.precision, self.device, (c.dl_options or {}).get("impl"))

    def steps_impl(self) -> str:
        """The implementation the training steps run now (``fast`` after a failed compilation)."""
        return after_fallback(self.layer_impl.impl)

    def _wrap(self) -> nn.Module:
        """The module to run forward on: DDP around the model when distributed, then
        ``torch.compile`` when configured. Re-created at the two-stage switch, since DDP fixes
        its set of trainable parameters when built (and the layers' mode changes the graph).
        Checkpoints always hold ``self.model``, the plain module."""
        module = self.model
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            # one GPU per rank: DDP replicates onto exactly this rank's device
            ids = [self.info.local_rank] if self.device.type == "cuda" else None
            module = DDP(self.model, device_ids=ids, output_device=ids[0] if ids else None)
        if self.cfg.compile:
            backend = "inductor" if self.cfg.compile is True else self.cfg.compile
            module = torch.compile(module, backend=backend)
        return module

    def _start(self, resume: Path | None) -> None:
        if resume is not None:
            self.run_dir = Path(resume)
            self._resume(self.run_dir)
        elif self.info.is_main:
            self.run_dir = self.run_dir or new_run_dir(self.cfg.out_dir, run_name(self.cfg))
        self.run_dir = Path(broadcast_object(str(self.run_dir), self.info))
        if self.info.is_main and resume is None:
            write_yaml(self.run_dir / "config.yaml", self.cfg.to_dict())
            write_json(
                self.run_dir / "environment.json",
                {
                    **environment(),
                    "world_size": self.info.world_size,
                    "device": str(self.device),
                    "started": timestamp(),
                    "dataset": self.data.name,
                    "data_info": self.data.info,
                    "layer_impl": self.layer_impl.to_dict(),
                },
            )
        if self.info.is_main and resume is not None and self.config_changes:
            # the run folder says what ran: the new config, and when and what changed
            write_yaml(self.run_dir / "config.yaml", self.cfg.to_dict())
            append_jsonl(
                self.run_dir / "config_changes.jsonl",
                {
                    "resumed_at_epoch": self.start_epoch,
                    "time": timestamp(),
                    "changes": {k: {"old": a, "new": b} for k, (a, b) in self.config_changes.items()},
                },
            )

    def _resume(self, run_dir: Path) -> None:
        """Load the newest usable ``checkpoints/last`` (rank 0 picks it, falling back to
        ``last.prev`` when ``last`` is damaged; every rank loads the same folder)."""
        choice: tuple[str | None, str | None] = (None, None)
        if self.info.is_main:
            try:
                folder, notes = commits.choose(run_dir / "checkpoints" / "last", RESUME_FILES)
                commits.recover(run_dir / "checkpoints" / "best")
                for note in notes:
                    self._log(note)
                choice = (str(folder), None)
            except (ckpt.CheckpointError, OSError) as e:
                choice = (None, f"cannot resume {run_dir}: {e}")
        folder_name, error = broadcast_object(choice, self.info)
        if error:
            raise ckpt.CheckpointError(error)
        folder = Path(folder_name)
        loaded = ckpt.load(folder, map_location=self.device)
        for (_, mine), (_, theirs) in zip(dict_layers(self.model), dict_layers(loaded)):
            mine.configure(**theirs.config())
        self.model.load_state_dict(loaded.state_dict())
        state = load_train_state(
            folder, self.model, self.optimizer, self.scaler, trust_pickle=self.trust_pickle
        )
        self.start_epoch = state["epoch"] + 1
        self.best, self.best_epoch, self.stale = state["best"], state["best_epoch"], state["stale"]
        self.stop = state.get("stop")
        if (folder / commits.METRICS).exists():
            self.history = commits.read_metrics(folder / commits.METRICS)
        else:  # a checkpoint from before checkpoints held their metrics: drop later lines
            self.history = [
                r
                for r in commits.read_metrics(run_dir / "metrics.jsonl")
                if r.get("epoch", 0) <= self.start_epoch
            ]
        if self.info.is_main:
            commits.write_atomic(run_dir / "metrics.jsonl", commits.metrics_text(self.history))
            if self.stop and self.stop.get("reason") == "catastrophic_overfitting":
                self._mark_co(self.start_epoch - 1)  # the stop was committed, its note maybe not

    # -- one epoch -----------------------------------------------------------------------------
    def _switch_if_due(self, epoch: int) -> None:
        c = self.cfg
        if c.dl == "vanilla" and c.switch_to_elastic_epoch is not None and epoch == c.switch_to_elastic_epoch:
            set_mode(self.model, "elastic", beta=c.elastic_beta)
            self.ddp = self._wrap()
            self._log(f"epoch {epoch}: switched every dictionary layer to Elastic DL (two-stage training)")

    def _batch_with_extra(self, x, y, epoch: int, step: int):
        if self.extra is None or not self.cfg.extra_ratio:
            return x, y
        n_extra = int(round(len(x) * self.cfg.extra_ratio))
        if n_extra == 0:
            return x, y
        g = torch.Generator().manual_seed(stream_seed(self.cfg.seed, 2, epoch, step, self.info.rank))
        idx = torch.randint(0, len(self.extra.x_train), (n_extra,), generator=g).to(self.device)
        xe = self.extra.x_train[idx]
        aug = _augment(self.cfg)
        if aug is not None:
            xe = aug(xe, generator=g)
        return torch.cat([x[: len(x) - n_extra], xe.float() / 255]), torch.cat(
            [y[: len(y) - n_extra], self.extra.y_train[idx]]
        )

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        c = self.cfg
        it = BatchIterator(
            self.data.x_train,
            self.data.y_train,
            c.batch_size,
            shuffle=True,
            drop_last=True,
            seed=c.seed,
            rank=self.info.rank,
            world_size=self.info.world_size,
            augment=_augment(c),
        )
        model = self.ddp
        model.train()
        lr = lr_at(c, epoch)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        bar = Progress(len(it), f"epoch {epoch + 1}/{c.epochs}", self.progress, c.log_every)
        # loss·n, correct, n: float64 on the CPU (MPS has no float64; the loss is read anyway)
        sums = torch.zeros(3, dtype=torch.float64)
        for step, (x, y) in enumerate(it.epoch(epoch)):
            x, y = self._batch_with_extra(x, y, epoch, step)
            if c.mixup_alpha:
                g = torch.Generator().manual_seed(stream_seed(c.seed, 3, epoch, step, self.info.rank))
                x, y_soft = mixup(x, y, self.data.num_classes, c.mixup_alpha, generator=g)
            else:
                y_soft = y
            if c.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            gen = torch.Generator().manual_seed(stream_seed(c.seed, 1, epoch, step, self.info.rank))
            ctx = Context(self.adversary, gen, self.autocast, self.helper_model)
            # auto may fall back to the fast path where compiling fails; an explicit choice may not
            with use_impl(self.layer_impl.impl, fallback=c.layer_impl == "auto"):
                loss, logits = self.objective(model, x, y_soft, ctx)
            loss = loss + weight_penalty(self.model, c.l1_penalty, c.l2_penalty)
            loss_value = loss.item()
            # Every rank takes the decision together (an all-reduced flag): a rank that stopped
            # alone would leave the others waiting in DDP's gradient all-reduce.
            bad = any_rank(not math.isfinite(loss_value), self.info)
            if bad:
                value = loss_value if self.info.rank in bad else "non-finite"
                where = f" on rank(s) {bad}" if self.info.enabled else ""
                raise TrainingDiverged(
                    f"loss became {value}{where} at epoch {epoch + 1}, step {step + 1}; the last good checkpoint "
                    f"is kept in {self.run_dir / 'checkpoints' / 'last'}. Lower lr, or use the default "
                    "dictionary options (step='majorize', eps=0.1; see docs/stability.md)"
                )
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if c.grad_clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            with torch.no_grad():
                target = y if y.dim() == 1 else y.argmax(1)
                sums += torch.tensor(
                    [loss_value * len(x), float((logits.argmax(1) == target).sum()), len(x)],
                    dtype=torch.float64,
                )
            bar.update(step, len(x) * self.info.world_size, loss=loss_value, lr=lr)
        bar.close()
        all_reduce_sum(sums, self.info)
        seconds = bar.seconds
        n = max(float(sums[2]), 1.0)
        return {
            "lr": lr,
            "train_loss": float(sums[0]) / n,
            self.train_acc_key: float(sums[1]) / n,
            "seconds": seconds,
            "images_per_s": float(sums[2]) / max(seconds, 1e-9),
        }

    # -- the run -------------------------------------------------------------------------------
    def fit(self, resume: Path | None = None, stop_after: int | None = None) -> Path:
        """Train to ``cfg.epochs`` (or ``stop_after`` epochs in this call, for tests and
        interruption drills) and return the run folder."""
        self._start(resume)
        self.ddp = self._wrap()
        c = self.cfg
        choice = self.layer_impl
        self._log(f"training steps: layer_impl={choice.impl} (requested {choice.requested}: {choice.reason})")
        low = LOW_PRECISION.get(c.precision)
        if low is not None and not native_low_precision(self.device.type, low):
            self._log(
                f"precision={c.precision}: {c.precision} convolutions are not native on this "
                f"{self.device.type} (a CPU needs {NATIVE_CPU_FEATURES[c.precision]}), so plain convolutions run in "
                "PyTorch's slow fallback: precision=fp32 is faster here"
            )
        metric = c.resolved_best_metric()
        done = 0
        # a run resumed after its early stop (killed while finishing) does not train on
        epochs = range(self.start_epoch, c.epochs) if self.stop is None else range(0)
        for epoch in epochs:
            self._switch_if_due(epoch)
            record: dict[str, Any] = {"epoch": epoch + 1, "mode": self._mode()}
            record.update(self.train_epoch(epoch))
            if self.steps_impl() != self.layer_impl.impl and epoch == self.start_epoch:
                self._log(f"training steps: layer_impl=fast after all: {fallback_reason()}")
            if (epoch + 1) % c.val_every == 0 or epoch + 1 == c.epochs:
                if self.data.x_val is not None:
                    v = validate(self.model, self.data.x_val, self.data.y_val, c, self.info)
                    record.update({f"val_{k}": val for k, val in v.items()})
            record["betas"] = betas(self.model)
            improved = metric in record and record[metric] > self.best
            if improved:
                self.best, self.best_epoch, self.stale = record[metric], epoch + 1, 0
            elif metric in record:
                self.stale += 1
            record["best_" + metric] = self.best if self.best > -math.inf else None
            # decided before the commit, so that the checkpoint records that the run stopped
            stop = None
            if _catastrophic_overfitting(c, record, self.best):
                stop = {
                    "reason": "catastrophic_overfitting",
                    "message": (
                        f"catastrophic overfitting: val_robust_acc fell to {record['val_robust_acc']:.4f}, below "
                        f"co_guard={c.co_guard} x its best {self.best:.4f} (epoch {self.best_epoch}); training stops "
                        "and checkpoints/best holds the model before the collapse"
                    ),
                }
            elif c.early_stop_patience is not None and self.stale >= c.early_stop_patience:
                stop = {
                    "reason": "early_stop",
                    "message": (
                        f"early stop: {metric} has not improved for {self.stale} epochs (best epoch {self.best_epoch})"
                    ),
                }
            self._checkpoint(epoch, record, improved, stop)
            self._log(_format(record))
            done += 1
            if stop is not None:
                self._log(stop["message"])
                if stop["reason"] == "catastrophic_overfitting":
                    self._mark_co(epoch)
                break
            if stop_after is not None and done >= stop_after and epoch + 1 < c.epochs:
                return self.run_dir  # more epochs remain: a later call resumes them
        if self.info.is_main:
            self._finish(metric)
        return self.run_dir

    def _mark_co(self, epoch: int) -> None:
        if self.info.is_main:
            write_json(
                self.run_dir / "catastrophic_overfitting.json",
                {"epoch": epoch + 1, "best_epoch": self.best_epoch, "best_val_robust_acc": self.best},
            )

    def _mode(self) -> str:
        modes = {m.mode for _, m in dict_layers(self.model)}
        return ",".join(sorted(modes)) if modes else "plain"

    def _checkpoint(
        self, epoch: int, record: dict[str, Any], improved: bool, stop: dict[str, str] | None = None
    ) -> None:
        """Commit this epoch: ``best`` first (a kill before ``last`` is committed redoes the
        epoch, which writes the same ``best`` again), then ``last`` with the training state and
        the metrics so far, then the run's ``metrics.jsonl`` from that same list."""
        self.history.append(record)
        if not self.info.is_main:
            return
        extra = {"epoch": epoch + 1, "metrics": record, "best_rule": f"max {self.cfg.resolved_best_metric()}"}
        folder = self.run_dir / "checkpoints"
        if improved:
            commits.commit(
                folder / "best",
                lambda tmp: ckpt.save(self.model, tmp, extra=extra),
                info={"epoch": epoch + 1},
            )
        state = collect_train_state(
            self.model,
            self.optimizer,
            self.scaler,
            epoch=epoch,
            best=self.best,
            best_epoch=self.best_epoch,
            stale=self.stale,
            stop=stop,
        )
        history = commits.metrics_text(self.history)

        def fill(tmp: Path) -> None:
            ckpt.save(self.model, tmp, extra=extra)
            write_train_state(tmp, state)
            (tmp / commits.METRICS).write_text(history)

        commits.commit(folder / "last", fill, info={"epoch": epoch + 1})
        commits.write_atomic(self.run_dir / "metrics.jsonl", history)

    def _finish(self, metric: str) -> None:
        model = self.model.eval()
        x, y = self.data.x_test, self.data.y_test
        clean = _clean_correct(model, x.float() / 255, y, 256) / max(len(x), 1)
        history = self.history
        write_json(
            self.run_dir / "train_results.json",
            {
                "epochs_run": len(history),
                "best_rule": f"max {metric}",
                "best_epoch": self.best_epoch,
                "best_value": self.best,
                "last_test_clean_acc": clean,
                "n_test": len(x),
                "dataset": self.data.name,
                "images_per_s_mean": sum(r["images_per_s"] for r in history) / max(len(history), 1),
                "layer_impl": self.steps_impl(),
                "finished": timestamp(),
            },
        )

    def _log(self, msg: str) -> None:
        if self.info.is_main:
            print(msg, file=sys.stderr, flush=True)


def _catastrophic_overfitting(cfg: TrainConfig, record: dict[str, Any], best: float) -> bool:
    """Single-step adversarial training can collapse within one epoch: FGSM accuracy rises while
    PGD accuracy falls to ~0 (Wong et al. 2020). The guard compares this epoch's PGD validation
    accuracy with the best so far; ``best`` below 0.05 is noise, not a level to fall from."""
    if cfg.co_guard is None or "val_robust_acc" not in record or best < 0.05:
        return False
    return record["val_robust_acc"] < cfg.co_guard * best


def _format(record: dict[str, Any]) -> str:
    keys = [
        "train_loss",
        "train_clean_acc",
        "train_adv_acc",
        "val_clean_acc",
        "val_robust_acc",
        "lr",
        "images_per_s",
    ]
    parts = [f"{k}={record[k]:.4g}" for k in keys if k in record]
    b = record.get("betas") or {}
    if b and record.get("mode", "").startswith("elastic"):
        vals = list(b.values())
        parts.append(f"beta=[{min(vals):.3f}..{max(vals):.3f}]")
    return f"epoch {record['epoch']} ({record['mode']}): " + " ".join(parts)


def train(
    config: TrainConfig | str | Path | None = None,
    overrides: tuple[str, ...] = (),
    resume: str | Path | None = None,
    progress: bool = True,
    allow_changes: tuple[str, ...] = (),
    trust_pickle: bool = False,
) -> Path:
    """Train from a config (object or YAML path plus ``key=value`` overrides), or resume a run
    folder; returns the run folder. On resume, ``overrides`` may change only operational keys
    (threads, log_every, device) unless the key is in ``allow_changes``; ``trust_pickle``
    allows reading an old ``train_state.pt`` that needs a full pickle (trusted files only)."""
    changes: dict[str, tuple[Any, Any]] = {}
    if resume is not None:
        resume = Path(resume)
        if not (resume / "config.yaml").exists():
            raise FileNotFoundError(
                f"cannot resume {resume}: no config.yaml there (expected a run folder "
                "written by edlnet train)"
            )
        if not resumable(resume):
            raise FileNotFoundError(
                f"cannot resume {resume}: no checkpoint in {resume / 'checkpoints'} yet "
                "(killed before the first epoch ended: start it again)"
            )
        cfg = load_config(resume / "config.yaml", overrides)
        # an old flat key names its new place (trades_beta -> objective_options.beta)
        allow_changes = tuple(new_key(k, cfg.objective) for k in allow_changes)
        changes = check_resume_changes(
            config_changes(load_config(resume / "config.yaml"), cfg), allow_changes
        )
    elif isinstance(config, TrainConfig):
        cfg = config
    else:
        cfg = load_config(config, overrides)
    trainer = Trainer(cfg, progress=progress, trust_pickle=trust_pickle)
    trainer.config_changes = changes
    return trainer.fit(resume)
