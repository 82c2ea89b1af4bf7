"""Training loops of the codecs: end-to-end codecs, universal decoders, shared encoders.

The frozen classifier is trained by :func:`lossylearn.learn.train_classifier`. One loop,
:func:`train_codec`, covers every codec. It trains one encoder (or keeps it frozen) and any
number of decoder heads, each with its own objective ``MSE + lambda_c CE(c(g(z)), s) + lambda_p W1``:

* end to end: one head, encoder trained;
* universal: one or more heads on a frozen encoder (its latents are computed once and cached, so a
  step costs only the decoder, the classifier term and the critic);
* shared (multi-objective) encoder: several heads, encoder trained against the sum of their losses.

The W1 term follows WGAN-GP: per batch one critic step on (real, reconstruction) with gradient
penalty, then one generator step whose perception loss is ``-E[critic(x_hat)]``. Heads without a
perception term have no critic at all.

All randomness of a run (batches, dither, shifts, gradient-penalty mixes) comes from one explicit
generator seeded by ``seed``; the networks' initial weights are the caller's (build them under
:func:`lossylearn.learn.seeded`). torch's global random state is neither read nor changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lossylearn.errors import LossylearnError
from lossylearn.learn.tensors import channels_last, random_shift
from lossylearn.studies.urdc.models import Critic, Encoder
from lossylearn.studies.urdc.quantizer import DitheredQuantizer

__all__ = [
    "Objective",
    "UrdcTrainConfig",
    "Head",
    "EpochLog",
    "train_codec",
    "gradient_penalty",
    "critic_step",
    "CRITIC_CHANNELS_LAST",
]

#: Critics in NHWC memory (same function, same weights; see :class:`Critic`)? Measured with
#: ``benchmarks/urdc_speed.py --threads 1 --steps 10 --repeats 1`` on an idle 2-core machine (load
#: 0.8): a WGAN-GP critic step 0.333 CPU s NHWC vs 0.323 NCHW, so NCHW stays the default.
CRITIC_CHANNELS_LAST = False

StepCallback = Callable[[], None]


@dataclass(frozen=True)
class Objective:
    """Weights of the classification (cross-entropy, nats) and perception (W1) terms."""

    lambda_c: float = 0.0
    lambda_p: float = 0.0

    def __post_init__(self) -> None:
        if not (
            self.lambda_c >= 0
            and self.lambda_p >= 0
            and math.isfinite(self.lambda_c + self.lambda_p)
        ):
            raise LossylearnError(
                f"lambda_c and lambda_p must be finite and >= 0, got {self.lambda_c}, {self.lambda_p}"
            )

    @property
    def tag(self) -> str:
        """Short identifier, e.g. ``c0.015-p0``."""
        return f"c{self.lambda_c:g}-p{self.lambda_p:g}"


@dataclass(frozen=True)
class UrdcTrainConfig:
    """Optimisation settings of the urdc codecs (anchor defaults: Adam, batch 64, lr 1e-2, betas (0.5, 0.9))."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-2
    betas: tuple[float, float] = (0.5, 0.9)
    critic_lr: float = 2e-4
    gp_weight: float = 10.0
    lr_decay_at: float = 2.0 / 3.0
    lr_decay: float = 0.2
    augment_shift: int = 0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise LossylearnError(
                f"need epochs >= 1 and batch_size >= 2, got {self.epochs}, {self.batch_size}"
            )
        if not (self.lr > 0 and self.critic_lr > 0 and self.gp_weight >= 0):
            raise LossylearnError("learning rates must be > 0 and the gradient-penalty weight >= 0")
        if not (0 <= self.augment_shift < 14 and self.weight_decay >= 0):
            raise LossylearnError(
                f"augment_shift must be in [0, 13] pixels and weight_decay >= 0, got "
                f"{self.augment_shift}, {self.weight_decay}"
            )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    def steps_per_epoch(self, n_images: int) -> int:
        """Batches per epoch (the last partial batch is dropped when smaller than 2 images)."""
        full, rest = divmod(n_images, self.batch_size)
        return full + (1 if rest >= 2 else 0)


@dataclass
class Head:
    """One decoder and its objective; a critic is attached when the objective has lambda_p > 0."""

    decoder: nn.Module
    objective: Objective
    critic: Critic | None = None

    def __post_init__(self) -> None:
        if self.objective.lambda_p > 0 and self.critic is None:
            self.critic = Critic(channels_last=CRITIC_CHANNELS_LAST)


@dataclass
class EpochLog:
    """Mean training losses of one epoch for each head."""

    epoch: int
    mse: list[float] = field(default_factory=list)
    ce: list[float] = field(default_factory=list)
    critic_gap: list[float] = field(default_factory=list)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=generator)
    out = [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    return [b for b in out if b.numel() >= 2]


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """WGAN-GP term E[(||grad critic(x_t)|| - 1)^2] on random interpolates x_t."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def critic_step(
    critic: nn.Module,
    optimizer: torch.optim.Optimizer,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    gp_weight: float,
    generator: torch.Generator,
) -> float:
    """One WGAN-GP critic update; returns the critic's gap E[c(real)] - E[c(fake)] before the step."""
    optimizer.zero_grad(set_to_none=True)
    gap = critic(real).mean() - critic(fake).mean()
    loss = -gap + gp_weight * gradient_penalty(critic, real, fake, generator)
    loss.backward()
    optimizer.step()
    return float(gap.detach())


def _cached_latents(encoder: Encoder, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    encoder.eval()
    with torch.no_grad():
        return torch.cat([encoder(images[i : i + batch]) for i in range(0, images.shape[0], batch)])


def train_codec(
    encoder: Encoder,
    heads: list[Head],
    quantizer: DitheredQuantizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    classifier: nn.Module | None,
    config: UrdcTrainConfig,
    train_encoder: bool,
    seed: int,
    on_step: StepCallback | None = None,
) -> list[EpochLog]:
    """Train ``heads`` (and the encoder when ``train_encoder``) in place; returns per-epoch losses.

    Training uses fresh uniform dither every step (the shared-seed dither of the bitstream contract
    is for transmission). A frozen encoder stays in eval mode and its latents are cached.

    ``config.augment_shift`` > 0 shifts the *encoder's input* of each batch at random (up to that many
    pixels) while every loss still targets the unshifted digits: the encoder learns a code that
    does not depend on small shifts (it generalises from 5k digits instead of memorising them), and
    the decoders still learn centred reconstructions. It applies only when the encoder is trained.
    ``config.weight_decay`` is Adam's L2 term on the encoder and decoders.
    """
    if not heads:
        raise LossylearnError("train_codec needs at least one decoder head")
    if classifier is None and any(h.objective.lambda_c > 0 for h in heads):
        raise LossylearnError(
            "a classification objective (lambda_c > 0) needs the frozen classifier"
        )
    device = images.device
    gen = torch.Generator().manual_seed(seed + 1)
    if classifier is not None:
        classifier.eval()
        classifier.requires_grad_(False)

    cached: torch.Tensor | None = None
    params: list[nn.Parameter] = []
    if train_encoder:
        encoder.train()
        encoder.requires_grad_(True)
        params += list(encoder.parameters())
    else:
        encoder.requires_grad_(False)
        cached = _cached_latents(encoder, images)
    for h in heads:
        h.decoder.to(device).train()
        h.decoder.requires_grad_(True)
        params += list(h.decoder.parameters())
    opt = torch.optim.Adam(
        params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    critic_opts: list[torch.optim.Optimizer | None] = []
    for h in heads:
        if h.critic is not None:
            h.critic.to(device).train()
            critic_opts.append(
                torch.optim.Adam(h.critic.parameters(), lr=config.critic_lr, betas=config.betas)
            )
        else:
            critic_opts.append(None)
    decay_epoch = int(config.epochs * config.lr_decay_at)
    all_opts = [opt] + [o for o in critic_opts if o is not None]

    logs: list[EpochLog] = []
    for epoch in range(config.epochs):
        if epoch == decay_epoch and epoch > 0:
            for o in all_opts:
                for group in o.param_groups:
                    group["lr"] *= config.lr_decay
        sums = np.zeros((3, len(heads)))
        n_batches = 0
        for idx in _batches(images.shape[0], config.batch_size, gen):
            idx = idx.to(device)
            x = images[idx]
            u = quantizer.random_dither(x.shape[0], gen, device)
            if cached is None:
                x_in = random_shift(x, config.augment_shift, gen)
                z = quantizer.quantize_ste(encoder(x_in), u)
            else:
                z = quantizer.dequantize(quantizer.indices(cached[idx], u), u)
            opt.zero_grad(set_to_none=True)
            total = torch.zeros((), device=device)
            for k, (h, c_opt) in enumerate(zip(heads, critic_opts, strict=True)):
                x_hat = h.decoder(z)
                mse = F.mse_loss(x_hat, x)
                loss = mse
                sums[0, k] += float(mse.detach())
                if h.objective.lambda_c > 0:
                    assert classifier is not None
                    # NHWC input: the classifiers of lossylearn.learn train channels-last
                    ce = F.cross_entropy(classifier(channels_last(x_hat)), labels[idx])
                    loss = loss + h.objective.lambda_c * ce
                    sums[1, k] += float(ce.detach())
                if h.critic is not None and c_opt is not None:
                    h.critic.requires_grad_(True)
                    sums[2, k] += critic_step(
                        h.critic,
                        c_opt,
                        x,
                        x_hat.detach(),
                        gp_weight=config.gp_weight,
                        generator=gen,
                    )
                    h.critic.requires_grad_(False)
                    loss = loss - h.objective.lambda_p * h.critic(x_hat).mean()
                total = total + loss
            total.backward()
            opt.step()
            n_batches += 1
            if on_step is not None:
                on_step()
        sums /= max(n_batches, 1)
        logs.append(EpochLog(epoch, sums[0].tolist(), sums[1].tolist(), sums[2].tolist()))
    encoder.eval()
    encoder.requires_grad_(False)
    for h in heads:
        h.decoder.eval()
        h.decoder.requires_grad_(False)
        if h.critic is not None:
            h.critic.eval()
    return logs
