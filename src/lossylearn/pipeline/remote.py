"""Compress into object storage (``s3://``, ``gs://``, any fsspec URL): stage locally, then upload.

``compress(out="s3://bucket/store", storage_options={...})`` runs the ordinary local run into a
staging folder (``$LOSSYLEARN_STAGING``, default ``~/.cache/lossylearn/staging``, one sub-folder per
URL) with its lock, run state and ``--resume``, then uploads: every shard and header to its final
key, then the owner file beside the store (``<url>.owner.json``, outside the store's prefix), then
``manifest.json`` last. Objects of an older store that the new manifest does not list are deleted
after the commit. A complete upload removes the staging folder.

What remains of the local guarantees on object storage, which has no rename and no lock:

- **Atomic commit**: each object is written whole (a reader sees the old object or the new one),
  and the manifest is written last and pins every shard and header by SHA-256. A store whose upload
  died looks incomplete (no manifest); rerun the command with ``--resume`` (same machine: the
  staged run is finished or re-uploaded) or ``--overwrite``. ``--overwrite`` deletes the old
  manifest before uploading anything, so readers never pair it with new shards.
- **Locking**: one run per URL per machine (the staging folder is locked). Two machines writing
  the same URL at once are not prevented; the last manifest wins, and a reader of a store whose
  shards were replaced under its manifest gets a checksum error, never mixed data.
- **Nothing of yours removed**: a prefix holding objects lossylearn does not write is refused, and
  only ``manifest.json``, ``shards/*.parquet`` and ``headers/*.bin`` under it are ever deleted.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from lossylearn.errors import StoreError
from lossylearn.pipeline.plan import CompressPlan
from lossylearn.pipeline.run_state import locked_output
from lossylearn.store.fs import connect, remote_url
from lossylearn.store.layout import HEADERS_DIR, MANIFEST, SHARDS_DIR
from lossylearn.store.manifest import Manifest
from lossylearn.store.owner import owner_path


def is_remote(out: str | Path) -> bool:
    """Whether ``out`` is a URL of a remote filesystem (not a local folder)."""
    return remote_url(out) is not None


def staging_dir(url: str) -> Path:
    """The local folder a run into ``url`` is staged in (holds ``store/`` and its owner file)."""
    base = os.environ.get("LOSSYLEARN_STAGING") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "lossylearn", "staging"
    )
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", url.split("://", 1)[-1])[-60:]
    return Path(base) / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{tail}"


def _is_store_key(rel: str) -> bool:
    parts = rel.split("/")
    return rel == MANIFEST or (
        len(parts) == 2
        and (parts[0], os.path.splitext(parts[1])[1])
        in ((SHARDS_DIR, ".parquet"), (HEADERS_DIR, ".bin"))
    )


def _entries(fs: Any, root: str) -> list[str]:
    """Relative keys of every object under ``root/``."""
    prefix = root + "/"
    fs.invalidate_cache(root)
    try:
        found = fs.find(root, withdirs=False)
    except FileNotFoundError:
        return []
    return sorted(p[len(prefix) :] for p in map(str, found) if p.startswith(prefix))


def compress_remote(
    plan: CompressPlan,
    run_local: Callable[[CompressPlan], Manifest],
    storage_options: dict[str, Any] | None = None,
) -> Manifest:
    """Run ``plan`` (whose ``out`` is a URL) through ``run_local`` into the staging folder, then
    upload the store; returns its manifest."""
    url = remote_url(plan.run.out)
    assert url is not None
    fs, root = connect(url, storage_options)
    bucketed = url.split("://", 1)[0] in ("s3", "s3a", "gs", "gcs", "az", "abfs", "oss")
    if not root.strip("/") or (bucketed and "/" not in root.strip("/")):
        raise StoreError(
            f"{url}: give a folder inside the bucket (s3://bucket/store), not a bucket"
        )
    staging = staging_dir(url)
    try:
        return _staged_run(plan, run_local, fs, root, url, staging)
    finally:  # a finished upload, or a run refused before any shard, leaves no staging folder
        if staging.is_dir() and not any(staging.iterdir()):
            staging.rmdir()


def _staged_run(
    plan: CompressPlan,
    run_local: Callable[[CompressPlan], Manifest],
    fs: Any,
    root: str,
    url: str,
    staging: Path,
) -> Manifest:
    staged = staging / "store"
    with locked_output(staging):
        existing = _entries(fs, root)
        foreign = [rel for rel in existing if not _is_store_key(rel)]
        if foreign:
            raise StoreError(
                f"{url}: holds other objects ({', '.join(foreign[:3])}); lossylearn writes only "
                "into an empty prefix or its own store, and never removes what it did not write"
            )
        pending = staged.exists() and any(staged.iterdir())
        if pending and not (plan.run.resume or plan.run.overwrite):
            raise StoreError(
                f"{url}: an earlier run into it did not finish (staged in {staged}); add --resume "
                "to finish it, or --overwrite to start again"
            )
        if MANIFEST in existing and not plan.run.overwrite and not (plan.run.resume and pending):
            raise StoreError(
                f"{url}: already holds a lossylearn store; choose another --out or pass --overwrite"
            )
        manifest = run_local(replace(plan, run=replace(plan.run, out=staged)))
        _upload(fs, root, staged, manifest, replacing=MANIFEST in existing)
        shutil.rmtree(staged)
        owner_path(staged).unlink(missing_ok=True)
    return manifest


def owner_url(url: str) -> str:
    """Where the owner file of the store at ``url`` goes: ``<url>.owner.json``, beside it."""
    return f"{url.rstrip('/')}.owner.json"


def _upload(fs: Any, root: str, staged: Path, manifest: Manifest, *, replacing: bool) -> None:
    if replacing:  # the old store stops looking complete before any of its objects changes
        fs.rm_file(f"{root}/{MANIFEST}")
    for rel, meta in sorted(manifest.files.items()):
        key = f"{root}/{rel}"
        fs.put_file(str(staged / rel), key)
        got = int(fs.info(key)["size"])
        if got != meta["bytes"]:
            raise StoreError(f"{key}: uploaded {got} bytes, the manifest says {meta['bytes']}")
    fs.put_file(str(owner_path(staged)), f"{root}.owner.json")
    fs.pipe_file(f"{root}/{MANIFEST}", (staged / MANIFEST).read_bytes())
    for rel in _entries(fs, root):  # what an older store left and the new manifest does not list
        if rel != MANIFEST and rel not in manifest.files and _is_store_key(rel):
            fs.rm_file(f"{root}/{rel}")
