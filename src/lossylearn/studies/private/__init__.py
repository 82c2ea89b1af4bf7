"""``lossylearn study private``: accuracy of classifiers trained only on per-image-private records
(universal latents with latent noise and matched quantization, the same without quantization,
and pixel LCoN), against per-image epsilon, with labels in the clear or through randomized
response. Modules: :mod:`.profiles`, :mod:`.run` (the driver, results.json), :mod:`.report`.
"""

from __future__ import annotations

from lossylearn.studies.common import lazy_exports

_HOME = {"PROFILES": "profiles", "StudyProfile": "profiles", "get_profile": "profiles",
         "run_private_study": "run"}  # fmt: skip

__all__ = sorted(_HOME)
__getattr__ = lazy_exports(__name__, _HOME)
