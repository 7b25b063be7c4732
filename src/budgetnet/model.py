"""The ResNet built from a spec, following the paper's CIFAR ResNet18 template."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from budgetnet.spec import ResNetSpec


def conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    """A bias-free conv with 'same' padding for odd kernels (BatchNorm supplies the bias)."""
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)


ACTIVATION_FUNCTIONS = {"relu": torch.relu, "gelu": F.gelu}  # by ResNetSpec.activation


class ConvBN(nn.Module):
    """Conv then BatchNorm, used for the stem and projection shortcuts."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = conv(cin, cout, kernel, stride)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class PooledShortcut(nn.Module):
    """Average-pool by `stride`, then a projection: the shortcut of a block that downsamples by pooling."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = conv(cin, cout, kernel)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = F.avg_pool2d(x, self.stride)
        return self.bn(self.conv(x))


class BasicBlock(nn.Module):
    """Two conv-BN layers with an activation between, added to a shortcut, then the activation.

    With `pool`, conv1 runs at stride 1 and its output is max-pooled by `stride` (as in David Page's
    ResNet-9 and airbench): the conv sees every position, which a strided conv skips.
    """

    def __init__(self, cin: int, cout: int, stride: int, spec: ResNetSpec, pool: bool = False) -> None:
        super().__init__()
        self.activation = ACTIVATION_FUNCTIONS[spec.activation]
        self.pool = stride if pool and stride > 1 else 1
        self.conv1 = conv(cin, cout, spec.conv1_kernel, 1 if pool else stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = conv(cout, cout, spec.conv2_kernel)
        self.bn2 = nn.BatchNorm2d(cout)
        needs_projection = stride != 1 or cin != cout
        self.shortcut: nn.Module = nn.Identity()
        if needs_projection:
            shortcut = PooledShortcut if pool else ConvBN
            self.shortcut = shortcut(cin, cout, spec.skip_kernel, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(x)
        if self.pool > 1:
            out = F.max_pool2d(out, self.pool)
        out = self.activation(self.bn1(out))
        out = self.bn2(self.conv2(out))
        return self.activation(out + self.shortcut(x))


class WhiteningStem(nn.Module):
    """A frozen, unpadded conv whose filters whiten image patches, then a trained BatchNorm.

    The filters are set by `fit` from training images (Keller Jordan's airbench and hlb-CIFAR10 take
    them from the eigenvectors of the patch covariance): each eigenvector, scaled by 1/sqrt(eigenvalue),
    and its negative, so that a following ReLU keeps both signs. Until `fit` runs they are zero.
    """

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=0, bias=False)
        self.conv.weight.requires_grad_(False)
        nn.init.zeros_(self.conv.weight)
        self.bn = nn.BatchNorm2d(cout)

    @torch.no_grad()
    def fit(self, images: Tensor, eps: float = 5e-4) -> None:
        """Set the filters from normalised float images (N, C, H, W)."""
        k = self.conv.kernel_size[0]
        patches = F.unfold(images.double(), k).transpose(1, 2).reshape(-1, images.shape[1] * k * k)
        patches = patches - patches.mean(0)
        covariance = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = (eigenvectors / (eigenvalues + eps).sqrt()).T.reshape(-1, images.shape[1], k, k)
        self.conv.weight.copy_(torch.cat([filters, -filters]).to(self.conv.weight))

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class ResNet(nn.Module):
    """Stem, residual stages, global average pool and a linear head, as described by `spec`."""

    def __init__(self, spec: ResNetSpec, zero_init_residual: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.stem: nn.Module
        if spec.stem == "whiten":
            self.stem = WhiteningStem(spec.in_channels, spec.stem_width, spec.stem_kernel)
        else:
            self.stem = ConvBN(spec.in_channels, spec.stem_width, spec.stem_kernel)
        stages, cin = [], spec.stem_width
        for stage in spec.stages:
            blocks = []
            for b in range(stage.blocks):
                blocks.append(BasicBlock(cin, stage.width, stage.stride if b == 0 else 1, spec,
                                         pool=stage.downsample == "pool"))
                cin = stage.width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(cin, spec.num_classes)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.weight.requires_grad:  # a whitening stem is set from data
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
        x = ACTIVATION_FUNCTIONS[self.spec.activation](self.stem(x))
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, features: Tensor) -> Tensor:
        """Logits from a feature map: global average (or max) pool, the linear head, then the logit scale."""
        pooled = features.amax(dim=(2, 3)) if self.spec.head_pool == "max" else features.mean(dim=(2, 3))
        logits = self.head(pooled)
        return logits * self.spec.logit_scale if self.spec.logit_scale != 1.0 else logits

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def num_params(self) -> int:
        """Parameters, counted from the built tensors (a whitening stem's frozen filters included)."""
        return sum(p.numel() for p in self.parameters())

    def fit_whitening(self, images: Tensor) -> None:
        """Set a whitening stem's filters from normalised training images; nothing to do for a conv stem."""
        if isinstance(self.stem, WhiteningStem):
            self.stem.fit(images)


def build_model(spec: ResNetSpec, zero_init_residual: bool = False) -> ResNet:
    """Build the ResNet that `spec` describes, He-initialised."""
    return ResNet(spec, zero_init_residual=zero_init_residual)


class InferenceModel(nn.Module):
    """A trained network with its preprocessing: uint8 RGB (N, C, 32, 32) in, logits out.

    The normalisation (pixels / 255 - mean) / std is the module's first step, computed exactly as in
    training (budgetnet.data.normalize), so an exported graph needs nothing but the raw pixels.
    """

    def __init__(self, network: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.network = network
        self.mean, self.std = tuple(mean), tuple(std)

    def forward(self, images: Tensor) -> Tensor:
        from budgetnet.data.normalize import normalize

        return self.network(normalize(images, self.mean, self.std))
