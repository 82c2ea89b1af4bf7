"""``lossylearn audit``: run every attack on a store and write ``audit.json`` and ``audit.html``.

:func:`audit` is the command (a store folder, the clean data reloaded from what its manifest
records); :func:`audit_store` the engine, for any opened store and a :class:`~.pool.CleanPool`
(the studies call it with the arrays they compressed). The output is derived from the clean
images: it goes to a folder of the owner's choosing, never into the store, and a small link file
``<store>.audit.json`` beside the store (like the owner file) tells ``inspect`` where it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lossylearn.audit.bound import leakage_bound
from lossylearn.audit.link import WARNING, write_link
from lossylearn.audit.linkage import TOPK, AttackResult, Ranking
from lossylearn.audit.pool import CleanPool, clean_pool_for_store
from lossylearn.errors import LossylearnError

if TYPE_CHECKING:
    from lossylearn.store.reader import Store

__all__ = ["AUDIT_FORMAT", "ATTACKS", "AuditConfig", "AuditResult", "audit", "audit_store"]

AUDIT_FORMAT = "lossylearn-audit/1"
ATTACKS: tuple[str, ...] = ("pixel-nn", "denoised-nn", "likelihood", "feature-nn")
ATTACKER = (
    "The attacker holds the clean pool (the store's source images among distractors of the same "
    "dataset, with labels) and the store's manifest (noise kind and strength), but not the noise "
    "the store drew. It scores every pool image against each decoded stored image and picks the "
    "best."
)


@dataclass(frozen=True)
class AuditConfig:
    """What an audit runs. ``pool``: total candidates (the store's sources plus distractors; None =
    every distractor available); ``queries``: stored images attacked (a seeded random subset;
    None = all)."""

    pool: int | None = None
    queries: int | None = None
    attacks: tuple[str, ...] = ATTACKS
    membership: bool = False
    membership_n: int = 1000
    membership_epochs: int = 15
    feature_epochs: int = 3
    batch: int = 256
    seed: int = 0
    threads: int | None = 1
    progress: bool = True

    def __post_init__(self) -> None:
        unknown = [a for a in self.attacks if a not in ATTACKS]
        if unknown or not self.attacks:
            raise LossylearnError(f"unknown attack {unknown}; known: {', '.join(ATTACKS)}")
        for name in ("pool", "queries"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise LossylearnError(f"--{name} must be a positive number, got {v}")
        if self.membership_n < 2 or self.batch < 1:
            raise LossylearnError("membership_n must be >= 2 and batch >= 1")


@dataclass
class AuditResult:
    """An audit's JSON document and what the figures need (rankings, example images)."""

    doc: dict[str, Any]
    rankings: dict[str, Ranking] = field(default_factory=dict)
    examples: dict[str, np.ndarray] = field(default_factory=dict)
    out: Path | None = None

    @property
    def top1(self) -> float:
        return float(self.doc["reidentification"]["top1"])


def _batches(
    store: Store, rows: np.ndarray, truth: np.ndarray, size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Decode the stored images ``rows`` (sorted) in batches, with their sources' pool rows."""
    shape = store.image_shape
    for s in range(0, len(rows), size):
        part = rows[s : s + size]
        out = np.empty((len(part), *shape), dtype=np.uint8)
        for j, i in enumerate(part):
            out[j] = store[int(i)][0]
        yield out, truth[s : s + size]


def _describe(name: str, extra: str = "") -> str:
    return {
        "pixel-nn": "nearest neighbour in pixel space (L2) to the stored image as decoded",
        "denoised-nn": f"nearest neighbour in pixel space after a Gaussian blur {extra}",
        "likelihood": f"exact log-likelihood under the stated channel {extra}",
        "feature-nn": f"cosine nearest neighbour in a learned feature space: {extra}",
    }[name]


def audit_store(
    store: Store, clean: CleanPool, config: AuditConfig | None = None, *,
    log: Callable[[str], None] | None = None, cache: dict[Any, Any] | None = None,
) -> AuditResult:  # fmt: skip
    """Attack ``store`` with the pool of ``clean``; the result's ``doc`` is ``audit.json``.

    ``cache`` (any dict the caller keeps) lets audits of several stores with the same pool and
    noise share the attacker's feature model (it depends on nothing else)."""
    import torch

    from lossylearn.audit import features as feat
    from lossylearn.audit import linkage as lk
    from lossylearn.learn import torch_threads
    from lossylearn.progress import progress_bars

    cfg = config or AuditConfig()
    say = log or (lambda _s: None)
    started = time.perf_counter()
    m = store.manifest
    spec = m.noise_spec
    indices = store.indices
    if len(indices) and (indices.min() < 0 or indices.max() >= len(clean.sources)):
        raise LossylearnError("the store's source indices do not fit the clean sources given")
    n_src = len(clean.sources)
    if cfg.pool is not None and cfg.pool < n_src:
        raise LossylearnError(
            f"--pool {cfg.pool} is smaller than the store's {n_src} source images (all are candidates)"
        )
    pool_clean = clean.limited(None if cfg.pool is None else cfg.pool - n_src)
    pool = np.concatenate([clean.sources, pool_clean.distractors])
    pool_labels = np.concatenate([clean.source_labels, pool_clean.distractor_labels])
    rng = np.random.default_rng(cfg.seed)
    rows = np.arange(len(store))
    if cfg.queries is not None and cfg.queries < len(rows):
        rows = np.sort(rng.choice(rows, cfg.queries, replace=False))
    truth = indices[rows]
    lossless = m.codec.get("name") == "png"
    attacks = [a for a in cfg.attacks if a != "likelihood" or (
        lossless and spec.kind == "gaussian" and spec.range_handling == "clip")]  # fmt: skip
    results: list[AttackResult] = []
    rankings: dict[str, Ranking] = {}
    extra_doc: dict[str, Any] = {}
    with torch_threads(cfg.threads), progress_bars(cfg.progress, transient=True) as bars:
        for name in attacks:
            t0 = time.perf_counter()
            if name == "pixel-nn":
                sides, extra = lk.pixel_sides(pool), ""
            elif name == "denoised-nn":
                sample = pool[rng.choice(len(pool), min(512, len(pool)), replace=False)]
                width, mse = lk.tune_blur(sample, feat.simulate_noise(sample, spec, cfg.seed + 1))
                ps, pb, qs = lk.pixel_sides(pool)
                sides = (
                    ps,
                    pb,
                    lambda q, w=width: (
                        2.0 * torch.from_numpy(lk.blur(q, w)).reshape(len(q), -1) / 255.0
                    ),
                )
                extra = (f"of width {width:g} px, the width whose output is closest (MSE) to the "
                         "clean images on the attacker's own simulation of the stated noise")  # fmt: skip
                extra_doc["denoise"] = {"width": width, "mse_by_width": mse}
            elif name == "likelihood":
                sides = lk.likelihood_sides(pool, spec.scale)
                extra = (f"(Gaussian sigma {spec.scale:.4g}, rounding, clipping as censoring): the "
                         "Bayes-optimal linkage of a lossless store under a uniform prior on the pool")  # fmt: skip
            else:
                key = ("features", id(clean), len(pool), spec.kind, spec.scale,
                       spec.range_handling, cfg.feature_epochs, cfg.seed)  # fmt: skip
                fm = (cache or {}).get(key)
                if fm is None:
                    say("training the attacker's feature model")
                    fm = feat.train_feature_model(
                        pool, pool_labels, spec, n_classes=int(pool_labels.max()) + 1,
                        epochs=cfg.feature_epochs, seed=cfg.seed, progress=cfg.progress,
                    )  # fmt: skip
                    if cache is not None:
                        cache[key] = fm
                sides, extra = fm.sides(pool), fm.description
            advance = bars(f"attack {name}", -(-len(rows) // cfg.batch))
            ranking = lk.rank_sources(
                _batches(store, rows, truth, cfg.batch), sides[0], sides[2], pool_bias=sides[1],
                on_batch=lambda _n, step=advance: step(),
            )  # fmt: skip
            rankings[name] = ranking
            ranks = ranking.better + ranking.tied / 2.0 + 1.0
            results.append(AttackResult(
                name=name, attack=_describe(name, extra), n_queries=len(rows), pool_size=len(pool),
                top1=ranking.topk(1), top5=ranking.topk(5), chance_top1=1.0 / len(pool),
                median_rank=float(np.median(ranks)) if ranks.size else 0.0,
                topk={str(k): ranking.topk(k) for k in TOPK if k <= len(pool)},
                seconds=time.perf_counter() - t0,
            ))  # fmt: skip
            say(f"{name}: top-1 {results[-1].top1:.1%}, top-5 {results[-1].top5:.1%}")
    best = max(results, key=lambda r: (r.top1, r.top5))
    used = clean.sources[indices]
    doc: dict[str, Any] = {
        "format": AUDIT_FORMAT,
        "warning": WARNING,
        "store": _store_summary(store),
        "attacker": ATTACKER,
        "pool": {
            "description": clean.description,
            "pool_size": len(pool),
            "n_sources": n_src,
            "n_distractors": len(pool) - n_src,
            "fingerprint_checked": clean.fingerprint_checked,
        },  # fmt: skip
        "reidentification": {
            "best_attack": best.name,
            "attack": best.attack,
            "n_queries": best.n_queries,
            "pool_size": best.pool_size,
            "top1": best.top1,
            "top5": best.top5,
            "chance_top1": 1.0 / len(pool),
            "chance_top5": min(1.0, 5.0 / len(pool)),
            "attacks": [r.to_dict() for r in results],
            **extra_doc,
        },  # fmt: skip
        "membership": None,
        "leakage_bound": leakage_bound(m, used).to_dict(),
    }
    if cfg.membership:
        doc["membership"] = _membership(store, clean, used, cfg, say)
    doc["seconds"] = time.perf_counter() - started
    ex = rows[:8]
    examples = {
        "stored": np.stack([store[int(i)][0] for i in ex]) if len(ex) else pool[:0],
        "source": pool[truth[:8]],
        "match": pool[rankings[best.name].best[:8]],
    }
    return AuditResult(doc=doc, rankings=rankings, examples=examples)


def _membership(store: Store, clean: CleanPool, used: np.ndarray, cfg: AuditConfig,
                say: Callable[[str], None]) -> dict[str, Any]:  # fmt: skip
    from lossylearn.audit.membership import loss_threshold_attack
    from lossylearn.learn import torch_threads

    if len(clean.distractors) < 2:
        raise LossylearnError(
            "--membership needs clean images that were never stored (non-members); this dataset "
            "has none beside the store's sources"
        )
    say("training the membership target model on the store")
    stored, labels = store.arrays()
    rng = np.random.default_rng(cfg.seed + 2)
    k = min(cfg.membership_n, len(used), len(clean.distractors))
    mi = rng.choice(len(used), k, replace=False)
    ni = rng.choice(len(clean.distractors), k, replace=False)
    with torch_threads(cfg.threads):
        r = loss_threshold_attack(
            stored, labels, used[mi], store.labels[mi], clean.distractors[ni],
            clean.distractor_labels[ni], n_classes=int(max(labels.max(), clean.distractor_labels.max())) + 1,
            epochs=cfg.membership_epochs, seed=cfg.seed, progress=cfg.progress,
        )  # fmt: skip
    say(f"membership: AUC {r.auc:.3f}")
    return r.to_dict()


def _store_summary(store: Store) -> dict[str, Any]:
    m = store.manifest
    p = m.privacy
    return {
        "path": str(store.directory) if hasattr(store, "directory") else None,
        "run_id": m.run.get("id"), "n_images": m.n_images, "image_shape": list(m.image_shape),
        "dataset": {k: m.dataset.get(k) for k in ("name", "split")},
        "noise": m.noise_spec.describe_scale(), "range_handling": m.noise.get("range_handling"),
        "codec": m.codec.get("name"), "quality": m.codec.get("quality"),
        "target_basis": m.codec.get("target_basis"),
        "bits_per_pixel": m.stats.bits_per_pixel,
        "guarantee": (f"({p.get('epsilon'):.4g}, {p.get('delta'):.3g})-DP per {p.get('unit')}"
                      if m.has_guarantee else "none (seeded noise)"),
    }  # fmt: skip


def _check_out(out: Path, store_dir: Path) -> None:
    o, s = out.resolve(), store_dir.resolve()
    if o == s or o.is_relative_to(s):
        raise LossylearnError(
            f"{out}: is inside the store; an audit is derived from the clean data and never goes "
            "into the store folder (choose a folder beside it)"
        )
    if (out / "manifest.json").exists():
        raise LossylearnError(f"{out}: holds a lossylearn store; choose another --out")
    if out.exists() and not out.is_dir():
        raise LossylearnError(f"{out}: is a file, not a folder")


def audit(
    store_dir: str | Path, out: str | Path, *, data_dir: str | Path | None = None,
    config: AuditConfig | None = None, command: str | None = None,
    log: Callable[[str], None] | None = None, codec_checkpoint: str | None = None,
) -> AuditResult:  # fmt: skip
    """Audit the store at ``store_dir`` with its clean source reloaded from its manifest (or
    ``data_dir``); write ``out/audit.json``, ``out/audit.html``, ``out/figures/`` and the link
    ``<store>.audit.json`` beside the store."""
    from lossylearn.audit.report import write_audit_outputs
    from lossylearn.store import open_store

    store_dir, out = Path(store_dir), Path(out)
    _check_out(out, store_dir)
    store = open_store(store_dir, codec_checkpoint=codec_checkpoint)
    clean = clean_pool_for_store(store, store_dir, data_dir)
    result = audit_store(store, clean, config, log=log)
    result.doc["store"]["path"] = str(store_dir.resolve())
    result.doc["command"] = command
    result.doc["config"] = asdict(config or AuditConfig())
    write_audit_outputs(result, out)
    result.out = out
    write_link(store_dir, out, result.doc)
    return result
