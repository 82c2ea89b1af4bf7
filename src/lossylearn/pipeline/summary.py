"""From finished chunks to the manifest: sizes, distortions, the privacy section, the codec's verdict.

Only store-side figures go into the manifest; the clean-side ones go to the owner file.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from lossylearn.codecs import Codec
from lossylearn.pipeline.chunks import ChunkResult
from lossylearn.privacy import NoiseSpec, PrivacyGuarantee
from lossylearn.store.layout import sha256_bytes
from lossylearn.store.manifest import DistortionStats, Manifest, StoreStats

NOT_COVERED = [
    "labels are stored in the clear",
    "the codec's quality search saw the noisy images only, so it is post-processing and costs no privacy",
]


def privacy_section(guarantee: PrivacyGuarantee, seeded: bool) -> dict[str, Any]:
    """The manifest's ``privacy`` section: the guarantee, or for seeded noise the plain statement
    that there is none (anyone who learns or guesses the seed regenerates the noise and subtracts
    it), with what the same noise would give from a secure generator for comparison."""
    if seeded:
        return {
            "guarantee": False,
            "statement": (
                "No differential-privacy guarantee: the noise was drawn from a seeded generator, so "
                "anyone who learns or guesses the seed can regenerate it and recover the clean "
                "pixels it did not clip. The store does not carry the seed; the command that made "
                "it does. For a private release, run without --seed."
            ),
            "mechanism": guarantee.mechanism,
            "if_unseeded": {**guarantee.to_dict(), "statement": guarantee.describe()},
            "not_covered": NOT_COVERED,
        }
    return {
        "guarantee": True,
        **guarantee.to_dict(),
        "statement": guarantee.describe(),
        "not_covered": NOT_COVERED,
    }


def _verdict(
    distortion: float, target: float, metric: str, tolerance: float, codec: str
) -> tuple[bool, str]:
    gap = (distortion - target) / target if target > 0 else (0.0 if distortion == 0 else math.inf)
    reached = abs(gap) <= tolerance
    name = metric.upper()
    if reached:
        return True, f"{codec} matched {name} {target:.4g} with {distortion:.4g} ({gap:+.1%})"
    side = "below" if gap < 0 else "above"
    return False, (
        f"{codec} could not reach {name} = {target:.4g}: the store holds {name} {distortion:.4g} to the "
        f"noisy images ({abs(gap):.0%} {side} target, tolerance {tolerance:.0%}); stored at the closest "
        "quality it reaches"
    )


def build_manifest(
    *,
    n: int,
    shape: tuple[int, int, int],
    ds_info: dict[str, Any],
    spec: NoiseSpec,
    guarantee: PrivacyGuarantee,
    coder: Codec,
    codec_options: dict[str, Any],
    match: dict[str, Any],
    target: float,
    metric: str,
    tolerance: float,
    target_basis: str = "nominal",
    results: list[ChunkResult],
    headers: dict[str, bytes],
    run: dict[str, Any],
) -> Manifest:
    """Aggregate chunk results into the store's manifest."""
    pixels = n * shape[0] * shape[1]
    payload = sum(r.payload_bytes for r in results)
    header_bytes = sum(len(v) for v in headers.values())
    stored = payload + header_bytes
    mse = sum(r.sum_mse_to_noisy for r in results) / n
    mae = sum(r.sum_mae_to_noisy for r in results) / n
    qualities: Counter[int] = Counter()
    for r in results:
        qualities.update({int(q): c for q, c in r.qualities.items()})

    achieved = mse if metric == "mse" else mae
    if coder.lossless:
        reached = target <= 0
        message = (
            f"{coder.name} is lossless: the store holds the noisy images exactly "
            f"(distortion 0, target {metric.upper()} {target:.4g})"
        )
    elif match["method"] == "image":
        n_reached = sum(r.n_reached for r in results)
        reached, message = _verdict(achieved, target, metric, tolerance, coder.name)
        message += f"; {n_reached} of {n} images individually within tolerance"
    else:
        reached, message = _verdict(achieved, target, metric, tolerance, coder.name)
        if not reached and match.get("message"):
            message += f". Quality search: {match['message']}"

    files = {r.path: {"sha256": r.sha256, "bytes": r.file_bytes} for r in results}
    files.update({rel: {"sha256": sha256_bytes(v), "bytes": len(v)} for rel, v in headers.items()})
    single = len(qualities) == 1
    return Manifest(
        n_images=n,
        image_shape=shape,
        dataset=ds_info,
        noise=spec.to_dict(),
        privacy=privacy_section(guarantee, seeded=bool(run.get("seeded"))),
        codec={
            "name": coder.name,
            "options": codec_options,
            "config": coder.config(),
            "quality": next(iter(qualities)) if single else None,
            "qualities": {str(q): c for q, c in sorted(qualities.items())},
            "target_metric": metric,
            "target_distortion": target,
            "target_basis": target_basis,
            "achieved_distortion": achieved,
            "tolerance": tolerance,
            "target_reached": bool(reached),
            "message": message,
            "match": match,
            "shared_headers": {rel: len(v) for rel, v in headers.items()},
        },
        stats=StoreStats(
            stored_bytes=stored,
            payload_bytes=payload,
            shared_header_bytes=header_bytes,
            container_bytes=sum(r.container_bytes for r in results),
            file_bytes=sum(r.file_bytes for r in results) + header_bytes,
            bits_per_pixel=8.0 * stored / pixels,
            container_bits_per_pixel=8.0 * sum(r.container_bytes for r in results) / pixels,
            distortion_to_noisy=DistortionStats(mse=mse, mae=mae),
        ),
        shards=tuple({"path": r.path, "n_images": r.n_images} for r in results),
        files=files,
        run=run,
    )
