"""``lossylearn export``: a store's images as standard files, one sub-folder per class, or as a
Hugging Face datasets folder (``hf``) or WebDataset tar shards (``webdataset``): see
:mod:`lossylearn.export_hf` for those two.

Folder names (:func:`class_folders`), one per label that occurs in the store:

1. the label's name is ``dataset.classes[label]`` from the manifest, or the label number when the
   manifest names no class for it;
2. the name is made a safe single path component: Unicode NFC, cut to 64 characters, then every
   character that is not a letter, a digit, ``-``, ``_``, or a ``.`` between two characters becomes
   ``_``; an empty result becomes ``_``. So ``..`` -> ``__``, ``a/b`` -> ``a_b``, ``.x`` -> ``_x``:
   no name is ``.``, ``..``, hidden, empty, or holds a separator;
3. labels whose step-2 names are equal ignoring case (``x?y`` and ``x!y`` both give ``x_y``; ``Cat``
   and ``cat`` on a case-insensitive disk), or equal to the reserved ``labels.json``, all get
   ``<name>+<label>`` instead (``x_y+1``, ``x_y+2``). Step 2 never yields a ``+``, so these can
   meet neither each other nor a kept name: every label has its own folder.

``DEST/labels.json`` maps every label to its class name, folder and image count, so nothing of
the original names is lost.

Every format is written into a temporary folder, ``.DEST.partial-XXXX`` next to ``DEST`` (or
``DEST/.export.partial-XXXX`` when ``DEST`` is an existing empty folder), and renamed into place
only once every file is written: an export that fails leaves nothing behind (only the temporary
folder, and parent folders the export itself created, are removed) and says which image failed and
why.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lossylearn.errors import LossylearnError, StoreError
from lossylearn.store import open_store
from lossylearn.store.reader import Store

__all__ = [
    "FORMATS",
    "LABELS_FILE",
    "Cursor",
    "class_folders",
    "encoded_image",
    "export_store",
    "store_classes",
]

FORMATS = ("jpeg", "png", "native", "hf", "webdataset")
LABELS_FILE = "labels.json"
MAX_NAME = 64


def _sanitize(name: str) -> str:
    """Step 2 of the folder rule (module docstring): a safe single path component, never '+'."""
    name = unicodedata.normalize("NFC", name)[:MAX_NAME]
    last = len(name) - 1
    out = "".join(
        ch if ch.isalnum() or ch in "-_" or (ch == "." and 0 < i < last) else "_"
        for i, ch in enumerate(name)
    )
    return out or "_"


def class_folders(classes: Sequence[str], labels: Iterable[int]) -> dict[int, str]:
    """The export folder name of every distinct label in ``labels`` (rule: module docstring).

    ``classes[label]`` names a label in ``0 .. len(classes) - 1``; other labels are named by their
    number. The result is deterministic, each name is one safe path component, and no two labels
    share a name, even ignoring case.
    """
    wanted = sorted({int(v) for v in labels})
    base = {
        lab: _sanitize(str(classes[lab]) if 0 <= lab < len(classes) else str(lab)) for lab in wanted
    }
    seen = Counter(name.casefold() for name in base.values())
    seen[LABELS_FILE.casefold()] += 1  # reserved for the mapping file
    return {
        lab: name if seen[name.casefold()] == 1 else f"{name}+{lab}" for lab, name in base.items()
    }


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else "") or type(err).__name__


def _check_dest(dest: Path) -> None:
    try:
        if dest.is_symlink() and not dest.exists():
            raise StoreError(f"{dest}: is a broken symbolic link")
        if not dest.exists():
            return
        if not dest.is_dir():
            raise StoreError(f"{dest}: exists and is not a folder; choose a new or empty folder")
        if any(dest.iterdir()):
            raise StoreError(
                f"{dest}: folder exists and is not empty; choose a new or empty folder"
            )
    except OSError as err:
        raise StoreError(
            f"{dest}: cannot be used as the export folder: {_first_line(err)}"
        ) from None


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; returns those created, deepest first."""
    created: list[Path] = []
    p = folder
    while not p.exists() and p != p.parent:
        created.append(p)
        p = p.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _remove_empty(created)
        raise StoreError(f"{folder}: cannot create the folder: {_first_line(err)}") from None
    return created


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove_empty(folders: list[Path]) -> None:
    for p in folders:  # deepest first; only folders this export created, only if still empty
        try:
            p.rmdir()
        except OSError:
            break


def _move_into_place(tmp: Path, target: Path, existed: bool, shown: Path) -> None:
    """Rename the finished export to ``target`` (or its entries into the empty ``target``)."""
    try:
        if not existed:
            os.rename(tmp, target)
            return
        moved: list[str] = []
        try:
            for entry in sorted(tmp.iterdir()):
                if (target / entry.name).exists() or (target / entry.name).is_symlink():
                    raise FileExistsError(f"{entry.name} appeared in the folder meanwhile")
                os.rename(entry, target / entry.name)
                moved.append(entry.name)
        except BaseException:
            for name in reversed(moved):  # put back what was already moved: all or nothing
                os.rename(target / name, tmp / name)
            raise
        tmp.rmdir()
    except OSError as err:
        raise StoreError(
            f"{shown}: cannot move the finished export into place: {_first_line(err)}"
        ) from None


@dataclass
class Cursor:
    """The image a writer is at (``-1``: none), for the error message of a failed export."""

    i: int = -1


def store_classes(store: Store) -> list[str]:
    """The manifest's class names (``dataset.classes``), as strings; empty when it names none."""
    raw = store.manifest.dataset.get("classes") or []
    return [str(c) for c in raw] if isinstance(raw, list) else []


def png_bytes(image: np.ndarray) -> bytes:
    """A lossless PNG of a uint8 (H, W, C) image (grey when C == 1)."""
    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


def encoded_image(store: Store, i: int, fmt: str) -> tuple[bytes, str]:
    """Image ``i`` as a standard file and its extension.

    ``png``: a lossless PNG of the decoded reconstruction; ``jpeg``/``native``: the codec's own
    file (for JPEG the stored bytes with the tables put back: no second loss); ``hf`` and
    ``webdataset``: the JPEG file for a JPEG store, else the PNG (formats every loader decodes).
    """
    if fmt in ("hf", "webdataset"):
        fmt = "jpeg" if store.codec.name == "jpeg" else "png"
    if fmt == "png":
        return png_bytes(store[i][0]), ".png"
    return store.container(i), store.codec.extension


def _write_folders(store: Store, tmp: Path, fmt: str, cursor: Cursor) -> None:
    """The folder formats: ``tmp/<folder>/<index>.<ext>`` and ``tmp/labels.json``."""
    classes = store_classes(store)
    labels = [int(v) for v in store.labels]
    folders = class_folders(classes, labels)
    for folder in folders.values():
        (tmp / folder).mkdir()
    for i in range(len(store)):
        cursor.i = i
        data, ext = encoded_image(store, i, fmt)
        path = tmp / folders[labels[i]] / f"{int(store.indices[i]):07d}{ext}"
        with open(path, "xb") as fh:  # "x": two images with one source index are an error
            fh.write(data)
    cursor.i = -1
    counts = Counter(labels)
    mapping = {
        "format": fmt,
        "codec": store.codec.name,
        "images": len(labels),
        "folder_rule": "see lossylearn.export (safe single component; clashes get +<label>)",
        "labels": [
            {
                "label": lab,
                "class": classes[lab] if 0 <= lab < len(classes) else None,
                "folder": folder,
                "images": counts[lab],
            }
            for lab, folder in folders.items()
        ],
    }
    (tmp / LABELS_FILE).write_text(json.dumps(mapping, indent=2) + "\n", encoding="utf-8")


def export_store(
    directory: str | Path,
    dest: str | Path,
    *,
    fmt: str = "png",
    codec_checkpoint: str | Path | None = None,
    key: bytes | None = None,
) -> int:
    """Write every image of the store at ``directory`` into ``dest`` in format ``fmt``.

    Folder formats write ``dest/<folder>/<index>.<ext>``: ``jpeg`` writes a JPEG store's own coded
    bytes as complete files (tables put back: no second generation of loss) and refuses other
    codecs; ``png`` writes lossless copies of the decoded reconstructions; ``native`` writes each
    codec's standard container. ``<folder>`` follows the rule in the module docstring;
    ``dest/labels.json`` maps labels to class names and folders. ``hf`` writes a Hugging Face
    datasets folder and ``webdataset`` tar shards (:mod:`lossylearn.export_hf`).
    ``dest`` must be absent or an empty folder. All or nothing: files go to a temporary folder
    renamed into place at the end, and a failure removes it and raises
    :class:`~lossylearn.errors.StoreError` naming the image. Returns the image count.
    """
    if fmt not in FORMATS:
        raise StoreError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    store = open_store(directory, codec_checkpoint=codec_checkpoint, key=key)
    if fmt == "jpeg" and store.codec.name != "jpeg":
        raise StoreError(
            f"{directory} holds {store.codec.name} images; exporting them as JPEG would add a "
            "second loss. Use --format png (lossless) or --format native"
        )
    cursor = Cursor()
    if fmt in ("hf", "webdataset"):
        from lossylearn import export_hf

        write = export_hf.write_hf if fmt == "hf" else export_hf.write_webdataset

        def writer(tmp: Path) -> None:
            write(store, tmp, cursor)
    else:

        def writer(tmp: Path) -> None:
            _write_folders(store, tmp, fmt, cursor)

    staged_write(dest, writer, cursor, store)
    return len(store)


def staged_write(
    dest: str | Path, writer: Callable[[Path], None], cursor: Cursor, store: Store
) -> None:
    """Run ``writer(tmp)`` on a fresh temporary folder and move what it wrote to ``dest``.

    ``dest`` must be absent or an empty folder. All or nothing: on any failure the temporary
    folder (and parent folders created for ``dest``) are removed, and the error is raised as a
    one-line StoreError naming image ``cursor.i`` when the writer was at one.
    """
    shown = Path(dest)
    _check_dest(shown)
    try:
        target_dir = shown.resolve()  # a symlink to an empty folder: write where it points
    except (OSError, RuntimeError) as err:
        raise StoreError(f"{shown}: cannot be resolved: {_first_line(err)}") from None
    if target_dir == target_dir.parent:
        raise StoreError(f"{shown}: cannot export into the file-system root")
    existed = target_dir.is_dir()  # empty (checked above): keep it, fill it at the end
    created = [] if existed else _make_parents(target_dir.parent)
    try:
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{target_dir.name}.partial-", dir=target_dir.parent)
            if not existed
            else tempfile.mkdtemp(prefix=".export.partial-", dir=target_dir)
        )
    except OSError as err:
        _remove_empty(created)
        raise StoreError(f"{shown}: cannot create a temporary folder: {_first_line(err)}") from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; DEST gets the usual mode
        writer(tmp)
        cursor.i = -1
        _move_into_place(tmp, target_dir, existed, shown)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        if not isinstance(err, Exception):
            raise  # KeyboardInterrupt and the like: cleaned up, passed on
        i = cursor.i
        if i >= 0:
            raise StoreError(
                f"export to {shown} failed at image {i} of {len(store)} (source index "
                f"{int(store.indices[i])}, label {int(store.labels[i])}): {_first_line(err)}; "
                "nothing was written"
            ) from err
        if isinstance(err, LossylearnError):
            raise
        raise StoreError(
            f"export to {shown} failed: {_first_line(err)}; nothing was written"
        ) from err
