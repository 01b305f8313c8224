"""Training: objectives, the loop, schedules, checkpoints and resume, distributed runs."""

from .config import ConfigError, TrainConfig, load_config
from .loop import Trainer, TrainingDiverged, lr_at, train
from .objectives import OBJECTIVES, register_objective

__all__ = [
    "OBJECTIVES",
    "ConfigError",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "load_config",
    "lr_at",
    "register_objective",
    "train",
]
