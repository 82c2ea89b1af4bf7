"""The privacy study's figures and report page (:func:`write_outputs`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from lossylearn.studies.common import escape, html_table, img_tag, write_json, write_report

__all__ = ["write_outputs"]

STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px;"
    "text-align:right}.l{text-align:left}.ok{color:#080}.no{color:#b00}.muted{color:#666}"
    "img{max-width:100%}"
)
KIND_STYLE = {
    "noisy": ("o", "noisy store (png)"),
    "lcon": ("s", "LCoN store"),
    "clean": ("*", "clean images"),
}


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _figures(rows: list[dict[str, Any]]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(r["variant"] for r in rows))
    colors = {v: f"C{i}" for i, v in enumerate(variants)}
    figs: dict[str, bytes] = {}
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for r in rows:
        if r.get("accuracy") is None:
            continue
        m, _ = KIND_STYLE[r["kind"]]
        ax.scatter(r["accuracy"], r["top1"], marker=m, color=colors[r["variant"]], s=40)
        ax.annotate(
            f"{r['psnr']:g}",
            (r["accuracy"], r["top1"]),
            fontsize=6,
            xytext=(3, 2),
            textcoords="offset points",
        )
    for m, label in KIND_STYLE.values():
        ax.scatter([], [], marker=m, color="gray", label=label)
    for v in variants:
        ax.scatter([], [], marker="o", color=colors[v], label=v)
    ax.set_xlabel("accuracy on clean test images (model trained on the store)")
    ax.set_ylabel("top-1 re-identification (best attack)")
    ax.set_title("re-identification vs accuracy (labels: PSNR dB)")
    ax.legend(fontsize=7)
    figs["reid_vs_accuracy"] = _png(fig)
    for key, ylabel, name in (("top1", "top-1 re-identification", "reid_vs_psnr"),
                              ("leakage_bits_per_pixel", "leakage bound (bits/pixel)", "bound_vs_psnr")):  # fmt: skip
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for v in variants:
            for kind in ("noisy", "lcon"):
                pts = sorted(
                    (r["psnr"], r[key]) for r in rows if r["variant"] == v and r["kind"] == kind
                )
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker=KIND_STYLE[kind][0], color=colors[v],
                            ls="-" if kind == "lcon" else ":", label=f"{v}: {KIND_STYLE[kind][1]}")  # fmt: skip
        if key == "top1":
            chance = sorted((r["psnr"], r["chance_top1"]) for r in rows if r["kind"] == "lcon")
            if chance:
                ax.plot(*zip(*chance, strict=True), "k--", lw=1, label="chance")
        ax.set_xlabel("noise PSNR (dB)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        figs[name] = _png(fig)
    return figs


def _p(v: Any, fmt: str = ".1%") -> str:
    return "" if v is None else format(v, fmt)


def _sections(payload: dict[str, Any], figs: dict[str, bytes]) -> list[str]:
    rows = payload["rows"]
    parts = [
        "<h1>Privacy study: what noisy and LCoN stores leak about the people in them</h1>",
        f"<p class='muted'>{escape(payload['warning'])} Profile <b>{escape(payload['config']['profile'])}</b>; "
        f"{payload['seconds']:.0f} s.</p>",
        f"<h2>Command</h2><pre>{escape(payload.get('command') or '(called from Python)')}</pre>",
        "<h2>Verdicts</h2>",
        html_table(
            ["claim", "here", "evidence"],
            [
                [
                    escape(c["statement"]),
                    {
                        True: "<span class='ok'>holds</span>",
                        False: "<span class='no'>fails</span>",
                        None: "n/a",
                    }[c["holds"]],
                    escape(c["detail"]),
                ]
                for c in payload["claims"]
            ],
            left=3,
        ),  # fmt: skip
        "<h2>Figures</h2>",
        *(img_tag(figs[k], alt=k) for k in ("reid_vs_accuracy", "reid_vs_psnr", "bound_vs_psnr")),
        "<h2>Table</h2>",
    ]
    head = ["variant", "store", "PSNR (dB)", "stored bpp", "top-1", "top-5", "chance", "best attack",
            "leakage bound (bits/px)", "basis", "accuracy (clean test)", "membership AUC", "audit"]  # fmt: skip
    body = []
    for r in rows:
        link = f"<a href='{escape(r['audit'])}/audit.html'>page</a>" if r.get("audit") else ""
        body.append([escape(r["variant"]), escape(r["kind"]), f"{r['psnr']:g}", _p(r.get("bits_per_pixel"), ".3f"),
                     _p(r["top1"]), _p(r["top5"]), _p(r["chance_top1"], ".3%"), escape(r["best_attack"]),
                     _p(r["leakage_bits_per_pixel"], ".4f"), escape(r["leakage_basis"]),
                     _p(r.get("accuracy")), _p(r.get("membership_auc"), ".3f"), link])  # fmt: skip
    parts.append(html_table(head, body, left=2))
    parts.append(
        "<p class='muted'>Noisy store: the same noisy images as the LCoN store of its row (same "
        "training pool, noise and seed) kept losslessly with png. Accuracy: the LCoN study's "
        "model trained on that scheme (noisy / LCoN; clean: the clean scheme at the highest PSNR's "
        "storage budget), tested on clean images, mean over seeds. The clean row re-identifies the "
        "clean images themselves (pixel NN) and bounds them by their PNG bits. Study stores are "
        "seeded (reproducible) and so carry no DP guarantee; the noise is the same law as an "
        "unseeded store's.</p>"
    )
    parts.append("<h2>Runs</h2><ul>")
    for name, run in payload["runs"].items():
        parts.append(f"<li><b>{escape(name)}</b>: LCoN study {run['lcon_seconds']} s; pool: "
                     f"{escape(run['pool'])}</li>")  # fmt: skip
    parts.append("</ul>")
    return parts


def write_outputs(out: Path, payload: dict[str, Any]) -> None:
    """results.json, figures/*.png and report.html (each written atomically)."""
    from lossylearn.store.layout import atomic_write_bytes

    figs = _figures(payload["rows"])
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for name, png in figs.items():
        atomic_write_bytes(out / "figures" / f"{name}.png", png)
    write_json(out / "results.json", payload, indent=1)
    write_report(out / "report.html", title="lossylearn privacy study", style=STYLE,
                 sections=_sections(payload, figs))  # fmt: skip
