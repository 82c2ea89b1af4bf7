"""The shared toolkit's plumbing: device names, thread counts, seeded blocks, uint8 -> float tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lossylearn.errors import LossylearnError
from lossylearn.learn import (
    ClassifierTrainConfig,
    ModelConfig,
    build_model,
    count_parameters,
    images_to_tensor,
    random_shift,
    resolve_device,
    seeded,
    torch_threads,
    train_classifier,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine, 2 threads stall on each other's barriers."""
    with torch_threads(1):
        yield


def test_resolve_device_names() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("tpu", "cuda:x", "cpu:1", "mps:0", "", "meta"):
        with pytest.raises(LossylearnError, match="unknown device") as info:
            resolve_device(bad)
        assert "\n" not in str(info.value) and "auto, cpu, cuda, cuda:N, mps" in str(info.value)
    if torch.cuda.is_available():
        assert resolve_device("cuda:0") == torch.device("cuda:0")
        with pytest.raises(LossylearnError, match="CUDA GPU"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        for name in ("cuda", "cuda:0", "cuda:3"):
            with pytest.raises(LossylearnError, match="no CUDA GPU"):
                resolve_device(name)
    if not torch.backends.mps.is_available():
        with pytest.raises(LossylearnError, match="no Apple MPS"):
            resolve_device("mps")


def test_torch_threads_restores_and_validates() -> None:
    before = torch.get_num_threads()
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(2):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(LossylearnError, match="threads"), torch_threads(bad):  # type: ignore[arg-type]
            pass


def test_seeded_is_reproducible_and_restores_the_global_state() -> None:
    torch.manual_seed(99)
    state = torch.get_rng_state()
    with seeded(4):
        a = torch.rand(5)
    assert torch.equal(torch.get_rng_state(), state)
    with seeded(4):
        assert torch.equal(torch.rand(5), a)
    cfg = ModelConfig("cnn", 1, (28, 28), 10)
    m1, m2 = build_model(cfg, seed=3), build_model(cfg, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters(), strict=True))
    m3 = build_model(cfg, seed=4)
    assert not torch.equal(next(m1.parameters()), next(m3.parameters()))


@pytest.mark.parametrize("shape", [(3, 28, 28, 1), (2, 5, 7, 3), (1, 64, 32, 4)])
def test_images_to_tensor_any_shape(shape: tuple[int, int, int, int]) -> None:
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    t = images_to_tensor(x)
    n, h, w, c = shape
    assert t.shape == (n, c, h, w) and t.dtype == torch.float32 and t.is_contiguous()
    np.testing.assert_allclose(t.permute(0, 2, 3, 1).numpy(), x / 255.0, rtol=1e-6)
    assert float(images_to_tensor(np.full((1, 2, 2, 1), 255, np.uint8)).max()) == 1.0
    with pytest.raises(LossylearnError, match="uint8"):
        images_to_tensor(x.astype(np.float32))
    with pytest.raises(LossylearnError, match=r"\(N, H, W, C\)"):
        images_to_tensor(x[0])
    with pytest.raises(LossylearnError, match="unknown device"):
        images_to_tensor(x, device="tpu")


def test_lenet_is_the_urdc_anchor_classifier() -> None:
    m = build_model(ModelConfig("lenet", 1, (28, 28), 10))
    # conv 1->32 k5: 832; conv 32->64 k5: 51264; fc 1024->128: 131200; fc 128->10: 1290.
    assert count_parameters(m) == 832 + 51_264 + 131_200 + 1_290
    assert m(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert build_model(ModelConfig("lenet", 3, (32, 40), 4, width=8))(
        torch.rand(1, 3, 32, 40)
    ).shape == (1, 4)
    with pytest.raises(LossylearnError, match="16x16"):
        build_model(ModelConfig("lenet", 1, (15, 28), 10))


def test_random_shift_stays_in_its_range_and_shift_training_runs() -> None:
    x = torch.rand(6, 2, 9, 11)
    out = random_shift(x, 1, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.equal(out, random_shift(x, 1, torch.Generator().manual_seed(0)))
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (40, 16, 16, 1), dtype=np.uint8)
    labels = rng.integers(0, 2, 40)
    cfg = ModelConfig("lenet", 1, (16, 16), 2, width=4)
    steps: list[int] = []
    res = train_classifier(imgs, labels, model_config=cfg, on_step=lambda: steps.append(1),
                           config=ClassifierTrainConfig(epochs=2, batch_size=16, shift=2, progress=False))  # fmt: skip
    assert len(steps) == ClassifierTrainConfig(epochs=2, batch_size=16).total_steps(40) == 6
    assert not res.model.training
    with pytest.raises(LossylearnError, match="shift must be smaller"):
        train_classifier(imgs, labels, model_config=cfg, config=ClassifierTrainConfig(shift=16))
    with pytest.raises(LossylearnError, match="shift"):
        ClassifierTrainConfig(shift=-1)
