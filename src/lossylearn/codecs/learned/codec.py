"""The learned codec behind the :class:`~lossylearn.codecs.base.Codec` contract.

``LearnedCodec(checkpoint)`` serves every rung of a checkpoint's lambda ladder: quality ``i`` is
rung ``i`` (ascending lambda: more bits, less distortion). ``match_quality`` therefore picks the
rung whose distortion is nearest to MSE = sigma^2 or MAE = b; train the ladder (or a target fit) on
data like the data to be compressed.

* payload: the bare range-coded stream of ``coding.py`` (no header; the store keeps quality and
  shape in its manifest, and the codec's ``config()`` names the checkpoint by its SHA-256);
* ``shared_header``: ``b""``;
* ``check_bits`` (option, default 0): bits of an in-stream check per payload (see ``coding.py``);
  they are part of the payload and counted in its rate;
* ``container`` (a standalone ``.llc`` file), big-endian, 28 header bytes then the payload::

      offset  size  field
      0       4     magic b"LLC1"
      4       1     container version (1)
      5       1     quality (rung index)
      6       1     check_bits of the payload
      7       2     height
      9       2     width
      11      1     channels
      12      8     first 8 bytes of the checkpoint fingerprint (SHA-256 of config + weights)
      20      4     payload length in bytes
      24      4     CRC-32 of the payload
      28      ...   payload

  :meth:`LearnedCodec.read_container` checks all of it, so a truncated or altered file, or a file
  made by another checkpoint, is refused with a one-line error.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import constriction
import numpy as np
import torch

from lossylearn.codecs.base import check_image, check_quality, check_shape
from lossylearn.codecs.learned.checkpoint import checkpoint_fingerprint, load_checkpoint
from lossylearn.codecs.learned.coding import CompressionModel
from lossylearn.errors import CodecError

__all__ = ["CONTAINER_MAGIC", "LearnedCodec"]

CONTAINER_MAGIC = b"LLC1"
_HEADER = struct.Struct(">4sBBBHHB8sII")


class LearnedCodec:
    """A trained checkpoint as a :class:`~lossylearn.codecs.base.Codec` (see the module docstring)."""

    name = "learned"
    extension = ".llc"
    lossless = False

    def __init__(self, checkpoint: str | Path, *, check_bits: int = 0) -> None:
        if checkpoint is None:
            raise CodecError(
                "the learned codec needs checkpoint=PATH (train one with 'codec train')"
            )
        self.path = Path(checkpoint)
        self.checkpoint = load_checkpoint(self.path)
        self.fingerprint = checkpoint_fingerprint(self.path)
        self.qualities: tuple[int, ...] = self.checkpoint.qualities
        if not isinstance(check_bits, int) or not 0 <= check_bits <= 16:
            raise CodecError(f"check_bits must be an integer 0..16, got {check_bits!r}")
        self.check_bits = check_bits
        self._models: dict[tuple[int, int], CompressionModel] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the coding models it built (constriction's models do not pickle):
        a copy, e.g. in a Ray task, rebuilds them on first use from the same checkpoint."""
        state = dict(self.__dict__)
        state["_models"] = {}
        return state

    # -- models ----------------------------------------------------------------------------

    def model(self, quality: int, check_bits: int | None = None) -> CompressionModel:
        """The frozen coding model of rung ``quality`` (with this codec's ``check_bits``)."""
        q = check_quality(quality, self.qualities, self.name)
        key = (q, self.check_bits if check_bits is None else check_bits)
        if key not in self._models:
            self._models[key] = self.checkpoint.rungs[q].compression_model(check_bits=key[1])
        return self._models[key]

    def lmbda(self, quality: int) -> float:
        return self.checkpoint.rungs[check_quality(quality, self.qualities, self.name)].lmbda

    def _check_channels(self, channels: int) -> None:
        want = self.checkpoint.model_config.in_channels
        if channels != want:
            raise CodecError(
                f"this learned codec was trained on {want}-channel images, got {channels} channels"
            )

    # -- the Codec contract --------------------------------------------------------------------

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        img = check_image(image, self.name)
        self._check_channels(img.shape[2])
        return self.model(quality).compress(img[None])[0]

    def decode(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> np.ndarray:
        h, w, c = check_shape(shape, self.name)
        self._check_channels(c)
        return self.model(quality).decompress([bytes(payload)], (h, w, c))[0]

    def shared_header(self, quality: int, shape: tuple[int, int, int]) -> bytes:
        check_quality(quality, self.qualities, self.name)
        check_shape(shape, self.name)
        return b""

    def container(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> bytes:
        q = check_quality(quality, self.qualities, self.name)
        h, w, c = check_shape(shape, self.name)
        if h > 0xFFFF or w > 0xFFFF:
            raise CodecError(f"the .llc container holds images up to 65535 x 65535, got {h} x {w}")
        data = bytes(payload)
        header = _HEADER.pack(
            CONTAINER_MAGIC, 1, q, self.check_bits, h, w, c, bytes.fromhex(self.fingerprint)[:8],
            len(data), zlib.crc32(data),
        )  # fmt: skip
        return header + data

    def config(self) -> dict[str, Any]:
        ck = self.checkpoint
        return {
            "name": self.name,
            "checkpoint": str(self.path.resolve()),
            "checkpoint_sha256": self.fingerprint,
            "architecture": ck.model_config.architecture,
            "model": ck.model_config.to_dict(),
            "distortion": ck.distortion,
            "qualities": list(self.qualities),
            "lmbdas": [r.lmbda for r in ck.rungs],
            "check_bits": self.check_bits,
            "payload": (
                "constriction range coder (32-bit words, 64-bit state), big-endian words, tail "
                "shortened to the fewest bytes that decode; no header"
            ),
            "shared_header": "none",
            "container": "28-byte LLC1 header (shape, quality, checkpoint id, length, CRC-32)",
            "torch": torch.__version__,
            "constriction": _constriction_version(),
        }

    # -- extras: batches, estimates, containers ------------------------------------------------

    def encode_batch(self, images: np.ndarray, quality: int) -> list[bytes]:
        """Payloads of a uint8 batch (N, H, W, C); the same bytes as :meth:`encode` per image."""
        arr = np.asarray(images)
        if arr.ndim != 4:
            raise CodecError(f"encode_batch takes (N, H, W, C) images, got shape {arr.shape}")
        check_image(arr[0], self.name) if len(arr) else None
        self._check_channels(arr.shape[3])
        return self.model(quality).compress(arr)

    def decode_batch(
        self, payloads: Sequence[bytes], quality: int, shape: tuple[int, int, int]
    ) -> np.ndarray:
        """Images (N, H, W, C) of payloads that all have ``shape``."""
        h, w, c = check_shape(shape, self.name)
        self._check_channels(c)
        return self.model(quality).decompress([bytes(p) for p in payloads], (h, w, c))

    def estimate_bits(self, images: np.ndarray, quality: int) -> np.ndarray:
        """The model's likelihood estimate of each image's code length in bits."""
        return self.model(quality).estimate_bits(np.asarray(images))

    def read_container(self, data: bytes) -> tuple[bytes, int, tuple[int, int, int], int]:
        """(payload, quality, shape, check_bits) of a :meth:`container` file, checked fully."""
        data = bytes(data)
        if len(data) < _HEADER.size:
            raise CodecError(f"not an .llc file: {len(data)} bytes is shorter than its header")
        magic, version, q, k, h, w, c, fp, length, crc = _HEADER.unpack_from(data)
        if magic != CONTAINER_MAGIC:
            raise CodecError("not an .llc file (bad magic bytes)")
        if version != 1:
            raise CodecError(f"unsupported .llc container version {version}")
        if fp != bytes.fromhex(self.fingerprint)[:8]:
            raise CodecError(".llc file was made with a different learned-codec checkpoint")
        payload = data[_HEADER.size :]
        if len(payload) != length:
            raise CodecError(
                f".llc file is truncated or padded: payload has {len(payload)} bytes, header says {length}"
            )
        if zlib.crc32(payload) != crc:
            raise CodecError(".llc file is corrupt (payload CRC-32 mismatch)")
        if k > 16:
            raise CodecError(f".llc file has an impossible check_bits field ({k})")
        shape = check_shape((h, w, c), self.name)
        return payload, check_quality(q, self.qualities, self.name), shape, k

    def decode_container(self, data: bytes) -> np.ndarray:
        """The image in a :meth:`container` file (made with any ``check_bits``)."""
        payload, q, shape, k = self.read_container(data)
        self._check_channels(shape[2])
        return self.model(q, k).decompress([payload], shape)[0]


def _constriction_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("constriction")
    except PackageNotFoundError:
        return getattr(constriction, "__version__", "unknown")
