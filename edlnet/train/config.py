"""Training configuration: every hyperparameter in one place, loaded from YAML with overrides.

``TrainConfig`` holds the defaults of the paper's schedule (SGD momentum 0.9, lr 0.1 divided by
10 at epochs 100 and 150 of 200, batch 128, weight decay 2e-5; two-stage: Vanilla DL for 150
epochs then Elastic DL for 50). A YAML file sets any subset of the fields; ``--set key=value``
overrides them (values parsed as YAML: ``--set lr=0.05 --set dl_options.lam=0.2``).

``objective`` names a registered objective (:mod:`edlnet.train.objectives`) and
``objective_options`` holds that objective's own settings (``objective_options: {beta: 2.0}``
for TRADES); a ``TrainConfig`` always holds all of them, defaults filled in, so ``config.yaml``
records every value a run used. An unknown option is an error that lists the objective's
options. The settings every adversarial objective shares stay flat: the threat model
(``attack_norm``, ``eps``) and the inner maximization (``attack_steps``, ``attack_alpha``,
``attack_mode``, ``attack_w_grad``).

Old configs and run folders, written when each objective's settings were flat fields, still
load: an old key ``<objective>_<option>`` (``trades_beta``, ``mart_beta``, ``hat_gamma``,
``hat_beta``, ``hat_h``, ``hat_std_model``) becomes ``objective_options.<option>`` when the
config's objective is ``<objective>`` (``trades_beta: 6`` -> ``objective_options: {beta: 6}``)
and is dropped otherwise (the old code did not read it either), with one ``FutureWarning``
naming each old key and its new place (:mod:`edlnet.train.legacy`).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..records import yaml_number
from .adversary import Adversary
from .legacy import OLD_OBJECTIVE_FIELDS, OptionAssignments
from .objectives import OBJECTIVES, OptionsError, options_dict, parse_options

if TYPE_CHECKING:
    from .objectives.base import Objective


@dataclass
class TrainConfig:
    # what to train
    model: str = "resnet18"
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {width: 16}
    dl: str | None = "vanilla"  # None | vanilla | robust | elastic (mode at the start)
    dl_layers: int | None = None  # replace only the first N convolutions
    dl_options: dict[str, Any] = field(default_factory=dict)  # n_steps, lam, beta, eps, ...
    switch_to_elastic_epoch: int | None = 150  # two-stage: set_mode(model, "elastic") here
    elastic_beta: float | None = None  # β at the switch (None: the layers' own initial β)

    # data
    dataset: str = "cifar10-sample"
    data_root: str | None = None
    train_subset: int | None = None  # first N training images (CPU-scale runs)
    val_size: int = 500  # held out from train, seeded and stratified
    test_subset: int | None = None
    augment: str = "crop_flip"  # crop_flip | none
    cutout: int = 0  # Cutout size (0: off)
    mixup_alpha: float = 0.0  # Mixup Beta(α, α) (0: off)
    extra_data: str | None = None  # .npz of extra (e.g. generated) images with labels
    extra_ratio: float = 0.0  # fraction of each batch drawn from extra_data

    # objective
    objective: str = "standard"  # a registered objective: one module of edlnet/train/objectives/
    objective_options: dict[str, Any] = field(default_factory=dict)  # its settings, e.g. {beta: 6.0}
    attack_norm: str = "Linf"  # Linf | L2 threat model of the inner maximization
    eps: str = "8/255"  # budget of the inner maximization (pixel units)
    attack_steps: int = 10
    attack_alpha: str = "2/255"
    attack_mode: str = "eval"  # mode of the model during the inner maximization
    attack_w_grad: str | None = None  # reweighting gradient policy during the maximization
    l1_penalty: float = 0.0  # robust-overfitting baselines (Table 3)
    l2_penalty: float = 0.0

    # optimization
    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 2e-5
    schedule: str = "step"  # step | cosine | constant
    milestones: list[int] = field(default_factory=lambda: [100, 150])
    gamma: float = 0.1
    warmup_epochs: int = 0
    grad_clip: float | None = None

    # evaluation during training
    val_every: int = 1
    val_attack_steps: int = 10  # PGD-k (fp32, eval mode) on the validation split
    best_metric: str | None = None  # val_robust_acc (adversarial) / val_clean_acc (standard)
    early_stop_patience: int | None = None  # epochs without a better best_metric
    co_guard: float | None = None  # stop when val_robust_acc < co_guard × its best so far
    # (catastrophic overfitting of single-step training)

    # execution
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast; eval is always fp32)
    channels_last: bool = False
    # RISTA implementation of the training steps (edlnet.layers.impl_choice): auto = "compiled"
    # for bf16/fp16 steps where the device has native low-precision convolutions and can compile,
    # else "fast"; validation runs each layer's own impl, in fp32
    layer_impl: str = "auto"  # auto | fast | compiled | reference
    compile: bool | str = False  # torch.compile the model: true (inductor) or a backend name
    threads: int | None = None  # torch.set_num_threads on CPU
    out_dir: str = "runs"
    name: str | None = None  # run folder name (default: derived from the config)
    log_every: int = 20  # steps between plain log lines (non-terminal output)

    def __post_init__(self) -> None:
        # the objective's options, checked and completed with its defaults
        if not isinstance(self.objective, str) or self.objective not in OBJECTIVES:
            raise ConfigError(f"objective={self.objective!r} is not one of {tuple(OBJECTIVES.names())}")
        try:
            self.objective_options = options_dict(parse_options(self.objective, self.objective_options))
        except OptionsError as e:
            raise ConfigError(str(e)) from None

    def eps_value(self, key: str = "eps") -> float:
        return float(Fraction(str(getattr(self, key))))

    def objective_class(self) -> type[Objective]:
        """The registered class of ``objective``."""
        return OBJECTIVES.get(self.objective)

    def adversary(self) -> Adversary:
        """The inner maximization's settings (used by the adversarial objectives)."""
        return Adversary(
            norm=self.attack_norm,
            eps=self.eps_value(),
            alpha=self.eps_value("attack_alpha"),
            steps=self.attack_steps,
            training_mode=self.attack_mode == "train",
            w_grad=self.attack_w_grad,
        )

    def resolved_best_metric(self) -> str:
        if self.best_metric:
            return self.best_metric
        return "val_robust_acc" if self.objective_class().adversarial else "val_clean_acc"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    """A configuration file or override is malformed or names a key that does not exist."""


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
CHOICES = {
    "dl": (None, "vanilla", "robust", "elastic"),
    "schedule": ("step", "cosine", "constant"),
    "precision": ("fp32", "bf16", "fp16"),
    "attack_mode": ("eval", "train"),
    "attack_norm": ("Linf", "L2"),
    "augment": ("crop_flip", "none"),
    "attack_w_grad": (None, "exact", "detached"),
    "layer_impl": ("auto", "fast", "compiled", "reference"),
}


def _set(data: dict[str, Any], options: OptionAssignments, dotted: str, value: Any, origin: str) -> None:
    top, _, rest = dotted.partition(".")
    # Objective options (and the old flat keys that set them) are kept apart from data, in the
    # order they were given: they resolve once the final objective is known (legacy.py).
    if top in OLD_OBJECTIVE_FIELDS:
        if rest:
            raise ConfigError(f"{origin}: {top} is a single value, cannot set {dotted}")
        options.set_old(top, value)
        return
    if top == "objective_options":
        if rest:
            options.set(rest, value)
            return
        try:
            options.set_all(value)
        except ValueError as e:
            raise ConfigError(f"{origin}: {e}") from None
        return
    if top not in FIELDS:
        close = [k for k in FIELDS if k.startswith(top[:3])]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"{origin}: unknown config key {top!r}{hint}; valid keys: {', '.join(FIELDS)}")
    if rest:
        sub = data.setdefault(top, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"{origin}: {top} is not a mapping, cannot set {dotted}")
        sub[rest] = value
    else:
        data[top] = value


def validate(cfg: TrainConfig, origin: str = "config") -> TrainConfig:
    if cfg.objective not in OBJECTIVES:
        raise ConfigError(f"{origin}: objective={cfg.objective!r} is not one of {tuple(OBJECTIVES.names())}")
    try:
        cfg.objective_class().check_options(parse_options(cfg.objective, cfg.objective_options))
    except OptionsError as e:
        raise ConfigError(f"{origin}: {e}") from None
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"{origin}: {key}={getattr(cfg, key)!r} is not one of {allowed}")
    try:
        for key in ("eps", "attack_alpha"):
            Fraction(str(getattr(cfg, key)))
    except (ValueError, ZeroDivisionError):
        raise ConfigError(
            f"{origin}: {key}={getattr(cfg, key)!r} is not a number or fraction like 8/255"
        ) from None
    if not (isinstance(cfg.compile, bool) or (isinstance(cfg.compile, str) and cfg.compile)):
        raise ConfigError(
            f"{origin}: compile must be true, false or a torch.compile backend name "
            f"(inductor, aot_eager, eager), got {cfg.compile!r}"
        )
    own = (cfg.dl_options or {}).get("impl")
    if own not in (None, "fast") and cfg.layer_impl not in ("auto", own):
        raise ConfigError(
            f"{origin}: layer_impl={cfg.layer_impl!r} applies to layers built with impl='fast', but "
            f"dl_options.impl={own!r}; set only one of them"
        )
    if cfg.co_guard is not None and not 0 < cfg.co_guard < 1:
        raise ConfigError(
            f"{origin}: co_guard must be a fraction in (0, 1) of the best validation robust "
            f"accuracy (0.5 is usual), got {cfg.co_guard}"
        )
    if cfg.co_guard is not None and cfg.val_attack_steps < 1:
        raise ConfigError(f"{origin}: co_guard watches val_robust_acc, which needs val_attack_steps >= 1")
    if cfg.batch_size < 1 or cfg.epochs < 1:
        raise ConfigError(f"{origin}: batch_size and epochs must be >= 1")
    if cfg.extra_ratio and not cfg.extra_data:
        raise ConfigError(f"{origin}: extra_ratio={cfg.extra_ratio} needs extra_data=<file.npz>")
    if not 0 <= cfg.extra_ratio < 1:
        raise ConfigError(f"{origin}: extra_ratio must be in [0, 1), got {cfg.extra_ratio}")
    return cfg


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a YAML config (optional) and apply ``key=value`` overrides; validate everything."""
    data: dict[str, Any] = {}
    options = OptionAssignments()
    origin = "config"
    if path is not None:
        path = Path(path)
        origin = str(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist (configs live in configs/*.yaml)")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must be a mapping of config keys")
        for k, v in loaded.items():
            _set(data, options, str(k), v, origin)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, _, raw = item.partition("=")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        _set(data, options, key.strip(), value, f"--set {item}")
    for key in ("eps", "attack_alpha"):
        if key in data:
            data[key] = str(data[key])
    for key, value in data.items():
        try:
            data[key] = yaml_number(value, FIELDS[key].type if key in FIELDS else "")
        except ValueError as e:
            raise ConfigError(f"{origin}: {key} {e}") from None
    objective = data.get("objective", FIELDS["objective"].default)
    data["objective_options"], note = options.resolve(objective)
    if note:
        warnings.warn(f"{origin}: {note}", FutureWarning, stacklevel=2)
    try:
        cfg = TrainConfig(**data)
    except ConfigError as e:
        raise ConfigError(f"{origin}: {e}") from None
    return validate(cfg, origin)
