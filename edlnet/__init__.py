"""edlnet: adversarially robust classifiers built from dictionary-learning layers.

Quick tour::

    import edlnet
    model = edlnet.create_model("resnet18", dl="vanilla", width=16)   # an EDLNet-18
    edlnet.set_mode(model, "elastic")                                  # two-stage switch
    edlnet.save(model, "ckpt"); model = edlnet.load("ckpt")
    record = edlnet.evaluate(model, x, y, suite="quick")               # attacks + masking checks
    record = edlnet.benchmark(model)                                   # RobustBench protocol
"""

from ._version import __version__
from .checkpoint import CheckpointError, load, save
from .layers import DictConv2d, betas, dict_layers, rista, set_mode, w_grad_policy
from .models import capture_layers, convert, create_model, list_models, register_model

__all__ = [
    "CheckpointError",
    "DictConv2d",
    "__version__",
    "benchmark",
    "betas",
    "capture_layers",
    "convert",
    "create_model",
    "dict_layers",
    "evaluate",
    "list_models",
    "load",
    "register_model",
    "rista",
    "save",
    "set_mode",
    "w_grad_policy",
]


def __getattr__(name: str):
    # The evaluation package imports the attack suite and the reference AutoAttack; load it
    # only when asked for. The package is ``edlnet.evaluation``, so importing it never rebinds
    # the names ``edlnet.evaluate`` and ``edlnet.benchmark``, which stay the functions.
    if name in ("evaluate", "benchmark"):
        from . import evaluation

        value = getattr(evaluation, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edlnet' has no attribute {name!r}")
