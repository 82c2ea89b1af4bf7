"""User-facing errors.

Every problem a user can cause (bad files, bad parameters, an occupied output folder) raises a
:class:`LossylearnError`. The CLI prints its message on one line and exits non-zero; library users
catch it like any ``ValueError``.
"""

from __future__ import annotations


class LossylearnError(ValueError):
    """A problem with the user's input or files, described in one line."""


class DataError(LossylearnError):
    """A dataset is missing, truncated, or malformed."""


class PrivacyError(LossylearnError):
    """Privacy or noise parameters are impossible or inconsistent."""


class CodecError(LossylearnError):
    """A codec cannot encode or decode what it was given (corrupt or truncated bytes, bad shape)."""


class StoreError(LossylearnError):
    """A store is missing, incomplete, corrupt, or the output folder is not usable."""
