"""The output folder of a run: refusing to clobber, remembering progress, and resuming.

While a run is under way the folder holds ``.lossylearn-run.json``: the run's fingerprint (a hash
of everything that decides the output), the chosen quality, and one record per finished shard.
``--resume`` accepts the folder only if the fingerprint matches, keeps every shard whose checksum
still matches its record, and redoes the rest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lossylearn.errors import StoreError
from lossylearn.pipeline.chunks import ChunkResult
from lossylearn.store.layout import (
    HEADERS_DIR,
    MANIFEST,
    RUN_STATE,
    SHARDS_DIR,
    atomic_write_json,
    remove_stale_temporaries,
    sha256_file,
)


def fingerprint(config: dict[str, Any]) -> str:
    """A stable hash of a run's defining configuration."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class RunState:
    """Progress of one run, saved after every finished shard."""

    directory: Path
    fingerprint: str
    config: dict[str, Any]
    match: dict[str, Any] | None = None
    chunks: dict[int, dict[str, Any]] = field(default_factory=dict)

    def save(self) -> None:
        """Write the state atomically."""
        atomic_write_json(
            self.directory / RUN_STATE,
            {
                "fingerprint": self.fingerprint,
                "config": self.config,
                "match": self.match,
                "chunks": {str(k): v for k, v in sorted(self.chunks.items())},
            },
        )

    def valid_chunks(self) -> dict[int, dict[str, Any]]:
        """Finished chunks whose shard is still on disk with the recorded checksum."""
        good = {}
        fields = {f.name for f in dataclasses.fields(ChunkResult)}
        for k, rec in self.chunks.items():
            if set(rec) != fields:  # recorded by another version: redo the chunk
                continue
            path = self.directory / rec["path"]
            if path.is_file() and sha256_file(path) == rec["sha256"]:
                good[k] = rec
        return good


def _is_store_file(p: Path) -> bool:
    return p.name in (MANIFEST, RUN_STATE, SHARDS_DIR, HEADERS_DIR)


def prepare_output(
    directory: Path, *, config: dict[str, Any], resume: bool, overwrite: bool
) -> tuple[RunState, bool]:
    """Check the output folder and return (state, already_complete).

    A folder holding a committed store is refused unless ``overwrite``; a folder holding an
    unfinished run is refused unless ``resume`` (and its configuration matches); a folder holding
    anything else is refused.
    """
    fp = fingerprint(config)
    directory.mkdir(parents=True, exist_ok=True)
    entries = list(directory.iterdir())
    has_manifest = (directory / MANIFEST).exists()
    has_state = (directory / RUN_STATE).exists()
    if overwrite and entries:
        foreign = [p.name for p in entries if not _is_store_file(p) and not p.name.startswith(".")]
        if foreign:
            raise StoreError(
                f"{directory}: --overwrite only replaces a lossylearn store, but the folder also holds "
                f"{', '.join(sorted(foreign)[:3])}"
            )
        for p in entries:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
        entries, has_manifest, has_state = [], False, False
    if has_state:
        try:
            saved = json.loads((directory / RUN_STATE).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(
                f"{directory}: run state is unreadable ({exc}); remove the folder and start again"
            ) from None
        if not resume:
            raise StoreError(
                f"{directory}: holds an unfinished run; add --resume to finish it, or choose another --out"
            )
        if saved.get("fingerprint") != fp:
            raise StoreError(
                f"{directory}: holds an unfinished run with different settings; "
                "resume it with the same arguments, or choose another --out"
            )
        remove_stale_temporaries(directory)  # left by a writer killed mid-rename
        state = RunState(
            directory=directory,
            fingerprint=fp,
            config=config,
            match=saved.get("match"),
            chunks={int(k): v for k, v in saved.get("chunks", {}).items()},
        )
        return state, has_manifest
    if has_manifest:
        if resume:
            return RunState(directory=directory, fingerprint=fp, config=config), True
        raise StoreError(
            f"{directory}: already holds a lossylearn store; choose another --out or pass --overwrite"
        )
    visible = [p for p in entries if not p.name.startswith(".")]
    if visible:
        raise StoreError(
            f"{directory}: is not empty and holds no lossylearn store ({', '.join(sorted(p.name for p in visible)[:3])}); "
            "choose an empty or new folder"
        )
    state = RunState(directory=directory, fingerprint=fp, config=config)
    state.save()
    return state, False
