"""The store manifest: what is in a store, how it was made, and what it guarantees.

The manifest is a typed object inside the library and JSON on disk. Its sections follow the
``lossylearn-store/2`` contract: ``noise``, ``privacy``, ``codec``, ``stats`` and ``files``
(relative path -> SHA-256 and size), plus ``dataset`` and ``run`` (how it was made), and
``integrity``: the SHA-256 of the manifest's own canonical JSON (and, when the writer held a
signing key, an HMAC-SHA256 of it).

Nothing in a manifest is derived from the clean images: distortions are measured against the
noisy images, and the clean-side figures (PSNR to clean, noise left after clipping) live in the
data owner's file beside the store (:mod:`lossylearn.store.owner`). A seeded store carries no seed.

What the integrity digest proves: that the manifest was not edited by hand or damaged since it was
written (every shard and header is pinned by its SHA-256 in ``files``, so the whole store is). It
does not prove who wrote it: anyone can recompute a SHA-256. Only a store signed with a key
(``compress --signing-key``) and checked with the same key (``inspect --signing-key``) proves it
came from a holder of that key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lossylearn.errors import StoreError
from lossylearn.store.layout import MANIFEST, STORE_FORMAT, read_json_file

if TYPE_CHECKING:
    from lossylearn.privacy.guarantee import PrivacyGuarantee
    from lossylearn.privacy.mechanisms import NoiseSpec

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
INTEGRITY_NOTE = (
    "sha256 covers the manifest's canonical JSON without this section, and through `files` every "
    "shard and header: it detects damage and hand edits, but anyone can recompute it. hmac_sha256, "
    "when present, proves the manifest was written by a holder of the signing key."
)


@dataclass(frozen=True)
class DistortionStats:
    """Mean per-image distortion between the stored reconstructions and the noisy images."""

    mse: float
    mae: float


@dataclass(frozen=True)
class StoreStats:
    """Measured sizes and distortions of a store (all bits counted from real bytes).

    Every figure here is computed from the noisy images and the stored bytes: none from the clean
    images (those are in the data owner's file, see :mod:`lossylearn.store.owner`).
    """

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
    integrity: dict[str, Any] = field(default_factory=dict)

    @property
    def target_reached(self) -> bool:
        """Whether the codec reached the distortion it was asked to match."""
        return bool(self.codec.get("target_reached"))

    @property
    def noise_spec(self) -> NoiseSpec:
        """The ``noise`` section, typed."""
        from lossylearn.privacy.mechanisms import NoiseSpec

        return NoiseSpec.from_dict(self.noise)

    @property
    def guarantee(self) -> PrivacyGuarantee | None:
        """The ``privacy`` section, typed: the guarantee, or None when the store claims none."""
        from lossylearn.privacy.guarantee import PrivacyGuarantee

        return PrivacyGuarantee.from_dict(self.privacy) if self.has_guarantee else None

    @property
    def unseeded_guarantee(self) -> PrivacyGuarantee | None:
        """For a seeded store: what the same noise would guarantee from a secure generator."""
        from lossylearn.privacy.guarantee import PrivacyGuarantee

        d = self.privacy.get("if_unseeded")
        return PrivacyGuarantee.from_dict(d) if isinstance(d, dict) else None

    @property
    def has_guarantee(self) -> bool:
        """Whether the store claims a differential-privacy guarantee (never for seeded noise)."""
        return self.privacy.get("guarantee") is True

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, keys as in the manifest contract."""
        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        d["shards"] = list(self.shards)
        return d

    def sealed(self, key: bytes | None = None) -> Manifest:
        """This manifest with its ``integrity`` section computed (signed when ``key`` is given)."""
        body = _canonical(self.to_dict())
        seal: dict[str, Any] = {"sha256": hashlib.sha256(body).hexdigest(), "note": INTEGRITY_NOTE}
        if key is not None:
            seal["hmac_sha256"] = hmac.new(key, body, hashlib.sha256).hexdigest()
        return Manifest(**{**self.__dict__, "integrity": seal})

    @classmethod
    def from_dict(cls, d: Any, *, key: bytes | None = None) -> Manifest:
        """Rebuild and check a manifest from its JSON form; StoreError names what is wrong.

        Checks the types of every field the library relies on, that shards and files are
        consistent, and the integrity digest (and the signature when ``key`` is given).
        """
        if not isinstance(d, dict):
            raise StoreError("manifest is not a JSON object")
        fmt = d.get("format")
        if fmt != STORE_FORMAT:
            older = isinstance(fmt, str) and fmt.startswith("lossylearn-store/")
            raise StoreError(
                f"store format {fmt!r} is not {STORE_FORMAT!r}"
                + (
                    "; it was written by another lossylearn version: compress it again"
                    if older
                    else ""
                )
            )
        _check_integrity(d, key)
        try:
            s = _dict(d, "stats")
            stats = StoreStats(
                **{k: _number(s, k) for k in _STAT_NUMBERS},
                distortion_to_noisy=DistortionStats(
                    **{k: _number(_dict(s, "distortion_to_noisy"), k) for k in ("mse", "mae")}
                ),
            )
        except TypeError as exc:
            raise StoreError(f"manifest stats are malformed ({exc})") from None
        n = _count(d, "n_images", minimum=1)
        shape = d.get("image_shape")
        if (
            not isinstance(shape, list)
            or len(shape) != 3
            or not all(_is_int(v) and v >= 1 for v in shape)
            or shape[2] not in (1, 3)
        ):
            raise StoreError(f"manifest image_shape must be [H, W, 1 or 3], got {shape!r}")
        shards = d.get("shards")
        if not isinstance(shards, list) or not shards:
            raise StoreError("manifest shards must be a non-empty list")
        for sh in shards:
            if not isinstance(sh, dict) or not isinstance(sh.get("path"), str):
                raise StoreError(f"manifest shard entry {sh!r} has no path")
            _count(sh, "n_images", minimum=0)
        if sum(sh["n_images"] for sh in shards) != n:
            raise StoreError(
                f"manifest shards hold {sum(sh['n_images'] for sh in shards)} images, n_images says {n}"
            )
        files = _dict(d, "files")
        for rel, meta in files.items():
            if not isinstance(meta, dict) or not _HEX64.match(str(meta.get("sha256", ""))):
                raise StoreError(f"manifest files[{rel!r}] has no valid sha256")
            _count(meta, "bytes", minimum=0)
        unlisted = [sh["path"] for sh in shards if sh["path"] not in files]
        if unlisted:
            raise StoreError(f"shard {unlisted[0]} has no checksum in the manifest's files")
        return cls(
            n_images=n,
            image_shape=(int(shape[0]), int(shape[1]), int(shape[2])),
            dataset=_dict(d, "dataset"),
            noise=_dict(d, "noise"),
            privacy=_dict(d, "privacy"),
            codec=_dict(d, "codec"),
            stats=stats,
            shards=tuple(shards),
            files=files,
            run=_dict(d, "run"),
            format=fmt,
            integrity=d["integrity"],
        )


_STAT_NUMBERS = (
    "stored_bytes",
    "payload_bytes",
    "shared_header_bytes",
    "container_bytes",
    "file_bytes",
    "bits_per_pixel",
    "container_bits_per_pixel",
)


def _canonical(d: dict[str, Any]) -> bytes:
    body = {k: v for k, v in d.items() if k != "integrity"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _check_integrity(d: dict[str, Any], key: bytes | None) -> None:
    seal = d.get("integrity")
    if not isinstance(seal, dict) or not isinstance(seal.get("sha256"), str):
        raise StoreError("manifest has no integrity digest")
    try:
        body = _canonical(d)
    except ValueError as exc:  # NaN or infinity smuggled in
        raise StoreError(f"manifest holds a value that is not JSON ({exc})") from None
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), seal["sha256"]):
        raise StoreError(
            "manifest does not match its integrity digest: it was edited or damaged after it was written"
        )
    if key is not None:
        mac = seal.get("hmac_sha256")
        if not isinstance(mac, str):
            raise StoreError("manifest is not signed, but a signing key was given to check it")
        if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest(), mac):
            raise StoreError(
                "manifest signature does not match the given key: it was not written by a holder "
                "of this key, or it was altered"
            )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _dict(d: dict[str, Any], key: str) -> dict[str, Any]:
    v = d.get(key)
    if not isinstance(v, dict):
        raise StoreError(f"manifest field {key!r} must be an object, got {type(v).__name__}")
    return v


def _count(d: dict[str, Any], key: str, *, minimum: int) -> int:
    v = d.get(key)
    if not _is_int(v) or v < minimum:
        raise StoreError(f"manifest field {key!r} must be a whole number >= {minimum}, got {v!r}")
    return int(v)


def _number(d: dict[str, Any], key: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise StoreError(f"manifest stats field {key!r} must be a finite number, got {v!r}")
    return v


def read_manifest(directory: str | Path, *, key: bytes | None = None) -> Manifest:
    """Read and check ``DIR/manifest.json``; raises StoreError if absent, malformed or edited."""
    path = Path(directory) / MANIFEST
    if not Path(directory).is_dir():
        raise StoreError(f"{directory}: no such store folder")
    if not path.exists():
        raise StoreError(
            f"{directory}: no manifest.json, so this is not a complete store "
            "(an interrupted run can be finished with `lossylearn compress ... --resume`)"
        )
    data = read_json_file(path, "manifest")
    try:
        return Manifest.from_dict(data, key=key)
    except StoreError as exc:
        raise StoreError(f"{path}: {exc}") from None
