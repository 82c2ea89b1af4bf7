"""Stage 3 of the LCoN study: one real store per :class:`~.points.Point` (:func:`make_store` ->
:class:`StoreInfo`), its learned codec when there is one (:func:`matched_codec`), and the LCoN
training set read back from it (:func:`training_set`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn.errors import LossylearnError
from lossylearn.pipeline.targets import TargetPolicy
from lossylearn.privacy.mechanisms import NoiseSpec
from lossylearn.privacy.streams import Stream, stream
from lossylearn.studies.lcon.budget import CodedSizes
from lossylearn.studies.lcon.config import StudyConfig
from lossylearn.studies.lcon.data import StudyData
from lossylearn.studies.lcon.points import Point

__all__ = ["StoreInfo", "make_store", "matched_codec", "noisy_copies", "training_set"]


@dataclass(frozen=True)
class StoreInfo:
    """A committed store and what the rows carry about it (all read from its manifest)."""

    point: Point
    path: Path
    sigma: float
    metric: str
    target: float
    target_basis: str
    achieved: float
    reached: bool
    message: str
    quality: int
    bpp: float
    stored_bytes: int
    codec_options: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    """results.json's ``stores`` entry (with the owner's clean-side figures and the privacy)."""

    def row_columns(self) -> dict[str, Any]:
        """The columns of a :class:`~lossylearn.studies.lcon.results.ResultRow` that describe
        this store: its point, noise, codec target and quality, and bits per pixel."""
        return {
            "sweep": self.point.sweep,
            "psnr": self.point.psnr,
            "noise_sigma": self.sigma,
            "target_distortion": self.target,
            "achieved_distortion": self.achieved,
            "target_reached": self.reached,
            "metric": self.metric,
            "quality": self.quality,
            "bits_per_pixel": self.bpp,
        }


def noisy_copies(images: np.ndarray, spec: NoiseSpec, seed: int, name: Stream) -> np.ndarray:
    """``images`` with ``spec`` noise from the named stream ``name`` of ``seed``."""
    from lossylearn.privacy import NoiseSource, add_noise

    return add_noise(images, spec, NoiseSource.create(seed, stream(name)))


def matched_codec(
    point: Point, spec: NoiseSpec, policy: TargetPolicy, data: StudyData, config: StudyConfig,
    out: Path,
) -> tuple[dict[str, Any], dict[str, Any] | None]:  # fmt: skip
    """Codec options for ``point``'s store, and the training record of its learned codec (None for
    a standard codec).

    A learned codec must be trained for its target before the store exists, so its target is
    ``policy``'s on the noisy copies of the held-out codec split (the same rule, estimated from the
    codec's own noisy images; exact for a nominal or given target). The store then matches the same
    policy on its own images.
    """
    from lossylearn.studies.lcon.codec_training import matched_checkpoint

    options = dict(config.codec_options)
    if config.codec != "learned":
        return options, None
    noisy = noisy_copies(data.codec_x, spec, config.data_seed, Stream.STUDY_CODEC_TRAIN)
    metric, target = policy.target(spec, noisy)
    path = out / "codecs" / point.name
    record = matched_checkpoint(
        noisy, metric=metric, target=target, path=path, config=config.codec_training(),
        meta={"study_store": point.name, "noise": spec.kind},
    )  # fmt: skip
    record = {"store": point.name, **record, "target_basis": policy.basis}
    record["path"] = str(Path(record["path"]).relative_to(out))
    return {**options, "checkpoint": str(path)}, record


def make_store(
    point: Point, data: StudyData, config: StudyConfig, out: Path, *, policy: TargetPolicy,
    codec_options: dict[str, Any], warn: Callable[[str], None],
) -> StoreInfo:  # fmt: skip
    """Compress the training pool into ``out/stores/<name>`` (resumed or reused when already
    there) with ``point``'s noise, the study's codec and ``policy``'s target."""
    from lossylearn.pipeline import CodecChoice, CompressPlan, DataSource, RunOptions, compress
    from lossylearn.store.owner import read_clean_stats

    path = out / "stores" / point.name
    plan = CompressPlan(
        run=RunOptions(out=path, seed=config.data_seed, workers=config.workers, resume=True,
                       progress=config.progress),
        source=DataSource(images=data.train_x, labels=data.train_y,
                          classes=tuple(str(c) for c in data.info["classes"])),
        noise=point.noise,
        codec=CodecChoice(config.codec, options=codec_options, match="dataset"),
        target=policy,
    )  # fmt: skip
    md = compress(plan, warn=warn).to_dict()
    clean = read_clean_stats(path)  # the study holds the clean data: it is the owner
    codec, stats = md["codec"], md["stats"]
    if codec["quality"] is None:
        raise LossylearnError(
            f"store {path} holds several codec qualities; the study needs one per store"
        )
    info = dict(
        point=point, path=path, sigma=float(md["noise"].get("sigma") or md["noise"].get("b") or 0.0),
        metric=str(codec["target_metric"]), target=float(codec["target_distortion"]),
        target_basis=str(codec["target_basis"]), achieved=float(codec["achieved_distortion"]),
        reached=bool(codec["target_reached"]), message=str(codec.get("message", "")),
        quality=int(codec["quality"]), bpp=float(stats["bits_per_pixel"]),
        stored_bytes=int(stats["stored_bytes"]), codec_options=codec_options,
    )  # fmt: skip
    record = {
        "name": point.name, "sweep": point.sweep, "psnr": point.psnr, "factor": point.factor,
        "trained": point.train, "path": str(path.relative_to(out)), "quality": info["quality"],
        "metric": info["metric"], "target_distortion": info["target"],
        "target_basis": info["target_basis"], "achieved_distortion": info["achieved"],
        "target_reached": info["reached"], "message": info["message"],
        "bits_per_pixel": info["bpp"], "stored_bytes": info["stored_bytes"],
        "shared_header_bytes": int(stats["shared_header_bytes"]),
        "psnr_noisy_db": clean.psnr_noisy_db, "psnr_stored_db": clean.psnr_stored_db,
        "mse_stored_to_clean": clean.mse_stored_to_clean,
        "mae_noisy_to_clean": clean.mae_noisy_to_clean,
        "noise": md["noise"], "privacy": md["privacy"],
    }  # fmt: skip
    return StoreInfo(**info, record=record)


def training_set(store: StoreInfo) -> tuple[np.ndarray, np.ndarray, CodedSizes]:
    """The LCoN scheme's training images and labels, decoded from the store, and their real coded
    sizes (payload per image, shared headers once)."""
    from lossylearn.store import open_store

    opened = open_store(store.path)
    x, y = opened.arrays()
    sizes = np.array([len(opened.payload(i)) for i in range(len(opened))], dtype=np.int64)
    return x, y, CodedSizes(sizes, int(opened.manifest.stats.shared_header_bytes))
