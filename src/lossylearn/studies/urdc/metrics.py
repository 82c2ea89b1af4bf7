"""Test-set metrics: transmission through the real bitstream, MSE, classifier CE/accuracy, W1.

W1 is estimated by a critic trained afresh (WGAN-GP, the anchor's critic architecture) on the
frozen outputs of a decoder, never by the critic used during training: the critic is fitted on
training images against their reconstructions, and the reported estimate is its gap
``E[c(x)] - E[c(x_hat)]`` on the test images against theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lossylearn.errors import LossylearnError
from lossylearn.learn.devices import seeded
from lossylearn.learn.tensors import channels_last
from lossylearn.records import Record
from lossylearn.studies.urdc.models import Critic, Encoder
from lossylearn.studies.urdc.quantizer import (
    BitstreamHeader,
    BitstreamSize,
    DitheredQuantizer,
    decode_bitstream,
    empirical_entropy_bits,
    encode_bitstream,
)
from lossylearn.studies.urdc.train import CRITIC_CHANNELS_LAST, critic_step

__all__ = [
    "CodecMetrics",
    "transmit",
    "receive",
    "classifier_scores",
    "mean_squared_error",
    "estimate_w1",
    "critic_gap",
    "codec_metrics",
]


@dataclass(frozen=True)
class CodecMetrics(Record):
    """Test-set metrics of one decoder (MSE per pixel on [0, 1], CE in nats, rates in bits/image).

    ``w1``: a fresh critic's estimate (None where the profile skips it, see
    ``StudyProfile.w1_all_decoders``); ``w1_training_critic``: the decoder's own training critic's
    gap on the test set, the anchor's protocol (None without a perception term)."""

    mse: float
    ce: float
    accuracy: float
    w1: float | None
    rate_bits: float
    entropy_bits: float
    stored_bits_per_image: float
    w1_training_critic: float | None = None


def transmit(
    encoder: Encoder,
    quantizer: DitheredQuantizer,
    images: torch.Tensor,
    *,
    seed: int,
    first_index: int = 0,
    batch_size: int = 1000,
) -> tuple[bytes, BitstreamSize]:
    """Sender: encode images (N, 1, 28, 28) into one bitstream with the shared-seed dither."""
    encoder.eval()
    n = images.shape[0]
    parts = []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            x = images[i : i + batch_size]
            u = quantizer.dither_for(
                seed, np.arange(first_index + i, first_index + i + x.shape[0]), x.device
            )
            parts.append(quantizer.indices(encoder(x), u).cpu())
    indices = torch.cat(parts) if parts else torch.zeros(0, quantizer.latent_dim, dtype=torch.int64)
    header = BitstreamHeader(quantizer.latent_dim, quantizer.levels, n, seed, first_index)
    return encode_bitstream(indices, header)


def receive(
    data: bytes, decoder: nn.Module, *, device: torch.device | str = "cpu", batch_size: int = 1000
) -> tuple[torch.Tensor, np.ndarray]:
    """Receiver: parse the bitstream, regenerate the dither, decode; returns images and symbols."""
    indices, header = decode_bitstream(data)
    q = DitheredQuantizer(header.latent_dim, header.levels)
    decoder.eval()
    out = []
    with torch.no_grad():
        for i in range(0, header.count, batch_size):
            k = torch.from_numpy(indices[i : i + batch_size]).to(device)
            u = q.dither_for(
                header.seed,
                np.arange(header.first_index + i, header.first_index + i + k.shape[0]),
                device,
            )
            out.append(decoder(q.dequantize(k, u)))
    images = torch.cat(out) if out else torch.zeros(0, 1, 28, 28, device=device)
    return images, q.symbols(indices)


def mean_squared_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean squared error per pixel."""
    if a.shape != b.shape:
        raise LossylearnError(f"shape mismatch {tuple(a.shape)} vs {tuple(b.shape)}")
    return float(F.mse_loss(a, b, reduction="mean"))


def classifier_scores(
    classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> tuple[float, float]:
    """Mean cross-entropy (nats) and accuracy of the frozen classifier on ``images``."""
    classifier.eval()
    ce_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, images.shape[0], batch_size):
            logits = classifier(channels_last(images[i : i + batch_size]))
            y = labels[i : i + batch_size]
            ce_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
    n = max(images.shape[0], 1)
    return ce_sum / n, correct / n


def estimate_w1(
    real_fit: torch.Tensor,
    fake_fit: torch.Tensor,
    real_eval: torch.Tensor,
    fake_eval: torch.Tensor,
    *,
    steps: int,
    seed: int,
    batch_size: int = 64,
    lr: float = 2e-4,
    gp_weight: float = 10.0,
) -> float:
    """Fit a fresh WGAN-GP critic for ``steps`` steps on (real_fit, fake_fit); its test gap.

    Real and fake batches are drawn independently (the two samples need not be paired). The
    critic's initial weights and the batches are functions of ``seed`` alone.
    """
    if steps < 1:
        raise LossylearnError(f"W1 critic needs at least 1 step, got {steps}")
    with seeded(seed):
        critic = Critic(channels_last=CRITIC_CHANNELS_LAST).to(real_fit.device)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.9))
    critic.train()
    n_r, n_f = real_fit.shape[0], fake_fit.shape[0]
    for _ in range(steps):
        ir = torch.randint(0, n_r, (batch_size,), generator=gen).to(real_fit.device)
        jf = torch.randint(0, n_f, (batch_size,), generator=gen).to(real_fit.device)
        critic_step(critic, opt, real_fit[ir], fake_fit[jf], gp_weight=gp_weight, generator=gen)
    return critic_gap(critic, real_eval, fake_eval)


def critic_gap(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> float:
    """A critic's W1 estimate ``E[c(real)] - E[c(fake)]`` (the critic put in eval mode).

    On a decoder's *training* critic and the test images this is the anchor's reported W1 (its
    ``evaluate_losses``): a critic co-trained with the decoder that it scores, so it reads lower
    than a fresh critic fitted to the frozen decoder (:func:`estimate_w1`)."""
    critic.eval()
    with torch.no_grad():

        def mean_score(x: torch.Tensor) -> float:
            return float(
                torch.cat([critic(x[i : i + 1000]) for i in range(0, x.shape[0], 1000)]).mean()
            )

        return mean_score(real) - mean_score(fake)


def codec_metrics(
    *,
    recon: torch.Tensor,
    originals: torch.Tensor,
    labels: torch.Tensor,
    symbols: np.ndarray,
    size: BitstreamSize,
    quantizer: DitheredQuantizer,
    classifier: nn.Module,
    w1: float | None,
    w1_training_critic: float | None = None,
) -> CodecMetrics:
    """Assemble :class:`CodecMetrics` from a decoded test set."""
    ce, acc = classifier_scores(classifier, recon, labels)
    return CodecMetrics(
        mse=mean_squared_error(recon, originals),
        ce=ce,
        accuracy=acc,
        w1=w1,
        rate_bits=quantizer.rate_bits,
        entropy_bits=empirical_entropy_bits(symbols, quantizer.alphabet_size),
        stored_bits_per_image=size.stored_bits_per_image,
        w1_training_critic=w1_training_critic,
    )
