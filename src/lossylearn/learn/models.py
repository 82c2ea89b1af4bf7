"""Image classifiers written with torch alone: small CNNs for digit-sized inputs and ResNet-18/34.

Every model takes float images in [0, 1] shaped (N, C, H, W) and returns logits. The input
normalisation lives inside the model (a fixed affine map), so attacks and codecs work in pixel space.
Models are described by a :class:`ModelConfig` that is saved next to the weights; a model's shape is
never inferred from its weight names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import LossylearnError
from ..records import Record
from .devices import seeded

__all__ = [
    "MODEL_NAMES",
    "ModelConfig",
    "SmallCNN",
    "LeNet",
    "ResNet",
    "build_model",
    "default_model_name",
    "count_parameters",
    "save_checkpoint",
    "load_checkpoint",
]


@dataclass(frozen=True)
class ModelConfig(Record):
    """What is needed to rebuild a classifier: architecture name and input/output shape."""

    name: str
    in_channels: int
    image_size: tuple[int, int]
    num_classes: int
    width: int = 64

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(d["name"]),
            in_channels=int(d["in_channels"]),
            image_size=(int(d["image_size"][0]), int(d["image_size"][1])),
            num_classes=int(d["num_classes"]),
            width=int(d.get("width", 64)),
        )


class _InputScale(nn.Module):
    """Fixed map from [0, 1] pixels to roughly zero-mean inputs: (x - 0.5) / 0.5."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 0.5) * 2.0


class SmallCNN(nn.Module):
    """Two 5x5 conv layers (16, 32 channels, each followed by 2x2 max-pooling) and two linear layers.

    Sized for 28x28 digits (215k parameters and 2.6M multiply-adds per image for one input channel
    and 10 classes: cheap enough for CPU studies) but works for any input whose sides are at least 4
    pixels.
    """

    def __init__(self, in_channels: int, image_size: tuple[int, int], num_classes: int) -> None:
        super().__init__()
        h, w = image_size
        if h < 4 or w < 4:
            raise LossylearnError(f"SmallCNN needs images of at least 4x4 pixels, got {h}x{w}")
        self.scale = _InputScale()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        flat = 32 * (h // 4) * (w // 4)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(0.25),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.scale(x)))


class LeNet(nn.Module):
    """Two valid 5x5 convs (w/2 and w channels, each followed by 2x2 max-pooling), FC 128, FC out.

    With ``width=64`` on 28x28 digits: conv5(32)-pool-conv5(64)-pool-fc128-fc10, the frozen
    classifier of the uRDC anchor (the universal rate-distortion-classification study). Pixels in
    [0, 1] enter unscaled. Needs images of at least 16 pixels a side.
    """

    def __init__(
        self, in_channels: int, image_size: tuple[int, int], num_classes: int, width: int = 64
    ) -> None:
        super().__init__()
        h, w = image_size
        if h < 16 or w < 16 or width < 2:
            raise LossylearnError(
                f"LeNet needs images of at least 16x16 pixels and width >= 2, got {h}x{w}, {width}"
            )
        c1, c2 = width // 2, width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        flat = c2 * (((h - 4) // 2 - 4) // 2) * (((w - 4) // 2 - 4) // 2)
        self.head = nn.Sequential(nn.Linear(flat, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


_RESNET_LAYERS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}


class ResNet(nn.Module):
    """ResNet-18/34 (He et al. 2016) with basic blocks and four stages of width w, 2w, 4w, 8w.

    Inputs of 64 pixels or more use the ImageNet stem (7x7 stride-2 conv and 3x3 stride-2 max-pool);
    smaller inputs use a 3x3 stride-1 stem without pooling, so that 32x32 images keep enough
    resolution for the last stage. ``width=64`` gives the standard architecture (11.2M parameters for
    ResNet-18 with 1000 classes).
    """

    def __init__(
        self,
        layers: tuple[int, int, int, int],
        in_channels: int,
        image_size: tuple[int, int],
        num_classes: int,
        width: int = 64,
    ) -> None:
        super().__init__()
        self.scale = _InputScale()
        if min(image_size) >= 64:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            )
        stages: list[nn.Module] = []
        in_planes = width
        for i, blocks in enumerate(layers):
            planes = width * (2**i)
            for j in range(blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                stages.append(BasicBlock(in_planes, planes, stride))
                in_planes = planes
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero-init the last BN of each residual branch: each block starts as the identity.
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(self.stem(self.scale(x)))
        return self.fc(torch.flatten(self.pool(out), 1))


MODEL_NAMES: tuple[str, ...] = ("cnn", "resnet18", "resnet34", "lenet")


def build_model(config: ModelConfig, *, seed: int | None = None) -> nn.Module:
    """Build an untrained classifier (on the CPU) from its configuration.

    The initial weights are a function of ``seed`` (torch's global random state is left as it
    was); ``seed=None`` draws them from torch's global random state.
    """
    if seed is not None:
        with seeded(seed):
            return build_model(config)
    if config.in_channels < 1 or config.num_classes < 2:
        raise LossylearnError(
            f"a classifier needs >= 1 input channel and >= 2 classes, got {config.in_channels} "
            f"and {config.num_classes}"
        )
    if config.name == "cnn":
        return SmallCNN(config.in_channels, config.image_size, config.num_classes)
    if config.name == "lenet":
        return LeNet(config.in_channels, config.image_size, config.num_classes, config.width)
    if config.name in _RESNET_LAYERS:
        if config.width < 1:
            raise LossylearnError(f"ResNet width must be positive, got {config.width}")
        return ResNet(
            _RESNET_LAYERS[config.name],
            config.in_channels,
            config.image_size,
            config.num_classes,
            width=config.width,
        )
    raise LossylearnError(f"unknown model {config.name!r}; known: {', '.join(MODEL_NAMES)}")


def default_model_name(image_size: tuple[int, int]) -> str:
    """The small CNN for images up to 32 pixels a side, ResNet-18 above."""
    return "cnn" if max(image_size) <= 32 else "resnet18"


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_checkpoint(path: str | Path, model: nn.Module, config: ModelConfig) -> None:
    """Save weights together with the configuration that rebuilds the model."""
    torch.save({"config": config.to_dict(), "state_dict": model.state_dict()}, Path(path))


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, ModelConfig]:
    """Rebuild a model saved by :func:`save_checkpoint` (architecture from its saved configuration)."""
    p = Path(path)
    if not p.is_file():
        raise LossylearnError(f"no checkpoint at {p}")
    blob = torch.load(p, map_location=map_location, weights_only=True)
    config = ModelConfig.from_dict(blob["config"])
    model = build_model(config)
    model.load_state_dict(blob["state_dict"])
    return model, config
