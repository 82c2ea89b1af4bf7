"""``compress --codec universal``: the command line's options checked and turned into a store.

Kept out of :mod:`lossylearn.cli.compress` so that file only dispatches. Every option that has no
meaning for a universal store is refused with one line rather than silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lossylearn.errors import LossylearnError
from lossylearn.pipeline.plan import DataSource
from lossylearn.store.manifest import Manifest

__all__ = ["compress_from_cli"]


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


def compress_from_cli(opts: dict[str, Any]) -> Manifest:
    """Check the options of ``compress`` (its local variables) and write a universal store."""
    from lossylearn.cli.compress import _read_key
    from lossylearn.pipeline.remote import is_remote
    from lossylearn.universal.store import UniversalRequest, compress_universal

    space, codec = opts["noise_space"], opts["codec"]
    if space not in ("pixel", "latent"):
        raise LossylearnError(f"unknown --noise-space {space!r}; choose pixel or latent")
    if codec != "universal":
        raise LossylearnError(
            "--noise-space latent and --label-epsilon need --codec universal --codec-checkpoint U"
        )
    if opts["codec_checkpoint"] is None:
        raise LossylearnError(
            "--codec universal needs --codec-checkpoint U (make one with 'lossylearn universal train')"
        )
    for name in ("sigma", "b", "psnr", "sensitivity", "target_distortion"):
        if opts[name] is not None:
            raise LossylearnError(
                f"--{name.replace('_', '-')} does not apply to --codec universal: the latent noise is "
                "calibrated from --epsilon/--delta and --clip-norm"
            )
    if opts["discrete"] or _value(opts["noise"]) != "gaussian":
        raise LossylearnError(
            "the latent mechanism is the (float) Gaussian: drop --discrete/--noise"
        )
    if opts["epsilon"] is not None and space != "latent":
        raise LossylearnError("--codec universal with --epsilon needs --noise-space latent")
    if space == "latent" and _value(opts["unit"]) != "image":
        raise LossylearnError(
            "the latent mechanism protects a whole image: pass --unit image with --noise-space latent"
        )
    if opts["workers"] != 1 or _value(opts["engine"]) != "local" or is_remote(opts["out"]):
        raise LossylearnError(
            "--codec universal writes a local folder in one process (no --workers/--engine/URL)"
        )
    if opts["dataset"] != "mnist":
        raise LossylearnError("--codec universal stores MNIST digits (the checkpoint's domain)")
    request = UniversalRequest(
        checkpoint=Path(opts["codec_checkpoint"]),
        noise_space="latent" if space == "latent" else "none",
        epsilon=opts["epsilon"],
        delta=opts["delta"],
        clip_norm=opts["clip_norm"],
        label_epsilon=opts["label_epsilon"],
        skip_public=opts["skip_public"],
    )
    source = DataSource(dataset="mnist", data_dir=opts["data_dir"], split=opts["split"],
                        limit=opts["limit"])  # fmt: skip
    return compress_universal(
        request, out=opts["out"], source=source, seed=opts["seed"],
        chunk_size=opts["chunk_size"], overwrite=opts["overwrite"], resume=opts["resume"],
        signing_key=_read_key(opts["signing_key"]),
    )  # fmt: skip
