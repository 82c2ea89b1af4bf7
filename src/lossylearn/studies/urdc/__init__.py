"""Universal rate-distortion-classification/perception representations on MNIST.

One encoder at a fixed rate, many decoders: the sender stores one bitstream (a dithered L-level
quantizer with shared randomness, ``d log2 L`` bits per image, see :mod:`.quantizer` for the
bitstream contract), and each receiver decodes it for its own need (lowest MSE, best classification
by a fixed classifier, most realistic images).

Modules: :mod:`.models` (encoder, decoders, critic; the classifier is :class:`lossylearn.learn.LeNet`),
:mod:`.quantizer`, :mod:`.train` (the codecs' loop; the classifier trains with
:func:`lossylearn.learn.train_classifier`), :mod:`.metrics`, :mod:`.profiles`, :mod:`.results`,
:mod:`.study` (the driver, results.json) and :mod:`.report` (figures, HTML). The command line is
``lossylearn study urdc``.
"""

from __future__ import annotations

from lossylearn.studies.common import lazy_exports

# Names load on first use, so importing the CLI (``lossylearn --help``) does not import torch.
_HOME = {
    "CodecMetrics": "metrics", "classifier_scores": "metrics", "estimate_w1": "metrics", "receive": "metrics", "transmit": "metrics",
    "CLASSIFIER": "models", "ConvDecoder": "models", "Critic": "models", "Encoder": "models", "MLPDecoder": "models", "NetConfig": "models", "build_decoder": "models",
    "BitstreamHeader": "quantizer", "BitstreamSize": "quantizer", "DitheredQuantizer": "quantizer", "decode_bitstream": "quantizer", "encode_bitstream": "quantizer", "pack_symbols": "quantizer", "shared_dither": "quantizer", "unpack_symbols": "quantizer",
    "PROFILES": "study", "ResultRow": "study", "StudyProfile": "study", "StudyResult": "study", "get_profile": "study", "run_study": "study",
    "Head": "train", "Objective": "train", "UrdcTrainConfig": "train", "train_codec": "train",
}  # fmt: skip

__all__ = sorted(_HOME)
__getattr__ = lazy_exports(__name__, _HOME)
