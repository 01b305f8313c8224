"""Transfer attack: craft on a surrogate model, evaluate on the target."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from .base import Attack, AttackResult
from .pgd import PGD
from .registry import register_attack
from .sparsefool import SparseFool


@register_attack
class Transfer(Attack):
    """Transfer (black-box) attack (Papernot et al., "Practical Black-Box Attacks against
    Machine Learning", AsiaCCS 2017): ``source`` is any attack built on a surrogate model
    (e.g. ``PGD(plain_resnet, eps="8/255")``); its adversarial examples are then judged on
    ``model``, the target. Norm and budget are the source attack's.

    It is one of the suite's gradient-masking checks: transfer from a plain network must not
    beat the white-box attacks on the target. ``run`` reports the source's own verdict in
    ``info["source_robust"]`` (robustness of the surrogate at the same points).
    """

    name = "transfer"
    norms = ("Linf", "L2", "L1", "L0")
    suite_name = "transfer"
    # It follows the surrogate's gradients, not the evaluated model's: the model's
    # reweighting-gradient policy cannot change it.
    follows_model_gradients = False

    def __init__(self, model: nn.Module, source: Attack) -> None:
        self.minimal_norm = source.minimal_norm  # a minimal-norm source may have no budget
        super().__init__(model, eps=source.eps_fraction, norm=source.norm, w_grad=None)
        self.source = source

    @classmethod
    def example(cls, model: nn.Module, norm: str, variant: int = 0) -> Transfer:
        """Transfer of the example PGD (SparseFool in L1) crafted on ``model`` itself, which
        stands in for the surrogate."""
        source = SparseFool if norm == "L1" else PGD
        return cls(model, source.example(model, norm))

    def _settings(self) -> dict[str, Any]:
        return {"source": self.source.settings(), "source_model": type(self.source.model).__name__}

    def _perturb(self, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, Any]]:
        # The target sits in eval mode here; the source attack puts its own model there too.
        crafted = self.source.run(x, y)
        return crafted.x_adv, {"source_robust": crafted.robust, "source_info": crafted.info}


def transfer_attack(source: Attack, target: nn.Module, x: Tensor, y: Tensor) -> AttackResult:
    """Craft with ``source`` (an attack on a surrogate) and evaluate on ``target``:
    returns an ``AttackResult`` whose ``robust`` is the target's."""
    return Transfer(target, source).run(x, y)


__all__ = ["Transfer", "transfer_attack"]
