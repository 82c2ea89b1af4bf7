"""The privacy study (``lossylearn study privacy``): :mod:`lossylearn.audit` across the noise grid.

For each variant (Gaussian noise + JPEG at the nominal or effective target, Laplace noise + the
learned codec) the study runs the LCoN study's pipeline without its Fig. 3 sweep, makes the png
store of the same noisy images at every PSNR, and audits both stores (re-identification in a pool
of clean images, the leakage bound, membership inference at two PSNRs); the clean images are the
upper reference. It tests "compression makes individuals less re-identifiable than noise alone".

Commands and what they cost (one busy CPU core):

* ``lossylearn study privacy --profile quick --out D``: embedded MNIST, the LCoN quick profile
  (1,000 training digits, PSNR 10.1 / 16.1 / 22.1, JPEG nominal), pool of 2,000, membership at
  10.1 and 22.1 dB: about 2 minutes.
* ``lossylearn study privacy --profile paper --data-dir shared/data/mnist --out D``: 5,000
  training digits, the paper's 7 PSNRs for JPEG (nominal and effective) and Fig. 4's 5 for the
  learned codec under Laplace noise, every image in the pool (15,000 with the official test set),
  membership at 8.1 and 22.1 dB. ``--variants jpeg-nominal`` keeps one family.

Names load on first use, so importing this package does not import torch.
"""

from __future__ import annotations

from lossylearn.studies.common import lazy_exports

_HOME = {
    "PrivacyConfig": "config", "privacy_config": "config", "VARIANTS": "config",
    "PrivacyResult": "run", "run_privacy_study": "run",
}  # fmt: skip

__all__ = sorted(_HOME)
__getattr__ = lazy_exports(__name__, _HOME)
