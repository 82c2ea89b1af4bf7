"""The privacy study: audit noisy and LCoN stores across the noise grid, beside LCoN accuracy.

For each variant (noise, codec, target basis) the study runs the LCoN study's own pipeline
(:func:`lossylearn.studies.lcon.run_lcon_study`, no Fig. 3 sweep, one light attack point) in the
work folder: its stores and its accuracies (clean, noisy and LCoN training schemes, tested on clean
images) are reused as they are. Beside each LCoN store it makes the *noisy store* of the same
point: the same training pool, noise and seed through the lossless png codec, so it holds exactly
the noisy images the LCoN store was coded from. Every store is then audited
(:func:`lossylearn.audit.audit_store`) with the same pool; the clean images are the upper
reference. Outputs in ``out``: results.json, figures/, report.html and audits/ (each store's
audit.json and page); stores and codec checkpoints stay in the work folder.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn.errors import LossylearnError
from lossylearn.studies.common import write_json
from lossylearn.studies.privacy.config import VARIANTS, PrivacyConfig, Variant

__all__ = ["PrivacyResult", "run_privacy_study", "study_pool"]

RESULTS_FORMAT = "lossylearn-privacy-study/1"
MARKER = "privacy-config.json"


@dataclass
class PrivacyResult:
    """What the study wrote (results.json's payload) and where."""

    out: Path
    payload: dict[str, Any]
    seconds: float


def study_pool(lcfg: Any, data: Any) -> Any:
    """The LCoN study's training pool as the store's sources, and every other image of the
    dataset as distractors (the rest of the training split, a learned codec's held-out images,
    then the test split): the attacker's candidates."""
    from lossylearn.audit import CleanPool
    from lossylearn.data import load_dataset

    c = lcfg
    ds = load_dataset(c.dataset, c.data_dir, attribute=c.attribute, image_size=c.image_size)
    rng = np.random.default_rng(c.data_seed)  # the draw of lossylearn.studies.lcon.data.load_data
    tr = rng.permutation(len(ds.train_labels))[: c.n_train]
    used = tr[len(data.codec_x) :]
    if not np.array_equal(ds.train_images[used], data.train_x):
        raise LossylearnError(
            "the privacy study's pool does not match the LCoN study's training pool"
        )
    rest = np.setdiff1d(np.arange(len(ds.train_labels)), used)
    rng2 = np.random.default_rng(c.data_seed + 1)
    rest = rest[rng2.permutation(len(rest))]  # distractors in a random (class-mixed) order
    distractors = np.concatenate([ds.train_images[rest], ds.test_images])
    labels = np.concatenate([ds.train_labels[rest], ds.test_labels]).astype(np.int64)
    desc = (f"{ds.name}: the LCoN study's {len(used)} training images (the stores' sources); "
            f"distractors: {len(rest)} other training images, then {len(ds.test_labels)} test images. "
            f"Source: {ds.source}")  # fmt: skip
    return CleanPool(data.train_x, data.train_y, np.ascontiguousarray(distractors), labels, desc)


def _accuracy(summary: list[dict[str, Any]], psnr: float, train: str) -> float | None:
    for r in summary:
        if (
            r["sweep"] == "noise"
            and r["psnr"] == psnr
            and r["train"] == train
            and r["test"] == "clean"
        ):
            return float(r["mean"])
    return None


def _prepare(out: Path, config: PrivacyConfig) -> None:
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise LossylearnError(
            f"{out}: is not empty and holds no privacy study; choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / MARKER, config.to_dict(), indent=1)


def _noisy_store(point: Any, data: Any, lcfg: Any, work: Path) -> Path:
    """The png store of ``point``'s noisy images (same pool, noise and seed as the LCoN store)."""
    from lossylearn.studies.lcon.stores import make_store

    folder = work / f"noisy-{lcfg.noise}-{len(data.train_x)}"
    info = make_store(point, data, replace(lcfg, codec="png", codec_options={}), folder,
                      policy=lcfg.target_policy, codec_options={}, warn=lambda _m: None)  # fmt: skip
    return info.path


def _audit_one(
    path: Path, pool: Any, cfg: Any, dest: Path, cache: dict[Any, Any]
) -> dict[str, Any]:
    from lossylearn.audit import audit_store
    from lossylearn.audit.link import write_link
    from lossylearn.audit.report import write_audit_outputs
    from lossylearn.store import open_store

    result = audit_store(open_store(path), pool, cfg, cache=cache)
    result.doc["store"]["path"] = str(path)
    write_audit_outputs(result, dest)
    write_link(path, dest, result.doc)
    return result.doc


def _row(variant: str, kind: str, psnr: float, doc: dict[str, Any] | None, accuracy: float | None,
         audit_dir: str | None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    row: dict[str, Any] = {"variant": variant, "kind": kind, "psnr": psnr, "accuracy": accuracy,
                           "audit": audit_dir, **extra}  # fmt: skip
    if doc is not None:
        r, lb, mem = doc["reidentification"], doc["leakage_bound"], doc.get("membership")
        row.update(
            bits_per_pixel=doc["store"]["bits_per_pixel"], n_queries=r["n_queries"],
            pool_size=r["pool_size"], top1=r["top1"], top5=r["top5"], chance_top1=r["chance_top1"],
            best_attack=r["best_attack"], attacks={a["name"]: a["top1"] for a in r["attacks"]},
            leakage_bits_per_pixel=lb["bits_per_pixel"], leakage_basis=lb["basis"],
            channel_bits_per_pixel=lb["channel_bits_per_pixel"],
            membership_auc=mem["auc"] if mem else None,
        )  # fmt: skip
    return row


def _clean_row(
    variant: Variant, pool: Any, results: dict[str, Any], psnr: float, cfg: Any
) -> dict[str, Any]:
    """The upper reference: the clean training images themselves, attacked by pixel-space NN."""
    from lossylearn.audit.linkage import pixel_sides, rank_sources
    from lossylearn.studies.lcon.budget import png_sizes

    images = pool.sources
    if cfg.pool is not None:
        pool = pool.limited(cfg.pool - len(images))
    everything = np.concatenate([images, pool.distractors])
    truth = np.arange(len(images))
    side, bias, query = pixel_sides(everything)
    batches = ((images[i : i + 256], truth[i : i + 256]) for i in range(0, len(images), 256))
    ranking = rank_sources(batches, side, query, pool_bias=bias)
    sizes = png_sizes(images)
    h, w = images.shape[1:3]
    bpp = 8.0 * sizes.total_bytes / (len(images) * h * w)
    return _row(
        variant.name, "clean", psnr, None, _accuracy(results["summary"], psnr, "clean"), None,
        top1=ranking.topk(1), top5=ranking.topk(5), chance_top1=1.0 / len(everything),
        pool_size=len(everything), n_queries=len(images), best_attack="pixel-nn",
        bits_per_pixel=bpp, leakage_bits_per_pixel=bpp, leakage_basis="stored bits (lossless PNG)",
    )  # fmt: skip


def _lcon_results(
    lcfg: Any, lout: Path, run: Callable[..., Any], say: Callable[[str], None]
) -> dict[str, Any]:
    """The LCoN study's results.json: reused when ``lout`` holds a finished study with the same
    settings (its marker and a complete results.json), else run now (its stores are reused)."""
    marker, res = lout / "study-config.json", lout / "results.json"
    if marker.is_file() and res.is_file() and json.loads(marker.read_text()) == lcfg.identity():
        results = json.loads(res.read_text())
        if results.get("complete"):
            say(f"reusing the finished LCoN study in {lout}")
            return results
    run(lcfg, lout, overwrite=True, console=None)
    return json.loads(res.read_text())


def _rerender_lcon_report(lout: Path) -> None:
    """Write the LCoN study's report again, now that its stores have audits beside them."""
    from lossylearn.studies.common import write_report
    from lossylearn.studies.lcon.report import STYLE, report_sections

    payload = json.loads((lout / "results.json").read_text())
    figures = {p.stem: p for p in sorted((lout / "figures").glob("*.png"))}
    write_report(lout / "report.html", title="LCoN study report", style=STYLE,
                 sections=report_sections(payload, figures))  # fmt: skip


def run_privacy_study(
    config: PrivacyConfig, out: str | Path, *, work: str | Path | None = None,
    command: str | None = None, log: Callable[[str], None] | None = None,
) -> PrivacyResult:  # fmt: skip
    """Run the study of ``config``; write results.json, figures/, report.html and audits/ into
    ``out``. Stores live in ``work`` (kept, and reused by a rerun) or in a temporary folder
    removed at the end."""
    from lossylearn.audit import AuditConfig
    from lossylearn.learn import torch_threads
    from lossylearn.studies.lcon import run_lcon_study
    from lossylearn.studies.lcon.data import load_data
    from lossylearn.studies.lcon.points import plan_points
    from lossylearn.studies.privacy.claims import check_claims
    from lossylearn.studies.privacy.report import write_outputs

    started = time.perf_counter()
    say = log or (lambda _s: None)
    out = Path(out)
    _prepare(out, config)
    temp = work is None
    work_dir = Path(tempfile.mkdtemp(prefix="lossylearn-privacy-")) if temp else Path(work)  # type: ignore[arg-type]
    if not temp and work_dir.resolve().is_relative_to(out.resolve()):
        raise LossylearnError(
            "--work must not be inside --out (stores never go to the study's output)"
        )
    rows: list[dict[str, Any]] = []
    runs: dict[str, Any] = {}
    try:
        with torch_threads(config.threads):
            for name in config.variants:
                v = VARIANTS[name]
                lcfg = config.lcon_config(v)
                lout = work_dir / f"lcon-{v.name}"
                say(f"[{v.name}] LCoN study ({len(lcfg.psnrs)} PSNRs) in {lout}")
                results = _lcon_results(lcfg, lout, run_lcon_study, say)
                data = load_data(lcfg)
                pool = study_pool(lcfg, data)
                runs[v.name] = {"lcon_seconds": results.get("timing", {}).get("total"),
                                "config": lcfg.to_dict(), "pool": pool.description,
                                "dataset": results["dataset"]}  # fmt: skip
                cache: dict[Any, Any] = {}  # the attacker's feature model per noise level
                points = {p.psnr: p for p in plan_points(lcfg) if p.sweep == "noise"}
                for s in (s for s in results["stores"] if s["sweep"] == "noise"):
                    psnr = float(s["psnr"])
                    acfg = AuditConfig(
                        pool=config.pool, queries=config.queries, seed=0, threads=config.threads,
                        membership=psnr in config.membership_psnrs, membership_n=config.membership_n,
                        membership_epochs=config.membership_epochs,
                        feature_epochs=config.feature_epochs, progress=config.progress,
                    )  # fmt: skip
                    noisy = _noisy_store(points[psnr], data, lcfg, work_dir)
                    for kind, path in (("noisy", noisy), ("lcon", lout / s["path"])):
                        rel = f"audits/{v.name}/{kind}-psnr{psnr:g}"
                        say(f"[{v.name}] audit {kind} store, PSNR {psnr:g}")
                        doc = _audit_one(path, pool, acfg, out / rel, cache)
                        train = "noisy" if kind == "noisy" else "lcon"
                        rows.append(_row(v.name, kind, psnr, doc, _accuracy(results["summary"], psnr, train),
                                         rel, target_basis=s.get("target_basis"),
                                         codec=doc["store"]["codec"]))  # fmt: skip
                top = max(float(s["psnr"]) for s in results["stores"])
                rows.append(_clean_row(v, pool, results, top, acfg))
                _rerender_lcon_report(lout)
        claims = check_claims(rows)
        payload = {
            "format": RESULTS_FORMAT, "complete": True, "command": command or "",
            "config": config.to_dict(), "runs": runs, "rows": rows,
            "claims": [c.to_dict() for c in claims],
            "work": None if temp else str(work_dir),
            "warning": "Derived from the clean images (audits, examples): keep with the data owner.",
            "seconds": round(time.perf_counter() - started, 1),
        }  # fmt: skip
        write_outputs(out, payload)
    finally:
        if temp:
            shutil.rmtree(work_dir, ignore_errors=True)
    return PrivacyResult(out=out, payload=payload, seconds=time.perf_counter() - started)
