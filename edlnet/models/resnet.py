"""CIFAR-style ResNets (He et al. 2016; the 3×3-stem variant used by the EDLNet paper) and
PreActResNet-18 (He et al. 2016b; the HAT/PORT backbone), plus 64×64 (Tiny-ImageNet) stems.

Every convolution is a plain ``nn.Conv2d``; ``create_model(..., dl=...)`` converts them.
"""

from __future__ import annotations

from torch import nn

from .base import Classifier
from .normalization import normalization_for
from .registry import register_model


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


def shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = shortcut(cin, planes, stride)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.shortcut = shortcut(cin, planes * 4, stride)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = conv3x3(cin, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.shortcut = (
            None if stride == 1 and cin == planes else nn.Conv2d(cin, planes, 1, stride, bias=False)
        )
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + skip


DEFAULT_WIDTH = 64  # channels of the stem; the stages have 1, 2, 4 and 8 times as many


def stem(width: int, input_size: int) -> nn.Sequential:
    """3×3 stride-1 stem for 32×32 inputs; for 64×64 (Tiny-ImageNet) a stride-2 3×3 stem brings
    the maps to 32×32 so the stages see CIFAR-sized maps."""
    stride = {32: 1, 64: 2}.get(input_size)
    if stride is None:
        raise ValueError(f"input_size must be 32 (CIFAR) or 64 (Tiny-ImageNet), got {input_size}")
    return nn.Sequential(nn.Conv2d(3, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())


class ResNet(Classifier):
    """CIFAR ResNet: stem, four stages of widths (w, 2w, 4w, 8w), global pooling, linear head."""

    def __init__(
        self,
        block: type,
        num_blocks: list[int],
        num_classes: int = 10,
        width: int = DEFAULT_WIDTH,
        input_size: int = 32,
        stats: str | None = "cifar10",
        preact: bool = False,
    ) -> None:
        super().__init__()
        self.normalize = normalization_for(stats)
        self.preact = preact
        self.stem = (
            nn.Sequential(nn.Conv2d(3, width, 3, 1 if input_size == 32 else 2, 1, bias=False))
            if preact
            else stem(width, input_size)
        )
        if preact and input_size not in (32, 64):
            raise ValueError(f"input_size must be 32 or 64, got {input_size}")
        cin = width
        stages = []
        for i, n in enumerate(num_blocks):
            planes = width * 2**i
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if (i > 0 and j == 0) else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.final = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU()) if preact else nn.Identity()
        self.fc = nn.Linear(cin, num_classes)
        self.num_features = cin

    def features(self, x):
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.final(x)


# A 4-channel stem keeps every layer at a size the contract tests build quickly.
SMALL = {"width": 4}
TINY_IMAGENET_INPUT = (3, 64, 64)


@register_model(small_options=SMALL)
def resnet10(num_classes: int = 10, width: int = DEFAULT_WIDTH, **kw) -> ResNet:
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes, width=width, **kw)


@register_model(small_options=SMALL)
def resnet18(num_classes: int = 10, width: int = DEFAULT_WIDTH, **kw) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, width=width, **kw)


@register_model(small_options=SMALL)
def resnet34(num_classes: int = 10, width: int = DEFAULT_WIDTH, **kw) -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, width=width, **kw)


@register_model(small_options=SMALL)
def resnet50(num_classes: int = 10, width: int = DEFAULT_WIDTH, **kw) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, width=width, **kw)


@register_model(small_options=SMALL)
def preact_resnet18(num_classes: int = 10, width: int = DEFAULT_WIDTH, **kw) -> ResNet:
    return ResNet(PreActBlock, [2, 2, 2, 2], num_classes, width=width, preact=True, **kw)


@register_model(input_size=TINY_IMAGENET_INPUT, small_options=SMALL)
def resnet18_tiny(num_classes: int = 200, width: int = DEFAULT_WIDTH, **kw) -> ResNet:
    """ResNet-18 for 64×64 Tiny-ImageNet inputs (stride-2 stem)."""
    kw.setdefault("stats", "tinyimagenet")
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, width=width, input_size=64, **kw)


@register_model(input_size=TINY_IMAGENET_INPUT, small_options=SMALL)
def preact_resnet18_tiny(num_classes: int = 200, width: int = DEFAULT_WIDTH, **kw) -> ResNet:
    """PreActResNet-18 for 64×64 Tiny-ImageNet inputs (stride-2 stem)."""
    kw.setdefault("stats", "tinyimagenet")
    return ResNet(PreActBlock, [2, 2, 2, 2], num_classes, width=width, preact=True, input_size=64, **kw)
