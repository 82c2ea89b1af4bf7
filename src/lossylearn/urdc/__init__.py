"""Universal rate-distortion-classification/perception representations on MNIST.

One encoder at a fixed rate, many decoders: the sender stores one bitstream (a dithered L-level
quantizer with shared randomness, ``d log2 L`` bits per image, see :mod:`.quantizer` for the
bitstream contract), and each receiver decodes it for its own need (lowest MSE, best classification
by a fixed classifier, most realistic images).

Modules: :mod:`.models` (encoder, decoders, critic, classifier), :mod:`.quantizer`, :mod:`.train`,
:mod:`.metrics`, :mod:`.study` (profiles, driver, results.json), :mod:`.report` (figures, HTML),
:mod:`.cli` (the ``lossylearn study urdc`` sub-app).
"""

from __future__ import annotations

from lossylearn.urdc.metrics import CodecMetrics, classifier_scores, estimate_w1, receive, transmit
from lossylearn.urdc.models import (
    Classifier,
    ConvDecoder,
    Critic,
    Encoder,
    MLPDecoder,
    NetConfig,
    build_decoder,
)
from lossylearn.urdc.quantizer import (
    BitstreamHeader,
    BitstreamSize,
    DitheredQuantizer,
    decode_bitstream,
    encode_bitstream,
    pack_symbols,
    shared_dither,
    unpack_symbols,
)
from lossylearn.urdc.study import (
    PROFILES,
    ResultRow,
    StudyProfile,
    StudyResult,
    get_profile,
    run_study,
)
from lossylearn.urdc.train import Head, Objective, TrainConfig, train_classifier, train_codec

__all__ = [
    "PROFILES",
    "BitstreamHeader",
    "BitstreamSize",
    "Classifier",
    "CodecMetrics",
    "ConvDecoder",
    "Critic",
    "DitheredQuantizer",
    "Encoder",
    "Head",
    "MLPDecoder",
    "NetConfig",
    "Objective",
    "ResultRow",
    "StudyProfile",
    "StudyResult",
    "TrainConfig",
    "build_decoder",
    "classifier_scores",
    "decode_bitstream",
    "encode_bitstream",
    "estimate_w1",
    "get_profile",
    "pack_symbols",
    "receive",
    "run_study",
    "shared_dither",
    "train_classifier",
    "train_codec",
    "transmit",
    "unpack_symbols",
]
