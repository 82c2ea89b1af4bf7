"""The store manifest: what is in a store, how it was made, and what it guarantees.

The manifest is a typed object inside the library and JSON on disk. Its sections follow the
``lossylearn-store/1`` contract: ``noise``, ``privacy``, ``codec``, ``stats`` and ``files``
(relative path -> SHA-256 and size), plus ``dataset`` and ``run`` (how and when it was made).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lossylearn.errors import StoreError
from lossylearn.store.layout import MANIFEST, STORE_FORMAT


@dataclass(frozen=True)
class DistortionStats:
    """Mean per-image distortion between the stored reconstructions and the noisy images."""

    mse: float
    mae: float


@dataclass(frozen=True)
class StoreStats:
    """Measured sizes and distortions of a store (all bits counted from real bytes)."""

    stored_bytes: int
    """Bytes of coded images plus shared headers: what the codec really needs to rebuild the set."""
    payload_bytes: int
    """Bytes of the per-image coded payloads alone."""
    shared_header_bytes: int
    """Bytes stored once for the whole set (e.g. JPEG tables), already inside ``stored_bytes``."""
    container_bytes: int
    """Bytes the same images take as standalone standard files (each with its own headers)."""
    file_bytes: int
    """Bytes of the store folder on disk (Parquet shards, headers, manifest excluded)."""
    bits_per_pixel: float
    """8 * stored_bytes / (n_images * H * W): per pixel position, all channels together."""
    container_bits_per_pixel: float
    distortion_to_noisy: DistortionStats
    psnr_noisy_db: float
    """PSNR of the noisy images against the clean ones (measured before the clean data is dropped)."""
    psnr_stored_db: float
    """PSNR of the stored reconstructions against the clean images (idem)."""
    mse_noisy_to_clean: float
    mse_stored_to_clean: float
    mae_noisy_to_clean: float | None = None
    """Mean absolute noise that survived range handling (clipping shrinks it below b on dark or
    bright pixels); ``None`` in stores written before it was recorded."""


@dataclass(frozen=True)
class Manifest:
    """A store's manifest. ``to_dict`` gives the JSON written to ``manifest.json``."""

    n_images: int
    image_shape: tuple[int, int, int]
    dataset: dict[str, Any]
    noise: dict[str, Any]
    privacy: dict[str, Any]
    codec: dict[str, Any]
    stats: StoreStats
    shards: tuple[dict[str, Any], ...]
    files: dict[str, dict[str, Any]]
    run: dict[str, Any] = field(default_factory=dict)
    format: str = STORE_FORMAT

    @property
    def target_reached(self) -> bool:
        """Whether the codec reached the distortion it was asked to match."""
        return bool(self.codec.get("target_reached"))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, keys as in the manifest contract."""
        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        d["shards"] = list(self.shards)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        """Rebuild a manifest from its JSON form; raises StoreError if keys are missing."""
        try:
            if d.get("format") != STORE_FORMAT:
                raise StoreError(
                    f"not a lossylearn store: format is {d.get('format')!r}, expected {STORE_FORMAT!r}"
                )
            s = dict(d["stats"])
            s["distortion_to_noisy"] = DistortionStats(**s["distortion_to_noisy"])
            return cls(
                n_images=int(d["n_images"]),
                image_shape=tuple(int(v) for v in d["image_shape"]),  # type: ignore[arg-type]
                dataset=d["dataset"],
                noise=d["noise"],
                privacy=d["privacy"],
                codec=d["codec"],
                stats=StoreStats(**s),
                shards=tuple(d["shards"]),
                files=d["files"],
                run=d.get("run", {}),
                format=d["format"],
            )
        except (KeyError, TypeError) as exc:
            raise StoreError(f"manifest is missing or has a malformed field: {exc}") from None


def read_manifest(directory: str | Path) -> Manifest:
    """Read and validate ``DIR/manifest.json``; raises StoreError if absent or malformed."""
    path = Path(directory) / MANIFEST
    if not Path(directory).is_dir():
        raise StoreError(f"{directory}: no such store folder")
    if not path.is_file():
        raise StoreError(
            f"{directory}: no manifest.json, so this is not a complete store "
            "(an interrupted run can be finished with `lossylearn compress ... --resume`)"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: manifest is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise StoreError(f"{path}: manifest is not a JSON object")
    return Manifest.from_dict(data)
