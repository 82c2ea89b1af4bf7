"""A compress run as one typed, validated value: :class:`CompressPlan`.

A plan is built once (from the CLI, from ``lossylearn.compress(**kwargs)``, or by a study),
checked once (each part checks itself when it is made, the noise when it is resolved against the
images' shape), and can be shipped to a worker or reused: it is frozen plain data that pickles.

    CompressPlan(
        run=RunOptions(out="S", seed=0),          # where, how many workers, resume, ...
        source=DataSource(dataset="mnist"),       # where the clean images come from
        noise=NoiseRequest(psnr=20),              # what noise (-> NoiseSpec + PrivacyGuarantee)
        codec=CodecChoice("jpeg"),                # which codec, how its quality is searched
        target=TargetPolicy("nominal"),           # which distortion the codec matches
    )
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn.data import ImageDataset, load_dataset
from lossylearn.errors import LossylearnError
from lossylearn.pipeline.targets import TargetPolicy
from lossylearn.privacy.request import NoiseRequest

MATCH_MODES = ("dataset", "image")
ENGINES = ("local", "ray")
"""Where the chunks are coded: ``local`` (this machine's process pool) or ``ray`` (Ray tasks)."""


def _whole(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise LossylearnError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise LossylearnError(f"{name} must be at most {maximum}, got {value!r}")


@dataclass(frozen=True)
class LoadedData:
    """Clean images (uint8 N, H, W, C), int64 labels and a description of where they came from."""

    images: np.ndarray
    labels: np.ndarray
    info: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(int(v) for v in self.images.shape[1:])  # type: ignore[return-value]


@dataclass(frozen=True)
class DataSource:
    """Where the clean images come from: a named dataset, or arrays held in memory."""

    dataset: str | ImageDataset = "mnist"
    data_dir: str | Path | None = None
    split: str = "train"
    attribute: str = "Male"
    image_size: int | None = None
    limit: int | None = None
    images: np.ndarray | None = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.split not in ("train", "test"):
            raise LossylearnError(f"unknown split {self.split!r}; choose train or test")
        if self.limit is not None:
            _whole("--limit", self.limit)
        if (self.images is None) != (self.labels is None):
            raise LossylearnError("give images and labels together")

    def load(self) -> LoadedData:
        """Load (or take) the split, apply the limit, and check the arrays."""
        if self.images is not None:
            images, labels = self.images, np.asarray(self.labels)
            info: dict[str, Any] = {
                "name": "arrays",
                "split": self.split,
                "source": "in-memory arrays",
            }
            if self.classes is not None:
                info["classes"] = [str(c) for c in self.classes]
        else:
            ds = (
                self.dataset
                if isinstance(self.dataset, ImageDataset)
                else load_dataset(
                    self.dataset,
                    self.data_dir,
                    limit=self.limit,
                    attribute=self.attribute,
                    image_size=self.image_size,
                )  # fmt: skip
            )
            images, labels = ds.split(self.split)
            info = {"name": ds.name, "split": self.split, "source": ds.source,
                    "classes": list(ds.classes)}  # fmt: skip
        if self.limit is not None:
            images, labels = images[: self.limit], labels[: self.limit]
        _check_arrays(images, labels)
        return LoadedData(images=images, labels=np.asarray(labels).astype(np.int64), info=info)


def _check_arrays(images: Any, labels: Any) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise LossylearnError(
            f"images must be a uint8 array (N, H, W, C); got {getattr(images, 'dtype', type(images))} "
            f"with shape {getattr(images, 'shape', '?')}"
        )
    if images.shape[-1] not in (1, 3):
        raise LossylearnError(f"images must have 1 or 3 channels, got {images.shape[-1]}")
    if len(labels) != len(images):
        raise LossylearnError(f"{len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise LossylearnError("no images to compress")


@dataclass(frozen=True)
class CodecChoice:
    """Which codec, with which options, and how its quality is searched."""

    name: str = "jpeg"
    options: dict[str, Any] = field(default_factory=dict)
    match: str = "dataset"
    """``dataset``: one quality for the set, searched on ``match_sample`` noisy images of the first
    chunk; ``image``: bisected per image."""
    match_sample: int = 256
    tolerance: float = 0.10
    """Relative distance to the target that counts as reached."""

    def __post_init__(self) -> None:
        if self.match not in MATCH_MODES:
            raise LossylearnError(
                f"unknown --match {self.match!r}; choose one of {', '.join(MATCH_MODES)}"
            )
        _whole("--match-sample", self.match_sample)
        t = self.tolerance
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
            raise LossylearnError(f"--tolerance must be a positive finite number, got {t}")
        # A checkpoint path is recorded absolute: a store opened from another folder still finds
        # it (the codec's config also pins its SHA-256).
        ck = self.options.get("checkpoint")
        if isinstance(ck, str | Path):
            opts = {**self.options, "checkpoint": str(Path(ck).expanduser().resolve())}
            object.__setattr__(self, "options", opts)


@dataclass(frozen=True)
class RunOptions:
    """Where the store goes and how the run behaves."""

    out: str | Path
    seed: int | None = None
    """Seeded noise: reproducible, and then no privacy guarantee. None: the OS's secure generator."""
    workers: int = 1
    chunk_size: int = 1024
    resume: bool = False
    overwrite: bool = False
    allow_weak_noise: bool = False
    """Accept noise that changes fewer than half of the pixels."""
    signing_key: bytes | None = field(default=None, repr=False)
    progress: bool = True
    engine: str = "local"
    """``local``: a process pool of ``workers``; ``ray``: Ray tasks, ``workers`` chunks at once
    (:mod:`lossylearn.pipeline.ray_engine`). Both write the same bytes."""
    ray_address: str | None = None
    """With ``engine="ray"``: the cluster to join (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``);
    None starts a local Ray of ``workers`` CPUs (or joins ``RAY_ADDRESS`` when that is set)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        _whole("--workers", self.workers)
        if self.engine not in ENGINES:
            raise LossylearnError(
                f"unknown --engine {self.engine!r}; choose one of {', '.join(ENGINES)}"
            )
        if self.ray_address is not None:
            if self.engine != "ray":
                raise LossylearnError("--ray-address needs --engine ray")
            if not isinstance(self.ray_address, str) or not self.ray_address.strip():
                raise LossylearnError(f"--ray-address must be an address, got {self.ray_address!r}")
        if self.engine == "ray":
            from lossylearn.pipeline.ray_engine import RAY_MISSING, ray_available

            if not ray_available():  # refused before anything is written
                raise LossylearnError(RAY_MISSING)
        _whole("--chunk-size", self.chunk_size)
        if self.seed is not None:
            _whole("--seed", self.seed, minimum=0, maximum=2**63 - 1)
        if self.signing_key is not None and len(self.signing_key) < 16:
            raise LossylearnError("a signing key needs at least 16 bytes")


@dataclass(frozen=True)
class CompressPlan:
    """Everything that decides a compress run (see the module docstring)."""

    run: RunOptions
    source: DataSource = field(default_factory=DataSource)
    noise: NoiseRequest = field(default_factory=NoiseRequest)
    codec: CodecChoice = field(default_factory=CodecChoice)
    target: TargetPolicy = field(default_factory=TargetPolicy)

    @classmethod
    def from_kwargs(cls, **kw: Any) -> CompressPlan:
        """The plan for ``lossylearn.compress``'s keyword form (see its docstring)."""
        parts: dict[str, dict[str, Any]] = {"run": {}, "source": {}, "noise": {}, "codec": {}}
        names = {
            "run": {f.name for f in fields(RunOptions)},
            "source": {f.name for f in fields(DataSource)},
            "noise": {f.name for f in fields(NoiseRequest)} - {"kind"},
        }
        renamed = {"noise": ("noise", "kind"), "codec": ("codec", "name"),
                   "codec_options": ("codec", "options"), "match": ("codec", "match"),
                   "match_sample": ("codec", "match_sample"), "tolerance": ("codec", "tolerance")}  # fmt: skip
        given_target = kw.pop("target_distortion", None)
        basis = kw.pop("match_noise", "nominal")
        for key, value in kw.items():
            if key in renamed:
                part, name = renamed[key]
                if value is not None or name != "options":
                    parts[part][name] = value
                continue
            part = next((p for p, ns in names.items() if key in ns), None)
            if part is None:
                raise TypeError(f"compress() got an unexpected keyword argument {key!r}")
            parts[part][key] = value
        if "out" not in parts["run"]:
            raise LossylearnError("compress needs out= (the store folder to create)")
        if parts["source"].get("classes") is not None:
            parts["source"]["classes"] = tuple(parts["source"]["classes"])
        target = (
            TargetPolicy("given", given_target) if given_target is not None else TargetPolicy(basis)
        )
        return cls(
            run=RunOptions(**parts["run"]),
            source=DataSource(**parts["source"]),
            noise=NoiseRequest(**parts["noise"]),
            codec=CodecChoice(**parts["codec"]),
            target=target,
        )
