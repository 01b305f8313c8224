"""Dictionary-learning layers: the RISTA core, the DictConv2d module and gradient policies."""

from .conv_ops import dict_adjoint, dict_apply
from .dict_conv import DictConv2d, betas, dict_layers, set_mode
from .gradient_policy import has_w_grad_policy, w_grad_policy
from .rista import RistaTerms, rista
from .thresholds import nonneg_soft_threshold, soft_threshold

__all__ = [
    "DictConv2d",
    "RistaTerms",
    "betas",
    "dict_adjoint",
    "dict_apply",
    "dict_layers",
    "has_w_grad_policy",
    "nonneg_soft_threshold",
    "rista",
    "set_mode",
    "soft_threshold",
    "w_grad_policy",
]
