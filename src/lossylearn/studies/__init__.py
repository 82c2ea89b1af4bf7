"""Experiment drivers: the LCoN study (paper section VI-A), its results, figures and report."""

from __future__ import annotations

from .calibration import CodedSizes, SchemeBudget, calibrate_storage, largest_prefix
from .claims import Claim, check_claims
from .lcon import PAPER_PSNRS, PROFILES, StudyConfig, StudyResult, profile_config, run_lcon_study
from .results import SCHEMES, TEST_SETS, ResultRow, SummaryRow, summarize

__all__ = [
    "PAPER_PSNRS",
    "PROFILES",
    "SCHEMES",
    "TEST_SETS",
    "Claim",
    "CodedSizes",
    "ResultRow",
    "SchemeBudget",
    "StudyConfig",
    "StudyResult",
    "SummaryRow",
    "calibrate_storage",
    "check_claims",
    "largest_prefix",
    "profile_config",
    "run_lcon_study",
    "summarize",
]
