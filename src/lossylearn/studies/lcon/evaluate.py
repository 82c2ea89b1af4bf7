"""Stage 4 of the LCoN study: test sets per store (:func:`test_sets` -> :class:`TestSets`), one
classifier per scheme and seed (:func:`train_model`), its accuracies (:func:`evaluate`), and the
result rows they make (:func:`result_rows`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from lossylearn.privacy.mechanisms import NoiseSpec
from lossylearn.privacy.streams import Stream, stream
from lossylearn.studies.lcon.budget import SchemeBudget
from lossylearn.studies.lcon.config import StudyConfig
from lossylearn.studies.lcon.data import StudyData
from lossylearn.studies.lcon.results import ResultRow
from lossylearn.studies.lcon.stores import StoreInfo, noisy_copies

__all__ = ["Accuracy", "TestSets", "evaluate", "result_rows", "test_sets", "train_model"]


@dataclass(frozen=True)
class TestSets:
    """The test images of one store's setting (its noise and codec quality)."""

    __test__ = False  # not a pytest class

    clean: np.ndarray
    labels: np.ndarray
    noisy: np.ndarray
    lcon: np.ndarray
    spec: NoiseSpec
    codec: Any
    quality: int


class Accuracy(NamedTuple):
    """One model's accuracy on one test set (``epsilon``: the attack's, 0 without one); the
    fields are the :class:`~lossylearn.studies.lcon.results.ResultRow` columns of the same names."""

    test: str
    epsilon: float
    accuracy: float
    n_test: int


def test_sets(data: StudyData, spec: NoiseSpec, store: StoreInfo, config: StudyConfig) -> TestSets:
    """Noisy and LCoN-processed copies of the test set (the store's noise, codec and quality)."""
    from lossylearn.codecs import get_codec
    from lossylearn.pipeline import lcon_transform

    seed = config.data_seed
    codec = get_codec(config.codec, **store.codec_options)
    noisy = noisy_copies(data.test_x, spec, seed, Stream.STUDY_NOISY_TEST)
    lcon = lcon_transform(
        data.test_x, spec=spec, codec=codec, quality=store.quality, seed=seed,
        stream=stream(Stream.STUDY_LCON_TEST),
    )  # fmt: skip
    return TestSets(data.test_x, data.test_y, noisy, lcon.reconstructed, spec, codec, store.quality)


test_sets.__test__ = False  # type: ignore[attr-defined]


def train_model(
    x: np.ndarray, y: np.ndarray, *, seed: int, label: str, data: StudyData, config: StudyConfig
) -> Any:
    """Train the study's classifier on ``(x, y)``; returns :class:`lossylearn.learn.TrainResult`.

    With ``equal_steps`` every scheme gets the optimizer steps of ``epochs`` passes over the whole
    pool, so a small (storage-calibrated) training set is not also under-trained.
    """
    from lossylearn.learn import ClassifierTrainConfig, train_classifier

    c = config
    steps = c.epochs * math.ceil(len(data.train_y) / c.batch_size) if c.equal_steps else None
    tcfg = ClassifierTrainConfig(
        epochs=c.epochs, batch_size=c.batch_size, lr=c.lr, optimizer=c.optimizer, seed=seed,
        threads=c.threads, device=c.device, progress=c.progress, hflip=c.hflip, steps=steps,
    )  # fmt: skip
    return train_classifier(x, y, model_config=data.model_config, config=tcfg, description=label)


def evaluate(
    model: Any, tests: TestSets, config: StudyConfig, *, seed: int, full: bool
) -> list[Accuracy]:
    """Accuracies on the clean, noisy and LCoN test sets and under FGSM; ``full`` adds
    LCoN-processed FGSM (the paper's LCoN-adv) and PGD."""
    from lossylearn.learn import accuracy, adversarial_images, fgsm_images, float_to_uint8
    from lossylearn.pipeline import lcon_transform

    c, dev, n = config, config.device, len(tests.labels)
    out = [
        Accuracy(name, 0.0, accuracy(model, images, tests.labels, device=dev), n)
        for name, images in (("clean", tests.clean), ("noisy", tests.noisy), ("lcon", tests.lcon))
    ]
    ax, ay = tests.clean[: c.adv_n_test], tests.labels[: c.adv_n_test]
    fgsm_sets = fgsm_images(model, ax, ay, c.fgsm_eps, device=dev)
    for k, (eps, adv) in enumerate(zip(c.fgsm_eps, fgsm_sets, strict=True)):
        out.append(Accuracy("fgsm", float(eps), accuracy(model, adv, ay, device=dev), len(ay)))
        if full:
            lc = lcon_transform(
                float_to_uint8(adv), spec=tests.spec, codec=tests.codec, quality=tests.quality,
                seed=c.data_seed, stream=stream(Stream.STUDY_LCON_ADV, k),
            )  # fmt: skip
            acc = accuracy(model, lc.reconstructed, ay, device=dev)
            out.append(Accuracy("lcon-fgsm", float(eps), acc, len(ay)))
    if full:
        for eps in c.pgd_eps:
            adv = adversarial_images(
                model, ax, ay, attack="pgd", epsilon=eps, device=dev, seed=seed,
                pgd_steps=c.pgd_steps,
            )  # fmt: skip
            out.append(Accuracy("pgd", float(eps), accuracy(model, adv, ay, device=dev), len(ay)))
    return out


def result_rows(
    store: StoreInfo, scheme: str, budget: SchemeBudget, accs: list[Accuracy], *, seed: int,
    train_seconds: float, data: StudyData, config: StudyConfig,
) -> list[ResultRow]:  # fmt: skip
    """One row per accuracy of the ``scheme`` model trained with ``seed`` on ``store``'s setting."""
    return [
        ResultRow(
            **store.row_columns(),
            train=scheme,
            **a._asdict(),  # test, epsilon, accuracy, n_test: the row's own columns
            n_train=budget.n_train,
            train_bits=budget.train_bits,
            budget_bits=budget.budget_bits,
            seed=seed,
            model=data.model_config.name,
            epochs=config.epochs,
            train_seconds=round(train_seconds, 3),
        )  # fmt: skip
        for a in accs
    ]
