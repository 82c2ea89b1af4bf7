"""Writing a universal store: fixed-rate latent indices, packed per chunk, with an optional per-image
Gaussian mechanism in the latent and randomized-response labels.

A universal store is a ``lossylearn-store/2`` folder whose ``codec.name`` is ``universal``:

* ``headers/universal-bits-<chunk>.bin``: chunk ``k``'s URDC bitstream (24-byte header with the
  dither seed and the chunk's first position, then the packed mixed-radix payload of its images:
  ``ceil(n d log2 L / 8)`` bytes). Pinned by SHA-256 in ``files`` like every header.
* ``shards/shard-<chunk>.parquet``: one row per image (source index, stored label, quality 0, an
  empty ``data`` cell: the image's bits are in the chunk's bitstream, and ``mse_to_noisy``: the
  quantization error per latent dimension against the released (noisy) latent).
* ``manifest.json``: ``codec.rate_bits`` (d log2 L), ``codec.grid`` (levels, radius), the
  decoders' names, the dither seed (public shared randomness, stored once), and in ``privacy`` the
  image guarantee, the label mechanism and the per-record guarantee (or the plain statement that
  there is none when labels are in the clear).

The order of the images is the source order; chunk ``k`` draws its noise and label coins from the
noise stream ``k`` (:func:`lossylearn.privacy.streams.chunk_stream`), seeded with ``--seed`` (then
no guarantee) or from the OS's CSPRNG. The dither seed is drawn from the CSPRNG for an unseeded
run and is the public constant :data:`SEEDED_DITHER` for a seeded one: it never depends on the
noise seed, so the store holds nothing that reveals it.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn.data.mnist import MNIST_CLASSES
from lossylearn.errors import LossylearnError
from lossylearn.pipeline.plan import DataSource
from lossylearn.pipeline.run_state import locked_output, prepare_output
from lossylearn.privacy.source import NoiseSource
from lossylearn.privacy.streams import chunk_stream
from lossylearn.store.layout import (
    HEADERS_DIR,
    MANIFEST,
    RUN_STATE,
    atomic_write_bytes,
    atomic_write_json,
    remove_stale_temporaries,
    sha256_bytes,
    shard_name,
)
from lossylearn.store.manifest import DistortionStats, Manifest, StoreStats
from lossylearn.store.owner import CleanStats
from lossylearn.store.shards import ShardRows, write_shard
from lossylearn.studies.urdc.quantizer import BitstreamHeader, encode_bitstream
from lossylearn.universal.codec import LatentCode, UniversalCodec, decode_latents, encode_latents
from lossylearn.universal.labels import randomized_response, record_guarantee
from lossylearn.universal.latent_noise import LatentMechanism, matched_grid
from lossylearn.universal.train import image_ids
from lossylearn.version import __version__

__all__ = [
    "NOISE_SPACES",
    "SEEDED_DITHER",
    "UniversalRequest",
    "bitstream_name",
    "compress_universal",
]

NOISE_SPACES = ("none", "latent")
SEEDED_DITHER = 20240917
"""Dither seed of every seeded universal store (public, independent of the noise seed)."""


def bitstream_name(chunk: int) -> str:
    """Relative path of chunk ``chunk``'s bitstream."""
    return f"{HEADERS_DIR}/universal-bits-{chunk:05d}.bin"


@dataclass(frozen=True)
class UniversalRequest:
    """What ``compress --codec universal`` asks for beyond the data and the run options."""

    checkpoint: str | Path
    noise_space: str = "none"
    epsilon: float | None = None
    delta: float | None = None
    clip_norm: float | None = None
    label_epsilon: float | None = None
    skip_public: bool = False

    def __post_init__(self) -> None:
        if self.noise_space not in NOISE_SPACES:
            raise LossylearnError(
                f"unknown --noise-space {self.noise_space!r}; choose one of {', '.join(NOISE_SPACES)}"
            )
        noisy = self.noise_space == "latent"
        if noisy and (self.epsilon is None or self.delta is None):
            raise LossylearnError("--noise-space latent needs --epsilon E and --delta D")
        if not noisy and (self.epsilon is not None or self.clip_norm is not None):
            raise LossylearnError(
                "--epsilon/--clip-norm with --codec universal need --noise-space latent"
            )
        if self.label_epsilon is not None and not noisy:
            raise LossylearnError("--label-epsilon needs --noise-space latent (an image guarantee)")


def _secure_dither_seed() -> int:
    return int.from_bytes(os.urandom(8), "big")


def compress_universal(
    request: UniversalRequest,
    *,
    out: str | Path,
    source: DataSource,
    seed: int | None = None,
    chunk_size: int = 1024,
    overwrite: bool = False,
    resume: bool = False,
    signing_key: bytes | None = None,
) -> Manifest:
    """Write a universal store to ``out`` (see the module docstring); returns its manifest."""
    started = time.time()
    out = Path(out)
    codec = UniversalCodec(request.checkpoint)
    ck = codec.checkpoint
    data = source.load()
    if data.shape != (28, 28, 1):
        raise LossylearnError(f"the universal codec stores 28x28 grey digits, got {data.shape}")
    clean, labels = data.images, data.labels
    positions = np.arange(len(clean), dtype=np.int64)
    mech: LatentMechanism | None = None
    if request.noise_space == "latent":
        public = set(ck.config["data"]["public"]["image_sha256_prefixes"])
        seen = np.array([i in public for i in image_ids(clean)], dtype=bool)
        if seen.any() and not request.skip_public:
            raise LossylearnError(
                f"{int(seen.sum())} of the {len(clean)} images were used to train the encoder of "
                f"{request.checkpoint}, so no guarantee can cover them; pass --skip-public to leave "
                "them out (or store another split)"
            )
        positions = positions[~seen]
        if positions.size == 0:
            raise LossylearnError(
                "every image was used to train the encoder: nothing private to store"
            )
        clip = request.clip_norm or float(ck.config["public_latent_norms"]["q50"])
        mech = LatentMechanism(
            float(request.epsilon), float(request.delta), clip, ck.net.latent_dim
        )  # type: ignore[arg-type]
        grid = matched_grid(mech.sigma, clip)
        code = LatentCode(ck.net.latent_dim, grid.levels, grid.radius)
    else:
        code = LatentCode(ck.net.latent_dim, ck.net.levels, 1.0)
    n_classes = len(data.info.get("classes") or MNIST_CLASSES)
    dither_seed = SEEDED_DITHER if seed is not None else _secure_dither_seed()
    config = {
        "lossylearn": __version__, "dataset": data.info, "n_images": int(positions.size),
        "codec": {"name": "universal", "fingerprint": codec.fingerprint, "grid": code.to_dict()},
        "request": {k: (str(v) if isinstance(v, Path) else v) for k, v in request.__dict__.items()},
        "seeded": seed is not None, "chunk_size": chunk_size,
    }  # fmt: skip
    data_sha256 = hashlib.sha256(clean.tobytes() + labels.tobytes()).hexdigest()
    with locked_output(out):
        state, complete = prepare_output(out, config=config, data_sha256=data_sha256, seed=seed,
                                         resume=resume, overwrite=overwrite)  # fmt: skip
        if complete:
            from lossylearn.store.manifest import read_manifest

            return read_manifest(out)
        shards, files, sums = [], {}, []
        payload_bytes = header_bytes = 0
        sq_to_noisy = 0.0
        _, mse_decoder = ck.decoder("mse" if "mse" in ck.decoders else None)
        for k, start in enumerate(range(0, positions.size, chunk_size)):
            pos = positions[start : start + chunk_size]
            latents = encode_latents(ck, clean[pos])
            rng = NoiseSource.create(seed, chunk_stream(k))
            released = mech.release(latents, rng) if mech is not None else latents
            stored_labels = labels[pos]
            if request.label_epsilon is not None:
                stored_labels = randomized_response(stored_labels, n_classes,
                                                    request.label_epsilon, rng)  # fmt: skip
            order = np.arange(start, start + pos.size, dtype=np.int64)
            idx = code.indices(released, dither_seed, order)
            bits, size = encode_bitstream(idx, BitstreamHeader(code.latent_dim, code.levels,
                                                               pos.size, dither_seed, start))  # fmt: skip
            deq = code.dequantize(idx, dither_seed, order)
            err = ((deq.double().numpy() - released) ** 2).mean(axis=1)
            sq_to_noisy += float(err.sum())
            rel_bits = bitstream_name(k)
            atomic_write_bytes(out / rel_bits, bits)
            files[rel_bits] = {"sha256": sha256_bytes(bits), "bytes": len(bits)}
            payload_bytes += size.payload_bytes
            header_bytes += size.header_bytes
            rel = shard_name(k)
            blob = write_shard(out / rel, ShardRows(
                index=pos, label=stored_labels, quality=np.zeros(pos.size, dtype=np.int64),
                data=[b""] * pos.size, mse_to_noisy=err, mae_to_noisy=np.sqrt(err),
            ))  # fmt: skip
            files[rel] = {"sha256": sha256_bytes(blob), "bytes": len(blob)}
            shards.append({"path": rel, "n_images": int(pos.size), "bitstream": rel_bits})
            sums.append(_clean_sums(mse_decoder, code, released, deq, clean[pos]))
        n = int(positions.size)
        privacy = _privacy(mech, request.label_epsilon, n_classes, seed is not None)
        stored = payload_bytes + header_bytes
        manifest = Manifest(
            n_images=n, image_shape=(28, 28, 1), dataset=data.info,
            noise=_noise_section(mech, request.noise_space),
            privacy=privacy,
            codec={
                **codec.config(), "options": {"checkpoint": str(Path(request.checkpoint).resolve())},
                "quality": 0, "qualities": {"0": n}, "grid": code.to_dict(),
                "rate_bits": code.quantizer.rate_bits, "dither_seed": dither_seed,
                "matched": mech is not None,
                "target_metric": "mse", "target_distortion": mech.sigma**2 if mech else 0.0,
                "achieved_distortion": sq_to_noisy / n, "target_reached": True,
                "distortion_space": "latent (per dimension, against the released latent)",
                "message": _codec_message(code, mech),
                "bits": {"payload_bytes": payload_bytes, "bitstream_header_bytes": header_bytes,
                         "nominal_bits_per_image": code.quantizer.rate_bits,
                         "stored_bits_per_image": 8.0 * payload_bytes / n,
                         "overhead": "each chunk's payload is rounded up to whole bytes (< 8 bits "
                                     "per chunk), plus a 24-byte bitstream header per chunk"},
            },
            stats=StoreStats(
                stored_bytes=stored, payload_bytes=payload_bytes, shared_header_bytes=header_bytes,
                container_bytes=stored, file_bytes=sum(int(f["bytes"]) for f in files.values()),
                bits_per_pixel=8.0 * stored / (n * 784),
                container_bits_per_pixel=8.0 * stored / (n * 784),
                distortion_to_noisy=DistortionStats(mse=sq_to_noisy / n, mae=0.0),
            ),
            shards=tuple(shards), files=files,
            run={"id": state.run_id, "fingerprint": state.fingerprint, "seeded": seed is not None,
                 "engine": "local", "workers": 1, "chunk_size": chunk_size,
                 "lossylearn": __version__, "seconds": round(time.time() - started, 3)},
        ).sealed(signing_key)  # fmt: skip
        state.owner.stats = CleanStats.from_sums(sums)
        state.owner.chunks = {}
        state.owner.save()
        atomic_write_json(out / MANIFEST, manifest.to_dict())
        (out / RUN_STATE).unlink(missing_ok=True)
        remove_stale_temporaries(out)
        return manifest


def _clean_sums(decoder: Any, code: LatentCode, released: np.ndarray, deq: Any,
                clean: np.ndarray) -> dict[str, Any]:  # fmt: skip
    """Owner-side sums: the ``mse`` decoder's images of the released latent (``noisy``) and of the
    stored one, against the clean images."""
    import torch

    noisy = decode_latents(decoder, torch.from_numpy(released).float()).astype(np.float64)
    stored = decode_latents(decoder, deq).astype(np.float64)
    c = clean.astype(np.float64)
    return {"sq_err_noisy_to_clean": float(((noisy - c) ** 2).sum()),
            "abs_err_noisy_to_clean": float(np.abs(noisy - c).sum()),
            "sq_err_stored_to_clean": float(((stored - c) ** 2).sum()), "n_values": int(c.size)}  # fmt: skip


def _noise_section(mech: LatentMechanism | None, space: str) -> dict[str, Any]:
    if mech is None:
        return {"kind": "none", "space": space, "sigma": 0.0, "discrete": False,
                "range_handling": "none", "entropy_bits": 0.0}  # fmt: skip
    import math

    return {
        "kind": "gaussian", "space": "latent", "sigma": mech.sigma, "discrete": False,
        "range_handling": "latent clipped to L2 norm C before the noise",
        "clip_norm": mech.clip_norm, "latent_dim": mech.latent_dim,
        "entropy_bits": 0.5 * math.log2(2 * math.pi * math.e * mech.sigma**2),
        "entropy_note": "differential entropy of the float Gaussian, bits per latent dimension",
        "sampler": "inverse CDF of 52 CSPRNG bits (os.urandom); numpy's normal when seeded",
    }  # fmt: skip


def _codec_message(code: LatentCode, mech: LatentMechanism | None) -> str:
    if mech is None:
        return f"the checkpoint's own quantizer: {code.levels} levels on [-1, 1], no noise"
    return (
        f"matched quantizer: step sqrt(12) sigma = {2 * code.radius / (code.levels - 1):.4g}, "
        f"{code.levels} levels on [-{code.radius:.4g}, {code.radius:.4g}], quantization MSE "
        f"sigma^2 = {mech.sigma**2:.4g} per latent dimension"
    )


def _privacy(
    mech: LatentMechanism | None, label_epsilon: float | None, k: int, seeded: bool
) -> dict[str, Any]:
    if mech is None:
        return {
            "guarantee": False, "mechanism": "none",
            "statement": "No privacy guarantee: no noise was added; the stored latents are a "
                         "deterministic function of the images (plus public dither).",
            "not_covered": ["images", "labels are stored in the clear"],
        }  # fmt: skip
    randomness = "seeded (numpy PCG64): no guarantee" if seeded else "csprng (os.urandom)"
    image = mech.guarantee(seeded=seeded, randomness=randomness)
    record = record_guarantee(image, label_epsilon, k)
    image_line = (
        f"({image['epsilon']:.4g}, {image['delta']:.3g})-DP per image (replace-one), Gaussian "
        f"mechanism on the encoder's latent clipped to L2 norm {mech.clip_norm:.4g} (L2 "
        f"sensitivity {mech.sensitivity:.4g}, sigma {mech.sigma:.4g}); the encoder and decoders "
        "were trained on public data only."
    )
    body = {**image, **record, "image_statement": image_line}
    if seeded:
        return {
            "guarantee": False, "mechanism": image["mechanism"],
            "statement": "No differential-privacy guarantee: the latent noise (and the label "
                         "coins) came from a seeded generator, so anyone who learns or guesses the "
                         "seed can regenerate and remove them. For a release, run without --seed.",
            "if_unseeded": body, "not_covered": ["everything: seeded noise"],
        }  # fmt: skip
    statement = image_line + " " + record["per_record_statement"]
    return {"guarantee": True, **body, "statement": statement,
            "not_covered": [] if label_epsilon is not None else ["labels are stored in the clear"]}  # fmt: skip
