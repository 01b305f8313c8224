"""WideResNet (Zagoruyko & Komodakis 2016) in the pre-activation form used by TRADES/HAT;
WideResNet-34-10 is the HAT and PORT backbone."""

from __future__ import annotations

from torch import nn

from .base import Classifier
from .normalization import normalization_for
from .registry import register_model


class WideBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None if cin == cout and stride == 1 else nn.Conv2d(cin, cout, 1, stride, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv2(self.relu(self.bn2(self.conv1(out))))
        return out + skip


class WideResNet(Classifier):
    def __init__(
        self,
        depth: int = 34,
        widen_factor: int = 10,
        num_classes: int = 10,
        stats: str | None = "cifar10",
        input_size: int = 32,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.normalize = normalization_for(stats)
        self.stem = nn.Conv2d(3, widths[0], 3, 1 if input_size == 32 else 2, 1, bias=False)
        stages, cin = [], widths[0]
        for i, w in enumerate(widths[1:]):
            stages.append(
                nn.Sequential(
                    *[
                        WideBlock(cin if j == 0 else w, w, (1 if i == 0 else 2) if j == 0 else 1)
                        for j in range(n)
                    ]
                )
            )
            cin = w
        self.block1, self.block2, self.block3 = stages
        self.final = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU())
        self.fc = nn.Linear(cin, num_classes)
        self.num_features = cin

    def features(self, x):
        return self.final(self.block3(self.block2(self.block1(self.stem(x)))))


# Widen factor 1 keeps every layer at a size the contract tests build quickly.
SMALL = {"widen_factor": 1}


@register_model(small_options=SMALL)
def wide_resnet34_10(num_classes: int = 10, widen_factor: int = 10, **kw) -> WideResNet:
    return WideResNet(34, widen_factor, num_classes, **kw)


@register_model(small_options=SMALL)
def wide_resnet28_10(num_classes: int = 10, widen_factor: int = 10, **kw) -> WideResNet:
    return WideResNet(28, widen_factor, num_classes, **kw)
