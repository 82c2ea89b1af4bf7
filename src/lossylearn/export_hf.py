"""Export a store for the Hugging Face ``datasets`` library and for WebDataset loaders.

``lossylearn export DIR DEST --format hf`` writes what ``datasets.load_dataset(DEST)`` (or
``load_dataset("parquet", data_dir=DEST)``) reads with no lossylearn installed::

    DEST/README.md                               dataset card: YAML header (dataset_info, configs)
                                                 + privacy statement and manifest summary
    DEST/data/<split>-00000-of-0000N.parquet     columns image, label, source_index

``image`` is the struct ``{bytes: binary, path: string}`` that ``datasets.Image`` decodes: a JPEG
store's own bytes with its tables put back (no second loss), a lossless PNG for other codecs.
``label`` is an int64 whose feature is a ``ClassLabel`` with the store's class names; the features
are in each file's Arrow schema metadata under ``huggingface`` (what ``datasets`` itself writes)
and in the card. ``<split>`` is the manifest's ``dataset.split`` (``train`` by default). Files hold
row groups of 100 images and close at about :data:`SHARD_BYTES`.

``--format webdataset`` writes ``DEST/<split>-000000.tar`` ... : per image ``<key>.jpg`` (or
``.png``), ``<key>.cls`` (the label in ASCII) and ``<key>.json`` (label, class name, source
index), ``<key>`` the 7-digit source index; plus ``labels.json`` and the same card.

Both are written by :func:`lossylearn.export.export_store` into a temporary folder renamed into
place at the end (all or nothing). The schema metadata and the card are written here by hand, so
an export needs neither ``datasets`` nor ``webdataset``; the tests load the result with both.
Every string in the card's YAML header is a double-quoted scalar with escapes (:func:`yaml_str`),
so no class name can break the header.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lossylearn.errors import LossylearnError, StoreError
from lossylearn.export import LABELS_FILE, Cursor, encoded_image, store_classes
from lossylearn.store.reader import Store

__all__ = [
    "SHARD_BYTES",
    "class_names",
    "dataset_card",
    "hf_dataset",
    "hf_features",
    "write_hf",
    "write_webdataset",
    "yaml_str",
]

SHARD_BYTES = 256 << 20
"""A data file (Parquet or tar) is closed once it holds about this many image bytes."""
ROW_GROUP = 100
"""Images per Parquet row group (what ``datasets`` uses for image datasets)."""
_SPLIT = re.compile(r"^\w+(\.\w+)*$")


# ---------------------------------------------------------------------------------------------
# the data files
# ---------------------------------------------------------------------------------------------
def class_names(store: Store) -> list[str]:
    """One unique name per label ``0 .. max label``: the manifest's class name, else the label
    number; a name that occurs twice gets ``+<label>`` (``ClassLabel`` needs unique names)."""
    labels = [int(v) for v in store.labels]
    if labels and min(labels) < 0:
        raise StoreError("a ClassLabel needs labels >= 0; this store has negative labels")
    classes = store_classes(store)
    n = max([len(classes), *(lab + 1 for lab in labels)]) if labels or classes else 0
    base = [classes[i] if i < len(classes) else str(i) for i in range(n)]
    seen = Counter(base)
    return [name if seen[name] == 1 else f"{name}+{i}" for i, name in enumerate(base)]


def hf_features(names: list[str]) -> dict[str, Any]:
    """The ``datasets.Features`` dict of an export (image, label, source_index)."""
    return {
        "image": {"_type": "Image"},
        "label": {"names": names, "_type": "ClassLabel"},
        "source_index": {"dtype": "int64", "_type": "Value"},
    }


def _split(store: Store) -> str:
    split = str(store.manifest.dataset.get("split") or "train")
    return split if _SPLIT.match(split) else "train"


def _schema(names: list[str]) -> pa.Schema:
    meta = {"info": {"features": hf_features(names)}}
    return pa.schema(
        [
            ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            ("label", pa.int64()),
            ("source_index", pa.int64()),
        ],
        metadata={"huggingface": json.dumps(meta)},
    )


def _samples(store: Store, cursor: Cursor) -> Iterator[tuple[bytes, str, int, int]]:
    """(file bytes, file name, label, source index) per image; refuses a repeated index."""
    seen: set[int] = set()
    for i in range(len(store)):
        cursor.i = i
        index = int(store.indices[i])
        if index in seen:
            raise StoreError(f"two images have source index {index}")
        seen.add(index)
        data, ext = encoded_image(store, i, "hf")
        yield data, f"{index:07d}{ext}", int(store.labels[i]), index
    cursor.i = -1


def _finish_names(parts: list[Path], stem: str, suffix: str, width: int) -> list[Path]:
    """Rename ``parts`` to ``<stem>-<k>-of-<n>`` (Parquet, HF's names) or ``<stem>-<k>`` (tar)."""
    final = []
    for k, part in enumerate(parts):
        tail = f"-{k:0{width}d}-of-{len(parts):0{width}d}" if suffix == ".parquet" else f"-{k:06d}"
        target = part.with_name(f"{stem}{tail}{suffix}")
        part.rename(target)
        final.append(target)
    return final


def _record_batch(rows: list[tuple[bytes, str, int, int]], schema: pa.Schema) -> pa.RecordBatch:
    images = [{"bytes": d, "path": name} for d, name, _, _ in rows]
    return pa.record_batch(
        [
            pa.array(images, type=schema.field("image").type),
            pa.array([lab for *_, lab, _ in rows], type=pa.int64()),
            pa.array([idx for *_, idx in rows], type=pa.int64()),
        ],
        schema=schema,
    )


def write_hf(store: Store, tmp: Path, cursor: Cursor) -> None:
    """The Hugging Face folder (module docstring) inside ``tmp``."""
    names, split = class_names(store), _split(store)
    schema = _schema(names)
    (tmp / "data").mkdir()
    parts: list[Path] = []
    writer: pq.ParquetWriter | None = None
    rows: list[tuple[bytes, str, int, int]] = []
    in_file = 0

    def flush() -> None:
        nonlocal writer
        if not rows:
            return
        if writer is None:
            parts.append(tmp / "data" / f".part{len(parts):05d}")
            writer = pq.ParquetWriter(parts[-1], schema)
        writer.write_batch(_record_batch(rows, schema))
        rows.clear()

    for sample in _samples(store, cursor):
        rows.append(sample)
        in_file += len(sample[0])
        if len(rows) == ROW_GROUP or in_file >= SHARD_BYTES:
            flush()
        if in_file >= SHARD_BYTES and writer is not None:
            writer.close()
            writer, in_file = None, 0
    flush()
    if writer is not None:
        writer.close()
    if not parts:  # an empty store still gets one (empty) file, so the split exists
        parts.append(tmp / "data" / ".part00000")
        pq.write_table(schema.empty_table(), parts[-1])
    files = _finish_names(parts, split, ".parquet", 5)
    card = dataset_card(store, "hf", split, names, sum(f.stat().st_size for f in files))
    (tmp / "README.md").write_text(card, encoding="utf-8")


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def write_webdataset(store: Store, tmp: Path, cursor: Cursor) -> None:
    """WebDataset tar shards (module docstring) inside ``tmp``."""
    names, split = class_names(store), _split(store)
    parts: list[Path] = []
    tar: tarfile.TarFile | None = None
    in_file = 0
    try:
        for data, name, label, index in _samples(store, cursor):
            if tar is None:
                parts.append(tmp / f".part{len(parts):06d}")
                tar = tarfile.open(parts[-1], "w", format=tarfile.PAX_FORMAT)
            key, ext = name.split(".", 1)
            meta = {"label": label, "class": names[label], "source_index": index}
            _tar_add(tar, name, data)
            _tar_add(tar, f"{key}.cls", str(label).encode())
            _tar_add(tar, f"{key}.json", json.dumps(meta, ensure_ascii=False).encode())
            in_file += len(data)
            if in_file >= SHARD_BYTES:
                tar.close()
                tar, in_file = None, 0
    finally:
        if tar is not None:
            tar.close()
    files = _finish_names(parts, split, ".tar", 6)
    labels = {"classes": names, "split": split, "shards": [f.name for f in files]}
    (tmp / LABELS_FILE).write_text(json.dumps(labels, indent=2) + "\n", encoding="utf-8")
    card = dataset_card(store, "webdataset", split, names, sum(f.stat().st_size for f in files))
    (tmp / "README.md").write_text(card, encoding="utf-8")


def hf_dataset(store: Store) -> Any:
    """The store as an in-memory ``datasets.Dataset`` (same columns and features as ``hf``)."""
    try:
        import datasets
    except ImportError:
        raise LossylearnError(
            "to_hf_dataset() needs the Hugging Face datasets library: pip install datasets "
            "(or export with `lossylearn export DIR DEST --format hf`, which needs nothing)"
        ) from None
    names = class_names(store)
    schema = _schema(names)
    rows = list(_samples(store, Cursor()))
    table = pa.Table.from_batches([_record_batch(rows, schema)] if rows else [], schema=schema)
    info = datasets.DatasetInfo(
        description=f"lossylearn store of {store.manifest.dataset.get('name', '?')}",
        features=datasets.Features.from_dict(hf_features(names)),
    )
    return datasets.Dataset(
        datasets.table.InMemoryTable(table), info=info, split=datasets.NamedSplit(_split(store))
    )


# ---------------------------------------------------------------------------------------------
# the dataset card (README.md): YAML header as the Hub reads it, privacy statement, manifest
# ---------------------------------------------------------------------------------------------
_YAML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _printable(ch: str) -> bool:
    """Characters YAML allows unescaped inside a double-quoted scalar (no line breaks)."""
    o = ord(ch)
    if o in (0x85, 0x2028, 0x2029, 0xFEFF):  # line breaks and the byte-order mark
        return False
    return 0x20 <= o <= 0x7E or 0xA0 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or o >= 0x10000


def yaml_str(text: str) -> str:
    """``text`` as a YAML double-quoted scalar that reads back as exactly ``text``."""
    out = []
    for ch in text:
        if ch in _YAML_ESCAPES:
            out.append(_YAML_ESCAPES[ch])
        elif _printable(ch):
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _md(text: object) -> str:
    """One Markdown table cell: no line breaks, ``|`` escaped."""
    return " ".join(str(text).split()).replace("|", "\\|") or " "


def _header(fmt: str, split: str, names: list[str], n: int, data_bytes: int) -> list[str]:
    lines = ["---", "tags:", "- lossylearn", "- differential-privacy", "task_categories:"]
    lines += ["- image-classification"]
    if fmt == "hf":
        lines += ["dataset_info:", "  features:", "  - name: image", "    dtype: image"]
        lines += ["  - name: label", "    dtype:", "      class_label:", "        names:"]
        lines += [f"          '{i}': {yaml_str(name)}" for i, name in enumerate(names)]
        lines += ["  - name: source_index", "    dtype: int64", "  splits:"]
        lines += [f"  - name: {split}", f"    num_bytes: {data_bytes}", f"    num_examples: {n}"]
        lines += [f"  download_size: {data_bytes}", f"  dataset_size: {data_bytes}"]
        pattern = f"data/{split}-*"
    else:
        pattern = f"{split}-*.tar"
    lines += ["configs:", "- config_name: default", "  data_files:", f"  - split: {split}"]
    lines += [f"    path: {pattern}", "---", ""]
    return lines


def _privacy(privacy: dict[str, Any]) -> list[str]:
    lines = ["## Privacy", "", str(privacy.get("statement", "")).strip(), ""]
    if privacy.get("guarantee") is True:
        for key in ("mechanism", "epsilon", "delta", "unit", "sensitivity", "norm", "randomness"):
            if key in privacy:
                lines.append(f"- {key}: {privacy[key]}")
    else:
        lines.append("- guarantee: none (seeded noise)")
        lines.append(f"- mechanism: {privacy.get('mechanism', '?')}")
    lines += [f"- not covered: {item}" for item in privacy.get("not_covered", [])]
    return [*lines, ""]


def _summary(store: Store) -> list[str]:
    m = store.manifest
    noise, codec, stats = m.noise, m.codec, m.stats
    scale = "sigma" if noise.get("kind") == "gaussian" else "b"
    rows = [
        ("images", m.n_images),
        ("image shape (H, W, C)", list(m.image_shape)),
        ("dataset", f"{m.dataset.get('name', '?')} ({m.dataset.get('split', '?')} split)"),
        ("dataset source", m.dataset.get("source", "?")),
        (
            "noise",
            f"{noise.get('kind')} {scale} {noise.get(scale)}, discrete: {noise.get('discrete')}",
        ),
        ("noise sampler", noise.get("sampler", "?")),
        ("range handling", noise.get("range_handling", "?")),
        ("codec", f"{codec.get('name')} (qualities {codec.get('qualities')})"),
        ("codec target", f"{codec.get('target_metric')} {codec.get('target_distortion')}"),
        ("codec achieved (to the noisy images)", codec.get("achieved_distortion")),
        ("stored bits per pixel", stats.bits_per_pixel),
        ("lossylearn", m.run.get("lossylearn", "?")),
        ("store format", m.format),
        ("manifest sha256", m.integrity.get("sha256", "?")),
    ]
    lines = ["## Manifest summary", "", "| field | value |", "| --- | --- |"]
    return [*lines, *(f"| {_md(k)} | {_md(v)} |" for k, v in rows), ""]


def dataset_card(store: Store, fmt: str, split: str, names: list[str], data_bytes: int) -> str:
    """The README.md of an export in ``fmt`` (``hf`` or ``webdataset``)."""
    m = store.manifest
    n = m.n_images
    lines = _header(fmt, split, names, n, data_bytes)
    title = f"{m.dataset.get('name', 'dataset')}: noisy and compressed by lossylearn"
    lines += [f"# {_md(title)}", ""]
    lines += [
        "Each image is a noisy copy of a source image (noise calibrated as stated below), then "
        f"coded with {m.codec.get('name')} at a distortion matched to the noise (the LCoN method "
        "of Isik & Weissman). Labels are the source labels, stored in the clear.",
        "",
        "## Load",
        "",
    ]
    if fmt == "hf":
        lines += ["```python", "from datasets import load_dataset", "",
                  'ds = load_dataset("path/to/this/folder")  # or load_dataset("parquet", '
                  'data_dir="path/to/this/folder")',
                  f'image, label = ds["{split}"][0]["image"], ds["{split}"][0]["label"]', "```"]  # fmt: skip
    else:
        lines += ["```python", "import webdataset as wds", "",
                  f'ds = wds.WebDataset("path/to/this/folder/{split}-{{000000..NNNNNN}}.tar")'
                  '.decode("pil").to_tuple("jpg;png", "cls")', "```",
                  "", "Class names: `labels.json` (`classes`, indexed by label)."]  # fmt: skip
    lines += ["", *_privacy(m.privacy), *_summary(store)]
    counts = Counter(int(v) for v in store.labels)
    lines += ["## Classes", "", "| label | class | images |", "| --- | --- | --- |"]
    lines += [f"| {i} | {_md(name)} | {counts.get(i, 0)} |" for i, name in enumerate(names)]
    lines += ["", "Full manifest, as the store holds it:", "", "```json"]
    brief = {k: v for k, v in m.to_dict().items() if k not in ("files", "shards")}
    lines += [json.dumps(brief, indent=1, sort_keys=True, ensure_ascii=False), "```", ""]
    return "\n".join(lines)
