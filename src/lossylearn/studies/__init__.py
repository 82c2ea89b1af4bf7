"""Experiment drivers: the LCoN study (paper section VI-A), its results, figures and report.

Names load on first use, so ``lossylearn --help`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {
    "CodedSizes": "calibration", "SchemeBudget": "calibration", "calibrate_storage": "calibration",
    "largest_prefix": "calibration", "Claim": "claims", "check_claims": "claims",
    "CodecTrainingConfig": "codec_training", "matched_checkpoint": "codec_training",
    "LAPLACE_PSNRS": "lcon", "PAPER_PSNRS": "lcon", "PROFILES": "lcon", "StudyConfig": "lcon", "StudyResult": "lcon",
    "profile_config": "lcon", "run_lcon_study": "lcon", "SCHEMES": "results", "TEST_SETS": "results",
    "ResultRow": "results", "SummaryRow": "results", "summarize": "results",
}  # fmt: skip

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
