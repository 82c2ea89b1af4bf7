"""Where the noise's randomness comes from.

A :class:`NoiseSource` hands out raw 64-bit words and turns them into exact uniform integers and
uniform floats. It has two modes:

- ``NoiseSource.create(None, stream)``: a cryptographically secure source; every word comes from
  ``os.urandom``. This is the mode for a real private release.
- ``NoiseSource.create(seed, stream)``: a reproducible source, numpy ``PCG64`` seeded with
  ``np.random.SeedSequence(seed, spawn_key=(stream,))``. Each ``(seed, stream)`` pair gives its own
  independent stream, so work split into chunks (``stream`` = chunk index) is byte-identical however
  the chunks are spread over processes. A seeded source is for experiments, not for deployment:
  whoever knows the seed can subtract the noise.

Everything built on the words is exact (no floating point): a uniform integer below ``m`` is
Lemire's multiply-shift ``(w m) >> W`` with the biased low parts rejected, and a
Bernoulli(p/q) keeps words ``w < j q`` (``j = 2**W // q``) and returns ``w < j p``. Rejected words
are redrawn. The word width ``W`` (16, 32 or 64 bits) is the narrowest that keeps rejections rare,
so the CSPRNG path spends few bytes per draw.

Floats (the non-exact samplers): seeded sources use numpy's ``normal``/``laplace``; the CSPRNG
path maps 52 random bits to ``u`` in (0, 1) and applies the inverse CDF (Gaussian tails are
therefore cut at about 8.2 sigma, Laplace ones at about 36 b).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtri

from lossylearn.errors import PrivacyError

_TWO32 = 1 << 32
_TWO63 = 1 << 63
_WORD_DTYPES: dict[int, type[np.unsignedinteger]] = {16: np.uint16, 32: np.uint32, 64: np.uint64}


def _word_bits(m: int) -> int:
    """Word width for a bound ``m``; the rejection probability is below ``m / 2**bits``."""
    if m <= 1 << 10:
        return 16
    if m <= _TWO32:
        return 32
    return 64


def _redraw_rejected(
    size: int,
    dtype: type[np.generic],
    draw: Callable[[int, np.ndarray | None], tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """``size`` draws by rejection: rejected positions are drawn again until none is left.

    ``draw(n, todo)`` makes ``n`` draws for the positions ``todo`` (None: all ``size`` of them)
    and returns them with the indices, among those ``n``, of the ones it rejects.
    """
    out = np.empty(size, dtype=dtype)
    todo: np.ndarray | None = None
    while True:
        n = size if todo is None else todo.size
        value, bad = draw(n, todo)
        if todo is None:
            out[:] = value
            todo = bad
        else:
            out[todo] = value
            todo = todo[bad]
        if todo.size == 0:
            return out


@dataclass(eq=False)
class NoiseSource:
    """A stream of random words: CSPRNG (``seed is None``) or seeded ``(seed, stream)``."""

    seed: int | None
    stream: int
    description: str
    _gen: np.random.Generator | None = field(default=None, repr=False)

    @classmethod
    def create(cls, seed: int | None, stream: int) -> NoiseSource:
        """A source for ``stream``; ``seed=None`` draws from ``os.urandom``, else deterministic."""
        if isinstance(stream, bool) or not isinstance(stream, (int, np.integer)) or stream < 0:
            raise PrivacyError(f"noise stream must be a non-negative integer, got {stream!r}")
        if seed is None:
            return cls(seed=None, stream=int(stream), description="csprng (os.urandom)")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise PrivacyError(f"noise seed must be a non-negative integer or None, got {seed!r}")
        seq = np.random.SeedSequence(int(seed), spawn_key=(int(stream),))
        return cls(
            seed=int(seed),
            stream=int(stream),
            description=(
                f"seeded (numpy PCG64, SeedSequence({int(seed)}, spawn_key=({int(stream)},))), "
                "reproducible, not for deployment"
            ),
            _gen=np.random.Generator(np.random.PCG64(seq)),
        )

    @property
    def secure(self) -> bool:
        """True when the words come from the operating system's CSPRNG."""
        return self._gen is None

    @property
    def generator(self) -> np.random.Generator | None:
        """The numpy generator of a seeded source (None for the CSPRNG)."""
        return self._gen

    # -- raw words ---------------------------------------------------------------------------
    def words64(self, n: int) -> np.ndarray:
        """``n`` independent uniform 64-bit words (uint64)."""
        if n <= 0:
            return np.empty(0, dtype=np.uint64)
        if self._gen is None:
            return np.frombuffer(os.urandom(8 * n), dtype=np.uint64).copy()
        return self._gen.bit_generator.random_raw(n)

    def words(self, n: int, bits: int) -> np.ndarray:
        """``n`` independent uniform words of ``bits`` in {16, 32, 64} (cut from 64-bit words)."""
        dtype = _WORD_DTYPES[bits]
        if bits == 64:
            return self.words64(n)
        if n <= 0:
            return np.empty(0, dtype=dtype)
        per = 64 // bits
        return self.words64((n + per - 1) // per).view(dtype)[:n]

    # -- exact uniform integers and Bernoulli draws --------------------------------------------
    def below(self, bound: int | np.ndarray, size: int | None = None) -> np.ndarray:
        """Exact uniform integers in ``[0, bound)`` (int64); ``bound`` a scalar or an array.

        Bounds must lie in ``[1, 2**63)``. With a scalar bound give ``size``; with an array bound
        the result has the array's length. Scalar bounds up to 2**32 use Lemire's multiply-shift
        with rejection on the narrowest word (16 or 32 bits) that keeps rejections rare; larger
        ones reject ``w >= q m`` (``q = 2**64 // m``) and return ``w // q``.
        """
        if np.ndim(bound) == 0:
            m = int(bound)
            if size is None:
                raise ValueError("below(): give size with a scalar bound")
            if not 1 <= m < _TWO63:
                raise ValueError(f"below(): bound {m} outside [1, 2**63)")
            if m == 1 or size == 0:
                return np.zeros(size, dtype=np.int64)
            if m <= _TWO32:
                return self._below_lemire(m, int(size), _word_bits(m))
            return self._below_wide(m, int(size))
        m_arr = np.asarray(bound, dtype=np.int64)
        if m_arr.size == 0:
            return np.empty(0, dtype=np.int64)
        if int(m_arr.min()) < 1:
            raise ValueError("below(): bounds must be >= 1")
        return self._below_array(m_arr.astype(np.uint64))

    def _below_lemire(self, m: int, size: int, bits: int) -> np.ndarray:
        # x = w * m for a bits-wide w: x >> bits is uniform on [0, m) once the low halves below
        # 2**bits mod m are rejected (Lemire 2019).
        threshold = np.uint64(((1 << bits) - m) % m)
        mm, shift, mask = np.uint64(m), np.uint64(bits), np.uint64((1 << bits) - 1)

        def draw(n: int, todo: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
            x = self.words(n, bits).astype(np.uint64) * mm
            return (x >> shift).astype(np.int64), np.flatnonzero((x & mask) < threshold)

        return _redraw_rejected(size, np.int64, draw)

    def _below_wide(self, m: int, size: int) -> np.ndarray:
        q = (1 << 64) // m
        limit = np.uint64(q * m - 1)
        out = np.empty(size, dtype=np.int64)
        todo = np.arange(size)
        while todo.size:
            w = self.words64(todo.size)
            ok = w <= limit
            out[todo[ok]] = (w[ok] // np.uint64(q)).astype(np.int64)
            todo = todo[~ok]
        return out

    def _below_array(self, m: np.ndarray) -> np.ndarray:
        wide = int(m.max()) > _TWO32
        out = np.empty(m.size, dtype=np.int64)
        todo = np.arange(m.size)
        mm = m if wide else m.astype(np.uint32)
        # 2**bits mod m, computed in unsigned wrap-around arithmetic: (0 - m) mod m.
        threshold = (np.zeros_like(mm) - mm) % mm
        while todo.size:
            w = self.words(todo.size, 64 if wide else 32)
            mt, tt = mm[todo], threshold[todo]
            ok = w >= tt
            out[todo[ok]] = (w[ok] % mt[ok]).astype(np.int64)
            todo = todo[~ok]
        return out

    def bernoulli(self, numer: int | np.ndarray, denom: int, size: int) -> np.ndarray:
        """Exact Bernoulli(numer/denom) draws (bool); ``0 <= numer <= denom < 2**63``.

        A word ``w`` is kept when ``w < j denom`` (``j = 2**W // denom``), so it is uniform on
        ``[0, j denom)``, and the draw is ``w < j numer``: no division per draw. ``W`` is the
        narrowest of 16/32/64 bits that keeps rejections rare.
        """
        denom = int(denom)
        if not 1 <= denom < _TWO63:
            raise ValueError(f"bernoulli(): denominator {denom} outside [1, 2**63)")
        bits = _word_bits(denom)
        j = (1 << bits) // denom
        limit = _WORD_DTYPES[bits](j * denom - 1)  # largest kept word
        numer_arr = np.asarray(numer, dtype=np.int64)
        full = None
        if bits == 64:  # j denom may be exactly 2**64: treat numer == denom apart
            full = numer_arr >= denom
            numer_arr = np.where(full, 0, numer_arr)
        # j numer <= j denom <= 2**W fits uint64 (compared with narrower words after promotion)
        cut = numer_arr.astype(np.uint64) * np.uint64(j)

        def draw(n: int, todo: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
            w = self.words(n, bits)
            value = w < (cut if cut.ndim == 0 or todo is None else cut[todo])
            if full is not None:
                value |= full if full.ndim == 0 or todo is None else full[todo]
            return value, np.flatnonzero(w > limit)

        return _redraw_rejected(size, np.bool_, draw)

    def uniform_words_below(self, limit_exclusive: int, size: int, bits: int = 64) -> np.ndarray:
        """Words of ``bits`` uniform on ``[0, limit_exclusive)``, by rejection (unsigned)."""
        if not 1 <= limit_exclusive <= (1 << bits):
            raise ValueError("uniform_words_below(): limit outside [1, 2**bits]")
        out = self.words(size, bits).copy()
        if limit_exclusive == 1 << bits:
            return out
        last = _WORD_DTYPES[bits](limit_exclusive - 1)
        bad = np.flatnonzero(out > last)
        while bad.size:
            w = self.words(bad.size, bits)
            out[bad] = w
            bad = bad[w > last]
        return out

    # -- floats --------------------------------------------------------------------------------
    def uniform_open(self, size: int) -> np.ndarray:
        """Uniform floats on the open interval (0, 1): 52 random bits, centred in their cell.

        ``(k + 0.5) / 2**52`` for ``k < 2**52`` is exactly representable, so 0 and 1 never occur.
        """
        w = self.words64(size)
        return ((w >> np.uint64(12)).astype(np.float64) + 0.5) * (2.0**-52)

    def normal(self, scale: float, size: int) -> np.ndarray:
        """Float64 Gaussian noise: numpy's sampler when seeded, inverse CDF of CSPRNG bits else."""
        if self._gen is not None:
            return self._gen.normal(0.0, scale, size)
        return scale * ndtri(self.uniform_open(size))

    def laplace(self, scale: float, size: int) -> np.ndarray:
        """Float64 Laplace noise: numpy's sampler when seeded, inverse CDF of CSPRNG bits else."""
        if self._gen is not None:
            return self._gen.laplace(0.0, scale, size)
        e = self.uniform_open(size) - 0.5
        return -scale * np.sign(e) * np.log1p(-2.0 * np.abs(e))
