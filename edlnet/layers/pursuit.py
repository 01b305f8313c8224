"""Pursuit networks (Cazenavette, Murdock & Lucey, "Architectural Adversarial Robustness: The
Case for Deep Pursuit", CVPR 2021): a network's activations read as non-negative sparse codes.

Notation (paper → code). Layer j has a dictionary B_j whose transpose is the layer's
convolution: B_jᵀ = ``dict_apply`` with weight W_j and B_j = ``dict_adjoint`` (its exact
adjoint). Codes are w_j, with w_0 = x. Layer j reconstructs the signal

    v_j = Σ_{k ∈ parents(j)} B_jkᵀ w_k                                        (Eqs. 16–17)

where B_jkᵀ is the parameter-free :class:`Edge` operator P: the identity for the chain edge
k = j − 1 and for same-shape skips, otherwise stride-s subsampling with zero channels appended
(the "option A" shortcut of CIFAR ResNets), so chain and residual networks have the same
learned parameters, as in the paper's comparisons.

BatchNorm (Section 4): the feed-forward pass computes each layer's BN statistics; the per-channel
scale s_j = g_j/√(var_j + ε) and offset o_j = −mean_j·s_j are then fixed for every iteration.
They are folded into the problem: the effective dictionary is B̃_j = B_j·diag(s_j) (the weight
scaled per output channel) and the offset is a linear term −⟨o_j, w_j⟩. The only learned bias is
−λ_j with λ_j ≥ 0 (softplus-parametrized), the ℓ1 weight. Layer j's problem is

    F_j(w; v) = ½‖v − B̃_j w‖² + λ_j‖w‖₁ − ⟨o_j, w⟩,   w ≥ 0                 (Eqs. 3, 7)

and one proximal-gradient step of size γ on it is

    w ← φ̃_{γλ}(w − γ B̃ᵀ(B̃ w − v) + γ o)                                      (Eqs. 8, 10)

(threshold γλ: the exact proximal operator of γλ‖·‖₁; the paper writes φ̃_λ). One such step
from w = 0 with γ = 1 is conv → BatchNorm → ReLU with bias −λ: the feed-forward layer
(Eqs. 4, 9). Steps are γ_j = 1/(β_j L_j) with L_j a conservative Lipschitz bound and
β_j ∈ (0, 1] learnable (Section 3.2).

Solvers (pure functions of the input, the fixed :class:`LayerOp` of every layer and the graph):
:func:`layered_thresholding_pursuit` (L-TP, the feed-forward pass), :func:`layered_basis_pursuit`
(L-BP, Algorithm 1: local iterations layer by layer), :func:`deep_pursuit` (DP/DP-res,
Algorithm 2: global block-coordinate iterations with extrapolation, Eqs. 13–15 and 18).
:class:`PursuitLayer` and :class:`PursuitStack` wrap them as modules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .conv_ops import dict_adjoint, dict_apply, pair
from .power_iteration import operator_norm, refresh_vector
from .thresholds import threshold

IntPair = tuple[int, int]
Scalar = float | torch.Tensor
METHODS = ("thresholding", "layered", "deep")
PARAM_CLIP = 1e-3  # sigmoid never reaches 0 or 1: initial β and α are clipped to [0.001, 0.999]


# -- graph: which codes each layer reconstructs -----------------------------------------------
class Edge(NamedTuple):
    """A parameter-free block B_jkᵀ of the global dictionary (Eq. 16) from node ``src``
    (0 is the input x, k ≥ 1 the code of layer k): subsample by ``stride``, then append zero
    channels up to ``channels`` (``None``: keep them). Its operator norm is 1."""

    src: int
    stride: int = 1
    channels: int | None = None


def edge_apply(edge: Edge, w: torch.Tensor) -> torch.Tensor:
    """P w."""
    if edge.stride > 1:
        w = w[..., :: edge.stride, :: edge.stride]
    extra = (edge.channels or w.shape[1]) - w.shape[1]
    if extra < 0:
        raise ValueError(
            f"an edge from node {edge.src} cannot shrink {w.shape[1]} channels to {edge.channels}"
        )
    return F.pad(w, (0, 0, 0, 0, 0, extra)) if extra else w


def edge_adjoint(edge: Edge, r: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Pᵀ r for a source code of shape ``shape`` (…, C, H, W): drop the appended channels and
    put the samples back on the stride grid (zeros elsewhere)."""
    c, h, w = shape[-3:]
    r = r[:, :c]
    if edge.stride == 1:
        return r
    s = edge.stride
    cols = r.new_zeros(r.shape[0], c, r.shape[2], w).slice_scatter(r, dim=3, step=s)
    return r.new_zeros(r.shape[0], c, h, w).slice_scatter(cols, dim=2, step=s)


def check_graph(parents: Sequence[Sequence[Edge]], n_layers: int) -> None:
    """Layers are in topological order: every edge into layer j starts at x (0) or a layer < j."""
    if len(parents) != n_layers:
        raise ValueError(f"got input edges for {len(parents)} layers, expected {n_layers}")
    for j, edges in enumerate(parents, 1):
        srcs = [e.src for e in edges]
        if not srcs:
            raise ValueError(f"layer {j} has no input edge")
        if any(not 0 <= s < j for s in srcs) or len(set(srcs)) != len(srcs):
            raise ValueError(
                f"layer {j}: input edges must come from distinct earlier nodes "
                f"(0 = input, k < {j}), got sources {srcs}"
            )


def children_of(parents: Sequence[Sequence[Edge]]) -> list[list[tuple[int, Edge]]]:
    """For every node k (0 = input) the layers that reconstruct its code, with the edge."""
    children: list[list[tuple[int, Edge]]] = [[] for _ in range(len(parents) + 1)]
    for j, edges in enumerate(parents, 1):
        for e in edges:
            children[e.src].append((j, e))
    return children


def gather(
    edges: Sequence[Edge], nodes: Sequence[torch.Tensor], override: tuple[int, torch.Tensor] | None = None
) -> torch.Tensor:
    """v = Σ_e P_e w_src (Eq. 17's input), optionally with one node's value replaced."""
    total = None
    for e in edges:
        w = override[1] if override is not None and override[0] == e.src else nodes[e.src]
        term = edge_apply(e, w)
        if total is not None and term.shape != total.shape:
            raise ValueError(
                f"edges into a layer disagree in shape: {tuple(total.shape)} vs "
                f"{tuple(term.shape)} from node {e.src}"
            )
        total = term if total is None else total + term
    assert total is not None  # check_graph guarantees at least one edge
    return total


# -- one layer's fixed operator --------------------------------------------------------------
class LayerOp(NamedTuple):
    """Everything the iterations of one layer need, fixed after the feed-forward pass.

    ``weight``: the effective dictionary B̃ᵀ as a conv weight (BN scale folded in);
    ``offset``: o (per channel) or ``None``; ``lam``: λ ≥ 0 (per channel or scalar);
    ``step``: γ."""

    weight: torch.Tensor
    offset: torch.Tensor | None = None
    lam: Scalar = 0.0
    step: Scalar = 1.0
    stride: IntPair = (1, 1)
    padding: IntPair = (0, 0)


def _channel(t: Scalar | None) -> Scalar:
    """Per-channel vectors broadcast over (N, C, H, W)."""
    if t is None:
        return 0.0
    return t.view(1, -1, 1, 1) if isinstance(t, torch.Tensor) and t.dim() == 1 else t


def analysis(op: LayerOp, v: torch.Tensor) -> torch.Tensor:
    """B̃ᵀ v."""
    return dict_apply(v, op.weight, op.stride, op.padding)


def synthesis(op: LayerOp, w: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """B̃ w, for signals of spatial size ``size``."""
    return dict_adjoint(w, op.weight, size, op.stride, op.padding)


def prox(op: LayerOp, u: torch.Tensor, nonneg: bool = True, step: Scalar | None = None) -> torch.Tensor:
    """argmin_w ½‖w − u‖² + γ(λ‖w‖₁ − ⟨o, w⟩) [+ w ≥ 0] = φ̃_{γλ}(u + γo)."""
    step = op.step if step is None else step
    return threshold(u + step * _channel(op.offset), step * _channel(op.lam), nonneg)


def layer_terms(
    op: LayerOp, v: torch.Tensor, w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example ‖v − B̃w‖², ‖v‖², ‖w‖₁ and the objective F_j(w; v) of Eq. 7."""
    res_sq = (v - synthesis(op, w, v.shape[-2:])).flatten(1).pow(2).sum(1)
    sig_sq = v.flatten(1).pow(2).sum(1)
    code_l1 = w.abs().flatten(1).sum(1)
    penalty = (w.abs() * _channel(op.lam) - w * _channel(op.offset)).flatten(1).sum(1)
    return res_sq, sig_sq, code_l1, 0.5 * res_sq + penalty


class PursuitTrace(NamedTuple):
    """Per-iteration, per-layer, per-example measurements; each tensor is (T + 1, l, N), row t
    after iteration t (row 0: the feed-forward initialization).

    For L-BP, layer j's rows are its local iterates against the final code of the layers before
    it; ``objective`` is then its local problem (Eq. 7). For deep pursuit, row t is the global
    state after sweep t and ``objective.sum(1)`` is the global objective (Eq. 11/12)."""

    residual_sq: torch.Tensor  # ‖v_j − B̃_j w_j‖²
    signal_sq: torch.Tensor  # ‖v_j‖²
    code_l1: torch.Tensor  # ‖w_j‖₁
    objective: torch.Tensor  # ½‖v_j − B̃_j w_j‖² + λ_j‖w_j‖₁ − ⟨o_j, w_j⟩

    def relative_error(self) -> torch.Tensor:
        """‖v_j − B̃_j w_j‖ / ‖v_j‖ (Figure 8's per-layer reconstruction error)."""
        return (self.residual_sq / self.signal_sq.clamp_min(1e-30)).sqrt()


def _stack_trace(rows: list[list[tuple[torch.Tensor, ...]]]) -> PursuitTrace:
    """rows[t][j] = layer_terms(...) → PursuitTrace of (T + 1, l, N) tensors."""
    return PursuitTrace(*[torch.stack([torch.stack([r[i] for r in row]) for row in rows]) for i in range(4)])


# -- the solvers ------------------------------------------------------------------------------
def layered_thresholding_pursuit(
    x: torch.Tensor, ops: Sequence[LayerOp], parents: Sequence[Sequence[Edge]], nonneg: bool = True
) -> list[torch.Tensor]:
    """L-TP, the feed-forward pass: w_j = φ̃_λj(B̃_jᵀ v_j + o_j) (Eqs. 4, 9, 17)."""
    check_graph(parents, len(ops))
    nodes = [x]
    for j, op in enumerate(ops, 1):
        v = gather(parents[j - 1], nodes)
        nodes.append(prox(op, analysis(op, v), nonneg, step=1.0))
    return nodes[1:]


def _initial_codes(
    x: torch.Tensor,
    ops: Sequence[LayerOp],
    parents: Sequence[Sequence[Edge]],
    init: Sequence[torch.Tensor] | str,
    nonneg: bool,
) -> list[torch.Tensor]:
    if isinstance(init, str):
        if init == "feedforward":
            return layered_thresholding_pursuit(x, ops, parents, nonneg)
        if init == "zeros":
            nodes = [x]
            for j, op in enumerate(ops, 1):
                nodes.append(torch.zeros_like(analysis(op, gather(parents[j - 1], nodes))))
            return nodes[1:]
        raise ValueError(f"init must be 'feedforward', 'zeros' or a list of codes, got {init!r}")
    if len(init) != len(ops):
        raise ValueError(f"init has {len(init)} codes for {len(ops)} layers")
    return list(init)


def layered_basis_pursuit(
    x: torch.Tensor,
    ops: Sequence[LayerOp],
    parents: Sequence[Sequence[Edge]],
    n_iters: int,
    *,
    init: Sequence[torch.Tensor] | str = "feedforward",
    nonneg: bool = True,
    trace: bool = False,
) -> list[torch.Tensor] | tuple[list[torch.Tensor], PursuitTrace]:
    """L-BP (Algorithm 1): layer by layer, ``n_iters`` proximal-gradient steps (Eq. 10) on
    F_j(·; v_j) where v_j is built from the *final* codes of the layers before j, started at
    the feed-forward code w_j^[0] (Eq. 9). ``n_iters = 0`` is L-TP."""
    if n_iters < 0:
        raise ValueError(f"n_iters must be >= 0, got {n_iters}")
    check_graph(parents, len(ops))
    codes = _initial_codes(x, ops, parents, init, nonneg)
    nodes = [x]
    per_layer: list[list[tuple[torch.Tensor, ...]]] = []
    for j, op in enumerate(ops, 1):
        v = gather(parents[j - 1], nodes)
        w = codes[j - 1]
        rows = [layer_terms(op, v, w)] if trace else []
        for _ in range(n_iters):
            r = v - synthesis(op, w, v.shape[-2:])
            w = prox(op, w + op.step * analysis(op, r), nonneg)
            if trace:
                rows.append(layer_terms(op, v, w))
        nodes.append(w)
        per_layer.append(rows)
    if not trace:
        return nodes[1:]
    return nodes[1:], _stack_trace([list(r) for r in zip(*per_layer)])


def deep_pursuit(
    x: torch.Tensor,
    ops: Sequence[LayerOp],
    parents: Sequence[Sequence[Edge]],
    n_iters: int,
    *,
    alphas: Scalar | Sequence[Scalar] = 0.0,
    init: Sequence[torch.Tensor] | str = "feedforward",
    nonneg: bool = True,
    trace: bool = False,
) -> list[torch.Tensor] | tuple[list[torch.Tensor], PursuitTrace]:
    """Deep pursuit (Algorithm 2): ``n_iters`` global sweeps of block-coordinate proximal
    gradient over all layers, in order, on the global objective Σ_j F_j (Eqs. 11–12, with skip
    connections Eq. 16). Block j's update (Eq. 13) is

        ŵ_j = w_j^[t−1] + α_j (w_j^[t−1] − w_j^[t−2])                             (Eq. 14)
        ĝ_j = B̃_jᵀ(B̃_j ŵ_j − v_j) + Σ_{children c} P_cjᵀ(v_c − B̃_c w_c^[t−1])   (Eqs. 15, 18)
        w_j^[t] = φ̃_{γλ}(ŵ_j − γ_j ĝ_j + γ_j o_j)                                 (Eq. 13)

    where v_j uses the codes already updated in this sweep and v_c has ŵ_j in place of w_j.
    With α = 0 and γ_j ≤ 1/L_j, L_j = ‖B̃_j‖² + Σ_children ‖P_cj‖², the global objective never
    increases. From ``init="zeros"`` one sweep with γ = 1 and α = 0 on a chain is exactly the
    feed-forward pass, which is why the default initialization is that pass.
    """
    if n_iters < 0:
        raise ValueError(f"n_iters must be >= 0, got {n_iters}")
    check_graph(parents, len(ops))
    n = len(ops)
    alpha_list = list(alphas) if isinstance(alphas, Sequence) else [alphas] * n
    if len(alpha_list) != n:
        raise ValueError(f"got {len(alpha_list)} extrapolation weights for {n} layers")
    children = children_of(parents)
    nodes = [x] + _initial_codes(x, ops, parents, init, nonneg)
    prev = list(nodes)  # w^[t−2]; equal to w^[t−1] at t = 1, so the first sweep has ŵ = w
    sizes = [None] + [gather(parents[j - 1], nodes).shape[-2:] for j in range(1, n + 1)]
    synth: list[torch.Tensor | None] = [None] * (n + 1)  # B̃_j w_j for the current w_j

    def synth_of(j: int) -> torch.Tensor:
        if synth[j] is None:
            synth[j] = synthesis(ops[j - 1], nodes[j], sizes[j])
        return synth[j]

    def measure() -> list[tuple[torch.Tensor, ...]]:
        return [layer_terms(op, gather(parents[j - 1], nodes), nodes[j]) for j, op in enumerate(ops, 1)]

    rows = [measure()] if trace else []
    for _ in range(n_iters):
        before = list(nodes)
        for j, op in enumerate(ops, 1):
            w, a = nodes[j], alpha_list[j - 1]
            extrapolate = isinstance(a, torch.Tensor) or a != 0
            w_hat = w + a * (w - prev[j]) if extrapolate else w
            v = gather(parents[j - 1], nodes)
            own = synthesis(op, w_hat, sizes[j]) if extrapolate else synth_of(j)
            grad = analysis(op, own - v)
            for c, edge in children[j]:
                v_c = gather(parents[c - 1], nodes, override=(j, w_hat))
                grad = grad + edge_adjoint(edge, v_c - synth_of(c), w.shape)
            nodes[j] = prox(op, w_hat - op.step * grad, nonneg)
            synth[j] = None
        prev = before
        if trace:
            rows.append(measure())
    if not trace:
        return nodes[1:]
    return nodes[1:], _stack_trace(rows)


# -- the global dictionary (Eqs. 12 and 16), for frame potential and mutual coherence ---------
def global_dictionary(
    ops: Sequence[LayerOp], parents: Sequence[Sequence[Edge]], input_shape: Sequence[int], chunk: int = 512
) -> torch.Tensor:
    """The structured matrix B of Eq. 16 as a dense (Σ_j dim v_j) × (Σ_j dim w_j) tensor for
    one input of shape (C, H, W): row block j, column block j is B̃_j; row block j, column
    block k < j is −P_jk for every edge k → j. Then the global data term is
    ½‖t − B w‖² with t_j = Σ_{edges 0 → j} P x (t = [x; 0; …; 0] for a chain, Eq. 12).
    Only meant for small probe sizes: it has one column per code entry."""
    check_graph(parents, len(ops))
    x = ops[0].weight.new_zeros(1, *input_shape)
    nodes, signals = [x], []
    for j, op in enumerate(ops, 1):
        v = gather(parents[j - 1], nodes)
        signals.append(v.shape[1:])
        nodes.append(torch.zeros_like(analysis(op, v)))
    row_off = list(accumulate((math.prod(s) for s in signals), initial=0))
    col_dims = [math.prod(w.shape[1:]) for w in nodes[1:]]
    col_off = list(accumulate(col_dims, initial=0))
    out = x.new_zeros(row_off[-1], col_off[-1])
    children = children_of(parents)
    for k, op in enumerate(ops, 1):
        shape = nodes[k].shape[1:]
        for start in range(0, col_dims[k - 1], chunk):
            idx = torch.arange(start, min(start + chunk, col_dims[k - 1]))
            basis = x.new_zeros(len(idx), col_dims[k - 1])
            basis[torch.arange(len(idx)), idx] = 1.0
            basis = basis.view(len(idx), *shape)
            cols = slice(col_off[k - 1] + start, col_off[k - 1] + start + len(idx))
            atoms = synthesis(op, basis, signals[k - 1][-2:])
            out[row_off[k - 1] : row_off[k], cols] = atoms.flatten(1).T
            for c, edge in children[k]:
                out[row_off[c - 1] : row_off[c], cols] = -edge_apply(edge, basis).flatten(1).T
    return out


def normalized_gram(dictionary: torch.Tensor) -> torch.Tensor:
    """Gram matrix of the unit-normalized columns: the input of the deep frame potential
    (its squared Frobenius norm) and of the mutual coherence (its largest off-diagonal |entry|)."""
    cols = dictionary / dictionary.norm(dim=0, keepdim=True).clamp_min(1e-30)
    return cols.T @ cols


# -- modules ----------------------------------------------------------------------------------
def _logit(p: float) -> float:
    p = min(max(p, PARAM_CLIP), 1 - PARAM_CLIP)
    return math.log(p / (1 - p))


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class PursuitLayer(nn.Module):
    """One pursuit layer: the dictionary W_j (an ``nn.Conv2d``-shaped weight, B_jᵀ = conv),
    BatchNorm statistics used only to fix the scale and offset in the feed-forward pass
    (Section 4), a BN gain g_j, the ℓ1 weight λ_j = softplus(·) ≥ 0 per channel, and the step
    scale β_j ∈ (0, 1] of γ_j = 1/(β_j L_j) (learnable with ``learn_step``, β = sigmoid(·)).

    L_j = (max_c |s_jc| · ‖W_j‖₂)² + ``extra`` bounds ‖B̃_j‖² (+ the feedback terms of deep
    pursuit). ‖W_j‖₂ is tracked like BatchNorm's running statistics: refreshed by warm-started
    power iterations in training-mode forwards, stored in ``dict_norm`` and used as stored in
    eval mode, so eval outputs are deterministic and survive save/load exactly.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | None = None,
        *,
        batch_norm: bool = True,
        lam: float = 0.1,
        beta: float = 1.0,
        learn_step: bool = True,
    ) -> None:
        super().__init__()
        if lam <= 0:
            raise ValueError(f"lam must be > 0 (λ = softplus(·) is kept positive), got {lam}")
        if not 0 < beta <= 1:
            raise ValueError(f"beta must be in (0, 1] (step 1/(βL) is at least 1/L), got {beta}")
        k = pair(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = k, pair(stride)
        self.padding = pair(padding) if padding is not None else (k[0] // 2, k[1] // 2)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *k))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # as nn.Conv2d
        # Statistics only: the affine part is the gain below and the bias −λ, so that the bias
        # is the ℓ1 weight and can be kept non-negative.
        self.norm = nn.BatchNorm2d(out_channels, affine=False) if batch_norm else None
        self.gain = nn.Parameter(torch.ones(out_channels)) if batch_norm else None
        self.lam_raw = nn.Parameter(torch.full((out_channels,), _inverse_softplus(lam)))
        if learn_step:
            self.beta_logit = nn.Parameter(torch.tensor(_logit(beta)))
        else:
            self.register_parameter("beta_logit", None)
        self.fixed_beta = float(beta)
        self.register_buffer("dict_norm", torch.zeros(()))
        self._power_vector: torch.Tensor | None = None
        self._norm_known = False

    @property
    def lam(self) -> torch.Tensor:
        return F.softplus(self.lam_raw)

    @property
    def beta(self) -> Scalar:
        return self.fixed_beta if self.beta_logit is None else torch.sigmoid(self.beta_logit)

    def _geometry(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=(1, 1), groups=1)

    def weight_norm(self, v: torch.Tensor) -> torch.Tensor:
        """‖W‖₂ for inputs shaped like ``v`` (detached; see the class docstring)."""
        if not self.training and self._norm_known:
            return self.dict_norm.clone()
        geom = self._geometry()
        p = refresh_vector(self.weight, self._power_vector, (1, v.shape[1], *v.shape[-2:]), v, geom)
        self._power_vector = p
        with torch.no_grad():
            self.dict_norm.copy_(operator_norm(self.weight.detach(), p, geom))
        self._norm_known = True
        return self.dict_norm.clone()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # A stored norm belongs to the stored weights: use it as is (exact save/load round trip).
        self._norm_known = bool(float(self.dict_norm) > 0)
        self._power_vector = None

    def _statistics(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """BatchNorm mean and variance: of the batch (running statistics updated as
        ``nn.BatchNorm2d`` does) in training mode, the running ones in eval mode."""
        bn = self.norm
        assert bn is not None
        if not bn.training and bn.track_running_stats:
            return bn.running_mean, bn.running_var
        mean, var = pre.mean((0, 2, 3)), pre.var((0, 2, 3), unbiased=False)
        if bn.training and bn.track_running_stats:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                n = pre.numel() // pre.shape[1]
                bn.running_mean.lerp_(mean.detach(), m)
                bn.running_var.lerp_(var.detach() * n / max(n - 1, 1), m)
        return mean, var

    def feedforward(
        self, v: torch.Tensor, nonneg: bool = True, extra_lipschitz: float | None = None
    ) -> tuple[torch.Tensor, LayerOp]:
        """The feed-forward code w^[0] = φ̃_λ(s⊙(W∗v − mean)) (Eq. 9; conv → BN → ReLU(· − λ))
        and the layer's fixed :class:`LayerOp`. Its step γ = 1/(β(L + extra_lipschitz)) is set
        only when ``extra_lipschitz`` is given (iterations follow)."""
        pre = dict_apply(v, self.weight, **self._geometry())
        lam = self.lam
        if self.norm is None:
            scale, offset, z = None, None, pre
        else:
            mean, var = self._statistics(pre)
            scale = self.gain * torch.rsqrt(var + self.norm.eps)
            offset = -mean * scale
            z = (pre - _channel(mean)) * _channel(scale)
        w0 = threshold(z, _channel(lam), nonneg)
        weight = self.weight if scale is None else self.weight * scale.view(-1, 1, 1, 1)
        step: Scalar = 1.0
        if extra_lipschitz is not None:
            # ‖diag(s)·W‖ ≤ max|s|·‖W‖: the exact norm of the scaled dictionary would change with
            # every batch's statistics and need its own power iterations (and an eval-mode cache
            # tied to the running statistics); the bound only needs the tracked ‖W‖, keeps the
            # step conservative, and β can learn back any slack.
            s_max = 1.0 if scale is None else scale.detach().abs().max()
            lipschitz = (s_max * self.weight_norm(v)) ** 2 + extra_lipschitz
            step = 1.0 / (self.beta * torch.as_tensor(lipschitz).clamp_min(1e-12))
        return w0, LayerOp(weight, offset, lam, step, self.stride, self.padding)

    def eval_op(self) -> LayerOp:
        """The layer's operator with BN's running statistics (the eval-mode dictionary)."""
        if self.norm is None:
            return LayerOp(self.weight, None, self.lam, 1.0, self.stride, self.padding)
        scale = self.gain * torch.rsqrt(self.norm.running_var + self.norm.eps)
        return LayerOp(
            self.weight * scale.view(-1, 1, 1, 1),
            -self.norm.running_mean * scale,
            self.lam,
            1.0,
            self.stride,
            self.padding,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, "
            f"batch_norm={self.norm is not None}, learn_step={self.beta_logit is not None}"
        )


class PursuitStack(nn.Module):
    """Pursuit layers wired by a graph, solved by one of ``METHODS``:

    - ``"thresholding"``: L-TP, the feed-forward network (Eq. 4);
    - ``"layered"``: L-BP, ``n_iters`` local iterations per layer (Algorithm 1);
    - ``"deep"``: deep pursuit, ``n_iters`` global sweeps (Algorithm 2), with extrapolation
      α_j ∈ [0, 1) (fixed, or learnable per layer with ``learn_alpha``).

    ``n_iters`` counts iterations after the feed-forward initialization, so the paper's figure
    count T ("one iteration is the feed-forward network") is ``n_iters + 1``. BatchNorm scale
    and offset are computed once, in the feed-forward pass, and fixed for all iterations.
    ``forward`` returns Σ_e P_e w_src over the ``outputs`` edges (the classifier's input).
    """

    def __init__(
        self,
        layers: Sequence[PursuitLayer],
        parents: Sequence[Sequence[Edge]],
        outputs: Sequence[Edge],
        method: str = "deep",
        n_iters: int = 0,
        alpha: float = 0.0,
        learn_alpha: bool = False,
        nonneg: bool = True,
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown pursuit method {method!r}; use one of {METHODS}")
        if n_iters < 0 or (method == "thresholding" and n_iters):
            raise ValueError(f"n_iters must be >= 0 (and 0 for thresholding), got {n_iters}")
        if method != "deep" and (alpha or learn_alpha):
            raise ValueError("extrapolation (alpha, learn_alpha) applies to deep pursuit only")
        if not 0 <= alpha < 1:
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        check_graph(parents, len(layers))
        self.layers = nn.ModuleList(layers)
        self.parents = [[Edge(*e) for e in edges] for edges in parents]
        self.outputs = [Edge(*e) for e in outputs]
        self.child_edges = children_of(self.parents)  # (nn.Module.children is taken)
        self.method, self.n_iters, self.nonneg = method, int(n_iters), bool(nonneg)
        self.fixed_alpha = float(alpha)
        if learn_alpha:
            self.alpha_logit = nn.Parameter(torch.full((len(layers),), _logit(alpha)))
        else:
            self.register_parameter("alpha_logit", None)

    @property
    def alphas(self) -> list[Scalar]:
        if self.alpha_logit is None:
            return [self.fixed_alpha] * len(self.layers)
        return list(torch.sigmoid(self.alpha_logit).unbind())

    def feedforward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[LayerOp]]:
        """The feed-forward pass: codes w^[0], and every layer's fixed operator (BN statistics
        of this pass; step sizes when iterations follow, with deep pursuit's block Lipschitz
        constant L_j = ‖B̃_j‖² + number of layers reconstructing w_j)."""
        iterate = self.method != "thresholding" and self.n_iters > 0
        nodes, ops = [x], []
        for j, layer in enumerate(self.layers, 1):
            extra = None  # no step needed
            if iterate:
                extra = len(self.child_edges[j]) if self.method == "deep" else 0.0
            w, op = layer.feedforward(gather(self.parents[j - 1], nodes), self.nonneg, extra)
            nodes.append(w)
            ops.append(op)
        return nodes[1:], ops

    def solve(self, x: torch.Tensor, trace: bool = False) -> tuple[list[torch.Tensor], PursuitTrace | None]:
        """All codes (and, with ``trace``, the :class:`PursuitTrace`) for the input ``x``."""
        codes, ops = self.feedforward(x)
        if self.method == "deep":
            out = deep_pursuit(
                x,
                ops,
                self.parents,
                self.n_iters,
                alphas=self.alphas,
                init=codes,
                nonneg=self.nonneg,
                trace=trace,
            )
        else:
            out = layered_basis_pursuit(
                x, ops, self.parents, self.n_iters, init=codes, nonneg=self.nonneg, trace=trace
            )
        return out if trace else (out, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes, _ = self.solve(x)
        return gather(self.outputs, [x] + codes)

    def global_dictionary(self, input_shape: Sequence[int]) -> torch.Tensor:
        """Eq. 16's structured matrix with the eval-mode (running-statistics) dictionaries."""
        return global_dictionary([layer.eval_op() for layer in self.layers], self.parents, input_shape)

    def extra_repr(self) -> str:
        return (
            f"method={self.method}, n_iters={self.n_iters}, nonneg={self.nonneg}, "
            f"alpha={'learned' if self.alpha_logit is not None else self.fixed_alpha}"
        )
