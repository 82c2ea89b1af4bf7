"""Stage 1 of the LCoN study: the images it works on (:func:`load_data` -> :class:`StudyData`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lossylearn.errors import LossylearnError
from lossylearn.studies.lcon.config import StudyConfig

__all__ = ["StudyData", "load_data"]


@dataclass(frozen=True)
class StudyData:
    """The training pool, the held-out codec split, the test set, and the classifier they fit."""

    train_x: np.ndarray
    train_y: np.ndarray
    codec_x: np.ndarray
    """With a learned codec: the images its codecs train on (no classifier sees them); else empty."""
    test_x: np.ndarray
    test_y: np.ndarray
    info: dict[str, Any]
    """results.json's ``dataset`` entry."""
    model_config: Any
    """The :class:`lossylearn.learn.ModelConfig` every scheme trains."""

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(int(v) for v in self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def pixels(self) -> int:
        """Pixel positions of the training pool (N x H x W)."""
        n, h, w = self.train_x.shape[:3]
        return int(n * h * w)


def load_data(config: StudyConfig) -> StudyData:
    """Load the dataset, draw the training pool and test set (``data_seed``), and hold out the
    codec split when the codec is learned."""
    from lossylearn.data import load_dataset
    from lossylearn.learn import ModelConfig, default_model_name

    c = config
    caps = [v for v in (c.n_train, c.n_test) if v is not None]
    limit = max(caps) if len(caps) == 2 and c.dataset == "celeba" else None
    ds = load_dataset(
        c.dataset, c.data_dir, attribute=c.attribute, image_size=c.image_size, limit=limit
    )
    rng = np.random.default_rng(c.data_seed)
    tr = rng.permutation(len(ds.train_labels))[: c.n_train]
    te = np.sort(rng.permutation(len(ds.test_labels))[: c.n_test])
    train_x = np.ascontiguousarray(ds.train_images[tr])
    train_y = ds.train_labels[tr]
    codec_x = train_x[:0]
    if c.codec == "learned":
        # The codecs train on their own split; no classifier (clean, noisy or LCoN) sees it.
        n_codec = int(round(c.codec_fraction * len(train_y)))
        if n_codec < 20 or len(train_y) - n_codec < 20:
            raise LossylearnError(
                f"codec-fraction {c.codec_fraction:g} of {len(train_y)} training images "
                "leaves fewer than 20 for the codec or the classifiers"
            )
        codec_x = train_x[:n_codec]
        train_x, train_y = np.ascontiguousarray(train_x[n_codec:]), train_y[n_codec:]
    shape = tuple(int(v) for v in train_x.shape[1:])
    info = {
        "name": ds.name,
        "source": ds.source,
        "classes": list(ds.classes),
        "image_shape": list(shape),
        "n_train_pool": int(len(train_y)),
        "n_codec_train": int(len(codec_x)),
        "n_test": int(len(te)),
        "train_class_counts": np.bincount(train_y, minlength=len(ds.classes)).tolist(),
    }
    name = c.model if c.model != "auto" else default_model_name(shape[:2])
    model_config = ModelConfig(name, shape[2], (shape[0], shape[1]), len(ds.classes), c.width)
    return StudyData(
        train_x=train_x, train_y=train_y, codec_x=codec_x,
        test_x=np.ascontiguousarray(ds.test_images[te]), test_y=ds.test_labels[te],
        info=info, model_config=model_config,
    )  # fmt: skip
