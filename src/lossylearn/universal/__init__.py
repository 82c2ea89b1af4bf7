"""Universal-representation stores: one public encoder, latents stored at d log2 L bits per image,
an optional per-image Gaussian mechanism in the latent (LCoN in the latent), and decoders chosen
when the store is read.

Modules: :mod:`.checkpoint` (``U/``: config.json, encoder, named decoders), :mod:`.train`
(``lossylearn universal train``, public data only), :mod:`.latent_noise` (clip, calibrated
Gaussian, matched grid), :mod:`.labels` (k-ary randomized response and per-record composition),
:mod:`.codec` (the ``universal`` codec and the batched latent code), :mod:`.store` (writing a
store: ``compress --codec universal``) and :mod:`.reader` (``open_store(DIR, decoder=NAME)``).
Built on :mod:`lossylearn.studies.urdc` (networks, quantizer, bitstream, training loop).
"""

from __future__ import annotations

from lossylearn.studies.common import lazy_exports

_HOME = {
    "UniversalCheckpoint": "checkpoint", "add_decoder": "checkpoint", "load_checkpoint": "checkpoint",
    "LatentMechanism": "latent_noise", "clip_l2": "latent_noise", "matched_grid": "latent_noise",
    "randomized_response": "labels", "record_guarantee": "labels",
    "UniversalCodec": "codec", "register": "codec",
    "UniversalRequest": "store", "compress_universal": "store",
    "UniversalStore": "reader",
    "PROFILES": "train", "train_universal": "train",
}  # fmt: skip

__all__ = sorted(_HOME)
__getattr__ = lazy_exports(__name__, _HOME)
