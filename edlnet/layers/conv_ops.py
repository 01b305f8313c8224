"""The dictionary operator A (a convolution) and its exact adjoint A* (a transposed convolution).

A maps an image-like signal x (N, C, H, W) to codes z (N, D, H', W') with a weight of the
``nn.Conv2d`` shape (D, C/groups, k, k). A* is its adjoint: <A(x), z> = <x, A*(z)> for all x, z.
For strided convolutions several input sizes map to the same code size, so A* needs the
``output_padding`` that restores the exact input size; it is computed from ``input_size``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

IntPair = tuple[int, int]


def pair(v: int | Sequence[int]) -> IntPair:
    if isinstance(v, int):
        return (v, v)
    a, b = tuple(v)
    return (int(a), int(b))


def dict_apply(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: IntPair = (1, 1),
    padding: IntPair = (0, 0),
    dilation: IntPair = (1, 1),
    groups: int = 1,
) -> torch.Tensor:
    """A(x): the analysis operator, a bias-free convolution."""
    return F.conv2d(x, weight, None, stride, padding, dilation, groups)


def adjoint_output_padding(
    input_size: Sequence[int],
    code_size: Sequence[int],
    kernel: Sequence[int],
    stride: IntPair,
    padding: IntPair,
    dilation: IntPair,
) -> IntPair:
    """The ``output_padding`` that makes conv_transpose2d return exactly ``input_size``."""
    out = []
    for i in range(2):
        base = (code_size[i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (kernel[i] - 1) + 1
        extra = int(input_size[i]) - base
        if not 0 <= extra < max(stride[i], dilation[i]):
            raise ValueError(
                f"codes of spatial size {tuple(code_size)} cannot come from an input of size "
                f"{tuple(input_size)} with kernel {tuple(kernel)}, stride {stride}, padding {padding}"
            )
        out.append(extra)
    return (out[0], out[1])


def dict_adjoint(
    z: torch.Tensor,
    weight: torch.Tensor,
    input_size: Sequence[int],
    stride: IntPair = (1, 1),
    padding: IntPair = (0, 0),
    dilation: IntPair = (1, 1),
    groups: int = 1,
) -> torch.Tensor:
    """A*(z): the synthesis operator, the exact adjoint of :func:`dict_apply` for inputs of
    spatial size ``input_size`` (H, W)."""
    op = adjoint_output_padding(input_size, z.shape[-2:], weight.shape[-2:], stride, padding, dilation)
    return F.conv_transpose2d(z, weight, None, stride, padding, op, groups, dilation)
