"""Classifiers, training, adversarial attacks and evaluation used by the studies."""

from __future__ import annotations

from .attacks import ATTACKS, fgsm, pgd
from .evaluate import Accuracy, accuracy, adversarial_images, float_to_uint8, predict
from .models import (
    MODEL_NAMES,
    ModelConfig,
    ResNet,
    SmallCNN,
    build_model,
    count_parameters,
    default_model_name,
    load_checkpoint,
    save_checkpoint,
)
from .train import (
    TrainConfig,
    TrainResult,
    images_to_tensor,
    resolve_device,
    to_float_batch,
    torch_threads,
    train_classifier,
)

__all__ = [
    "ATTACKS",
    "Accuracy",
    "MODEL_NAMES",
    "ModelConfig",
    "ResNet",
    "SmallCNN",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "adversarial_images",
    "build_model",
    "count_parameters",
    "default_model_name",
    "fgsm",
    "float_to_uint8",
    "images_to_tensor",
    "load_checkpoint",
    "pgd",
    "predict",
    "resolve_device",
    "save_checkpoint",
    "to_float_batch",
    "torch_threads",
    "train_classifier",
]
