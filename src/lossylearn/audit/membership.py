"""Membership inference against a classifier trained on a store: the loss-threshold attack.

The data owner trains the classifier a user of the store would train (the study's small CNN, on
the decoded stored images and their labels), then plays the attacker of Yeom et al. (2018): for a
candidate clean image, a low loss of the model on it says "member". Members are clean sources of
stored images, non-members clean images of the same dataset that were never stored (the pool's
distractors); the attack's AUC over both (0.5: no better than a coin) is threshold-free. The
AUC is computed with the rank-sum (Mann-Whitney) formula, ties counted as half.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lossylearn.errors import LossylearnError
from lossylearn.records import Record

__all__ = ["MembershipResult", "auc", "loss_threshold_attack", "per_example_loss"]


def auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """P(score of a random member > score of a random non-member) + 1/2 P(equal)."""
    from scipy.stats import rankdata

    m, n = len(member_scores), len(nonmember_scores)
    if m == 0 or n == 0:
        raise LossylearnError("the AUC needs at least one member and one non-member")
    ranks = rankdata(np.concatenate([member_scores, nonmember_scores]))
    return float((ranks[:m].sum() - m * (m + 1) / 2) / (m * n))


def per_example_loss(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of ``model`` on each image (uint8 NHWC), in eval mode."""
    from lossylearn.learn import to_float_batch

    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(images), 512):
            x = to_float_batch(torch.from_numpy(np.ascontiguousarray(images[i : i + 512])))
            y = torch.from_numpy(np.asarray(labels[i : i + 512], dtype=np.int64))
            out.append(torch.nn.functional.cross_entropy(model(x), y, reduction="none").numpy())
    return np.concatenate(out) if out else np.zeros(0)


@dataclass(frozen=True)
class MembershipResult(Record):
    """``audit.json``'s ``membership`` section."""

    attack: str
    auc: float
    n_members: int
    n_nonmembers: int
    model: str
    epochs: int
    train_accuracy: float
    member_accuracy: float
    nonmember_accuracy: float
    mean_loss_members: float
    mean_loss_nonmembers: float
    advantage: float
    """max over thresholds of TPR - FPR (the attacker's best single threshold)."""


def _advantage(member: np.ndarray, nonmember: np.ndarray) -> float:
    """max over t of P(member score >= t) - P(non-member score >= t)."""
    thresholds = np.unique(np.concatenate([member, nonmember]))
    tpr = 1.0 - np.searchsorted(np.sort(member), thresholds, side="left") / len(member)
    fpr = 1.0 - np.searchsorted(np.sort(nonmember), thresholds, side="left") / len(nonmember)
    return float(np.max(tpr - fpr)) if thresholds.size else 0.0


def loss_threshold_attack(
    stored: np.ndarray, stored_labels: np.ndarray, members: np.ndarray, member_labels: np.ndarray,
    nonmembers: np.ndarray, nonmember_labels: np.ndarray, *, n_classes: int, epochs: int,
    seed: int, progress: bool,
) -> MembershipResult:  # fmt: skip
    """Train the small CNN on the stored images, then attack it with the clean members and
    non-members (equal numbers are best; any numbers work)."""
    from lossylearn.learn import (
        ClassifierTrainConfig,
        ModelConfig,
        accuracy,
        default_model_name,
        train_classifier,
    )  # fmt: skip

    h, w, c = stored.shape[1:]
    name = default_model_name((int(h), int(w)))
    cfg = ModelConfig(name, int(c), (int(h), int(w)), int(n_classes))
    r = train_classifier(
        stored, stored_labels, model_config=cfg, description="membership target model",
        config=ClassifierTrainConfig(epochs=epochs, batch_size=64, lr=1e-3, seed=seed, progress=progress),
    )  # fmt: skip
    lm = per_example_loss(r.model, members, member_labels)
    ln = per_example_loss(r.model, nonmembers, nonmember_labels)
    acc_m = accuracy(r.model, members, member_labels, device="cpu")
    acc_n = accuracy(r.model, nonmembers, nonmember_labels, device="cpu")
    return MembershipResult(
        attack="loss threshold (Yeom et al. 2018): a candidate is called a member when the model's "
        "cross-entropy on its clean image is below a threshold; AUC over all thresholds",
        auc=auc(-lm, -ln), n_members=len(lm), n_nonmembers=len(ln), model=name, epochs=epochs,
        train_accuracy=r.train_accuracy, member_accuracy=acc_m, nonmember_accuracy=acc_n,
        mean_loss_members=float(lm.mean()), mean_loss_nonmembers=float(ln.mean()),
        advantage=_advantage(-lm, -ln),
    )  # fmt: skip
