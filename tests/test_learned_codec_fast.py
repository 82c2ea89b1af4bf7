"""Issue 15: the variable-rate (joint) ladder, batched coding through a store writer, the cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from learned_codec_support import TINY, mnist, one_thread, tiny_checkpoint

from lossylearn.codecs import get_codec
from lossylearn.codecs.base import BatchCodec
from lossylearn.codecs.learned.codec import LearnedCodec
from lossylearn.codecs.learned.coding import SUB_BATCH
from lossylearn.codecs.learned.fitting import train_codec
from lossylearn.codecs.learned.train import CodecTrainConfig
from lossylearn.codecs.learned.variable_rate import GainedModel, train_joint
from lossylearn.errors import CodecError
from lossylearn.pipeline.chunks import code_images


@pytest.mark.parametrize("arch", ["factorized", "hyperprior"])
def test_a_folded_rung_is_the_gained_network_at_its_lambda(arch: str) -> None:
    images = mnist()[1][:6]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(3)
        model = GainedModel(TINY[arch], [0.001, 0.01, 0.1]).eval()
        model.log_gain.normal_()
        model.log_inv_gain.normal_()
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
        outs = model(x, [2, 2, 2])
        for level in range(3):
            folded = model.fold(level)(x[2 * level : 2 * level + 2])
            assert torch.allclose(folded.x_hat, outs[level].x_hat, atol=1e-5)
            assert torch.allclose(folded.bits(), outs[level].bits(), rtol=1e-5, atol=1e-3)
    with pytest.raises(CodecError, match="groups"):
        model(x, [3, 3])


def test_joint_training_gives_a_ladder_whose_rate_and_quality_rise_with_lambda() -> None:
    train, test = mnist()
    config = CodecTrainConfig(epochs=2, batch_size=8, lr=1e-2, max_steps=120, seed=2)
    with one_thread():
        rungs = train_joint(train, TINY["factorized"], [0.03, 0.0003], config, validation=test)
    assert [r.lmbda for r in rungs] == [0.0003, 0.03]
    low, high = (r.info["validation"] for r in rungs)
    assert high["bpp_estimated"] > low["bpp_estimated"] + 0.1
    assert high["mse"] < low["mse"]
    assert rungs[0].info["train"]["recipe"] == "joint" and rungs[0].info["train"]["steps"] == 120
    with pytest.raises(CodecError, match="differ"):
        train_joint(train, TINY["factorized"], [0.01, 0.01], config)
    with pytest.raises(CodecError, match="unknown training recipe"):
        train_codec(train, config=config, model_config=TINY["factorized"], lmbdas=[0.01],
                    recipe="fast")  # fmt: skip


def test_store_writer_codes_a_chunk_in_batches_with_the_bytes_of_single_images() -> None:
    codec = LearnedCodec(tiny_checkpoint("hyperprior"))
    assert isinstance(codec, BatchCodec) and not isinstance(get_codec("jpeg"), BatchCodec)
    _, test = mnist()
    images = np.concatenate([test] * (SUB_BATCH // len(test) + 1))[: SUB_BATCH + 9]
    qualities = np.arange(len(images)) % 2
    with one_thread():
        coded = code_images(codec, images, qualities)
        for i in (0, 1, SUB_BATCH, SUB_BATCH + 8):  # both sides of a sub-batch boundary
            q = int(qualities[i])
            assert coded.payloads[i] == codec.encode(images[i], q)
            assert np.array_equal(
                coded.reconstructed[i], codec.decode(coded.payloads[i], q, (28, 28, 1))
            )
    assert np.array_equal(
        coded.reconstructed[qualities == 1], codec.model(1).reconstruct(images[qualities == 1])
    )


def test_the_registry_loads_a_checkpoint_once_per_process_until_it_changes(tmp_path: Path) -> None:
    folder = shutil.copytree(tiny_checkpoint("factorized"), tmp_path / "ck")
    first = get_codec("learned", checkpoint=str(folder))
    assert get_codec("learned", checkpoint=str(folder)) is first
    assert get_codec("learned", checkpoint=str(folder), check_bits=4) is not first
    (folder / "weights.pt").write_bytes((folder / "weights.pt").read_bytes()[:-10])
    with pytest.raises(CodecError, match="does not match"):
        get_codec("learned", checkpoint=str(folder))


def test_the_training_loss_is_free_only_where_decoding_clamps_an_overshoot() -> None:
    from lossylearn.codecs.learned.train import training_distortion

    x = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.5, 0.5])
    x_hat = torch.tensor([-0.2, 0.1, 1.3, 0.9, -0.1, 1.2], requires_grad=True)
    # free: black pixel below 0, white pixel above 1; charged: everything else, unclamped
    expected = (0.1**2 + 0.1**2 + 0.6**2 + 0.7**2) / 6 * 255.0**2
    mse = training_distortion(x_hat, x, "mse")
    assert mse.item() == pytest.approx(expected, rel=1e-6)
    mse.backward()
    assert x_hat.grad is not None
    assert x_hat.grad[0] == 0 and x_hat.grad[2] == 0  # harmless overshoots pull nothing
    assert x_hat.grad[4] < 0 < x_hat.grad[5]  # a stroke pixel below 0 is still pulled back up
    mae = training_distortion(x_hat.detach(), x, "mae")
    assert mae.item() == pytest.approx((0.1 + 0.1 + 0.6 + 0.7) / 6 * 255.0, rel=1e-6)


def test_codec_train_defaults_are_the_recipe_s(tmp_path: Path) -> None:
    import json

    from lossylearn.errors import LossylearnError
    from lossylearn.pipeline.codec_data import (
        RECIPE_EPOCHS,
        RECIPE_LEARNING_RATES,
        train_from_dataset,
    )

    with one_thread():
        train_from_dataset(
            dataset="mnist", out=tmp_path / "ck", limit=40, lmbdas=[0.01, 0.1], max_steps=2
        )
    train = json.loads((tmp_path / "ck" / "config.json").read_text())["rungs"][0]["info"]["train"]
    assert train["recipe"] == "joint"
    assert train["epochs"] == RECIPE_EPOCHS["joint"] == 20
    assert train["lr"] == RECIPE_LEARNING_RATES["joint"]
    with pytest.raises(LossylearnError, match="unknown recipe 'fast'"):
        train_from_dataset(dataset="mnist", out=tmp_path / "x", lmbdas=[0.01], recipe="fast")


def test_a_codec_in_use_pickles_for_another_process() -> None:
    # the LCoN study ships its learned codec to Ray tasks (LCoN-FGSM test sets)
    import pickle

    codec = LearnedCodec(tiny_checkpoint("factorized"))
    images = mnist()[1][:4]
    payloads = codec.encode_batch(images, 1)  # builds constriction models, which do not pickle
    copy = pickle.loads(pickle.dumps(codec))
    assert copy.encode_batch(images, 1) == payloads
    assert np.array_equal(copy.decode_batch(payloads, 1, (28, 28, 1)),
                          codec.decode_batch(payloads, 1, (28, 28, 1)))  # fmt: skip
