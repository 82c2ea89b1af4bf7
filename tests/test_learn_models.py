"""Architecture checks for the classifiers: exact parameter counts, shapes, checkpoint round trip."""

from __future__ import annotations

import pytest
import torch

from lossylearn.errors import LossylearnError
from lossylearn.learn import (
    ModelConfig,
    build_model,
    count_parameters,
    default_model_name,
    load_checkpoint,
    save_checkpoint,
    torch_threads,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine, 2 threads stall on each other's barriers."""
    with torch_threads(1):
        yield


def test_resnet_parameter_counts_match_the_standard_architectures() -> None:
    # The published ResNet-18/34 ImageNet models (3 channels, 1000 classes) have exactly these counts.
    r18 = build_model(ModelConfig("resnet18", 3, (64, 64), 1000))
    r34 = build_model(ModelConfig("resnet34", 3, (64, 64), 1000))
    assert count_parameters(r18) == 11_689_512
    assert count_parameters(r34) == 21_797_672


def test_small_cnn_parameter_count_and_logits() -> None:
    m = build_model(ModelConfig("cnn", 1, (28, 28), 10))
    # conv 1->16 k5: 416; conv 16->32 k5: 12832; fc 1568->128: 200832; fc 128->10: 1290.
    assert count_parameters(m) == 416 + 12_832 + 200_832 + 1_290 == 215_370
    m.eval()
    out = m(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10)
    assert torch.isfinite(out).all()


def test_resnet_small_inputs_keep_resolution_and_resnet_blocks_start_as_identity() -> None:
    m = build_model(ModelConfig("resnet18", 3, (32, 32), 2, width=8)).eval()
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 2)
    # Zero-initialised last BN: each residual branch outputs 0, so a block is relu(shortcut(x)).
    block = m.stages[0]
    x = torch.rand(1, 8, 8, 8)
    assert torch.allclose(block(x), torch.relu(x))


def test_default_model_name_and_unknown_name() -> None:
    assert default_model_name((28, 28)) == "cnn"
    assert default_model_name((64, 64)) == "resnet18"
    with pytest.raises(LossylearnError, match="known: cnn, resnet18, resnet34"):
        build_model(ModelConfig("vgg", 3, (32, 32), 2))


def test_checkpoint_round_trip_rebuilds_identical_model(tmp_path) -> None:
    cfg = ModelConfig("resnet18", 1, (16, 16), 3, width=4)
    torch.manual_seed(3)
    m = build_model(cfg).eval()
    save_checkpoint(tmp_path / "m.pt", m, cfg)
    m2, cfg2 = load_checkpoint(tmp_path / "m.pt")
    assert cfg2 == cfg
    x = torch.rand(4, 1, 16, 16)
    assert torch.equal(m(x), m2.eval()(x))
    with pytest.raises(LossylearnError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
