"""Integer symbols in constriction range-coder streams, and the bytes those streams are kept as.

:class:`TableCoder` codes integers with a set of categorical tables (:mod:`.tables`). A value
outside its table's support is escaped: the table's escape symbol, then a direction bit, the bit
length ``n`` of the excess (6 bits) and its ``n - 1`` low bits (in chunks of at most 16), all with
uniform models: ``7 + n - 1`` bits.

Keeping tiny streams tiny: constriction emits whole 32-bit words and its seal emits the word that
holds the smallest multiple of 2^32 in the final interval. Here the words are written big-endian and
the tail is shortened to the fewest bytes that still decode: the stream is rounded up to a shorter
byte length (the decoder pads missing bytes with zeros, which constriction's decoder also does for
missing words) and the shortest length that decodes to the same symbols is kept (checked by
decoding, :func:`shortest`). The overhead over the ideal code length is then about 1-2 bits of
sealing plus the rounding up to whole bytes, instead of up to 32 bits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import constriction
import numpy as np

from lossylearn.codecs.learned.tables import CategoricalTables
from lossylearn.errors import CodecError

__all__ = [
    "CHUNK_BITS",
    "CHUNK_MODELS",
    "Groups",
    "TableCoder",
    "bytes_to_words",
    "group_ids",
    "round_up",
    "shortest",
    "words_to_bytes",
]

_LEN_MODEL = constriction.stream.model.Uniform(64)
_DIR_MODEL = constriction.stream.model.Uniform(2)
CHUNK_BITS = 16
"""Widest uniform symbol: escape bits go in chunks of at most this many bits."""
CHUNK_MODELS = {k: constriction.stream.model.Uniform(1 << k) for k in range(1, CHUNK_BITS + 1)}
"""Uniform models of 1..``CHUNK_BITS`` bits, by width (escape chunks, check bits)."""
_MAX_EXCESS_BITS = 40


def words_to_bytes(words: np.ndarray) -> bytes:
    """constriction's 32-bit words as big-endian bytes."""
    return np.asarray(words, dtype=np.uint32).astype(">u4").tobytes()


def bytes_to_words(data: bytes) -> np.ndarray:
    """Big-endian bytes as 32-bit words, the last one zero-padded."""
    pad = (-len(data)) % 4
    return np.frombuffer(data + b"\0" * pad, dtype=">u4").astype(np.uint32)


def round_up(data: bytes, length: int) -> bytes | None:
    """Smallest byte string of ``length`` bytes that, zero-padded, is >= ``data`` (or None)."""
    head, tail = data[:length], data[length:]
    if not any(tail):
        return head
    value = int.from_bytes(head, "big") + 1 if head else 1
    if value >= 1 << (8 * length):
        return None
    return value.to_bytes(length, "big")


def shortest(full: bytes, decodes: Callable[[bytes], bool]) -> bytes:
    """Shortest rounding of ``full`` (down to 8 bytes less) that still decodes correctly."""
    lo, hi = max(0, len(full) - 8), len(full)  # hi is known to decode
    best = full
    while lo < hi:
        mid = (lo + hi) // 2
        cand = round_up(full, mid)
        if cand is not None and decodes(cand):
            best, hi = cand, mid
        else:
            lo = mid + 1
    return best


@dataclass(frozen=True)
class Groups:
    """Positions of a flat id array sorted by table id (stable), and its runs of equal ids."""

    order: np.ndarray
    runs: tuple[tuple[int, int, int], ...]
    """(table id, start, end) into ``order``, ascending table id."""


def group_ids(ids: np.ndarray) -> Groups:
    """The coding order of :meth:`TableCoder.encode`: table by table, flat order within one."""
    ids = np.asarray(ids)
    order = np.argsort(ids, kind="stable")
    ranked = ids[order]
    starts = np.flatnonzero(np.diff(ranked)) + 1
    bounds = [0, *starts.tolist(), int(ids.size)]
    tables = ranked[bounds[:-1]].tolist() if ids.size else []
    return Groups(order, tuple(zip(tables, bounds[:-1], bounds[1:], strict=True)))


class TableCoder:
    """Encodes integer values with a set of :class:`CategoricalTables` (escape + bypass)."""

    def __init__(self, tables: CategoricalTables) -> None:
        self.tables = tables
        self._models: dict[int, Any] = {}

    def _model(self, t: int) -> Any:
        m = self._models.get(t)
        if m is None:  # built on first use, then kept (building costs more than coding a table)
            m = constriction.stream.model.Categorical(self.tables.probabilities(t), perfect=False)
            self._models[t] = m
        return m

    def encode(
        self, enc: Any, values: np.ndarray, ids: np.ndarray, groups: Groups | None = None
    ) -> None:
        """Append ``values`` (int64, flat) coded with tables ``ids`` (flat) to range encoder ``enc``.

        Symbols go table by table (ascending id), in flat order within a table: one constriction
        call per table. ``groups`` (:func:`group_ids` of ``ids``) saves recomputing the order."""
        g = groups if groups is not None else group_ids(ids)
        offsets, lengths = self.tables.offsets[ids], self.tables.lengths[ids]
        sym = values - offsets
        escaped = (sym < 0) | (sym >= lengths)
        ordered = np.where(escaped, lengths, sym).astype(np.int32)[g.order]
        model = self._model
        for t, a, b in g.runs:
            enc.encode(ordered[a:b], model(t))
        if not escaped.any():
            return
        for i in np.flatnonzero(escaped):
            below = values[i] < offsets[i]
            excess = (
                int(offsets[i] - values[i])
                if below
                else int(values[i] - offsets[i] - lengths[i] + 1)
            )
            n = excess.bit_length()
            if n > _MAX_EXCESS_BITS:
                raise CodecError(f"latent value {int(values[i])} is too large to code")
            enc.encode(0 if below else 1, _DIR_MODEL)
            enc.encode(n - 1, _LEN_MODEL)
            rest = n - 1
            while rest > 0:
                size = min(CHUNK_BITS, rest)
                rest -= size
                enc.encode((excess >> rest) & ((1 << size) - 1), CHUNK_MODELS[size])

    def decode(self, dec: Any, ids: np.ndarray, groups: Groups | None = None) -> np.ndarray:
        """Inverse of :meth:`encode` for the same ``ids``; CodecError on an invalid stream."""
        try:
            return self._decode(dec, ids, groups if groups is not None else group_ids(ids))
        except (AssertionError, ValueError, RuntimeError, OverflowError) as err:
            if isinstance(err, CodecError):
                raise
            raise CodecError(f"corrupt learned-codec payload ({err})") from None

    def _decode(self, dec: Any, ids: np.ndarray, g: Groups) -> np.ndarray:
        model = self._model
        parts = [dec.decode(model(t), b - a) for t, a, b in g.runs]
        sym = np.empty(ids.shape, dtype=np.int64)
        if parts:
            sym[g.order] = np.concatenate(parts)
        offsets, lengths = self.tables.offsets[ids], self.tables.lengths[ids]
        values = sym + offsets
        for i in np.flatnonzero(sym == lengths):
            above = int(dec.decode(_DIR_MODEL))
            n = int(dec.decode(_LEN_MODEL)) + 1
            if n > _MAX_EXCESS_BITS:
                raise CodecError("corrupt learned-codec payload (impossible escape length)")
            excess, rest = 1, n - 1
            while rest > 0:
                size = min(CHUNK_BITS, rest)
                rest -= size
                excess = (excess << size) | int(dec.decode(CHUNK_MODELS[size]))
            values[i] = offsets[i] + lengths[i] - 1 + excess if above else offsets[i] - excess
        return values

    def estimate_bits(self, values: np.ndarray, ids: np.ndarray) -> float:
        """Ideal code length of the values under the integer tables (escapes: their bypass bits)."""
        bits = self.tables.bits(ids, values)
        esc = ~np.isfinite(bits)
        total = float(bits[~esc].sum())
        if esc.any():
            t = ids[esc]
            total += float(
                (
                    self.tables.precision - np.log2(self.tables.freqs[t, self.tables.lengths[t]])
                ).sum()
            )
            off, ln, v = self.tables.offsets[t], self.tables.lengths[t], values[esc]
            excess = np.where(v < off, off - v, v - off - ln + 1)
            total += float((1 + 6 + np.floor(np.log2(excess))).sum())
        return total
