"""The training toolkit: classifiers, the training loop, attacks, evaluation, devices and tensors.

Every study trains through this package: :mod:`.devices` (device names, thread counts, seeded
blocks), :mod:`.tensors` (uint8 images to float tensors, shift augmentation), :mod:`.models`,
:mod:`.train`, :mod:`.attacks` and :mod:`.evaluate`; its progress bars are
:mod:`lossylearn.progress`'s.
"""

from __future__ import annotations

from ..progress import progress_bars
from .attacks import ATTACKS, fgsm, pgd
from .devices import DEVICE_NAMES, resolve_device, seeded, torch_threads
from .evaluate import (
    Accuracy,
    accuracy,
    adversarial_images,
    fgsm_images,
    float_to_uint8,
    predict,
)
from .models import (
    MODEL_NAMES,
    LeNet,
    ModelConfig,
    ResNet,
    SmallCNN,
    build_model,
    count_parameters,
    default_model_name,
    load_checkpoint,
    save_checkpoint,
)
from .tensors import channels_last, check_images, images_to_tensor, random_shift, to_float_batch
from .train import ClassifierTrainConfig, TrainResult, train_classifier

__all__ = [
    "ATTACKS",
    "Accuracy",
    "ClassifierTrainConfig",
    "DEVICE_NAMES",
    "LeNet",
    "MODEL_NAMES",
    "ModelConfig",
    "ResNet",
    "SmallCNN",
    "TrainResult",
    "accuracy",
    "adversarial_images",
    "build_model",
    "channels_last",
    "check_images",
    "count_parameters",
    "default_model_name",
    "fgsm",
    "fgsm_images",
    "float_to_uint8",
    "images_to_tensor",
    "load_checkpoint",
    "pgd",
    "predict",
    "progress_bars",
    "random_shift",
    "resolve_device",
    "save_checkpoint",
    "seeded",
    "to_float_batch",
    "torch_threads",
    "train_classifier",
]
