"""Small guards for untrusted dataset files: one-line quoting of names, plain file names, sizes."""

from __future__ import annotations

import numpy as np

from lossylearn.errors import DataError

__all__ = [
    "MAX_IMAGE_SIZE",
    "check_image_size",
    "check_plain_name",
    "decode_text",
    "is_printable_name",
    "quote",
    "show_path",
]

#: Largest side length accepted for ``image_size`` (and ``resize``).
MAX_IMAGE_SIZE = 4096


def quote(text: object, limit: int = 80) -> str:
    """``repr`` of ``text`` cut to about ``limit`` characters: safe to embed in a one-line error.

    ``repr`` escapes newlines, control characters and the lone surrogates that stand for
    undecodable bytes in file names, so the message stays one printable line.
    """
    s = text if isinstance(text, str) else str(text)
    if len(s) > limit:
        return repr(s[:limit]) + f"... ({len(s):,} characters)"
    return repr(s)


def show_path(path: object) -> str:
    """``str(path)`` with newlines, control characters and undecodable bytes backslash-escaped.

    File names found in a dataset folder can hold anything but ``/`` and NUL; this keeps an
    error message that names one on a single printable, UTF-8-encodable line.
    """
    s = str(path)
    if is_printable_name(s):
        return s
    return "".join(
        c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else repr(c)[1:-1] for c in s
    )


def decode_text(raw: bytes, where: str, expected: str, *, column: bool = False) -> str:
    """``raw`` as UTF-8 text; a :class:`DataError` naming ``where`` and ending in ``expected``
    (what the file should be) for NUL bytes or invalid UTF-8, whose first bad byte is placed by
    its offset, or with ``column`` by its 1-based column."""
    if b"\x00" in raw:
        raise DataError(f"{where}: binary data (NUL bytes); {expected}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = f"column {exc.start + 1}" if column else f"offset {exc.start}"
        raise DataError(
            f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at {at}); {expected}"
        ) from None


def is_printable_name(name: str) -> bool:
    """Whether ``name`` is valid UTF-8 text (no surrogate escapes) free of control characters."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return name.isprintable()


def check_plain_name(name: str, where: str, folder: str) -> str:
    """Return ``name`` if it is a plain file name inside ``folder``; else raise :class:`DataError`.

    A plain name has no path separator (``/`` or ``\\``), is not ``.`` or ``..``, not absolute,
    has no drive (``C:``) and no NUL or control characters: joined to the folder it cannot point
    anywhere else. ``where`` (``file:line``) and ``folder`` only word the error.
    """
    bad = (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or (len(name) >= 2 and name[1] == ":" and name[0].isalpha())
        or not is_printable_name(name)
    )
    if bad:
        raise DataError(
            f"{where}: file name {quote(name)} is not a plain file name inside {folder} "
            "(no folders, '..', absolute paths or control characters); refusing to read it"
        )
    return name


def check_image_size(value: object, name: str = "image_size") -> int | None:
    """``None`` (keep the native size) or a side length in 1..:data:`MAX_IMAGE_SIZE`, as an int."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or not 1 <= value <= MAX_IMAGE_SIZE
    ):
        raise DataError(f"{name} must be an integer in 1..{MAX_IMAGE_SIZE} or None, got {value!r}")
    return int(value)
