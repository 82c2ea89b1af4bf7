"""Test-session settings: one BLAS/OpenMP thread per process.

The suite runs on 2-core machines where threaded BLAS and torch intra-op pools oversubscribe the
cores (measured here: the same solver 15-250x slower with threaded OpenBLAS). Set before numpy or
torch is imported by any test module; an explicit value in the environment wins.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
