"""A noise-robust decoder, trained after the fact and added to a checkpoint.

The decoder learns to map what a private store holds (a public digit's latent, clipped to C,
plus the Gaussian noise of a per-image epsilon, quantized on the matched grid with fresh dither) back
to the clean digit, by MSE: an estimate of the posterior mean E[x | stored latent]. Training sees
the public part only (the noise is simulated on public digits, so it costs no privacy), and the
encoder stays frozen, so the checkpoint's fingerprint and every store made with it are unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lossylearn.data import load_dataset
from lossylearn.learn import seeded, torch_threads
from lossylearn.studies.urdc.models import NetConfig, build_decoder
from lossylearn.universal.checkpoint import add_decoder, load_checkpoint
from lossylearn.universal.codec import encode_latents
from lossylearn.universal.latent_noise import LatentMechanism, clip_l2, matched_grid
from lossylearn.universal.train import _float, split_pool

__all__ = ["train_robust_decoder"]


def train_robust_decoder(
    checkpoint: str | Path,
    *,
    name: str = "robust",
    epsilon: float = 8.0,
    delta: float = 1e-5,
    clip_norm: float | None = None,
    epochs: int = 8,
    data_dir: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 2e-3,
) -> dict[str, Any]:
    """Train decoder ``name`` for the store noise of ``epsilon`` and add it to ``checkpoint``."""
    ck = load_checkpoint(checkpoint)
    n_public = int(ck.config["data"]["public"]["n"])
    pool_x, pool_y = load_dataset("mnist", data_dir).split("train")
    (pub_x, _), _ = split_pool(pool_x, pool_y, n_public)
    clip = clip_norm or float(ck.config["public_latent_norms"]["q50"])
    mech = LatentMechanism(epsilon, delta, clip, ck.net.latent_dim)
    grid = matched_grid(mech.sigma, clip)
    x = _float(pub_x)
    y = torch.from_numpy(clip_l2(encode_latents(ck, pub_x), clip)).float()
    net = NetConfig.from_dict({**ck.config["net"], "decoder": "mlp"})
    gen = torch.Generator().manual_seed(seed + 7)
    with torch_threads(1):
        with seeded(seed + 7):
            dec = build_decoder(net)
        opt = torch.optim.Adam(dec.parameters(), lr=lr)
        dec.train()
        losses = []
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=gen)
            total = 0.0
            for i in range(0, len(x) - 1, batch_size):
                idx = perm[i : i + batch_size]
                z = y[idx] + mech.sigma * torch.randn(len(idx), y.shape[1], generator=gen)
                u = (torch.rand(len(idx), y.shape[1], generator=gen) - 0.5) * grid.step
                k = torch.round((z + u + grid.radius) / grid.step).clamp(0, grid.levels - 1)
                zq = k * grid.step - grid.radius - u
                loss = F.mse_loss(dec(zq), x[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            losses.append(total / len(x))
    meta = {
        "kind": "mlp",
        "objective": {"mse": 1.0},
        "trained": "after the fact, on the frozen encoder: public digits' latents clipped to C, "
        "noised at the sigma of the given epsilon and quantized on the matched grid",
        "noise": {"epsilon": epsilon, "delta": delta, "clip_norm": clip, "sigma": mech.sigma,
                  "grid": grid.to_dict()},
        "epochs": epochs, "seed": seed, "final_mse": losses[-1] if losses else float(np.nan),
    }  # fmt: skip
    add_decoder(Path(checkpoint), name, dec.eval(), meta)
    return meta
