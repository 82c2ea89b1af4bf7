"""A universal-representation checkpoint ``U/``: one encoder, its quantizer, named decoders.

Layout::

    U/config.json          format, the networks' NetConfig, the rate, the data each part saw,
                           and one entry per decoder (file, SHA-256, objective, what it was trained on)
    U/encoder.pt           the encoder's state_dict
    U/decoder-<name>.pt    one state_dict per decoder

The checkpoint's *fingerprint* is the SHA-256 of the encoder's identity (its NetConfig, the rate
and the SHA-256 of ``encoder.pt``), not of the decoders: a store made with the encoder stays valid
when decoders are added later (:func:`add_decoder`), and every decoder is pinned by its own SHA-256.
Weights are read with ``torch.load(weights_only=True)``; shapes come from the config, never from
weight names.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lossylearn.errors import CodecError
from lossylearn.store.layout import atomic_write_bytes, atomic_write_json, read_json_file
from lossylearn.studies.urdc.models import Encoder, NetConfig, build_decoder
from lossylearn.studies.urdc.quantizer import DitheredQuantizer

__all__ = [
    "CONFIG_NAME",
    "FORMAT",
    "UniversalCheckpoint",
    "add_decoder",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT = "lossylearn-universal/1"
CONFIG_NAME = "config.json"
ENCODER_NAME = "encoder.pt"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _state_bytes(module: nn.Module) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, buf)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encoder_fingerprint(net: dict[str, Any], encoder_sha256: str) -> str:
    """SHA-256 of the encoder's identity (config and weights), independent of the decoders."""
    body = json.dumps({"net": net, "encoder_sha256": encoder_sha256}, sort_keys=True)
    return _sha(body.encode())


@dataclass
class UniversalCheckpoint:
    """A loaded checkpoint: the encoder, the quantizer and the decoders by name."""

    path: Path
    config: dict[str, Any]
    net: NetConfig
    encoder: Encoder
    decoders: dict[str, nn.Module]

    @property
    def quantizer(self) -> DitheredQuantizer:
        """The checkpoint's own quantizer: d latents, L levels on [-1, 1]."""
        return DitheredQuantizer(self.net.latent_dim, self.net.levels)

    @property
    def fingerprint(self) -> str:
        """The encoder's fingerprint (see the module docstring)."""
        return str(self.config["fingerprint"])

    @property
    def decoder_names(self) -> tuple[str, ...]:
        """Names of the decoders, in the order they were added."""
        return tuple(self.decoders)

    def decoder(self, name: str | None) -> tuple[str, nn.Module]:
        """``(name, decoder)``; None picks the first (``mse`` when there is one)."""
        if name is None:
            name = "mse" if "mse" in self.decoders else self.decoder_names[0]
        if name not in self.decoders:
            raise CodecError(
                f"no decoder {name!r} in {self.path}; its decoders: {', '.join(self.decoder_names)}"
            )
        return name, self.decoders[name]


def save_checkpoint(
    out: Path,
    *,
    net: NetConfig,
    encoder: Encoder,
    decoders: dict[str, tuple[nn.Module, dict[str, Any]]],
    info: dict[str, Any],
) -> Path:
    """Write ``out/`` (encoder, decoders with their info, config.json last, all atomic)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    enc = _state_bytes(encoder)
    atomic_write_bytes(out / ENCODER_NAME, enc)
    net_dict = net.to_dict()
    config: dict[str, Any] = {
        "format": FORMAT,
        "net": net_dict,
        "rate_bits": DitheredQuantizer(net.latent_dim, net.levels).rate_bits,
        "encoder": {"file": ENCODER_NAME, "sha256": _sha(enc)},
        "fingerprint": encoder_fingerprint(net_dict, _sha(enc)),
        "decoders": {},
        **info,
    }
    for name, (module, meta) in decoders.items():
        config["decoders"][name] = _write_decoder(out, name, module, meta)
    atomic_write_json(out / CONFIG_NAME, config)
    return out


def _write_decoder(out: Path, name: str, module: nn.Module, meta: dict[str, Any]) -> dict[str, Any]:
    if not _NAME.match(name):
        raise CodecError(f"decoder names are lower-case words (a-z, 0-9, - and _), got {name!r}")
    kind = meta.get("kind")
    if kind not in ("conv", "mlp"):
        raise CodecError(f"decoder {name!r} needs kind conv or mlp, got {kind!r}")
    data = _state_bytes(module)
    file = f"decoder-{name}.pt"
    atomic_write_bytes(out / file, data)
    return {**meta, "file": file, "sha256": _sha(data)}


def add_decoder(path: Path, name: str, module: nn.Module, meta: dict[str, Any]) -> None:
    """Add (or replace) decoder ``name`` of checkpoint ``path``; the fingerprint is unchanged, so
    stores made with this encoder can decode through it at once."""
    path = Path(path)
    config = read_config(path)
    config["decoders"][name] = _write_decoder(path, name, module, meta)
    atomic_write_json(path / CONFIG_NAME, config)


def read_config(path: Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint, checked for its format."""
    path = Path(path)
    if not (path / CONFIG_NAME).is_file():
        raise CodecError(
            f"{path}: not a universal checkpoint (no {CONFIG_NAME}); make one with "
            "'lossylearn universal train'"
        )
    config = read_json_file(path / CONFIG_NAME, "universal checkpoint config")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CodecError(f"{path}: {CONFIG_NAME} is not a {FORMAT} checkpoint config")
    if not isinstance(config.get("decoders"), dict) or not config["decoders"]:
        raise CodecError(f"{path}: the checkpoint lists no decoder")
    return config


def _load_weights(path: Path, entry: dict[str, Any], module: nn.Module, what: str) -> None:
    file = entry.get("file")
    if not isinstance(file, str) or "/" in file or "\\" in file or file.startswith("."):
        raise CodecError(f"{path}: the {what} file name {file!r} is not a plain file name")
    try:
        data = (path / file).read_bytes()
    except OSError as exc:
        raise CodecError(f"{path / file}: cannot read the {what} ({exc.strerror})") from None
    if _sha(data) != entry.get("sha256"):
        raise CodecError(f"{path / file}: does not match its SHA-256 in {CONFIG_NAME}")
    import io

    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise CodecError(
            f"{path / file}: weights do not fit the configured {what}: {exc}"
        ) from None
    module.eval()
    module.requires_grad_(False)


def load_checkpoint(path: str | Path) -> UniversalCheckpoint:
    """Load and check a checkpoint folder (CodecError names what is wrong)."""
    path = Path(path)
    config = read_config(path)
    try:
        net = NetConfig.from_dict(config["net"])
    except (TypeError, KeyError) as exc:
        raise CodecError(f"{path}: malformed net config ({exc})") from None
    if config.get("fingerprint") != encoder_fingerprint(config["net"], config["encoder"]["sha256"]):
        raise CodecError(f"{path}: the fingerprint in {CONFIG_NAME} does not match the encoder")
    encoder = Encoder(net.latent_dim, net.encoder_width)
    _load_weights(path, config["encoder"], encoder, "encoder")
    decoders: dict[str, nn.Module] = {}
    for name, entry in config["decoders"].items():
        kind_net = NetConfig.from_dict({**config["net"], "decoder": entry.get("kind")})
        module = build_decoder(kind_net)
        _load_weights(path, entry, module, f"decoder {name!r}")
        decoders[name] = module
    return UniversalCheckpoint(path, config, net, encoder, decoders)
