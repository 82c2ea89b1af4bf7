"""An audit's files: ``audit.json``, ``figures/*.png`` and a short ``audit.html``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lossylearn.studies.common import escape, html_table, img_tag, write_json, write_report

if TYPE_CHECKING:
    from lossylearn.audit.run import AuditResult

__all__ = ["STYLE", "audit_sections", "write_audit_outputs"]

STYLE = (
    "body{font-family:sans-serif;max-width:980px;margin:2em auto;line-height:1.4}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}.l{text-align:left}.warn{background:#fff3cd;padding:.6em}img{max-width:100%}"
)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def rank_figure(result: AuditResult) -> bytes:
    """Top-k re-identification against k, one line per attack, with chance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reid = result.doc["reidentification"]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    pool = reid["pool_size"]
    for a in reid["attacks"]:
        ks = [int(k) for k in a["topk"]]
        ax.plot(
            ks,
            [a["topk"][str(k)] for k in ks],
            marker="o",
            ms=3,
            label=f"{a['name']} (top-1 {a['top1']:.1%})",
        )
    ks = np.array([int(k) for k in reid["attacks"][0]["topk"]])
    ax.plot(ks, np.minimum(ks / pool, 1.0), "k--", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("k (candidates the attacker may name)")
    ax.set_ylabel("true source within top k")
    ax.set_title(f"re-identification, pool of {pool}")
    ax.legend(fontsize=7)
    return _png(fig)


def examples_figure(result: AuditResult) -> bytes:
    """Rows: stored image, its true source, the best attack's first choice."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ex = result.examples
    n = len(ex["stored"])
    fig, axes = plt.subplots(3, max(n, 1), figsize=(1.1 * max(n, 1), 3.6), squeeze=False)
    for r, key in enumerate(("stored", "source", "match")):
        for j in range(max(n, 1)):
            ax = axes[r][j]
            ax.axis("off")
            if j < n:
                img = ex[key][j]
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
                if key == "match":
                    ok = np.array_equal(ex["match"][j], ex["source"][j])
                    ax.set_title(
                        "hit" if ok else "miss", fontsize=7, color="green" if ok else "red"
                    )
        axes[r][0].text(-0.3, 0.5, key, transform=axes[r][0].transAxes, ha="right", fontsize=8)
    return _png(fig)


def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def audit_sections(doc: dict[str, Any], figures: dict[str, bytes]) -> list[str]:
    """The HTML sections of ``audit.html``."""
    s, reid, lb, mem = (
        doc["store"],
        doc["reidentification"],
        doc["leakage_bound"],
        doc.get("membership"),
    )
    parts = [
        "<h1>lossylearn audit</h1>",
        f"<p class='warn'>{escape(doc['warning'])}</p>",
        f"<p>Store <code>{escape(s.get('path'))}</code>: {s['n_images']} images, {escape(s['noise'])}, "
        f"codec {escape(s['codec'])} (quality {escape(s['quality'])}), {s['bits_per_pixel']:.3f} bits/pixel; "
        f"guarantee {escape(s['guarantee'])}.</p>",
        "<h2>Re-identification</h2>",
        f"<p>{escape(doc['attacker'])} Pool: {escape(doc['pool']['description'])}</p>",
        f"<p><b>Best attack: {escape(reid['best_attack'])}, top-1 {_pct(reid['top1'])}, top-5 "
        f"{_pct(reid['top5'])}</b> of {reid['n_queries']} stored images in a pool of "
        f"{reid['pool_size']} (chance: top-1 {_pct(reid['chance_top1'])}).</p>",
        html_table(
            ["attack", "description", "top-1", "top-5", "median rank", "seconds"],
            [
                [
                    escape(a["name"]),
                    escape(a["attack"]),
                    _pct(a["top1"]),
                    _pct(a["top5"]),
                    f"{a['median_rank']:g}",
                    f"{a['seconds']:.1f}",
                ]
                for a in reid["attacks"]
            ],
            left=2,
        ),  # fmt: skip
        img_tag(figures["rank"], alt="top-k curves"),
        img_tag(figures["examples"], alt="examples"),
        "<h2>Leakage bound</h2>",
        f"<p>I(clean; stored) &le; <b>{lb['bits_per_pixel']:.4f} bits/pixel</b> "
        f"({lb['bits_per_image']:.1f} bits/image), basis: <b>{escape(lb['basis'])}</b>. Stored bits "
        f"{lb['stored_bits_per_pixel']:.4f}; {escape(lb['channel'])}: {lb['channel_bits_per_pixel']:.4f} "
        f"(mean clean variance {lb['clean_variance_mean']:.1f}). {escape(lb['note'])} Labels add up "
        f"to {lb['label_bits_per_image']:.2f} bits/image.</p>",
    ]
    parts.append("<h2>Membership inference</h2>")
    if mem:
        parts.append(
            f"<p>{escape(mem['attack'])}. Target: {escape(mem['model'])} trained {mem['epochs']} "
            f"epochs on the store (train accuracy {_pct(mem['train_accuracy'])}; clean members "
            f"{_pct(mem['member_accuracy'])}, non-members {_pct(mem['nonmember_accuracy'])}). "
            f"<b>AUC {mem['auc']:.3f}</b> on {mem['n_members']} members / {mem['n_nonmembers']} "
            f"non-members; best threshold advantage {mem['advantage']:.3f}.</p>"
        )
    else:
        parts.append("<p>Not run (pass --membership).</p>")
    if doc.get("command"):
        parts.append(
            f"<p>Command: <code>{escape(doc['command'])}</code>; {doc['seconds']:.1f} s.</p>"
        )
    return parts


def write_audit_outputs(result: AuditResult, out: Path) -> None:
    """Write ``audit.json``, ``figures/`` and ``audit.html`` into ``out`` (each atomically)."""
    from lossylearn.store.layout import atomic_write_bytes

    figs = {"rank": rank_figure(result), "examples": examples_figure(result)}
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for name, png in figs.items():
        atomic_write_bytes(out / "figures" / f"reid-{name}.png", png)
    write_json(out / "audit.json", result.doc, indent=1)
    write_report(out / "audit.html", title="lossylearn audit", style=STYLE,
                 sections=audit_sections(result.doc, figs))  # fmt: skip
