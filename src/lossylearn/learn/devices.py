"""Where and how torch runs: the device, the CPU thread count, and seeded blocks.

Nothing here changes torch's process-wide settings for good: :func:`torch_threads` restores the
thread count and :func:`seeded` restores the random state when their block ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ..errors import LossylearnError

__all__ = ["DEVICE_NAMES", "resolve_device", "seeded", "torch_threads"]

DEVICE_NAMES = "auto, cpu, cuda, cuda:N, mps"
"""The device names :func:`resolve_device` accepts, as the error messages list them."""

_NAME = re.compile(r"(auto|cpu|mps|cuda)(?::(\d+))?")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    A name that is none of these, or a device this machine does not have, is a
    :class:`~lossylearn.errors.LossylearnError` with a one-line message.
    """
    text = str(name).strip().lower()
    match = _NAME.fullmatch(text)
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise LossylearnError(f"unknown device {str(name)!r}; known devices: {DEVICE_NAMES}")
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise LossylearnError(f"device {text!r} requested but no CUDA GPU is available")
        if index is not None and int(index) >= torch.cuda.device_count():
            raise LossylearnError(
                f"device {text!r} requested but this machine has "
                f"{torch.cuda.device_count()} CUDA GPU(s)"
            )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise LossylearnError("device 'mps' requested but no Apple MPS device is available")
    return torch.device(text)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block on ``n`` torch CPU threads (``None``: unchanged), then restore the count."""
    if n is None:
        yield
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise LossylearnError(f"threads must be an integer >= 1, got {n!r}")
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Run the block with torch's global random state seeded by ``seed``, restored afterwards.

    For what cannot take a :class:`torch.Generator`: the initial weights of a model (built on the
    CPU inside the block) and dropout. Only the CPU generator is forked and seeded, plus the one of
    ``device`` when it is a CUDA device; no other device's state is touched.
    """
    index: int | None = None
    if device is not None and device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
    with torch.random.fork_rng(devices=[] if index is None else [index]):
        torch.default_generator.manual_seed(seed)
        if index is not None:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
