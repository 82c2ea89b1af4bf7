"""The output folder of a run: locking it, refusing to clobber, remembering progress, resuming.

While a run is under way the folder holds ``.lossylearn-run.json``: the run's id, its fingerprint
(a hash of everything that decides the output and may be public: not the seed, not the data), the
chosen quality, and one record per finished shard. The owner file beside the folder
(:mod:`lossylearn.store.owner`) holds what is derived from the clean data: its fingerprint, the
seed, and the clean-side sums. ``--resume`` accepts the folder only if both match the command,
keeps every shard whose checksum still matches its record, and redoes the rest.

One run at a time: the folder is locked (``flock`` on the folder itself, so no lock file is left
behind) for the whole run; a second run into the same folder is refused at once.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
    inside,
    read_json_file,
    remove_stale_temporaries,
    sha256_file,
)
from lossylearn.store.manifest import read_manifest
from lossylearn.store.owner import OwnerFile, is_owner_file, owner_path


def fingerprint(config: dict[str, Any]) -> str:
    """A stable hash of a run's defining configuration."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class RunState:
    """Progress of one run, saved after every finished shard."""

    directory: Path
    fingerprint: str
    config: dict[str, Any]
    owner: OwnerFile
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    match: dict[str, Any] | None = None
    chunks: dict[int, dict[str, Any]] = field(default_factory=dict)

    def save(self) -> None:
        """Write the state (and then the owner file) atomically."""
        atomic_write_json(
            self.directory / RUN_STATE,
            {
                "run_id": self.run_id,
                "fingerprint": self.fingerprint,
                "config": self.config,
                "match": self.match,
                "chunks": {str(k): v for k, v in sorted(self.chunks.items())},
            },
        )
        self.owner.save()

    def record(self, result: ChunkResult, clean: dict[str, Any]) -> None:
        """Remember a finished chunk (store side and owner side) and save both files."""
        self.owner.chunks[result.chunk] = clean
        self.chunks[result.chunk] = result.to_dict()
        self.save()

    def valid_chunks(self) -> dict[int, dict[str, Any]]:
        """Finished chunks whose shard is on disk with the recorded checksum and whose clean-side
        sums the owner file holds."""
        good = {}
        fields = {f.name for f in dataclasses.fields(ChunkResult)}
        for k, rec in self.chunks.items():
            if not isinstance(rec, dict) or set(rec) != fields or k not in self.owner.chunks:
                continue  # recorded by another version, or its owner record was lost: redo it
            path = inside(self.directory, rec["path"], "shard")
            if path.is_file() and sha256_file(path) == rec["sha256"]:
                good[k] = rec
        return good


@contextmanager
def locked_output(directory: Path) -> Iterator[None]:
    """Create ``directory`` if needed and hold an exclusive lock on it for the block."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(f"{directory}: exists and is not a folder; choose another --out") from None
    except OSError as exc:
        raise StoreError(f"{directory}: cannot create the output folder ({exc.strerror})") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StoreError(f"{directory}: the output folder is not writable")
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StoreError(
                    f"{directory}: another lossylearn run is writing there; wait for it to end"
                ) from None
            raise
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _store_entries(p: Path) -> bool:
    """Whether ``p`` is something a lossylearn run writes inside a store folder."""
    return p.name in (MANIFEST, RUN_STATE, SHARDS_DIR, HEADERS_DIR) or (
        p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file()
    )


def _foreign(directory: Path) -> list[str]:
    """Entries of ``directory`` that no lossylearn run wrote (hidden ones included), plus files
    inside shards/ and headers/ that are not store files."""
    names = [p.name for p in directory.iterdir() if not _store_entries(p)]
    for sub, suffix in ((SHARDS_DIR, ".parquet"), (HEADERS_DIR, ".bin")):
        d = directory / sub
        if d.is_symlink() or (d.exists() and not d.is_dir()):
            names.append(sub)
        elif d.is_dir():
            names += [
                f"{sub}/{p.name}"
                for p in d.iterdir()
                if not (p.is_file() and not p.is_symlink())
                or not (
                    p.name.endswith(suffix) or (p.name.startswith(".") and p.name.endswith(".tmp"))
                )
            ]
    return sorted(names)


def _clear_store(directory: Path) -> None:
    """Remove a store's own files from ``directory`` (after :func:`_foreign` found nothing else)."""
    for p in directory.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _owner_for_new_run(
    directory: Path, data_sha256: str, seed: int | None, overwrite: bool
) -> OwnerFile:
    path = owner_path(directory)
    if path.exists() or path.is_symlink():
        if not (overwrite and not path.is_symlink() and is_owner_file(path)):
            raise StoreError(
                f"{path}: already exists; it is where this run keeps the data owner's file. "
                "Move it away"
                + ("" if overwrite else ", or pass --overwrite if it is an old owner file")
            )
    return OwnerFile(path=path, run_id="", data_sha256=data_sha256, seed=seed)


def prepare_output(
    directory: Path,
    *,
    config: dict[str, Any],
    data_sha256: str,
    seed: int | None,
    resume: bool,
    overwrite: bool,
) -> tuple[RunState, bool]:
    """Check the (locked) output folder and return (state, already_complete).

    A folder holding a committed store is refused unless ``overwrite`` (or ``resume`` with the same
    settings, which returns it as complete); a folder holding an unfinished run is refused unless
    ``resume`` with the same settings, data and seed; a folder holding anything lossylearn did not
    write, hidden files included, is refused even with ``overwrite``.
    """
    fp = fingerprint(config)
    foreign = _foreign(directory)
    has_manifest = (directory / MANIFEST).exists()
    has_state = (directory / RUN_STATE).exists()
    if foreign:
        what = "a lossylearn store and other files" if has_manifest or has_state else "other files"
        raise StoreError(
            f"{directory}: holds {what} ({', '.join(foreign[:3])}); lossylearn writes only into an "
            "empty folder or its own store, and never removes what it did not write"
        )
    if overwrite and not resume:
        owner = _owner_for_new_run(directory, data_sha256, seed, overwrite=True)
        _clear_store(directory)
        state = RunState(directory=directory, fingerprint=fp, config=config, owner=owner)
        state.owner.run_id = state.run_id
        state.save()
        return state, False
    if has_state:
        if not resume:
            raise StoreError(
                f"{directory}: holds an unfinished run; add --resume to finish it, or choose another --out"
            )
        return _resumed(directory, fp, config, data_sha256, seed), False
    if has_manifest:
        if not resume:
            raise StoreError(
                f"{directory}: already holds a lossylearn store; choose another --out or pass --overwrite"
            )
        manifest = read_manifest(directory)
        if manifest.run.get("fingerprint") != fp:
            raise StoreError(
                f"{directory}: already holds a complete store made with other settings; "
                "--resume only finishes the same run (use --overwrite to replace it)"
            )
        owner = _check_owner(directory, manifest.run.get("id"), data_sha256, seed)
        return RunState(directory=directory, fingerprint=fp, config=config, owner=owner), True
    owner = _owner_for_new_run(directory, data_sha256, seed, overwrite=False)
    state = RunState(directory=directory, fingerprint=fp, config=config, owner=owner)
    state.owner.run_id = state.run_id
    state.save()
    return state, False


def _check_owner(directory: Path, run_id: Any, data_sha256: str, seed: int | None) -> OwnerFile:
    path = owner_path(directory)
    if not path.exists():
        raise StoreError(
            f"{directory}: cannot resume: the owner file {path} that checks the data and seed is "
            "missing; start again with --overwrite"
        )
    owner = OwnerFile.load(path)
    if owner.run_id != run_id:
        raise StoreError(f"{path}: belongs to another run than the one in {directory}")
    if owner.data_sha256 != data_sha256:
        raise StoreError(
            f"{directory}: holds a run on other data; resume it with the same dataset, or choose another --out"
        )
    if owner.seed != seed:
        raise StoreError(
            f"{directory}: holds a run with another --seed; resume it with the same seed, or choose another --out"
        )
    return owner


def _resumed(
    directory: Path, fp: str, config: dict[str, Any], data_sha256: str, seed: int | None
) -> RunState:
    saved = read_json_file(directory / RUN_STATE, "run state")
    if not isinstance(saved, dict) or not isinstance(saved.get("chunks", {}), dict):
        raise StoreError(f"{directory}: run state is malformed; remove the folder and start again")
    if saved.get("fingerprint") != fp:
        raise StoreError(
            f"{directory}: holds an unfinished run with different settings; "
            "resume it with the same arguments, or choose another --out"
        )
    owner = _check_owner(directory, saved.get("run_id"), data_sha256, seed)
    remove_stale_temporaries(directory)  # left by a writer killed mid-rename
    try:
        chunks = {int(k): v for k, v in saved.get("chunks", {}).items()}
    except ValueError:
        raise StoreError(
            f"{directory}: run state is malformed; remove the folder and start again"
        ) from None
    return RunState(
        directory=directory,
        fingerprint=fp,
        config=config,
        owner=owner,
        run_id=str(saved["run_id"]),
        match=saved.get("match"),
        chunks=chunks,
    )


def abandon(state: RunState, created: bool) -> None:
    """Undo a run that failed before finishing any shard: remove its run state and owner file
    (and the folder when this run created it), so the corrected command starts clean."""
    remove_stale_temporaries(state.directory)
    (state.directory / RUN_STATE).unlink(missing_ok=True)
    state.owner.path.unlink(missing_ok=True)
    for sub in (SHARDS_DIR, HEADERS_DIR):
        d = state.directory / sub
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    if created and not any(state.directory.iterdir()):
        state.directory.rmdir()
