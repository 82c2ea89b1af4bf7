"""The attacker's pool and the owner's clean data: what an audit compares a store with.

An audit is run by the data owner, who holds the clean images the store was made from. The store
records, for every stored image, its ``source_index`` into the array ``compress`` was given; the
manifest's ``dataset`` section names the dataset and split. :func:`clean_pool_for_store` reloads
that split (through :mod:`lossylearn.data`'s registry, ``--data-dir`` when the files live
elsewhere), takes the first ``n_images`` of it (what ``compress --limit`` keeps), and checks it
against the fingerprint in the owner file ``<store>.owner.json`` when the owner file is there.
A store made from in-memory arrays (the studies') is audited through :class:`CleanPool` directly.

The pool is the store's own source images plus distractors: the rest of the same split first,
then the other split of the same dataset (same distribution, never stored), as many as asked.
Distractors double as the non-members of the membership attack.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lossylearn.errors import LossylearnError

if TYPE_CHECKING:
    from lossylearn.store.reader import Store

__all__ = ["CleanPool", "clean_pool_for_store"]


@dataclass(frozen=True, eq=False)
class CleanPool:
    """The clean side of an audit.

    ``sources``/``source_labels``: the array the store was made from (``source_index`` indexes
    it); ``distractors``/``distractor_labels``: clean images of the same dataset that are not in
    the store (the attacker's extra candidates, and the membership attack's non-members).
    """

    sources: np.ndarray
    source_labels: np.ndarray
    distractors: np.ndarray
    distractor_labels: np.ndarray
    description: str
    fingerprint_checked: bool = False

    def __post_init__(self) -> None:
        for name in ("sources", "distractors"):
            a = getattr(self, name)
            if not isinstance(a, np.ndarray) or a.dtype != np.uint8 or a.ndim != 4:
                raise LossylearnError(f"{name} must be a uint8 array shaped (N, H, W, C)")
        if self.sources.shape[1:] != self.distractors.shape[1:] and len(self.distractors):
            raise LossylearnError(
                f"sources are {self.sources.shape[1:]} but distractors {self.distractors.shape[1:]}"
            )
        if len(self.source_labels) != len(self.sources) or len(self.distractor_labels) != len(
            self.distractors
        ):
            raise LossylearnError("every pool image needs a label")

    def limited(self, n_distractors: int | None) -> CleanPool:
        """The same pool with at most ``n_distractors`` distractors (the first ones)."""
        if n_distractors is None or n_distractors >= len(self.distractors):
            return self
        k = max(0, int(n_distractors))
        return CleanPool(
            self.sources, self.source_labels, self.distractors[:k], self.distractor_labels[:k],
            self.description, self.fingerprint_checked,
        )  # fmt: skip


def _fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """The owner file's ``data_sha256`` (as :mod:`lossylearn.pipeline.runner` computes it)."""
    return hashlib.sha256(images.tobytes() + labels.astype(np.int64).tobytes()).hexdigest()


def clean_pool_for_store(
    store: Store, directory: str | Path, data_dir: str | Path | None = None
) -> CleanPool:
    """Reload the clean source of the store at ``directory`` from what its manifest records
    (dataset name and split; ``data_dir`` for a dataset held in files) and check it."""
    from lossylearn.data import load_dataset
    from lossylearn.store.owner import OwnerFile, owner_path

    m = store.manifest
    ds_info: dict[str, Any] = m.dataset
    name, split = ds_info.get("name"), ds_info.get("split", "train")
    if name in (None, "arrays"):
        raise LossylearnError(
            f"{directory}: the store was made from in-memory arrays; audit it from Python with "
            "lossylearn.audit.audit_store(store, CleanPool(...)) and the same arrays"
        )
    other = "test" if split == "train" else "train"
    size = m.image_shape[0] if m.image_shape[0] == m.image_shape[1] else None
    ds = load_dataset(str(name), data_dir, image_size=size)
    images, labels = ds.split(str(split))
    n = m.n_images
    if len(images) < n:
        raise LossylearnError(
            f"{directory}: the store holds {n} images but {name} {split} here has only "
            f"{len(images)}; pass the --data-dir the store was made from"
        )
    src, src_lab = np.ascontiguousarray(images[:n]), labels[:n]
    if src.shape[1:] != tuple(m.image_shape):
        raise LossylearnError(
            f"{directory}: stored images are {tuple(m.image_shape)} but {name} gives {src.shape[1:]}"
        )
    checked = False
    path = owner_path(directory)
    if path.is_file():
        owner = OwnerFile.load(path)
        if owner.data_sha256 != _fingerprint(src, src_lab):
            raise LossylearnError(
                f"{directory}: the clean data loaded here ({name} {split}, first {n}) is not the "
                f"data the store was made from (fingerprint in {path.name} differs); pass the "
                "--data-dir the store was made from"
            )
        checked = True
    elif not np.array_equal(store.labels, src_lab[store.indices]):
        raise LossylearnError(
            f"{directory}: the labels of {name} {split} do not match the store's; pass the "
            "--data-dir the store was made from"
        )
    o_images, o_labels = ds.split(other)
    distractors = np.ascontiguousarray(np.concatenate([images[n:], o_images]))
    d_labels = np.concatenate([labels[n:], o_labels]).astype(np.int64)
    desc = (
        f"{ds.name} {split} (first {n}: the store's sources"
        + (", checked against the owner file's fingerprint" if checked else ", labels checked")
        + f"); distractors: {len(images) - n} more {split} images, then {len(o_images)} {other} "
        f"images. Source: {ds.source}"
    )
    return CleanPool(src, src_lab.astype(np.int64), distractors, d_labels, desc, checked)
