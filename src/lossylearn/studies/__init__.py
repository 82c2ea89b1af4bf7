"""Experiment drivers: the LCoN study (:mod:`.lcon`, paper section VI) and the URDC study
(:mod:`.urdc`).

Names load on first use, so ``lossylearn --help`` does not import torch.
"""

from __future__ import annotations

from lossylearn.studies.common import lazy_exports

_HOME = {
    "CodedSizes": "lcon.budget", "SchemeBudget": "lcon.budget",
    "calibrate_storage": "lcon.budget", "largest_prefix": "lcon.budget",
    "Claim": "lcon.claims", "check_claims": "lcon.claims", "fig3_claims": "lcon.claims",
    "CodecTrainingConfig": "lcon.codec_training", "matched_checkpoint": "lcon.codec_training",
    "LAPLACE_PSNRS": "lcon.config", "PAPER_PSNRS": "lcon.config", "PROFILES": "lcon.config",
    "StudyConfig": "lcon.config", "profile_config": "lcon.config",
    "StudyResult": "lcon.run", "run_lcon_study": "lcon.run",
    "SCHEMES": "lcon.results", "TEST_SETS": "lcon.results", "ResultRow": "lcon.results",
    "SummaryRow": "lcon.results", "summarize": "lcon.results",
}  # fmt: skip

__all__ = sorted(_HOME)
__getattr__ = lazy_exports(__name__, _HOME)
