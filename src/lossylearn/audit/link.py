"""The link beside a store to its latest audit: ``<store>.audit.json`` (like the owner file).

An audit's output is derived from the clean data, so it never enters the store; this small file
beside the store (the data owner's side, next to ``<store>.owner.json``) records where the audit is
and its headline figures, so that ``lossylearn inspect`` can point to it. Light: no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lossylearn.errors import LossylearnError

__all__ = ["LINK_FORMAT", "WARNING", "link_path", "read_link", "write_link"]

LINK_FORMAT = "lossylearn-audit-link/1"
WARNING = (
    "Derived from the clean images (it holds the attacks' results and examples of clean images): "
    "keep it with the data owner, never ship it with the store."
)


def link_path(store_dir: str | Path) -> Path:
    """``<store>.audit.json``: beside the store, like the owner file."""
    d = Path(store_dir)
    return d.parent / f"{d.resolve().name}.audit.json"


def write_link(store_dir: Path, out: Path, doc: dict[str, Any]) -> None:
    """Record where the latest audit of the store is (replacing only a link lossylearn wrote)."""
    from lossylearn.store.layout import atomic_write_json, read_json_file

    path = link_path(store_dir)
    if path.exists():
        try:
            old = read_json_file(path, "audit link")
        except LossylearnError:
            old = None
        if not isinstance(old, dict) or old.get("format") != LINK_FORMAT:
            raise LossylearnError(
                f"{path}: exists and is not an audit link lossylearn wrote; not replaced"
            )
    r = doc["reidentification"]
    atomic_write_json(path, {
        "format": LINK_FORMAT, "warning": WARNING, "run_id": doc["store"]["run_id"],
        "audit": str(out.resolve()), "top1": r["top1"], "chance_top1": r["chance_top1"],
        "best_attack": r["best_attack"], "pool_size": r["pool_size"],
        "leakage_bits_per_pixel": doc["leakage_bound"]["bits_per_pixel"],
        "membership_auc": (doc.get("membership") or {}).get("auc"),
    })  # fmt: skip


def read_link(store_dir: str | Path, run_id: str | None) -> dict[str, Any] | None:
    """The audit link of a store, when there is one for this very run (``run_id``; None: any run)."""
    from lossylearn.store.layout import read_json_file

    path = link_path(store_dir)
    if not path.is_file():
        return None
    try:
        d = read_json_file(path, "audit link")
    except LossylearnError:
        return None
    if not isinstance(d, dict) or d.get("format") != LINK_FORMAT:
        return None
    if run_id is not None and d.get("run_id") != run_id:
        return None
    return d
