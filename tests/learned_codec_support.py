"""Tiny trained learned-codec models shared by the ``test_learned_codec*`` modules.

Each is trained once per test process (two rungs of 60 steps of 8 MNIST digits, one CPU thread)
and saved as a checkpoint in a temporary folder that is removed at exit.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from lossylearn.codecs.learned.checkpoint import Checkpoint, save_checkpoint
from lossylearn.codecs.learned.models import ModelConfig
from lossylearn.codecs.learned.train import CodecTrainConfig, train_ladder
from lossylearn.data import load_dataset
from lossylearn.learn import torch_threads

__all__ = ["TINY", "mnist", "one_thread", "tiny_checkpoint"]

TINY = {
    "factorized": ModelConfig("factorized", 1, 16, 8, 2),
    "hyperprior": ModelConfig("hyperprior", 1, 16, 8, 2, hyper_channels=8, hyper_downsamples=1),
}
LAMBDAS = (0.0003, 0.03)


def one_thread() -> AbstractContextManager[None]:
    """Run torch on one thread (much faster than two on a shared, busy machine), then restore."""
    return torch_threads(1)


@functools.lru_cache(maxsize=1)
def mnist() -> tuple[np.ndarray, np.ndarray]:
    """(512 train digits, 64 test digits) from the embedded MNIST subset."""
    ds = load_dataset("mnist")
    return ds.train_images[:512], ds.test_images[:64]


@functools.cache
def tiny_checkpoint(architecture: str) -> Path:
    """A saved two-rung checkpoint of a tiny model: lambda 0.03, then 0.0003 fine-tuned from it."""
    folder = Path(tempfile.mkdtemp(prefix=f"llc-{architecture}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    train, _ = mnist()
    config = CodecTrainConfig(epochs=3, batch_size=8, lr=5e-3, max_steps=150, seed=1)
    with one_thread():
        rungs = train_ladder(train, TINY[architecture], LAMBDAS, config, finetune_epochs=1)
    ck = Checkpoint(TINY[architecture], "mse", rungs, {"dataset": "mnist (test fixture)"})
    return save_checkpoint(ck, folder / "ck")
