"""Attack suite: every attack is ``Attack(model, *, eps, norm, w_grad=None, ...)`` and
``attack(x, y) -> x_adv`` (``attack.run(x, y)`` also returns per-example robustness and
attack-specific info). Inputs are images in [0, 1]; budgets are in pixel units.

The AutoAttack and Square wrappers run the reference implementation
(PyPI ``pyautoattack``, a dependency); it is imported only when they run.

Adding an attack is one file: copy ``fgsm.py``, rename the class and set its class attributes
(``name``, ``suite_name``, ``follows_model_gradients``, ``norms``, ``example_settings``), write
``__init__``, ``_perturb`` and ``_settings``. The registry imports every module of this package on
its first lookup, and ``@register_attack`` makes the class available to suite files
(``attack: <suite_name>``) and the contract tests (tests/test_attacks_contract.py) run it.
"""

from .adaptive import Adaptive, adaptive
from .autoattack import REFERENCE_ATTACKS, AutoAttack
from .base import Attack, AttackResult, EpsLike, attack_mode, parse_eps, perturbation_norm, project, robust_at
from .bpda import SurrogatePGD, make_twin
from .cw import CarliniWagnerL2, cw_accuracy
from .eot import EOTPGD, is_randomized
from .fgsm import FGSM
from .losses import cross_entropy, margin
from .pgd import PGD
from .registry import ATTACKS, register_attack
from .sparsefool import SparseFool
from .square import Square
from .structure_loss import ResidualPGD
from .transfer import Transfer, transfer_attack

__all__ = [
    "ATTACKS",
    "EOTPGD",
    "FGSM",
    "PGD",
    "REFERENCE_ATTACKS",
    "Adaptive",
    "Attack",
    "AttackResult",
    "AutoAttack",
    "CarliniWagnerL2",
    "EpsLike",
    "ResidualPGD",
    "SparseFool",
    "Square",
    "SurrogatePGD",
    "Transfer",
    "adaptive",
    "attack_mode",
    "cross_entropy",
    "cw_accuracy",
    "is_randomized",
    "make_twin",
    "margin",
    "parse_eps",
    "perturbation_norm",
    "project",
    "register_attack",
    "robust_at",
    "transfer_attack",
]
