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
import math
import os
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch

from lossylearn.codecs.learned.coding import CompressionModel, EntropyParameters
from lossylearn.codecs.learned.integer_hyper import IntegerHyperSynthesis
from lossylearn.codecs.learned.models import (
    ARCHITECTURES,
    FactorizedPrior,
    ModelConfig,
    ScaleHyperprior,
    build_codec_model,
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
    "validate_config",
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
    validate_config(cfg, cfg_path)
    return cfg


# -- config validation: every field's type and range, named in a one-line CodecError ----------

_MAX_CHANNELS = 65536
_MAX_DOWNSAMPLES = 16
_MAX_RUNGS = 256  # the .llc container stores the quality in one byte
_HEX = frozenset("0123456789abcdef")


class _Fields:
    """Typed access to one JSON object; a wrong field raises CodecError naming ``where.key``."""

    def __init__(self, obj: Any, where: str, path: Path) -> None:
        self.path = path
        self.where = where
        if not isinstance(obj, dict):
            self.fail(where, "must be a JSON object", obj)
        self.obj: dict[str, Any] = obj

    def fail(self, name: str, what: str, value: Any = ...) -> NoReturn:
        got = "" if value is ... else f", got {_short(value)}"
        raise CodecError(f"{self.path}: field {name!r} {what}{got}")

    def name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, default: Any = ...) -> Any:
        if key not in self.obj:
            if default is ...:
                self.fail(self.name(key), "is missing")
            return default
        return self.obj[key]

    def integer(self, key: str, lo: int, hi: int, default: Any = ...) -> int:
        v = self.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.fail(self.name(key), f"must be an integer {lo}..{hi}", v)
        return v

    def number(self, key: str, lo: float, hi: float, default: Any = ...) -> float:
        v = self.get(key, default)
        if (
            isinstance(v, bool)
            or not isinstance(v, int | float)
            or not math.isfinite(v)
            or not lo < v < hi
        ):
            what = f"> {lo:g}" if math.isinf(hi) else f"strictly between {lo:g} and {hi:g}"
            self.fail(self.name(key), f"must be a finite number {what}", v)
        return float(v)

    def choice(self, key: str, options: tuple[str, ...], default: Any = ...) -> str:
        v = self.get(key, default)
        if not isinstance(v, str) or v not in options:
            self.fail(self.name(key), f"must be one of {', '.join(options)}", v)
        return v

    def integers(
        self, key: str, lo: int, hi: int, min_len: int, max_len: int, default: Any = ...
    ) -> list[int]:
        v = self.get(key, default)
        if (
            not isinstance(v, list)
            or not min_len <= len(v) <= max_len
            or any(isinstance(e, bool) or not isinstance(e, int) or not lo <= e <= hi for e in v)
        ):
            size = f"{min_len}" if min_len == max_len else f"{min_len}..{max_len}"
            self.fail(self.name(key), f"must be a list of {size} integers {lo}..{hi}", v)
        return v

    def sub(self, key: str, default: Any = ...) -> _Fields:
        return _Fields(self.get(key, default), self.name(key), self.path)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validate_config(cfg: Any, path: str | Path = CONFIG_NAME) -> None:
    """Check the types and ranges of every field :func:`load_checkpoint` reads from config.json.

    Raises :class:`CodecError` with a one-line message naming the first bad field (for example
    ``field 'model.channels' must be an integer 1..65536, got '16'``). Consistency with the weights
    (tensor shapes, entropy tables) is checked when they are loaded.
    """
    top = _Fields(cfg, "", Path(path))
    model = top.sub("model")
    known = {f.name for f in fields(ModelConfig)}
    for key in model.obj:
        if key not in known:
            model.fail(
                model.name(key), f"is not a model setting (known: {', '.join(sorted(known))})"
            )
    arch = model.choice("architecture", ARCHITECTURES)
    model.integer("in_channels", 1, 4)
    model.integer("channels", 1, _MAX_CHANNELS)
    latent = model.integer("latent_channels", 1, _MAX_CHANNELS)
    model.integer("downsamples", 1, _MAX_DOWNSAMPLES)
    lo = 1 if arch == "hyperprior" else 0
    hyper_channels = model.integer("hyper_channels", lo, _MAX_CHANNELS, 0)
    model.integer("hyper_downsamples", lo, _MAX_DOWNSAMPLES, 0)
    if model.integer("kernel_size", 1, 31, 5) % 2 == 0:
        model.fail(model.name("kernel_size"), "must be odd", model.obj["kernel_size"])
    model.integers("eb_filters", 1, 1024, 1, 16, [3, 3, 3])
    model.number("tail_mass", 0.0, 1.0, 1e-9)
    top.choice("distortion", DISTORTIONS)
    rungs = top.get("rungs")
    if not isinstance(rungs, list) or not 1 <= len(rungs) <= _MAX_RUNGS:
        top.fail("rungs", f"must be a list of 1..{_MAX_RUNGS} rungs", rungs)
    z_tables = hyper_channels if arch == "hyperprior" else latent
    for i, rc in enumerate(rungs):
        rung = _Fields(rc, f"rungs[{i}]", top.path)
        if "quality" in rung.obj:
            rung.integer("quality", i, i)
        rung.number("lmbda", 0.0, math.inf)
        rung.sub("info", {})
        ent = rung.sub("entropy")
        ent.integer("precision", 1, 30)
        ent.integers("z_tables_shape", 1, 1 << 30, 2, 2)
        if ent.obj["z_tables_shape"][0] != z_tables:
            ent.fail(
                ent.name("z_tables_shape"),
                f"must start with the {z_tables} entropy-bottleneck channels of the model",
                ent.obj["z_tables_shape"],
            )
        hyper_keys = ("y_tables_shape", "scale_levels", "hyper")
        if arch == "factorized":
            for key in hyper_keys:
                if key in ent.obj:
                    ent.fail(ent.name(key), "belongs to a hyperprior, not a factorized model")
            continue
        ent.integers("y_tables_shape", 1, 1 << 30, 2, 2)
        ent.integer("scale_levels", 2, 1 << 16)
        hyper = ent.sub("hyper")
        hyper.integer("frac_bits", 1, 24)
        layers = hyper.get("layers")
        if not isinstance(layers, list) or not layers:
            hyper.fail(hyper.name("layers"), "must be a non-empty list", layers)
        # the layer structure itself is compared with the model when the weights are loaded
    top.sub("meta", {})
    wf = top.get("weights_file", WEIGHTS_NAME)
    if not isinstance(wf, str) or wf in ("", ".", "..") or "/" in wf or "\\" in wf or "\0" in wf:
        top.fail("weights_file", "must be a plain file name next to config.json", wf)
    sha = top.get("weights_sha256")
    if not isinstance(sha, str) or len(sha) != 64 or not set(sha) <= _HEX:
        top.fail("weights_sha256", "must be 64 lower-case hex digits", sha)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (models built from the config only).

    Every problem (a config field of the wrong type or range, weights that are missing, truncated,
    corrupt, or do not fit the configured model) raises a one-line :class:`CodecError`.
    """
    folder = Path(path)
    cfg = read_config(folder)
    weights = folder / cfg.get("weights_file", WEIGHTS_NAME)
    if not weights.is_file():
        raise CodecError(f"{folder} lacks {weights.name}")
    try:
        digest = _sha256(weights)
    except OSError as err:
        raise CodecError(f"{weights} is not readable: {_first_line(err)}") from None
    if digest != cfg["weights_sha256"]:
        raise CodecError(
            f"{weights} does not match {CONFIG_NAME} (checksum differs: truncated, corrupt, "
            "or from another checkpoint)"
        )
    try:
        model_config = ModelConfig.from_dict(cfg["model"])
    except (TypeError, ValueError) as err:
        raise CodecError(f"{folder / CONFIG_NAME}: model: {_first_line(err)}") from None
    try:
        blob = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        raise CodecError(
            f"{weights} is not a readable weights file (truncated or corrupt?): {_first_line(err)}"
        ) from None
    if not isinstance(blob, dict):
        raise CodecError(f"{weights} is not a learned-codec weights file (not a dictionary)")
    try:
        with torch.device("meta"):  # shapes only, no memory: a config cannot make us allocate
            expected = {
                k: tuple(v.shape) for k, v in build_codec_model(model_config).state_dict().items()
            }
    except CodecError:
        raise
    except Exception as err:  # noqa: BLE001 - a config torch cannot build is a bad config
        raise CodecError(
            f"{folder / CONFIG_NAME}: cannot build its model: {_first_line(err)}"
        ) from None
    rungs = []
    for i, rc in enumerate(cfg["rungs"]):
        try:
            rungs.append(_load_rung(i, rc, blob, model_config, expected, weights))
        except CodecError as err:
            if str(folder) in str(err):
                raise
            raise CodecError(f"{weights}: rung {i}: {err}") from None
        except Exception as err:  # noqa: BLE001 - whatever else is wrong, say it in one line
            raise CodecError(f"{weights}: rung {i} cannot be loaded: {_first_line(err)}") from None
    return Checkpoint(model_config, cfg["distortion"], rungs, dict(cfg.get("meta", {})))


def _load_rung(
    i: int,
    rc: dict[str, Any],
    blob: dict[str, Any],
    model_config: ModelConfig,
    expected: dict[str, tuple[int, ...]],
    weights: Path,
) -> Rung:
    entry = blob.get(f"rung{i}")
    if not isinstance(entry, dict) or "state_dict" not in entry or "entropy" not in entry:
        raise CodecError(f"{weights} lacks the weights of rung {i}")
    state, arrays = entry["state_dict"], entry["entropy"]
    for name, part in (("state_dict", state), ("entropy", arrays)):
        if not isinstance(part, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in part.items()
        ):
            raise CodecError(f"{weights}: rung {i} {name} is not a dictionary of tensors")
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise CodecError(
            f"rung {i} weights do not fit the configured model: {what} "
            f"({len(missing)} missing, {len(unexpected)} unexpected tensors)"
        )
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise CodecError(
                f"rung {i} weights do not fit the configured model: {key} has shape "
                f"{tuple(state[key].shape)}, the config implies {shape}"
            )
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CodecError(f"{weights}: rung {i} weight {key} holds NaN or infinite values")
    with torch.random.fork_rng(devices=[]):
        model = build_codec_model(model_config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CodecError(
            f"rung {i} weights do not fit the configured model: {_first_line(err)}"
        ) from None
    model.eval()
    spec = rc["entropy"]
    if isinstance(model, ScaleHyperprior):
        frozen = IntegerHyperSynthesis.from_sequential(model.h_s, spec["hyper"]["frac_bits"])
        if spec["hyper"]["layers"] != frozen.spec()["layers"]:
            raise CodecError(
                f"{weights.parent / CONFIG_NAME}: field 'rungs[{i}].entropy.hyper.layers' does "
                "not describe the model's hyper-synthesis"
            )
    entropy = EntropyParameters.from_saved(spec, {k: v.numpy() for k, v in arrays.items()})
    return Rung(float(rc["lmbda"]), model, entropy, dict(rc.get("info", {})))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else "") or type(err).__name__


def checkpoint_fingerprint(path: str | Path) -> str:
    """SHA-256 over config.json and weights.pt: identifies the exact codec that made a stream."""
    folder = Path(path)
    h = hashlib.sha256()
    h.update((folder / CONFIG_NAME).read_bytes())
    h.update(bytes.fromhex(read_config(folder)["weights_sha256"]))
    return h.hexdigest()
