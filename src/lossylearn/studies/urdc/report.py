"""Figures in the slides' style and a self-contained report page for a urdc study.

* ``fig_rdc.png``: distortion (MSE) vs classifier CE at the universal rate; end-to-end models are
  points with black outlines joined by a line, universal decoders are coloured points per encoder.
* ``fig_rdc_rates.png``: end-to-end distortion-classification curves at every rate.
* ``fig_rdp.png``: distortion vs W1 (perception), end to end at every rate and universal points.
* ``fig_penalty.png``: each universal encoder's distortion penalty, at the MSE end and at equal
  CE / W1, beside the anchor's.
* ``report.html``: the tables, the anchor's published numbers beside ours, the penalties, the
  figures and one strip of sample test reconstructions per decoder, all base64-embedded.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn.studies.common import escape, html_table, img_tag, write_report
from lossylearn.studies.urdc.results import ResultRow, StudyResult

__all__ = [
    "ANCHOR_PENALTY",
    "ANCHOR_POINTS",
    "ANCHOR_RDC",
    "ANCHOR_RDP",
    "anchor_comparison",
    "STYLE",
    "plot_figures",
    "report_sections",
    "write_figures_and_report",
]

#: Published anchor numbers at 4.755 bits (REFERENCE.md, from the uRDP/RDC result CSVs;
#: 60k training digits, 10k test digits): (model, lambda, MSE, CE or W1).
ANCHOR_RDC: tuple[tuple[str, str, float, str], ...] = (
    ("end-to-end", "lambda_c = 0", 0.0456, "CE 1.468 (acc ~61%)"),
    ("end-to-end", "lambda_c = 0.0066", 0.0475, "CE 0.279 (acc ~93%)"),
    ("end-to-end", "lambda_c = 0.015", 0.0506, "CE 0.176 (acc ~97%)"),
    (
        "universal (encoder lambda_c = 0.015)",
        "lambda_c = 0 ... 0.015",
        0.0500,
        "MSE 0.0500-0.0504, CE 0.167-0.217",
    ),
)
ANCHOR_RDP: tuple[tuple[str, str, float, str], ...] = (
    ("end-to-end, 4.755 bits", "lambda_p = 0", 0.0459, "W1 5.88"),
    ("end-to-end, 4.755 bits", "lambda_p = 0.015", 0.0731, "W1 1.11"),
    ("universal, 4.755 bits", "lambda_p = 0", 0.0467, "W1 5.64"),
    ("universal, 4.755 bits", "lambda_p = 0.013", 0.0726, "W1 1.21"),
    ("end-to-end, 6 bits", "lambda_p = 0 / 0.015", 0.0416, "MSE 0.0416 / 0.0654, W1 5.18 / 0.90"),
    ("end-to-end, 8 bits", "lambda_p = 0 / 0.013", 0.0362, "MSE 0.0362 / 0.0546, W1 4.38 / 0.87"),
)
#: The anchor's universal distortion penalty at the MSE-only end: (0.0500 - 0.0456) / 0.0456.
ANCHOR_PENALTY = (0.0500 - 0.0456) / 0.0456

#: The anchor's published points matched to ours: (mode, objective, (d, L), lambda, MSE, metric).
#: lambda None: our largest lambda of that grid (the anchor's end point is 0.013 or 0.015).
#: Universal points are on the anchor protocol's encoder (end to end at lambda = 0.015).
ANCHOR_POINTS: tuple[tuple[str, str, tuple[int, int], float | None, float, float], ...] = (
    ("end-to-end", "classification", (3, 3), 0.0, 0.0456, 1.468),
    ("end-to-end", "classification", (3, 3), 0.0066, 0.0475, 0.279),
    ("end-to-end", "classification", (3, 3), 0.015, 0.0506, 0.176),
    ("universal", "classification", (3, 3), 0.0, 0.0500, 0.217),
    ("universal", "classification", (3, 3), 0.015, 0.0504, 0.167),
    ("end-to-end", "perception", (3, 3), 0.0, 0.0459, 5.88),
    ("end-to-end", "perception", (3, 3), None, 0.0731, 1.11),
    ("universal", "perception", (3, 3), 0.0, 0.0467, 5.64),
    ("universal", "perception", (3, 3), None, 0.0726, 1.21),
    ("end-to-end", "perception", (3, 4), 0.0, 0.0416, 5.18),
    ("end-to-end", "perception", (3, 4), None, 0.0654, 0.90),
    ("end-to-end", "perception", (4, 4), 0.0, 0.0362, 4.38),
    ("end-to-end", "perception", (4, 4), None, 0.0546, 0.87),
)


def anchor_comparison(rows: list[ResultRow]) -> list[list[object]]:
    """One line per anchor point we measured: model, lambda, MSE and CE/W1, anchor then ours."""
    out: list[list[object]] = []
    for mode, objective, (d, levels), lam, a_mse, a_metric in ANCHOR_POINTS:
        cand = [
            r
            for r in rows
            if r.mode == mode
            and r.objective == objective
            and (r.latent_dim, r.levels) == (d, levels)
            and (mode == "end-to-end" or r.encoder.startswith("e2e-"))
        ]
        if not cand:
            continue

        def lam_of(r: ResultRow, objective: str = objective) -> float:
            return r.lambda_c if objective == "classification" else r.lambda_p

        if lam is None:
            mine = max(cand, key=lam_of)
        else:
            exact = [r for r in cand if abs(lam_of(r) - lam) < 1e-12]
            if not exact:
                continue
            mine = exact[0]
        if objective == "classification":
            ours = f"CE {mine.ce:.3f}"
        else:  # the anchor's W1 is its training critic's: show ours measured both ways
            ours = f"W1 {_fmt(mine.w1)}" + (
                f" (training critic {mine.w1_training_critic:.3f})"
                if mine.w1_training_critic is not None
                else ""
            )
        metric = "CE" if objective == "classification" else "W1"
        out.append(
            [
                f"{mode} {objective}",
                f"{d * np.log2(levels):.3f}",
                f"{'lambda_c' if objective == 'classification' else 'lambda_p'} = "
                + (f"{lam:g}" if lam is not None else f"end ({lam_of(mine):g})"),
                a_mse,
                mine.mse,
                f"{metric} {a_metric:g}",
                ours,
                f"{mine.accuracy:.3f}",
            ]
        )
    return out


#: The page's CSS.
STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
    "margin:1em 0;font-size:13px}td,th{border:1px solid #bbb;padding:3px 7px;text-align:right}"
    "th{background:#eee}img{max-width:100%}"
)

_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]


def _figure(size: tuple[float, float]) -> tuple[Any, Any]:
    """A figure with one axes, drawn by the Agg canvas: no pyplot, no global backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _curve(ax: Any, rows: list[ResultRow], x: str, label: str, color: str, outline: bool) -> None:
    pts = sorted(rows, key=lambda r: getattr(r, x))
    xs = [getattr(r, x) for r in pts]
    ys = [r.mse for r in pts]
    if outline:
        ax.plot(xs, ys, "-", color=color, alpha=0.6)
    ax.scatter(
        xs,
        ys,
        s=55,
        color=color,
        edgecolors="black" if outline else "none",
        linewidths=1.5 if outline else 0,
        label=label,
        zorder=3,
    )


def plot_figures(result: StudyResult) -> dict[str, bytes]:
    """PNG bytes of the three figures, keyed by file name (only those with data)."""
    rows = result.rows
    d, levels = result.profile.universal_rate
    ur = d * float(np.log2(levels))
    out: dict[str, bytes] = {}
    for objective, x, xlabel, name in (
        ("classification", "ce", "classifier cross-entropy (nats)", "fig_rdc.png"),
        ("perception", "w1", "W1 (fresh critic estimate)", "fig_rdp.png"),
    ):
        sel = [r for r in rows if r.objective == objective]
        if not sel:
            continue
        fig, ax = _figure((6, 4.2))
        rates = sorted({r.rate_bits for r in sel})
        for k, rate in enumerate(rates):
            e2e = [r for r in sel if r.mode == "end-to-end" and abs(r.rate_bits - rate) < 1e-9]
            if e2e and (objective == "perception" or abs(rate - ur) < 1e-9):
                _curve(
                    ax,
                    e2e,
                    x,
                    f"end-to-end, R = {rate:.3f}",
                    _COLORS[k % len(_COLORS)],
                    True,
                )
        uni = [r for r in sel if r.mode == "universal"]
        for k, enc in enumerate(sorted({r.encoder for r in uni})):
            _curve(
                ax,
                [r for r in uni if r.encoder == enc],
                x,
                f"universal, encoder {enc}",
                _COLORS[(k + 3) % len(_COLORS)],
                False,
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("MSE per pixel")
        ax.set_title(
            f"distortion-{objective} at R = {ur:.3f} bits"
            if objective == "classification"
            else "distortion-perception"
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        out[name] = _png(fig)
    rdc = [r for r in rows if r.objective == "classification" and r.mode == "end-to-end"]
    if rdc:
        fig, ax = _figure((6, 4.2))
        for k, rate in enumerate(sorted({r.rate_bits for r in rdc})):
            _curve(
                ax,
                [r for r in rdc if abs(r.rate_bits - rate) < 1e-9],
                "ce",
                f"R = {rate:.3f} bits",
                _COLORS[k % len(_COLORS)],
                True,
            )
        ax.set_xlabel("classifier cross-entropy (nats)")
        ax.set_ylabel("MSE per pixel")
        ax.set_title("distortion-classification at several rates (end to end)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        out["fig_rdc_rates.png"] = _png(fig)
    if result.penalties:
        out["fig_penalty.png"] = _penalty_figure(result)
    return out


def _penalty_figure(result: StudyResult) -> bytes:
    """Bars: each universal encoder's penalty at the MSE end and its largest gap at equal CE/W1,
    against the anchor's endpoint penalty."""
    pens = result.penalties
    fig, ax = _figure((7, 0.5 + 0.45 * len(pens)))
    ys = np.arange(len(pens))
    ax.barh(
        ys + 0.18, [100 * p.endpoint for p in pens], 0.36, label="at the MSE end", color="tab:blue"
    )
    ax.barh(
        ys - 0.18,
        [100 * (p.max_gap or 0.0) for p in pens],
        0.36,
        label="largest gap at equal CE / W1",
        color="tab:orange",
    )
    ax.axvline(100 * ANCHOR_PENALTY, color="black", ls="--", lw=1, label="anchor, MSE end")
    ax.set_yticks(ys, [f"{p.objective[:5]}: {p.encoder}" for p in pens], fontsize=7)
    ax.set_xlabel("universal distortion penalty (% MSE over end to end)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _strip_png(images: np.ndarray) -> bytes:
    """uint8 (n, 28, 28) -> one PNG strip, upscaled 2x."""
    from PIL import Image

    strip = np.concatenate(list(images), axis=1) if len(images) else np.zeros((28, 28), np.uint8)
    img = Image.fromarray(strip.astype(np.uint8), mode="L").resize(
        (strip.shape[1] * 2, 56), Image.NEAREST
    )
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape(v)


def _table(header: list[str], body: list[list[object]]) -> str:
    return html_table(header, [[_fmt(c) for c in row] for row in body])


def write_figures_and_report(result: StudyResult, out: Path) -> Path:
    """Write the figures (PNG files) and ``report.html`` into ``out``; returns the page's path."""
    out = Path(out)
    figures = plot_figures(result)
    for name, png in figures.items():
        (out / name).write_bytes(png)
    return write_report(
        out / "report.html",
        title="lossylearn urdc study",
        style=STYLE,
        sections=report_sections(result, figures),
    )


def report_sections(result: StudyResult, figures: dict[str, bytes]) -> list[str]:
    """The HTML sections of the report: tables, the anchor beside ours, figures and samples."""
    parts = [
        f"<h1>Universal rate-distortion-classification/perception study (profile {escape(result.profile.name)})</h1>",
        f"<p>Data: {escape(result.meta.get('data'))}<br>Classifier on the test split: "
        f"accuracy {_fmt(result.classifier.get('test_accuracy'))}, CE {_fmt(result.classifier.get('test_ce'))} nats."
        f"<br>Bitstream: {escape(result.meta.get('bitstream'))}; dither seed {_fmt(result.meta.get('dither_seed'))}."
        f"<br>Training: {escape(result.meta.get('augmentation', 'none'))}; per-model "
        f"epochs in profile (encoders {result.profile.epochs}, universal decoders "
        f"{_fmt(result.profile.decoder_epochs)}, W1-trained {_fmt(result.profile.perception_epochs)})."
        f"<br>Elapsed: {_fmt(result.meta.get('elapsed_s'))} s on {escape(result.meta.get('device'))}"
        + (
            f" (this run; the runs it resumed took {', '.join(_fmt(v) for v in earlier)} s)."
            if (earlier := list(result.meta.get("earlier_runs_elapsed_s") or []))
            else "."
        )
        + "</p>",
        f"<h2>Command</h2><pre>{escape(result.meta.get('command', '(not recorded)'))}</pre>",
        "<p>Versions: "
        + escape(", ".join(f"{k} {v}" for k, v in dict(result.meta.get("versions") or {}).items()))
        + "</p>",
        "<h2>Results (test split)</h2>",
        _table(
            [
                "mode",
                "objective",
                "rate",
                "lambda_c",
                "lambda_p",
                "MSE",
                "CE",
                "acc",
                "W1",
                "W1 (training critic)",
                "H(idx)",
                "encoder",
                "model",
            ],
            [
                [
                    r.mode,
                    r.objective,
                    r.rate_bits,
                    r.lambda_c,
                    r.lambda_p,
                    r.mse,
                    r.ce,
                    r.accuracy,
                    r.w1,
                    r.w1_training_critic,
                    r.entropy_bits,
                    r.encoder,
                    r.model,
                ]
                for r in result.rows
            ],
        ),
        "<h2>Ours next to the anchor (60k training digits; ours: the data above)</h2>",
        _table(
            ["model", "rate", "lambda", "anchor MSE", "our MSE", "anchor", "ours", "our acc"],
            anchor_comparison(result.rows),
        ),
        "<h2>Universal distortion penalty</h2>",
        "<p><i>endpoint</i>: lowest MSE of any universal decoder on the encoder vs the end-to-end MSE-only "
        f"model (the anchor's figure: {ANCHOR_PENALTY:.1%}). <i>max gap</i>: largest relative MSE gap at equal "
        "CE (or W1) where both curves overlap.</p>",
        _table(
            [
                "objective",
                "encoder",
                "e2e MSE-only",
                "universal best MSE",
                "endpoint penalty",
                "max gap",
                "at CE/W1",
            ],
            [
                [
                    p.objective,
                    p.encoder,
                    p.e2e_mse_only,
                    p.universal_best_mse,
                    f"{p.endpoint:.1%}",
                    "-" if p.max_gap is None else f"{p.max_gap:.1%}",
                    p.max_gap_at,
                ]
                for p in result.penalties
            ],
        ),
    ]
    if result.shared_heads:
        parts += [
            "<h3>Heads of the shared (multi-objective) encoder</h3>",
            _table(
                ["encoder", "lambda_c", "lambda_p", "MSE", "CE", "acc"],
                [
                    [h["encoder"], h["lambda_c"], h["lambda_p"], h["mse"], h["ce"], h["accuracy"]]
                    for h in result.shared_heads
                ],
            ),
        ]
    parts += [
        "<h2>Anchor (published, 60k training digits, 4.755 bits)</h2>",
        _table(["model", "lambda", "MSE", "other"], [list(r) for r in ANCHOR_RDC + ANCHOR_RDP]),
        "<h2>Figures</h2>",
    ]
    parts += [f"<p><b>{escape(n)}</b><br>{img_tag(png, alt=n)}</p>" for n, png in figures.items()]
    parts.append("<h2>Sample test reconstructions (one digit of each class)</h2><table>")
    strips = {"original": result.originals} if result.originals is not None else {}
    for name, images in {**strips, **result.samples}.items():
        parts.append(
            f"<tr><td>{escape(name)}</td><td>{img_tag(_strip_png(images), alt=name)}</td></tr>"
        )
    parts.append("</table>")
    return parts
