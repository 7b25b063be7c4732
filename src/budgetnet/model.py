"""The ResNet built from a spec, following the paper's CIFAR ResNet18 template."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from budgetnet.spec import ResNetSpec


def conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    """A bias-free conv with 'same' padding for odd kernels (BatchNorm supplies the bias)."""
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)


class ConvBN(nn.Module):
    """Conv then BatchNorm, used for the stem and projection shortcuts."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = conv(cin, cout, kernel, stride)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class BasicBlock(nn.Module):
    """Two conv-BN layers with a ReLU between, added to a shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, spec: ResNetSpec) -> None:
        super().__init__()
        self.conv1 = conv(cin, cout, spec.conv1_kernel, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = conv(cout, cout, spec.conv2_kernel)
        self.bn2 = nn.BatchNorm2d(cout)
        needs_projection = stride != 1 or cin != cout
        self.shortcut = ConvBN(cin, cout, spec.skip_kernel, stride) if needs_projection else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, residual stages, global average pool and a linear head, as described by `spec`."""

    def __init__(self, spec: ResNetSpec, zero_init_residual: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.stem = ConvBN(spec.in_channels, spec.stem_width, spec.stem_kernel)
        stages, cin = [], spec.stem_width
        for stage in spec.stages:
            blocks = []
            for b in range(stage.blocks):
                blocks.append(BasicBlock(cin, stage.width, stage.stride if b == 0 else 1, spec))
                cin = stage.width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(cin, spec.num_classes)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            # each block then starts as the identity, which helps deep nets train early on
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last stage's feature map, (N, C, H, W)."""
        x = torch.relu(self.stem(x))
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, features: Tensor) -> Tensor:
        """Logits from a feature map: global average pool, then the linear head."""
        return self.head(features.mean(dim=(2, 3)))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def num_params(self) -> int:
        """Trainable parameters, counted from the built tensors."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def build_model(spec: ResNetSpec, zero_init_residual: bool = False) -> ResNet:
    """Build the ResNet that `spec` describes, He-initialised."""
    return ResNet(spec, zero_init_residual=zero_init_residual)
