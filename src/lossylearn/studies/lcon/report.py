"""The sections of an LCoN study's report.html (:func:`report_sections`); the page itself is
:func:`lossylearn.studies.common.write_report`'s."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from lossylearn.studies.common import escape as _e
from lossylearn.studies.common import html_table, img_tag

__all__ = ["STYLE", "accuracy_table", "privacy_section", "report_sections"]

#: The page's CSS.
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1180px;
color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.86em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}code,pre{background:#f6f6f6;padding:.1em .3em;border-radius:3px}
pre{padding:.6em;overflow-x:auto;white-space:pre-wrap}.ok{color:#17702a;font-weight:600}.no{color:#b3261e;font-weight:600}
.na{color:#777}.figs{display:flex;flex-wrap:wrap;gap:8px}.figs img{max-width:380px;border:1px solid #eee}
img.wide{max-width:100%;border:1px solid #eee}.muted{color:#666;font-size:.9em}
"""


def _img(path: Path, cls: str = "", alt: str = "") -> str:
    return img_tag(path.read_bytes(), alt=alt or path.stem, cls=cls)


def _pct(m: float, s: float, n: int) -> str:
    return f"{100 * m:.1f}" + (f" ± {100 * s:.1f}" if n > 1 else "")


def _col(test: str, eps: float) -> str:
    return test if not eps else f"{test} {eps:g}"


def accuracy_table(summary: list[dict[str, Any]], sweep: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of mean ± std accuracy (%) per (PSNR or target, scheme) and test set."""
    order = ["clean", "noisy", "lcon", "fgsm", "lcon-fgsm", "pgd"]
    cols = sorted({(s["test"], s["epsilon"]) for s in summary if s["sweep"] == sweep},
                  key=lambda c: (order.index(c[0]) if c[0] in order else 9, c[1]))  # fmt: skip
    cells: dict[tuple[float, float, str], dict[tuple[str, float], str]] = defaultdict(dict)
    extra: dict[tuple[float, float, str], tuple[int, int]] = {}
    for s in summary:
        if s["sweep"] != sweep:
            continue
        key = (s["psnr"], s["target_distortion"], s["train"])
        cells[key][(s["test"], s["epsilon"])] = _pct(s["mean"], s["std"], s["n_seeds"])
        extra[key] = (s["n_train"], s["n_seeds"])
    first = (
        ["PSNR (dB)", "train", "n_train", "seeds"]
        if sweep == "noise"
        else ["target", "reached", "n_train", "seeds"]
    )
    head = first + [_col(t, e) for t, e in cols]
    sch = {"clean": 0, "noisy": 1, "lcon": 2}
    rows = []
    achieved = {
        s["target_distortion"]: s["achieved_distortion"] for s in summary if s["sweep"] == sweep
    }
    for key in sorted(cells, key=lambda k: (k[0], k[1], sch.get(k[2], 9))):
        p, t, train = key
        lead = [f"{p:g}", train] if sweep == "noise" else [f"{t:g}", f"{achieved[t]:.0f}"]
        rows.append(
            lead + [str(extra[key][0]), str(extra[key][1])] + [cells[key].get(c, "") for c in cols]
        )
    return head, rows


def _section(cfg: dict[str, Any]) -> str:
    if cfg["codec"] == "learned":
        return "section VI-B (Fig. 4: Laplacian noise, a learned codec trained for MAE)"
    return "section VI-A (Fig. 2 and Fig. 3)"


def _codec_training_section(results: dict[str, Any]) -> str:
    """The learned codecs: one per store, trained on the held-out codec split."""
    rows = [
        [
            _e(r["store"]), r["metric"].upper(), f"{r['target']:.4g}",
            f"{r['held_out_distortion']:.4g}", f"{r['lmbda']:.4g}",
            f"{r['held_out_bpp_estimated']:.3f}",
            "<span class='ok'>yes</span>" if r["reached"] else "<span class='no'>no</span>",
            str(len(r["rounds"])), f"{r['train_images']} / {r['validation_images']}",
            "reused" if r["reused"] else f"{r['seconds']:.0f} s",
        ]
        for r in results["codec_training"]
    ]  # fmt: skip
    n = results["dataset"].get("n_codec_train", 0)
    return (
        "<h2>Learned codecs</h2>"
        + html_table(
            [
                "store",
                "metric",
                "target",
                "held-out",
                "lambda",
                "est. bpp",
                "within tolerance",
                "rounds",
                "train / validation images",
                "time",
            ],
            rows,
            left=1,
        )  # fmt: skip
        + f"<p class='muted'>Each store's codec was trained on the noisy versions of {n} training "
        "images held out from every classifier (the paper's section VI-B does the same); the lambda "
        "search stops when the held-out distortion to the noisy images is within the tolerance of "
        "the target. The storage table above measures the stored set itself.</p>"
    )


def _privacy_figures(privacy: dict[str, Any]) -> dict[str, Any]:
    """The figures a store's manifest states: its guarantee, or (seeded) ``if_unseeded``."""
    return privacy if privacy.get("guarantee") else privacy.get("if_unseeded", {})


def privacy_section(stores: list[dict[str, Any]]) -> str:
    """The privacy of every store, from its manifest: the guarantee, or, for a seeded store, a
    plain statement that it has none and what the same noise would give unseeded."""
    seeded = [s for s in stores if not s["privacy"].get("guarantee")]
    out = ["<h2>Privacy</h2>"]
    if seeded:
        out.append(
            "<p><b>These study stores carry no privacy guarantee.</b> "
            f"{len(seeded)} of {len(stores)} stores were made with seeded noise, so that the study "
            "can be reproduced; anyone who learns or guesses the seed can regenerate the noise and "
            "subtract it, so their manifests say <code>privacy.guarantee: false</code>. The epsilon "
            "shown for them is what the same noise would give drawn from the operating system's "
            "secure generator (<code>privacy.if_unseeded</code>): what a store made the same way "
            "without <code>--seed</code> would state.</p>"
        )
    rows = []
    for s in stores:
        p = s["privacy"]
        g = _privacy_figures(p)
        per_image = g.get("per_image", {})
        rows.append([
            _e(s["name"]),
            "<span class='ok'>yes</span>" if p.get("guarantee") else "<span class='no'>none (seeded)</span>",
            _e(g.get("mechanism", p.get("mechanism", ""))),
            _e(format(g["epsilon"], ".4g")) if "epsilon" in g else "",
            _e(format(g["delta"], ".3g")) if "delta" in g else "",
            _e(g.get("unit", "")),
            _e(format(per_image["epsilon"], ".4g")) if "epsilon" in per_image else "",
        ])  # fmt: skip
    head = ["store", "guarantee", "mechanism", "epsilon (if unseeded)" if seeded else "epsilon",
            "delta", "unit protected", "epsilon per whole image"]  # fmt: skip
    out.append(html_table(head, rows, left=3))
    out.append("<p>Each manifest's own statement:</p><ul>")
    for s in stores:
        out.append(f"<li><b>{_e(s['name'])}</b>: {_e(s['privacy'].get('statement', ''))}</li>")
    out.append("</ul>")
    nc = next(
        (s["privacy"]["not_covered"] for s in stores if s["privacy"].get("not_covered")), None
    )
    if nc:
        out.append(
            "<p class='muted'>Not covered by any guarantee: "
            + "; ".join(_e(x) for x in nc)
            + ".</p>"
        )
    return "".join(out)


def audit_section(stores: list[dict[str, Any]], figures: dict[str, Path]) -> str:
    """Links to the audits of the study's stores (``lossylearn study privacy`` writes them; their
    link files sit beside the stores in ``out/stores``), or how to get one."""
    from lossylearn.audit.link import read_link

    out = next(iter(figures.values())).parent.parent if figures else None
    rows = []
    for s in stores if out is not None else []:
        link = read_link(out / s["path"], None)
        if link is not None and link.get("audit"):
            rows.append([
                _e(s["name"]), f"{100 * float(link['top1']):.1f}%", _e(link.get("best_attack", "")),
                f"{float(link['leakage_bits_per_pixel']):.4f}",
                f"<a href='{_e(link['audit'])}/audit.html'>{_e(link['audit'])}</a>",
            ])  # fmt: skip
    head = "<h2>Re-identification audits</h2>"
    if not rows:
        return head + (
            "<p class='muted'>No audit of these stores yet: <code>lossylearn study privacy</code> "
            "audits noisy and LCoN stores across the noise grid (re-identification in a pool of "
            "clean images, a leakage bound, membership inference).</p>"
        )
    return head + html_table(
        ["store", "top-1 re-identified", "best attack", "leakage bound (bits/px)", "audit"],
        rows,
        left=1,
    )


def report_sections(results: dict[str, Any], figures: dict[str, Path]) -> list[str]:
    """The HTML sections of a study's report, from its results.json payload and figure files."""
    cfg = results["config"]
    ds = results["dataset"]
    parts: list[str] = [
        "<h1>LCoN study: private, compressed training data vs clean and noisy data</h1>",
        f"<p class='muted'>Reproduces {_section(cfg)} of Isik &amp; Weissman on "
        f"<b>{_e(ds['name'])}</b> ({_e(ds['source'])}). Profile <b>{_e(cfg['profile'])}</b>; "
        f"{ds['n_train_pool']} training images in the pool, {ds['n_test']} test images, image shape "
        f"{_e(tuple(ds['image_shape']))}; model {_e(results['model']['name'])} "
        f"({results['model']['parameters']:,} parameters), {cfg['epochs']} epochs"
        f"{' of the whole pool for every scheme (equal optimizer steps)' if cfg.get('equal_steps') else ' over each scheme own set'}, "
        f"seeds {_e(cfg['seeds'])}; "
        f"noise {_e(cfg['noise'])}, codec {_e(cfg['codec'])} matched to the "
        f"{_e(cfg.get('match_noise', 'nominal'))} noise distortion; storage calibration "
        f"{'on' if cfg['calibrate'] else 'off (equal counts)'}.</p>",
        "<h2>Command</h2>",
        f"<pre>{_e(results.get('command') or '(called from Python)')}</pre>",
    ]

    parts.append("<h2>Do the paper's claims hold here?</h2>")
    claim_rows = []
    for c in results["claims"]:
        mark = (
            ("<span class='ok'>holds</span>" if c["holds"] else "<span class='no'>fails</span>")
            if c["holds"] is not None
            else "<span class='na'>n/a</span>"
        )
        claim_rows.append([_e(c["statement"]), mark, _e(c["detail"])])
    parts.append(html_table(["claim", "here", "evidence (means over seeds)"], claim_rows, left=3))

    parts.append("<h2>Figures</h2><div class='figs'>")
    for name in sorted(figures):
        if name.startswith("fig"):
            parts.append(_img(figures[name], alt=name))
    parts.append(
        "</div><p class='muted'>Error bars: sample standard deviation over seeds (none with one seed). "
        "PSNR is that of the noisy images as set by the noise variance, before compression. "
        "Panel (d): filled markers are FGSM images computed against the model under test from clean test "
        "images; empty markers are the same images after LCoN processing (the paper's LCoN-adv). "
        "Panel (e): accuracy under PGD (L-inf, from a seeded random start), the stronger extra attack, against the model under test. Fig. 3's x axis is the distortion the codec really reached.</p>"
    )

    parts.append("<h2>Storage: bits per pixel and calibration</h2>")
    srows = []
    stores = {s["psnr"]: s for s in results["stores"] if s["sweep"] == "noise"}
    for cal in results["calibration"]:
        s = stores[cal["psnr"]]
        sch = cal["schemes"]
        srows.append([
            f"{cal['psnr']:g}", f"{s['bits_per_pixel']:.3f}", str(s["quality"]),
            f"{s['target_distortion']:.4g} ({_e(s.get('target_basis', ''))})",
            f"{s['achieved_distortion']:.4g}",
            "<span class='ok'>yes</span>" if s["target_reached"] else "<span class='no'>no</span>",
            f"{cal['png_bits_per_pixel']['clean']:.3f}", f"{cal['png_bits_per_pixel']['noisy']:.3f}",
            " / ".join(str(sch[k]["n_train"]) for k in ("clean", "noisy", "lcon")),
            " / ".join(f"{sch[k]['train_bits'] / 8e3:.1f}" for k in ("clean", "noisy", "lcon")),
            f"{100 * max(v['relative_gap'] for v in sch.values()):.2f}%",
        ])  # fmt: skip
    parts.append(html_table(
        ["PSNR (dB)", "LCoN bpp", "quality", f"target {cfg['noise'] == 'gaussian' and 'MSE' or 'MAE'}",
         "reached", "target met", "clean PNG bpp", "noisy PNG bpp", "n_train clean/noisy/LCoN",
         "kB clean/noisy/LCoN", "max gap to budget"], srows, left=1))  # fmt: skip
    parts.append(
        "<p class='muted'>Bits per pixel count every stored byte (coded payloads plus headers shared by the "
        "whole set, e.g. JPEG tables) over all pixel positions. Clean and noisy training sets are counted at "
        "their lossless PNG size with the PNG header counted once. Each scheme keeps the longest prefix of its "
        "randomly ordered examples that fits in the common budget. The target's basis is the "
        "manifest's: <i>nominal</i> = sigma^2 (MSE) or b (MAE); <i>effective</i> = the distortion "
        "the noise really adds after clipping, estimated from the noisy images the store holds.</p>"
    )
    if results.get("codec_training"):
        parts.append(_codec_training_section(results))
    unmet = [s for s in results["stores"] if not s["target_reached"]]
    if unmet:
        parts.append("<p><b>Codec notes.</b></p><ul>" + "".join(
            f"<li>{_e(s['name'])}: {_e(s['message'])}</li>" for s in unmet) + "</ul>")  # fmt: skip

    parts.append("<h2>Accuracy (%), noise-level sweep (Fig. 2)</h2>")
    head, rows = accuracy_table(results["summary"], "noise")
    parts.append(html_table(head, rows, left=2))
    if any(s["sweep"] == "distortion" for s in results["summary"]):
        parts.append(
            f"<h2>Accuracy (%), distortion sweep at fixed noise (Fig. 3; matched distortion "
            f"{results['sweep_matched_distortion']:g})</h2>"
        )
        head, rows = accuracy_table(results["summary"], "distortion")
        parts.append(html_table(head, rows, left=2))

    parts.append("<h2>Sample images (test set)</h2>")
    for name in ("samples_noise", "samples_distortion"):
        if name in figures:
            parts.append(_img(figures[name], cls="wide", alt=name))

    parts.append(privacy_section(results["stores"]))
    parts.append(audit_section(results["stores"], figures))

    t = results["timing"]
    parts.append("<h2>Versions and cost</h2>")
    parts.append(
        html_table(
            ["component", "version"],
            [[_e(k), _e(v)] for k, v in results["versions"].items()],
            left=2,
        )
    )
    parts.append(
        f"<p>{t['models_trained']} models trained; seconds: compress {t['compress']}, calibrate "
        f"{t['calibrate']}, train {t['train']}, evaluate {t['evaluate']}, total {t['total']}.</p>"
    )
    parts.append(
        "<p class='muted'>All numbers are in results.json and results.csv next to this page.</p>"
    )
    return parts
