"""``study private``'s summary table, figures and report.html."""

from __future__ import annotations

import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn.studies.common import escape, html_table, img_tag, write_report

__all__ = ["summarise", "write_outputs"]

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}.l{text-align:left}img{max-width:100%}"
)


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    labels = "clear" if r["label_epsilon"] is None else "rr"
    return (
        r["method"],
        r["decoder"] or f"{r['classifier']} classifier",
        labels,
        r["total_epsilon"],
    )


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean, standard deviation (over seeds) and count per method, decoder, labels and epsilon."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[_key(r)].append(r)
    out = []
    for (method, decoder, labels, total), rs in groups.items():
        acc = np.array([r["accuracy"] for r in rs])
        out.append({
            "method": method, "decoder": decoder, "labels": labels, "total_epsilon": total,
            "epsilon": rs[0]["epsilon"], "label_epsilon": rs[0]["label_epsilon"],
            "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
            "n_seeds": len(rs), "bits_per_image": float(np.mean([r["bits_per_image"] for r in rs])),
        })  # fmt: skip
    return out


def _learner(key: str) -> str:
    """Legend words for a summary's decoder/classifier key."""
    if key == "latent classifier":
        return "class means of the stored latents"
    if key == "image classifier":
        return "LeNet on the stored images"
    return f"LeNet on the {key} decoder's images"


def _x(total: float | None, finite: list[float]) -> float:
    return (max(finite) * 2 if finite else 1.0) if total is None else total


def _figure(summary: list[dict[str, Any]], refs: dict[str, float]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finite = sorted({s["total_epsilon"] for s in summary if s["total_epsilon"] is not None})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, labels, title in ((axes[0], "clear", "labels in the clear (image-only guarantee)"),
                              (axes[1], "rr", "randomized-response labels (per-record epsilon)")):  # fmt: skip
        lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in summary:
            if s["labels"] == labels or (labels == "rr" and s["total_epsilon"] is None):
                lines[f"{s['method']} ({_learner(s['decoder'])})"].append(s)
        for name, pts in sorted(lines.items()):
            pts.sort(key=lambda s: _x(s["total_epsilon"], finite))
            xs = [_x(s["total_epsilon"], finite) for s in pts]
            ax.errorbar(xs, [s["accuracy_mean"] for s in pts], yerr=[s["accuracy_std"] for s in pts],
                        marker="o", capsize=3, label=name)  # fmt: skip
        for i, (name, v) in enumerate(refs.items()):
            ax.axhline(v, ls="--", lw=1, color="grey")
            ax.text(finite[0] if finite else 1, v - 0.035 * (i + 1), f" {name} {v:.3f}", fontsize=7)
        ax.set_xscale("log", base=2)
        ticks = finite + ([_x(None, finite)] if finite else [])
        ax.set_xticks(ticks, [f"{t:g}" for t in finite] + (["no noise"] if finite else []))
        ax.set_xlabel(
            "per-image epsilon" if labels == "clear" else "per-record epsilon (image + label)"
        )
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy on clean test digits")
    axes[0].legend(fontsize=7)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if v is None:
        return "none"
    return f"{v:.4g}" if isinstance(v, float) else escape(v)


def write_outputs(out: Path, meta: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Write ``accuracy.png`` and ``report.html`` beside results.json."""
    from lossylearn.store.layout import atomic_write_bytes

    summary = summarise(rows)
    png = _figure(summary, meta["references"])
    atomic_write_bytes(out / "accuracy.png", png)
    summary.sort(key=lambda s: (s["labels"], s["method"], str(s["decoder"]),
                                math.inf if s["total_epsilon"] is None else s["total_epsilon"]))  # fmt: skip
    table = html_table(
        ["labels", "method", "decoder", "total eps", "image eps", "label eps", "accuracy",
         "std", "seeds", "bits/image"],
        [[escape(s["labels"]), escape(s["method"]), escape(s["decoder"] or "-"),
          _fmt(s["total_epsilon"]), _fmt(s["epsilon"]), _fmt(s["label_epsilon"]),
          f"{s['accuracy_mean']:.4f}", f"{s['accuracy_std']:.4f}", str(s["n_seeds"]),
          f"{s['bits_per_image']:.2f}"] for s in summary],
        left=3,
    )  # fmt: skip
    refs = ", ".join(f"{k}: {v:.4f}" for k, v in meta["references"].items())
    sections = [
        "<h1>Per-image private records: accuracy vs epsilon</h1>",
        f"<p>Command: <code>{escape(meta.get('command', ''))}</code></p>",
        f"<p>{escape(meta['private_images'])} private digits (never seen by the encoder); test: "
        f"{escape(meta['data']['test_images'])} clean digits ({escape(meta['data']['source'])}). "
        f"Clip norm C = {meta['clip_norm']:.4g} (median norm of the public latents), delta "
        f"{escape(meta['profile']['delta'])}, replace-one neighbours (sensitivity 2C). "
        f"References: {escape(refs)}.</p>",
        f"<p>{escape(meta['seeded_noise'])}.</p>",
        img_tag(png, alt="accuracy vs epsilon"),
        "<h2>Summary (mean and standard deviation over seeds)</h2>",
        table,
    ]
    write_report(out / "report.html", title="study private", style=STYLE, sections=sections)
