"""The learned feature space of the linkage attack, and the attacker's noise simulation.

The attacker is assumed to hold the clean pool (with its labels) and the store's manifest (so the
noise kind and strength). It trains a small classifier on the pool plus one noisy copy of it made
with the stated noise (so its features survive that noise), and compares stored and pool images
by the cosine similarity of the classifier's penultimate layer (the input of its last linear
layer). It holds no model of the data owner's and never sees the noise the store drew.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lossylearn.privacy.mechanisms import NoiseSpec

__all__ = ["FeatureModel", "simulate_noise", "train_feature_model"]


def simulate_noise(images: np.ndarray, spec: NoiseSpec, seed: int) -> np.ndarray:
    """The attacker's own noisy copy of ``images`` with the stated noise (its own seed: the store's
    noise is unknown to it)."""
    from lossylearn.privacy import NoiseSource, add_noise

    plain = NoiseSpec(spec.kind, spec.scale, range_handling=spec.range_handling)  # float sampler
    return add_noise(images, plain, NoiseSource.create(seed, 0))


@dataclass
class FeatureModel:
    """A trained classifier and the layer whose output is the feature vector."""

    model: nn.Module
    train_accuracy: float
    seconds: float
    description: str

    def features(self, images: np.ndarray, batch: int = 512) -> torch.Tensor:
        """L2-normalised penultimate-layer features (N, F) of uint8 images (N, H, W, C)."""
        from lossylearn.learn import to_float_batch

        last = [m for m in self.model.modules() if isinstance(m, nn.Linear)][-1]
        grabbed: list[torch.Tensor] = []
        hook = last.register_forward_pre_hook(lambda _m, args: grabbed.append(args[0].detach()))
        try:
            with torch.no_grad():
                for i in range(0, len(images), batch):
                    self.model(
                        to_float_batch(
                            torch.from_numpy(np.ascontiguousarray(images[i : i + batch]))
                        )
                    )
        finally:
            hook.remove()
        f = torch.cat(grabbed) if grabbed else torch.zeros(0, last.in_features)
        return f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def sides(
        self, pool: np.ndarray
    ) -> tuple[torch.Tensor, None, Callable[[np.ndarray], torch.Tensor]]:
        """Cosine similarity as a product (pool side, no bias, query side)."""
        return self.features(pool), None, self.features


def train_feature_model(
    pool: np.ndarray, labels: np.ndarray, spec: NoiseSpec, *, n_classes: int, epochs: int,
    seed: int, progress: bool,
) -> FeatureModel:  # fmt: skip
    """Train the attacker's classifier (LeNet for images of 16 pixels a side or more, else the
    small CNN) on the clean pool and one noisy copy of it."""
    from lossylearn.learn import ClassifierTrainConfig, ModelConfig, train_classifier

    h, w, c = pool.shape[1:]
    name = "lenet" if min(h, w) >= 16 else "cnn"
    x = np.concatenate([pool, simulate_noise(pool, spec, seed)])
    y = np.concatenate([labels, labels]).astype(np.int64)
    cfg = ModelConfig(name, int(c), (int(h), int(w)), int(n_classes), width=32)
    r = train_classifier(
        x, y, model_config=cfg, description="attacker features",
        config=ClassifierTrainConfig(epochs=epochs, batch_size=128, lr=2e-3, seed=seed, progress=progress),
    )  # fmt: skip
    desc = (
        f"{name} (width 32) trained {epochs} epochs on the clean pool and one copy of it with the "
        f"stated noise ({spec.describe_scale()}); train accuracy {r.train_accuracy:.1%}"
    )
    return FeatureModel(r.model, r.train_accuracy, r.seconds, desc)
