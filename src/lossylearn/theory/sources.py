"""Finite-alphabet stationary sources, modular additive noise and block laws.

A source is i.i.d. (a marginal law) or first-order Markov (a transition matrix, started from its
stationary law, so the process is stationary). ``block_law(k)`` is the law of ``X^k`` as a tensor
of shape ``(Q,) * k``; flattened in row-major order it indexes the ``Q^k`` block symbols used by
the block distortion matrices here. Noise ``N`` acts as ``Z_i = X_i + N_i (mod Q)`` with i.i.d.
``N_i``; its law on blocks is the circular convolution of the block law with ``P_N`` along every
axis. ``noise_distortion`` is the LCoN paper's ``rho_N(a) = log 1/P(N = a)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from lossylearn.errors import LossylearnError
from lossylearn.theory.info import FloatArray, as_pmf, entropy

#: Largest block alphabet ``Q^k`` for which block matrices are built.
MAX_BLOCK_SYMBOLS = 4096


@dataclass(frozen=True)
class FiniteSource:
    """A stationary source on ``{0, .., Q-1}``: i.i.d. (``transition`` is None) or Markov."""

    marginal: FloatArray
    transition: FloatArray | None = None

    @property
    def alphabet(self) -> int:
        """The alphabet size ``Q``."""
        return int(self.marginal.size)

    @property
    def kind(self) -> str:
        """``"iid"`` or ``"markov"``."""
        return "iid" if self.transition is None else "markov"

    def block_law(self, k: int) -> FloatArray:
        """The law of ``X^k`` as an array of shape ``(Q,) * k``."""
        k = _check_block(self.alphabet, k)
        law = self.marginal.copy()
        for _ in range(k - 1):
            step = (
                self.transition
                if self.transition is not None
                else np.tile(self.marginal, (self.alphabet, 1))
            )
            law = law[..., None] * step.reshape((1,) * (law.ndim - 1) + step.shape)
        return law

    def entropy_rate_bits(self) -> float:
        """The entropy rate ``H(X_2 | X_1)`` (Markov) or ``H(X)`` (i.i.d.), in bits."""
        if self.transition is None:
            return entropy(self.marginal)
        return float(
            sum(self.marginal[a] * entropy(self.transition[a]) for a in range(self.alphabet))
        )


def _check_block(q: int, k: int) -> int:
    k = int(k)
    if k < 1:
        raise LossylearnError(f"block length k must be >= 1; got {k}")
    if q**k > MAX_BLOCK_SYMBOLS:
        raise LossylearnError(f"Q^k = {q}^{k} = {q**k} block symbols exceeds {MAX_BLOCK_SYMBOLS}")
    return k


def iid_source(p: ArrayLike) -> FiniteSource:
    """An i.i.d. source with marginal law ``p``."""
    return FiniteSource(marginal=as_pmf(p, "p"))


def stationary_law(transition: FloatArray) -> FloatArray:
    """The stationary law of an irreducible transition matrix (rows sum to one)."""
    q = transition.shape[0]
    a = np.vstack([transition.T - np.eye(q), np.ones((1, q))])
    b = np.zeros(q + 1)
    b[-1] = 1.0
    pi, *_ = np.linalg.lstsq(a, b, rcond=None)
    if np.abs(a @ pi - b).max() > 1e-9 or np.any(pi < -1e-12):
        raise LossylearnError("the transition matrix has no unique stationary law")
    pi = np.maximum(pi, 0.0)
    return pi / pi.sum()


def markov_source(transition: ArrayLike) -> FiniteSource:
    """A stationary first-order Markov source with ``transition[a, b] = P(X_2 = b | X_1 = a)``."""
    t = np.asarray(transition, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] < 2:
        raise LossylearnError(f"transition must be a square matrix of size >= 2; got {t.shape}")
    for a in range(t.shape[0]):
        as_pmf(t[a], f"transition row {a}")
    t = t / t.sum(axis=1, keepdims=True)
    pi = stationary_law(t)
    # Reducible chains have more than one stationary law; insist on a unique one.
    if np.linalg.matrix_rank(t.T - np.eye(t.shape[0]), tol=1e-10) != t.shape[0] - 1:
        raise LossylearnError(
            "the transition matrix is reducible: its stationary law is not unique"
        )
    return FiniteSource(marginal=pi, transition=t)


def random_source(
    kind: str, alphabet: int, rng: np.random.Generator, concentration: float = 1.0
) -> FiniteSource:
    """A source with Dirichlet(``concentration``) marginal (i.i.d.) or transition rows (Markov)."""
    if alphabet < 2:
        raise LossylearnError(f"alphabet must be >= 2; got {alphabet}")
    if concentration <= 0:
        raise LossylearnError(f"concentration must be > 0; got {concentration}")
    alpha = np.full(alphabet, float(concentration))
    if kind == "iid":
        return iid_source(rng.dirichlet(alpha))
    if kind == "markov":
        return markov_source(rng.dirichlet(alpha, size=alphabet))
    raise LossylearnError(f"unknown source kind {kind!r}; known: iid, markov")


def symmetric_noise(alphabet: int, level: float) -> FloatArray:
    """``P(N = 0) = 1 - level``, the rest spread evenly over the other symbols."""
    if alphabet < 2:
        raise LossylearnError(f"alphabet must be >= 2; got {alphabet}")
    if not 0.0 <= level <= 1.0:
        raise LossylearnError(f"noise level must lie in [0, 1]; got {level}")
    p = np.full(alphabet, level / (alphabet - 1))
    p[0] = 1.0 - level
    return p


def wrapped_laplace_noise(alphabet: int, scale: float) -> FloatArray:
    """A discrete Laplace law ``∝ exp(-|a|/scale)`` wrapped onto ``Z_Q`` (noise for 8-bit-like data)."""
    if alphabet < 2:
        raise LossylearnError(f"alphabet must be >= 2; got {alphabet}")
    if scale <= 0:
        raise LossylearnError(f"scale must be > 0; got {scale}")
    a = np.arange(alphabet)
    dist = np.minimum(a, alphabet - a)
    p = np.exp(-dist / scale)
    return p / p.sum()


def is_nonsingular(p_n: ArrayLike, tol: float = 1e-12) -> bool:
    """Whether the circulant matrix of ``P_N`` is invertible (the LCoN paper's condition); its
    eigenvalues are the discrete Fourier transform of ``P_N``."""
    p = as_pmf(p_n, "p_n")
    return bool(np.abs(np.fft.fft(p)).min() > tol)


def circulant(p_n: ArrayLike) -> FloatArray:
    """``C[z, x] = P_N((z - x) mod Q)``: the channel from ``X`` to ``Z = X + N``."""
    p = as_pmf(p_n, "p_n")
    q = p.size
    idx = (np.arange(q)[:, None] - np.arange(q)[None, :]) % q
    return p[idx]


def add_noise(block_law: ArrayLike, p_n: ArrayLike) -> FloatArray:
    """The law of ``Z^k = X^k + N^k (mod Q)`` from the law of ``X^k`` (shape ``(Q,) * k``)."""
    law = np.asarray(block_law, dtype=np.float64)
    c = circulant(p_n)
    if any(s != c.shape[0] for s in law.shape):
        raise LossylearnError(
            f"block law shape {law.shape} does not match the noise alphabet {c.shape[0]}"
        )
    out = law
    for axis in range(law.ndim):
        out = np.moveaxis(np.tensordot(c, out, axes=([1], [axis])), 0, axis)
    return out


def joint_block_law(block_law: ArrayLike, p_n: ArrayLike) -> FloatArray:
    """``P(Z^k = z, X^k = x)`` as a ``(Q^k, Q^k)`` matrix (row ``z``, column ``x``)."""
    law = np.asarray(block_law, dtype=np.float64)
    k = law.ndim
    c = circulant(p_n)
    kron = np.ones((1, 1))
    for _ in range(k):
        kron = np.kron(kron, c)
    return kron * law.ravel()[None, :]


def noise_distortion(p_n: ArrayLike, *, base: float = 2.0) -> FloatArray:
    """``rho_N(a) = log_base 1/P(N = a)`` (``+inf`` where ``P(N = a) = 0``)."""
    p = as_pmf(p_n, "p_n")
    with np.errstate(divide="ignore"):
        return -np.log(p) / math.log(base)


def block_distortion(rho: ArrayLike, k: int) -> FloatArray:
    """Per-letter difference distortion on blocks: ``d(z^k, x^k) = (1/k) sum_i rho(z_i - x_i)``."""
    r = np.asarray(rho, dtype=np.float64)
    q = r.size
    k = _check_block(q, k)
    digits = np.array(np.unravel_index(np.arange(q**k), (q,) * k))  # (k, Q^k)
    total = np.zeros((q**k, q**k))
    for i in range(k):
        diff = (digits[i][:, None] - digits[i][None, :]) % q
        total += r[diff]
    return total / k
