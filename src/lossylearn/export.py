"""``lossylearn export``: a store's images as standard files, one sub-folder per class."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from lossylearn.errors import StoreError
from lossylearn.store import open_store

FORMATS = ("jpeg", "png", "native")


def export_store(directory: str | Path, dest: str | Path, *, fmt: str = "png") -> int:
    """Write every image of the store at ``directory`` under ``dest/<class>/<index>.<ext>``.

    ``jpeg`` writes a JPEG store's own coded bytes as complete files (tables put back: no second
    generation of loss) and refuses other codecs; ``png`` writes lossless copies of the decoded
    reconstructions; ``native`` writes each codec's standard container. Returns the file count.
    """
    if fmt not in FORMATS:
        raise StoreError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    store = open_store(directory)
    codec = store.codec
    if fmt == "jpeg" and codec.name != "jpeg":
        raise StoreError(
            f"{directory} holds {codec.name} images; exporting them as JPEG would add a second loss. "
            "Use --format png (lossless) or --format native"
        )
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise StoreError(f"{dest}: folder exists and is not empty")
    classes = store.manifest.dataset.get("classes") or []
    ext = ".png" if fmt == "png" else codec.extension
    for i in range(len(store)):
        label = int(store.labels[i])
        name = classes[label] if label < len(classes) else str(label)
        folder = dest / _safe(name)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{int(store.indices[i]):07d}{ext}"
        if fmt == "png":
            image, _ = store[i]
            buf = io.BytesIO()
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
                buf, format="PNG"
            )
            target.write_bytes(buf.getvalue())
        else:
            target.write_bytes(store.container(i))
    return len(store)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "_"
