"""The two learned image codecs of Balle et al., written with torch alone.

* ``factorized`` (ICLR 2017 / 2018 appendix): ``y = g_a(x)`` with strided 5x5 convolutions and GDN,
  ``x_hat = g_s(round(y))`` with transposed convolutions and IGDN; ``y`` is coded with an
  :class:`EntropyBottleneck` (one learned density per channel).
* ``hyperprior`` (ICLR 2018 "scale hyperprior"): a second autoencoder ``z = h_a(|y|)`` whose
  quantized output, coded with an entropy bottleneck, predicts a Gaussian scale for every element of
  ``y`` through ``h_s``.

Images enter as floats in [0, 1], shape (B, C, H, W). Sizes that are not a multiple of the total
stride are padded on the right and bottom by repeating the edge pixels and the output is cropped
back, so any H x W >= 1 works. Shapes come only from :class:`ModelConfig`, which is saved next to
the weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lossylearn.codecs.learned.entropy_bottleneck import EntropyBottleneck
from lossylearn.codecs.learned.gaussian_conditional import GaussianConditional
from lossylearn.codecs.learned.gdn import GDN, IGDN
from lossylearn.errors import CodecError
from lossylearn.records import Record

__all__ = [
    "ARCHITECTURES",
    "FactorizedPrior",
    "ModelConfig",
    "ModelOutput",
    "PRESETS",
    "ScaleHyperprior",
    "build_codec_model",
    "crop",
    "pad_to_multiple",
    "preset_config",
]

ARCHITECTURES = ("factorized", "hyperprior")


@dataclass(frozen=True)
class ModelConfig(Record):
    """Everything needed to build a model; stored in the checkpoint's config.json."""

    architecture: str
    in_channels: int
    channels: int
    latent_channels: int
    downsamples: int
    hyper_channels: int = 0
    hyper_downsamples: int = 0
    kernel_size: int = 5
    eb_filters: tuple[int, ...] = (3, 3, 3)
    tail_mass: float = 1e-9

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise CodecError(
                f"unknown architecture {self.architecture!r}; known: {', '.join(ARCHITECTURES)}"
            )
        if min(self.in_channels, self.channels, self.latent_channels, self.downsamples) < 1:
            raise CodecError("in_channels, channels, latent_channels, downsamples must be >= 1")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise CodecError(f"kernel_size must be odd, got {self.kernel_size}")
        if (
            self.architecture == "hyperprior"
            and min(self.hyper_channels, self.hyper_downsamples) < 1
        ):
            raise CodecError("a hyperprior needs hyper_channels >= 1 and hyper_downsamples >= 1")
        object.__setattr__(self, "eb_filters", tuple(int(f) for f in self.eb_filters))

    @property
    def stride(self) -> int:
        """Total downsampling factor; inputs are padded to a multiple of it."""
        extra = self.hyper_downsamples if self.architecture == "hyperprior" else 0
        return 2 ** (self.downsamples + extra)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise CodecError(f"model config has unknown keys: {', '.join(sorted(unknown))}")
        missing = {"architecture", "in_channels", "channels", "latent_channels", "downsamples"}
        if missing - set(data):
            raise CodecError(f"model config lacks keys: {', '.join(sorted(missing - set(data)))}")
        return cls(**{**data, "eb_filters": tuple(data.get("eb_filters", (3, 3, 3)))})


PRESETS: dict[str, dict[str, ModelConfig]] = {
    # 28x28 grayscale (MNIST): 28 -> padded 32 -> 8x8x24 latents (two stride-2 layers);
    # hyper latents 4x4. Measured (issue 15: the 4-lambda ladder, 10 joint epochs on the 5k
    # digits, a fully clamped loss, 2000 official test digits): BD-rate against JPEG -50.1% and
    # WebP -26.8% at 8x8x24; -31.9% / -6.8% with the earlier 4x4x32 latents (three stride-2
    # layers). The shallower synthesis also decodes about 3x faster. With the defaults of
    # `codec train`: results/codec-speed.
    "mnist": {
        "factorized": ModelConfig("factorized", 1, 48, 24, 2),
        "hyperprior": ModelConfig(
            "hyperprior", 1, 48, 24, 2, hyper_channels=24, hyper_downsamples=1
        ),
    },
    # 64x64 RGB (CelebA crops): 4x4 latents (stride 16); hyper latents 1x1.
    "rgb64": {
        "factorized": ModelConfig("factorized", 3, 96, 128, 4),
        "hyperprior": ModelConfig(
            "hyperprior", 3, 96, 128, 4, hyper_channels=96, hyper_downsamples=2
        ),
    },
}


def preset_config(name: str, architecture: str = "factorized") -> ModelConfig:
    """The model config of a named size preset ("mnist" or "rgb64")."""
    if name not in PRESETS:
        raise CodecError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}")
    if architecture not in PRESETS[name]:
        raise CodecError(
            f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}"
        )
    return PRESETS[name][architecture]


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Replicate-pad (B, C, H, W) on the right and bottom to multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def crop(x: Tensor, height: int, width: int) -> Tensor:
    """Undo :func:`pad_to_multiple`."""
    return x[..., :height, :width]


def _down(cin: int, cout: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=2, padding=k // 2)


def _up(cin: int, cout: int, k: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2, output_padding=1)


def _gdn_stack(
    cfg: ModelConfig,
    cin: int,
    cout: int,
    conv: Callable[[int, int, int], nn.Module],
    norm: Callable[[int], nn.Module],
) -> nn.Sequential:
    """``cfg.downsamples`` stride-2 ``conv`` layers from ``cin`` to ``cout`` channels
    (``cfg.channels`` between them), each but the last followed by ``norm``."""
    layers: list[nn.Module] = []
    for i in range(cfg.downsamples):
        last = i == cfg.downsamples - 1
        layers.append(conv(cin, cout if last else cfg.channels, cfg.kernel_size))
        if not last:
            layers.append(norm(cfg.channels))
        cin = cfg.channels
    return nn.Sequential(*layers)


def _analysis(cfg: ModelConfig) -> nn.Sequential:
    return _gdn_stack(cfg, cfg.in_channels, cfg.latent_channels, _down, GDN)


def _synthesis(cfg: ModelConfig) -> nn.Sequential:
    return _gdn_stack(cfg, cfg.latent_channels, cfg.in_channels, _up, IGDN)


def _hyper_analysis(cfg: ModelConfig) -> nn.Sequential:
    n = cfg.hyper_channels
    layers: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, n, 3, padding=1)]
    for _ in range(cfg.hyper_downsamples):
        layers += [nn.ReLU(), _down(n, n, 5)]
    return nn.Sequential(*layers)


def _hyper_synthesis(cfg: ModelConfig) -> nn.Sequential:
    n = cfg.hyper_channels
    layers: list[nn.Module] = []
    for _ in range(cfg.hyper_downsamples):
        layers += [_up(n, n, 5), nn.ReLU()]
    layers += [nn.Conv2d(n, cfg.latent_channels, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)


@dataclass
class ModelOutput:
    """Reconstruction (cropped, unclamped, in [0, 1] units) and the likelihoods of each latent."""

    x_hat: Tensor
    likelihoods: dict[str, Tensor]

    def bits(self) -> Tensor:
        """Estimated bits per image, shape (B,)."""
        total = 0
        for lik in self.likelihoods.values():
            total = total - torch.log2(lik).flatten(1).sum(dim=1)
        return total  # type: ignore[return-value]


class _TransformCodec(nn.Module):
    """What both models share: the GDN analysis and synthesis transforms of ``config`` (built
    first, so seeded weights do not depend on the model), and an entropy bottleneck whose
    auxiliary loss fits its quantiles."""

    architecture = ""
    entropy_bottleneck: EntropyBottleneck

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.architecture != self.architecture:
            raise CodecError(f"{type(self).__name__} needs architecture={self.architecture!r}")
        self.config = config
        self.g_a = _analysis(config)
        self.g_s = _synthesis(config)

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.aux_loss()


class FactorizedPrior(_TransformCodec):
    """Balle et al. 2017: GDN autoencoder + entropy bottleneck."""

    architecture = "factorized"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.entropy_bottleneck = EntropyBottleneck(
            config.latent_channels, filters=config.eb_filters, tail_mass=config.tail_mass
        )

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> ModelOutput:
        h, w = x.shape[-2:]
        y = self.g_a(pad_to_multiple(x, self.config.stride))
        y_hat, lik = self.entropy_bottleneck(y, generator=generator)
        return ModelOutput(crop(self.g_s(y_hat), h, w), {"y": lik})


class ScaleHyperprior(_TransformCodec):
    """Balle et al. 2018: factorized hyper-latents predict the scales of a Gaussian prior."""

    architecture = "hyperprior"

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.h_a = _hyper_analysis(config)
        self.h_s = _hyper_synthesis(config)
        self.entropy_bottleneck = EntropyBottleneck(
            config.hyper_channels, filters=config.eb_filters, tail_mass=config.tail_mass
        )
        self.gaussian_conditional = GaussianConditional(tail_mass=config.tail_mass)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> ModelOutput:
        h, w = x.shape[-2:]
        y = self.g_a(pad_to_multiple(x, self.config.stride))
        z = self.h_a(torch.abs(y))
        z_hat, z_lik = self.entropy_bottleneck(z, generator=generator)
        scales = self.h_s(z_hat)
        y_hat, y_lik = self.gaussian_conditional(y, scales, generator=generator)
        return ModelOutput(crop(self.g_s(y_hat), h, w), {"y": y_lik, "z": z_lik})


def build_codec_model(config: ModelConfig) -> FactorizedPrior | ScaleHyperprior:
    """A freshly initialized model for ``config`` (use a torch seed context for reproducibility)."""
    if config.architecture == "factorized":
        return FactorizedPrior(config)
    return ScaleHyperprior(config)
