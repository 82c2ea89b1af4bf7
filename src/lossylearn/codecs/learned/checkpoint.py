"""Checkpoints of the learned codec: a folder with ``config.json`` and ``weights.pt`` side by side.

``config.json`` holds everything needed to rebuild the models (the :class:`ModelConfig`), the
distortion the codec was trained for, and one entry per rung of the lambda ladder (its lambda, the
shapes of its entropy tables, how it was trained and what it measured). ``weights.pt`` holds, per
rung, the network's ``state_dict`` and the integer entropy tables built after training; it is read
with ``torch.load(weights_only=True)`` and every tensor is checked against the shapes that the
config implies. Shapes are never inferred from weight names. ``config.json`` records the SHA-256 of
``weights.pt`` so a mismatched pair is refused.

Qualities: rung ``i`` (ascending lambda, i.e. ascending bits and descending distortion) is quality
``i``; a single-model checkpoint has qualities ``(0,)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossylearn.codecs.learned.coding import CompressionModel, EntropyParameters
from lossylearn.codecs.learned.models import (
    FactorizedPrior,
    ModelConfig,
    ScaleHyperprior,
    build_model,
)
from lossylearn.errors import CodecError

__all__ = [
    "CONFIG_NAME",
    "Checkpoint",
    "FORMAT",
    "Rung",
    "WEIGHTS_NAME",
    "checkpoint_fingerprint",
    "load_checkpoint",
    "read_config",
    "save_checkpoint",
]

FORMAT = "lossylearn-learned-codec"
VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.pt"
DISTORTIONS = ("mse", "mae")


@dataclass
class Rung:
    """One trained model of the ladder."""

    lmbda: float
    model: FactorizedPrior | ScaleHyperprior
    entropy: EntropyParameters
    info: dict[str, Any] = field(default_factory=dict)
    """JSON-ready: training settings and time, measured bpp / distortion."""

    def compression_model(self, *, check_bits: int = 0) -> CompressionModel:
        """This rung frozen for coding (see :class:`CompressionModel`)."""
        return CompressionModel(self.model, self.entropy, check_bits=check_bits)


@dataclass
class Checkpoint:
    """A lambda ladder of trained models sharing one architecture and distortion."""

    model_config: ModelConfig
    distortion: str
    rungs: list[Rung]
    meta: dict[str, Any] = field(default_factory=dict)
    """JSON-ready: dataset, split, noise, target, anything the trainer wants to record."""

    def __post_init__(self) -> None:
        if self.distortion not in DISTORTIONS:
            raise CodecError(
                f"unknown distortion {self.distortion!r}; known: {', '.join(DISTORTIONS)}"
            )
        if not self.rungs:
            raise CodecError("a checkpoint needs at least one trained model")
        self.rungs = sorted(self.rungs, key=lambda r: r.lmbda)

    @property
    def qualities(self) -> tuple[int, ...]:
        return tuple(range(len(self.rungs)))

    def config_dict(self, weights_sha256: str) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": self.model_config.to_dict(),
            "distortion": self.distortion,
            "lambda_convention": (
                "loss = lmbda * D + bpp; D = MSE or MAE on the 0-255 scale, bpp = bits per pixel"
            ),
            "rungs": [
                {
                    "quality": i,
                    "lmbda": r.lmbda,
                    "entropy": r.entropy.spec(),
                    "info": r.info,
                }
                for i, r in enumerate(self.rungs)
            ],
            "meta": self.meta,
            "weights_file": WEIGHTS_NAME,
            "weights_sha256": weights_sha256,
        }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(checkpoint: Checkpoint, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``path/config.json`` and ``path/weights.pt``; refuses to replace an existing one."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CodecError(f"{folder} exists and is not a folder")
    if (folder / CONFIG_NAME).exists() and not overwrite:
        raise CodecError(f"{folder} already holds a codec checkpoint; choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        f"rung{i}": {
            "state_dict": {k: v.detach().cpu() for k, v in r.model.state_dict().items()},
            "entropy": {
                k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in r.entropy.arrays().items()
            },
        }
        for i, r in enumerate(checkpoint.rungs)
    }
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".weights-", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, folder / WEIGHTS_NAME)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    text = json.dumps(checkpoint.config_dict(_sha256(folder / WEIGHTS_NAME)), indent=2)
    tmp_cfg = folder / f".{CONFIG_NAME}.tmp"
    tmp_cfg.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp_cfg, folder / CONFIG_NAME)
    return folder


def read_config(path: str | Path) -> dict[str, Any]:
    """The checkpoint's config.json, validated for format and version."""
    folder = Path(path)
    cfg_path = folder / CONFIG_NAME
    if not cfg_path.is_file():
        raise CodecError(f"{folder} is not a learned-codec checkpoint (no {CONFIG_NAME})")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise CodecError(f"{cfg_path} is not readable JSON: {err}") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise CodecError(f"{cfg_path} is not a {FORMAT} config")
    if cfg.get("version") != VERSION:
        raise CodecError(f"{cfg_path} has version {cfg.get('version')}; this build reads {VERSION}")
    return cfg


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (models built from the config only)."""
    folder = Path(path)
    cfg = read_config(folder)
    weights = folder / str(cfg.get("weights_file", WEIGHTS_NAME))
    if not weights.is_file():
        raise CodecError(f"{folder} lacks {weights.name}")
    if _sha256(weights) != cfg.get("weights_sha256"):
        raise CodecError(f"{weights} does not match {CONFIG_NAME} (checksum differs)")
    try:
        model_config = ModelConfig.from_dict(cfg["model"])
        rung_cfgs = cfg["rungs"]
        distortion = cfg["distortion"]
    except (KeyError, TypeError) as err:
        raise CodecError(f"{folder / CONFIG_NAME} lacks {err}") from None
    try:
        blob = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        raise CodecError(f"{weights} is not a readable weights file: {err}") from None
    rungs = []
    for i, rc in enumerate(rung_cfgs):
        entry = blob.get(f"rung{i}") if isinstance(blob, dict) else None
        if not isinstance(entry, dict) or "state_dict" not in entry or "entropy" not in entry:
            raise CodecError(f"{weights} lacks the weights of rung {i}")
        with torch.random.fork_rng(devices=[]):
            model = build_model(model_config)
        try:
            model.load_state_dict(entry["state_dict"], strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise CodecError(f"rung {i} weights do not fit the configured model: {first}") from None
        model.eval()
        arrays = {k: v.numpy() for k, v in entry["entropy"].items()}
        entropy = EntropyParameters.from_saved(rc["entropy"], arrays)
        rungs.append(Rung(float(rc["lmbda"]), model, entropy, dict(rc.get("info", {}))))
    return Checkpoint(model_config, distortion, rungs, dict(cfg.get("meta", {})))


def checkpoint_fingerprint(path: str | Path) -> str:
    """SHA-256 over config.json and weights.pt: identifies the exact codec that made a stream."""
    folder = Path(path)
    h = hashlib.sha256()
    h.update((folder / CONFIG_NAME).read_bytes())
    h.update(bytes.fromhex(read_config(folder)["weights_sha256"]))
    return h.hexdigest()
