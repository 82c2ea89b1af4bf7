"""Audits of a store, run by the data owner: what a released store leaks about its individuals.

* :mod:`.linkage`: re-identification (nearest neighbour, denoised, exact likelihood, learned
  features) of each stored image in a clean pool; :mod:`.features` the attacker's feature model;
* :mod:`.membership`: a loss-threshold membership inference attack on a model trained on the store;
* :mod:`.bound`: an upper bound on I(clean; stored) per pixel;
* :mod:`.pool`: the clean data (reloaded and fingerprint-checked) and the distractors;
* :mod:`.run`: :func:`audit` (a store folder) and :func:`audit_store` (an opened store and a
  :class:`CleanPool`); :mod:`.report`: audit.json, figures, audit.html.

Names load on first use, so importing this package does not import torch.
"""

from __future__ import annotations

from lossylearn.studies.common import lazy_exports

_HOME = {
    "ATTACKS": "run", "AuditConfig": "run", "AuditResult": "run", "audit": "run",
    "audit_store": "run", "read_link": "link", "CleanPool": "pool",
    "clean_pool_for_store": "pool", "leakage_bound": "bound", "LeakageBound": "bound",
}  # fmt: skip

__all__ = sorted(_HOME)
__getattr__ = lazy_exports(__name__, _HOME)
