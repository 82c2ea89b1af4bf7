"""Training a learned codec for a target distortion, and ``train_codec``, the one entry point.

Matching a target (LCoN: MSE = sigma^2 for Gaussian noise, MAE = b for Laplace noise): start from
the lambda of the Gaussian/Laplacian high-rate relation ``D = 1 / (2 ln2 lmbda)`` (MSE) or
``1 / (ln2 lmbda)`` (MAE), train, measure ``D`` on held-out images after real rounding to uint8,
and take secant steps on ``log D`` against ``log lmbda`` (at least x2 until the target is bracketed,
then inside the bracket), warm-starting from the nearest trained model, until
``|D - T| <= tolerance * T``. The model closest to the target is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lossylearn.codecs.learned.checkpoint import Checkpoint, Rung
from lossylearn.codecs.learned.models import ModelConfig, preset_config
from lossylearn.codecs.learned.train import (
    CodecTrainConfig,
    _check_images,
    measure,
    train_ladder,
    train_rung,
)
from lossylearn.errors import CodecError
from lossylearn.learn.devices import torch_threads

__all__ = ["RECIPES", "TargetFit", "fit_target", "initial_lambda", "train_codec"]

RECIPES = ("joint", "separate")
"""How :func:`train_codec` trains a lambda ladder (a target search always trains separately)."""


def initial_lambda(distortion: str, target: float) -> float:
    """Lambda of the high-rate relation D = 1/(2 ln2 lambda) (MSE) or 1/(ln2 lambda) (MAE)."""
    if not (target > 0 and math.isfinite(target)):
        raise CodecError(f"the target distortion must be a positive number, got {target}")
    return 1.0 / ((2.0 if distortion == "mse" else 1.0) * math.log(2.0) * target)


@dataclass
class TargetFit:
    """The outcome of :func:`fit_target`."""

    rungs: list[Rung]
    """Every model trained on the way (ascending lambda)."""
    best: int
    """Index into ``rungs`` of the model whose held-out distortion is closest to the target."""
    target: float
    distortion: str
    reached: bool
    tolerance: float
    trace: list[dict[str, float]] = field(default_factory=list)
    """(lambda, held-out distortion, bpp) per round, in training order."""
    message: str = ""


def fit_target(
    images: np.ndarray,
    model_config: ModelConfig,
    target: float,
    config: CodecTrainConfig,
    *,
    validation: np.ndarray,
    tolerance: float = 0.05,
    max_rounds: int = 6,
    finetune_epochs: int | None = None,
    initial: float | None = None,
) -> TargetFit:
    """Search lambda so that the held-out ``validation`` distortion equals ``target``."""
    with torch_threads(config.threads):
        return _fit_target(
            images, model_config, target, config, validation=validation, tolerance=tolerance,
            max_rounds=max_rounds, finetune_epochs=finetune_epochs, initial=initial,
        )  # fmt: skip


def _fit_target(
    images: np.ndarray,
    model_config: ModelConfig,
    target: float,
    config: CodecTrainConfig,
    *,
    validation: np.ndarray,
    tolerance: float,
    max_rounds: int,
    finetune_epochs: int | None,
    initial: float | None,
) -> TargetFit:
    kind = config.distortion
    lam = float(initial) if initial is not None else initial_lambda(kind, target)
    ft_epochs = finetune_epochs if finetune_epochs is not None else max(1, config.epochs // 2)
    tried: list[tuple[float, float, Rung]] = []
    trace: list[dict[str, float]] = []
    lo: tuple[float, float] | None = None  # (lambda, D) with D > target
    hi: tuple[float, float] | None = None  # (lambda, D) with D < target
    reached = False
    message = ""
    for r in range(max_rounds):
        near = min(tried, key=lambda t: abs(math.log(t[0] / lam)), default=None)
        rung = train_rung(
            images,
            model_config,
            lam,
            config,
            init_state=near[2].model.state_dict() if near else None,
            epochs=ft_epochs if near else None,
            label=f"round {r + 1}/{max_rounds} ",
        )
        metrics = measure(rung, validation)
        d = metrics.distortion(kind)
        rung.info["validation"] = asdict(metrics)
        rung.info["target"] = {"distortion": kind, "value": target}
        tried.append((lam, d, rung))
        trace.append({"lmbda": lam, kind: d, "bpp_estimated": metrics.bpp_estimated})
        if abs(d - target) <= tolerance * target:
            reached = True
            break
        if d > target:
            lo = (lam, d) if lo is None or lam > lo[0] else lo
        else:
            hi = (lam, d) if hi is None or lam < hi[0] else hi
            if metrics.bpp_estimated < 1e-3:
                message = (
                    f"target {kind.upper()} {target:g} is above what a near-zero-rate "
                    f"reconstruction gives ({d:.4g}); no lambda reaches it"
                )
                break
        lam = _next_lambda(lam, d, target, tried, lo, hi)
    lam_b, d_b, _ = min(tried, key=lambda t: abs(t[1] - target))
    rungs = sorted((t[2] for t in tried), key=lambda rr: rr.lmbda)
    best = next(i for i, rr in enumerate(rungs) if rr.lmbda == lam_b)
    if not message:
        message = (
            f"lambda {lam_b:.4g} gives held-out {kind.upper()} {d_b:.4g} for target {target:g}"
            + (
                ""
                if reached
                else f" (outside the {tolerance:.0%} tolerance after {len(tried)} rounds)"
            )
        )
    return TargetFit(rungs, best, target, kind, reached, tolerance, trace, message)


def _next_lambda(
    lam: float,
    d: float,
    target: float,
    tried: list[tuple[float, float, Rung]],
    lo: tuple[float, float] | None,
    hi: tuple[float, float] | None,
) -> float:
    """Secant step on log D vs log lambda (slope from the last two rounds when it has the expected
    sign, else -1). Until the target is bracketed the step is at least x2 and at most x16 (the
    distortion to a noisy target can respond slowly to lambda); then it stays inside the bracket
    (its geometric middle when the secant leaves it)."""
    slope = -1.0
    if len(tried) >= 2:
        (l1, d1, _), (l2, d2, _) = tried[-2], tried[-1]
        if l1 != l2 and d1 > 0 and d2 > 0:
            s = (math.log(d2) - math.log(d1)) / (math.log(l2) - math.log(l1))
            if -4.0 <= s <= -0.05:
                slope = s
    step = (math.log(target) - math.log(d)) / slope
    if lo is None or hi is None:
        size = min(max(abs(step), math.log(2.0)), math.log(16.0))
        return lam * math.exp(math.copysign(size, step))
    new = lam * math.exp(max(-math.log(16.0), min(math.log(16.0), step)))
    a, b = math.log(lo[0]), math.log(hi[0])
    if not (min(a, b) < math.log(new) < max(a, b)):
        new = math.exp(0.5 * (a + b))
    return new


def train_codec(
    images: np.ndarray,
    *,
    config: CodecTrainConfig,
    model_config: ModelConfig | None = None,
    lmbdas: Sequence[float] | None = None,
    target: float | None = None,
    validation_fraction: float = 0.1,
    tolerance: float = 0.05,
    max_rounds: int = 6,
    finetune_epochs: int | None = None,
    meta: dict[str, Any] | None = None,
    recipe: str = "joint",
) -> tuple[Checkpoint, TargetFit | None]:
    """Train a checkpoint on uint8 ``images`` from a lambda ladder or for a target distortion.

    Give exactly one of ``lmbdas`` or ``target``. For a target, ``validation_fraction`` of the images
    (a seeded random subset) are held out to measure the distortion; the rest train the models,
    and the checkpoint holds the one model closest to the target (qualities ``(0,)``); the
    returned :class:`TargetFit` has every model tried.
    A ladder is trained by ``recipe``: ``"joint"`` (default) trains one variable-rate network for
    all lambdas and folds it into one rung each (:mod:`.variable_rate`: the cost of one model);
    ``"separate"`` trains a model per lambda (warm-started from its neighbour for
    ``finetune_epochs`` when given).
    Without ``model_config`` the factorized ``mnist`` preset serves grey images, ``rgb64`` colour.
    Save the result with :func:`~lossylearn.codecs.learned.checkpoint.save_checkpoint`.
    """
    if model_config is None:
        channels = np.asarray(images).shape[-1] if np.asarray(images).ndim == 4 else 0
        model_config = preset_config("mnist" if channels == 1 else "rgb64", "factorized")
    images = _check_images(images, model_config)
    if (lmbdas is None) == (target is None):
        raise CodecError("give either lambdas or a target distortion, not both or neither")
    meta = dict(meta or {})
    if recipe not in RECIPES:
        raise CodecError(f"unknown training recipe {recipe!r}; known: {', '.join(RECIPES)}")
    if lmbdas is not None:
        if recipe == "joint":
            from lossylearn.codecs.learned.variable_rate import train_joint

            rungs = train_joint(images, model_config, lmbdas, config)
        else:
            rungs = train_ladder(
                images, model_config, lmbdas, config, finetune_epochs=finetune_epochs
            )
        return Checkpoint(model_config, config.distortion, rungs, meta), None
    if not 0.0 < validation_fraction < 1.0:
        raise CodecError("validation_fraction must lie strictly between 0 and 1")
    n_val = max(1, int(round(len(images) * validation_fraction)))
    if len(images) - n_val < 1:
        raise CodecError("too few images to hold some out for validation")
    perm = np.random.default_rng(config.seed).permutation(len(images))
    val, train = images[perm[:n_val]], images[perm[n_val:]]
    fit = fit_target(
        train,
        model_config,
        float(target),  # type: ignore[arg-type]
        config,
        validation=val,
        tolerance=tolerance,
        max_rounds=max_rounds,
        finetune_epochs=finetune_epochs,
    )
    meta["target"] = {
        "distortion": config.distortion,
        "value": float(target),  # type: ignore[arg-type]
        "reached": fit.reached,
        "lmbda": fit.rungs[fit.best].lmbda,
        "tolerance": tolerance,
        "validation_images": int(n_val),
        "trace": fit.trace,
        "message": fit.message,
    }
    # Only the model closest to the target goes into the checkpoint: the others were trained for
    # different lambdas *and* different lengths (warm starts), so together they need not form a
    # ladder whose distortion falls with lambda, which quality matching relies on.
    best = fit.rungs[fit.best]
    return Checkpoint(model_config, config.distortion, [best], meta), fit
