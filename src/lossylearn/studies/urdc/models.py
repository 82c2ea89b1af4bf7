"""Networks of the universal RDC/RDP system on 28x28 grayscale digits.

The encoder, the transposed-convolution decoder and the critic follow the anchor (the public uRDP
code); the MLP decoder is the CPU-friendly alternative measured in ``benchmarks/urdc_speed.py``.
Every network is built from a :class:`NetConfig`, which is saved as JSON next to its weights, so a
model's shape is never inferred from weight names. The frozen classifier is the anchor's small CNN,
:class:`lossylearn.learn.LeNet`, described by :data:`CLASSIFIER` and trained by
:func:`lossylearn.learn.train_classifier`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lossylearn.errors import LossylearnError
from lossylearn.learn.models import ModelConfig
from lossylearn.records import Record

__all__ = [
    "CLASSIFIER",
    "DECODER_KINDS",
    "IMAGE_PIXELS",
    "NetConfig",
    "Encoder",
    "ConvDecoder",
    "MLPDecoder",
    "Critic",
    "build_decoder",
]

IMAGE_PIXELS = 28 * 28
DECODER_KINDS: tuple[str, ...] = ("conv", "mlp")
CLASSIFIER = ModelConfig("lenet", in_channels=1, image_size=(28, 28), num_classes=10, width=64)
"""The frozen classifier: conv5(32)-pool-conv5(64)-pool-fc128-fc10 on 28x28 digits (the anchor's)."""


@dataclass(frozen=True)
class NetConfig(Record):
    """Shapes of one encoder/decoder pair: latent size ``d``, levels ``L``, decoder kind and widths."""

    latent_dim: int = 3
    levels: int = 3
    decoder: str = "conv"
    encoder_width: int = 128
    mlp_decoder_hidden: tuple[int, ...] = (128, 512, 1024)

    def __post_init__(self) -> None:
        if self.latent_dim < 1:
            raise LossylearnError(f"latent_dim must be at least 1, got {self.latent_dim}")
        if self.levels < 2:
            raise LossylearnError(f"levels must be at least 2, got {self.levels}")
        if self.decoder not in DECODER_KINDS:
            raise LossylearnError(
                f"unknown decoder {self.decoder!r}; known decoders: {', '.join(DECODER_KINDS)}"
            )
        if self.encoder_width < 1 or any(h < 1 for h in self.mlp_decoder_hidden):
            raise LossylearnError("network widths must be positive")

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> NetConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["mlp_decoder_hidden"] = tuple(d.get("mlp_decoder_hidden", (128, 512, 1024)))  # type: ignore[arg-type]
        return cls(**d)  # type: ignore[arg-type]


def _dense(n_in: int, n_out: int) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.LeakyReLU()]


class Encoder(nn.Module):
    """MLP 784-4w-2w-w-w-d with BatchNorm and LeakyReLU, Tanh output in [-1, 1] (anchor, w = 128)."""

    def __init__(self, latent_dim: int, width: int = 128) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            *_dense(IMAGE_PIXELS, 4 * width),
            *_dense(4 * width, 2 * width),
            *_dense(2 * width, width),
            *_dense(width, width),
            nn.Linear(width, latent_dim),
            nn.BatchNorm1d(latent_dim),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 1, 28, 28) in [0, 1] -> latents (B, d) in [-1, 1]."""
        return self.net(x.reshape(x.shape[0], IMAGE_PIXELS))


class ConvDecoder(nn.Module):
    """Anchor decoder: Linear d-128-512, reshape (32, 4, 4), ConvT k5 s2 -> k5 s2 -> k4 s1, Sigmoid.

    Spatial sizes 4 -> 11 -> 25 -> 28. ``channels_last`` stores the transposed-convolution weights
    in NHWC order; it computes the same function (measured only ~4% faster on this CPU, so off by
    default).
    """

    def __init__(self, latent_dim: int, channels_last: bool = False) -> None:
        super().__init__()
        self.expand = nn.Sequential(*_dense(latent_dim, 128), *_dense(128, 512))
        self.deconvolve = nn.Sequential(
            nn.ConvTranspose2d(32, 64, kernel_size=5, stride=2),
            nn.BatchNorm2d(64),
            nn.LeakyReLU(),
            nn.ConvTranspose2d(64, 128, kernel_size=5, stride=2),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(),
            nn.ConvTranspose2d(128, 1, kernel_size=4, stride=1),
            nn.Sigmoid(),
        )
        if channels_last:
            self.deconvolve.to(memory_format=torch.channels_last)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Dequantized latents (B, d) -> images (B, 1, 28, 28) in [0, 1]."""
        h = self.expand(z).reshape(z.shape[0], 32, 4, 4)
        return self.deconvolve(h).contiguous()


class MLPDecoder(nn.Module):
    """Fully connected decoder d-h1-...-784 with BatchNorm and LeakyReLU, Sigmoid output."""

    def __init__(self, latent_dim: int, hidden: tuple[int, ...] = (128, 512, 1024)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        n_in = latent_dim
        for h in hidden:
            layers += _dense(n_in, h)
            n_in = h
        layers += [nn.Linear(n_in, IMAGE_PIXELS), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Dequantized latents (B, d) -> images (B, 1, 28, 28) in [0, 1]."""
        return self.net(z).reshape(z.shape[0], 1, 28, 28)


class Critic(nn.Module):
    """WGAN critic: 3 convs (64/128/256, k5 s2 p2) with LeakyReLU, then Linear to a scalar.

    ``channels_last`` keeps the convolution weights, and the inputs, in NHWC memory: the same
    function and the same state dict (weights saved either way load into either). Measured no
    faster on a CPU core (``benchmarks/urdc_speed.py``: ``critic_step_nhwc`` vs ``_nchw``).
    """

    def __init__(self, channels_last: bool = False) -> None:
        super().__init__()
        self.channels_last = channels_last
        self.net = nn.Sequential(
            nn.Conv2d(1, 64, kernel_size=5, stride=2, padding=2),
            nn.LeakyReLU(),
            nn.Conv2d(64, 128, kernel_size=5, stride=2, padding=2),
            nn.LeakyReLU(),
            nn.Conv2d(128, 256, kernel_size=5, stride=2, padding=2),
            nn.LeakyReLU(),
        )
        self.fc = nn.Linear(256 * 4 * 4, 1)
        if channels_last:
            self.net.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, 1, 28, 28) -> scores (B,)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.fc(self.net(x).flatten(1)).squeeze(1)  # flatten keeps the logical CHW order


def build_decoder(config: NetConfig) -> nn.Module:
    """The decoder named by ``config.decoder``."""
    if config.decoder == "conv":
        return ConvDecoder(config.latent_dim)
    return MLPDecoder(config.latent_dim, config.mlp_decoder_hidden)
