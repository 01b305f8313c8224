"""Pursuit networks of the deep-pursuit paper (Cazenavette, Murdock & Lucey, CVPR 2021) as
CIFAR classifiers: L-TP, L-BP, DP and DP-res on ResNet-like stacks (Section 4).

The stack is a CIFAR ResNet layout: a 3×3 stem, then one stage per entry of ``widths``
(stride ``strides[i]`` in its first block), ``depth`` two-layer blocks per stage. The chain
variant feeds every layer the previous layer's code. The residual variant uses Eq. 16's skip
blocks: each block's first layer reconstructs the residual stream, the sum of the stem's code
and every earlier block's output passed through parameter-free shortcuts (identity, or
subsampling with zero channels appended across strided stages), and the classifier reads the
final stream. Both variants have exactly the same learned parameters, as in the paper's
chain-versus-residual comparisons.

All models take images in [0, 1] (normalization is their first module) and are built by
``create_model``; ``lam``, ``beta`` and ``nonneg`` reach them as dictionary options.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..layers.pursuit import Edge, PursuitLayer, PursuitStack, PursuitTrace, normalized_gram
from .base import Classifier
from .normalization import normalization_for
from .registry import register_model

DEFAULT_N_ITERS = 2  # iterations after the feed-forward pass: the paper's T = 3


def resnet_like_topology(
    widths: Sequence[int], strides: Sequence[int], depth: int, residual: bool, in_channels: int = 3
) -> tuple[list[tuple[int, int, int]], list[list[Edge]], list[Edge]]:
    """Layer shapes ``(in, out, stride)``, input edges per layer and the classifier's input
    edges of the stack described in the module docstring."""
    if len(widths) != len(strides) or not widths:
        raise ValueError(
            f"widths {tuple(widths)} and strides {tuple(strides)} must be non-empty "
            "and of equal length (one per stage)"
        )
    if depth < 1:
        raise ValueError(f"depth (blocks per stage) must be >= 1, got {depth}")
    if residual and any(b < a for a, b in zip(widths, widths[1:])):
        raise ValueError(
            f"residual pursuit needs non-decreasing widths (zero-padded shortcuts), got {tuple(widths)}"
        )
    specs = [(in_channels, widths[0], 1)]
    parents: list[list[Edge]] = [[Edge(0)]]
    stream = [(1, 1)]  # residual stream: (source layer, stride accumulated since it joined)
    channels, last = widths[0], 1
    for width, stride in zip(widths, strides):
        for b in range(depth):
            s = stride if b == 0 else 1
            first = len(specs) + 1
            specs += [(channels, width, s), (width, width, 1)]
            parents.append([Edge(k, acc, channels) for k, acc in stream] if residual else [Edge(last)])
            parents.append([Edge(first)])
            last = first + 1
            stream = [(k, acc * s) for k, acc in stream] + [(last, 1)]
            channels = width
    outputs = [Edge(k, acc, channels) for k, acc in stream] if residual else [Edge(last)]
    return specs, parents, outputs


class PursuitNet(Classifier):
    """normalize → pursuit stack (conv–BN–ReLU layers read as sparse coding) → pooled linear head.

    Args:
        method: ``"thresholding"`` (L-TP), ``"layered"`` (L-BP) or ``"deep"`` (DP).
        residual: skip connections (Eq. 16) instead of a chain.
        widths, strides, depth: stage widths, first-block strides, blocks per stage.
        n_iters: pursuit iterations after the feed-forward pass (figures' T = n_iters + 1).
        lam: initial λ (ℓ1 weight = −bias, kept ≥ 0).   beta: initial step scale β ∈ (0, 1].
        learn_step: learn β per layer.   alpha, learn_alpha: DP extrapolation (Eq. 14).
        nonneg: non-negative codes (ReLU); ``False`` uses two-sided soft thresholding.
        batch_norm: BatchNorm with scale/offset fixed from the feed-forward pass.
        stats: normalization statistics (``"cifar10"``, ``"cifar100"``, ...).
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        method: str,
        residual: bool = False,
        widths: Sequence[int] = (16, 32, 64),
        strides: Sequence[int] = (1, 2, 2),
        depth: int = 1,
        n_iters: int = DEFAULT_N_ITERS,
        lam: float = 0.1,
        beta: float = 1.0,
        learn_step: bool = True,
        alpha: float = 0.0,
        learn_alpha: bool = False,
        nonneg: bool = True,
        batch_norm: bool = True,
        stats: str | None = "cifar10",
    ) -> None:
        super().__init__()
        self.normalize = normalization_for(stats)
        specs, parents, outputs = resnet_like_topology(widths, strides, depth, residual)
        learn = learn_step and method != "thresholding"
        layers = [
            PursuitLayer(cin, cout, 3, s, 1, batch_norm=batch_norm, lam=lam, beta=beta, learn_step=learn)
            for cin, cout, s in specs
        ]
        self.pursuit = PursuitStack(layers, parents, outputs, method, n_iters, alpha, learn_alpha, nonneg)
        self.num_features = int(widths[-1])
        self.fc = torch.nn.Linear(self.num_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pursuit(x)

    def trace(self, x: torch.Tensor) -> PursuitTrace:
        """Per-iteration, per-layer measurements of the pursuit for images ``x`` in [0, 1].
        Runs in the current mode (training mode updates BatchNorm statistics)."""
        _, trace = self.pursuit.solve(self.normalize(x), trace=True)
        assert trace is not None
        return trace

    def reconstruction_errors(self, x: torch.Tensor, relative: bool = True) -> torch.Tensor:
        """Figure 8: the batch-mean reconstruction error of each layer after each iteration,
        shape (n_iters + 1, n_layers); ‖v_j − B̃_j w_j‖/‖v_j‖ or, with ``relative=False``,
        ‖v_j − B̃_j w_j‖²."""
        trace = self.trace(x)
        errors = trace.relative_error() if relative else trace.residual_sq
        return errors.mean(-1)

    def global_dictionary(self, input_size: Sequence[int] = (8, 8)) -> torch.Tensor:
        """The global structured dictionary (Eqs. 12, 16) for (3, *input_size) inputs, with the
        eval-mode BatchNorm scale folded in; a small probe size keeps it tractable."""
        return self.pursuit.global_dictionary((3, *input_size))

    def global_gram(self, input_size: Sequence[int] = (8, 8)) -> torch.Tensor:
        """Gram matrix of the unit-normalized global dictionary: the deep frame potential is its
        squared Frobenius norm, the mutual coherence its largest off-diagonal |entry| ([14])."""
        return normalized_gram(self.global_dictionary(input_size))


# Narrow stages keep every layer at a size the contract tests build quickly.
SMALL = {"widths": (4, 8, 8)}

# The entries below build their own dictionaries (builds_own_dictionaries=True): create_model
# hands dictionary options (lam, beta, nonneg) to them instead of converting nn.Conv2d modules,
# which these models do not have.


@register_model(builds_own_dictionaries=True, small_options=SMALL)
def layered_thresholding_pursuit(num_classes: int = 10, residual: bool = False, **kw: Any) -> PursuitNet:
    """L-TP: the feed-forward conv–BN–ReLU network read as layered thresholding pursuit
    (Eq. 4); ``residual=True`` is its skip-connected counterpart (Figure 5)."""
    return PursuitNet(num_classes, method="thresholding", residual=residual, n_iters=0, **kw)


@register_model(builds_own_dictionaries=True, small_options=SMALL)
def layered_basis_pursuit(num_classes: int = 10, **kw: Any) -> PursuitNet:
    """L-BP (Algorithm 1, [17]): ``n_iters`` local non-negative ISTA steps per layer."""
    return PursuitNet(num_classes, method="layered", residual=False, **kw)


@register_model(builds_own_dictionaries=True, small_options=SMALL)
def deep_pursuit(num_classes: int = 10, **kw: Any) -> PursuitNet:
    """DP (Algorithm 2): ``n_iters`` global block-coordinate sweeps over a chain network."""
    return PursuitNet(num_classes, method="deep", residual=False, **kw)


@register_model(builds_own_dictionaries=True, small_options=SMALL)
def deep_pursuit_residual(num_classes: int = 10, **kw: Any) -> PursuitNet:
    """DP-res (Section 3.4): deep pursuit over the residual network's global dictionary."""
    return PursuitNet(num_classes, method="deep", residual=True, **kw)
