"""Write the README's result tables from the committed study outputs under ``results/``.

Every table of measured figures in README.md sits between two markers::

    <!-- BEGIN results/NAME (tools/readme_tables.py) -->
    ...
    <!-- END results/NAME -->

and is produced here from ``results/NAME/results.json``, never typed by hand.

    python tools/readme_tables.py           # rewrite README.md in place
    python tools/readme_tables.py --check   # exit 1 if README.md differs from what it would write

The test suite runs ``--check`` (tests/test_readme_tables.py), so a table cannot drift from the
file it claims to come from.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(
    r"(<!-- BEGIN results/(?P<name>[\w.-]+) \(tools/readme_tables.py\) -->\n)(?P<body>.*?)"
    r"(<!-- END results/(?P=name) -->)",
    re.S,
)

Rows = list[dict[str, Any]]


def _load(name: str, root: Path) -> dict[str, Any]:
    path = root / "results" / name / "results.json"
    if not path.is_file():
        raise SystemExit(f"error: README.md has a table for results/{name} but {path} is missing")
    return json.loads(path.read_text())


def _stats(values: Iterable[float]) -> tuple[float, float, int]:
    v = list(values)
    if not v:
        return math.nan, math.nan, 0
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd, len(v)


def _acc(rows: Rows, **match: Any) -> tuple[float, float, int]:
    return _stats(r["accuracy"] for r in rows if all(r[k] == v for k, v in match.items()))


def _pct(m: float) -> str:
    return "-" if math.isnan(m) else f"{100 * m:.1f}"


def _table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out) + "\n"


def _three(rows: Rows, psnr: float, test: str, eps: float = 0.0) -> str:
    """clean / noisy / **LCoN** (+- the LCoN seeds' standard deviation) on one test set."""
    c = _acc(rows, psnr=psnr, train="clean", test=test, epsilon=eps)[0]
    n = _acc(rows, psnr=psnr, train="noisy", test=test, epsilon=eps)[0]
    lm, lsd, k = _acc(rows, psnr=psnr, train="lcon", test=test, epsilon=eps)
    spread = f" +- {100 * lsd:.1f}" if k > 1 else ""
    return f"{_pct(c)} / {_pct(n)} / **{_pct(lm)}**{spread}"


def lcon_tables(res: dict[str, Any]) -> str:
    """Fig. 2 (every PSNR: clean / noisy / LCoN-trained at equal storage), Fig. 3 and the claims."""
    rows = res["rows"]
    cfg = res["config"]
    noise_rows = [r for r in rows if r["sweep"] == "noise"]
    seeds = sorted({r["seed"] for r in rows})
    metric = noise_rows[0]["metric"] if noise_rows else "mse"
    sym = "sigma" if metric == "mse" else "b"
    target = "sigma^2" if metric == "mse" else "b"
    n_test = max((r["n_test"] for r in noise_rows if r["test"] == "clean"), default=0)
    n_adv = max((r["n_test"] for r in noise_rows if r["test"] == "fgsm"), default=0)
    eps_mid = 0.1 if 0.1 in cfg["fgsm_eps"] else cfg["fgsm_eps"][0]
    pgd_eps = cfg["pgd_eps"][0] if cfg["pgd_eps"] else None
    out = [
        f"`{res['command']}` ({len(seeds)} seed(s), {cfg['epochs']} epochs, {n_test:,} test "
        f"images, attacks on {n_adv:,}; {res['timing']['models_trained']} models in "
        f"{res['timing']['total'] / 60:.0f} min). Accuracy %, trained on clean / noisy / "
        f"**LCoN** images at equal stored bits (mean over seeds; +- the LCoN models' standard "
        f"deviation):\n\n"
    ]
    header = ["PSNR (dB)", sym, "LCoN bpp", f"stored {metric.upper()} / {target}",
              "clean test", "noisy test", "LCoN test", f"FGSM {eps_mid:g}",
              f"LCoN-FGSM {eps_mid:g}"] + ([f"PGD {pgd_eps:g}"] if pgd_eps is not None else [])  # fmt: skip
    lines = []
    for psnr in sorted({r["psnr"] for r in noise_rows}):
        r0 = next(r for r in noise_rows if r["psnr"] == psnr and r["train"] == "lcon")
        ratio = r0["achieved_distortion"] / r0["target_distortion"]
        reached = "" if r0["target_reached"] else " (not reached)"
        cells = [f"{psnr:g}", f"{r0['noise_sigma']:.1f}", f"{r0['bits_per_pixel']:.3f}",
                 f"{ratio:.2f}{reached}", _three(noise_rows, psnr, "clean"),
                 _three(noise_rows, psnr, "noisy"), _three(noise_rows, psnr, "lcon"),
                 _three(noise_rows, psnr, "fgsm", eps_mid),
                 _three(noise_rows, psnr, "lcon-fgsm", eps_mid)]  # fmt: skip
        if pgd_eps is not None:
            cells.append(_three(noise_rows, psnr, "pgd", pgd_eps))
        lines.append(cells)
    out.append(_table(header, lines))
    sweep = [r for r in rows if r["sweep"] == "distortion"]
    if sweep:
        matched = res.get("sweep_matched_distortion")
        out.append(
            f"\nFig. 3 (PSNR {sweep[0]['psnr']:.1f} dB, LCoN-trained on the whole store, codec "
            f"{metric.upper()} target swept around the matched {matched:g}): accuracy % "
            "(mean +- standard deviation over seeds)\n\n"
        )
        by_t: dict[float, Rows] = defaultdict(list)
        for r in sweep:
            by_t[r["target_distortion"]].append(r)
        lines = []
        for t in sorted(by_t):
            rs = by_t[t]
            cells = [f"{t:g}" + (" (matched)" if matched and math.isclose(t, matched) else ""),
                     f"{rs[0]['achieved_distortion']:.0f}", f"{rs[0]['bits_per_pixel']:.3f}"]  # fmt: skip
            for test in ("clean", "noisy", "lcon"):
                m, sd, k = _stats(r["accuracy"] for r in rs if r["test"] == test)
                cells.append(_pct(m) + (f" +- {100 * sd:.1f}" if k > 1 else ""))
            lines.append(cells)
        out.append(_table(["target", "reached", "bpp", "clean test", "noisy test", "LCoN test"],
                          lines))  # fmt: skip
    out.append(
        "\nThe paper's claims, checked by the study (`claims` in results.json has the full "
        "evidence):\n\n"
    )
    shown: set[str] = set()
    for c in res["claims"]:
        verdict = {True: "holds", False: "does not hold", None: "not tested"}[c["holds"]]
        detail = c["detail"].split(". Codec:")[0]  # the codec's own explanation stays in the file
        out.append(
            f"- **{verdict}**: {c['statement']}" + ("" if detail in shown else f". {detail}") + "\n"
        )
        shown.add(detail)
    return "".join(out)


def _short_encoder(name: str) -> str:
    """``e2e-3x3-c0.015-p0`` -> ``end-to-end lambda_c 0.015``; shared encoders keep their heads."""
    if name.startswith("shared-"):
        heads = name.split("-", 2)[2].removesuffix("-warm").split("+")
        lams = sorted({h.split("-")[0].lstrip("c") for h in heads}, key=float)
        return (
            "shared (heads lambda_c "
            + ", ".join(lams)
            + ")"
            + (" warm-started" if name.endswith("-warm") else "")
        )
    _, _, c, p = name.split("-")
    c, p = c.lstrip("c"), p.lstrip("p")
    return f"end-to-end lambda_p {p}" if float(p) > 0 else f"end-to-end lambda_c {c}"


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _urdc_minutes(meta: dict[str, Any]) -> str:
    runs = [*meta.get("earlier_runs_elapsed_s", []), meta["elapsed_s"]]
    if len(runs) == 1:
        return f"{runs[0] / 60:.0f} min"
    return f"{sum(runs) / 60:.0f} min in {len(runs)} runs, the last resuming the trained models"


def urdc_tables(res: dict[str, Any]) -> str:
    """The anchor's published points beside ours, every decoder at the universal rate, the
    universal penalties, and the penalty figure (results/urdc/fig_penalty.png)."""
    from lossylearn.studies.urdc.report import ANCHOR_PENALTY, anchor_comparison
    from lossylearn.studies.urdc.results import ResultRow

    rows = [ResultRow(**r) for r in res["rows"]]
    prof, meta = res["profile"], res["meta"]
    d, levels = prof["universal_rate"]
    bits = d * math.log2(levels)
    n_models = len({r.model for r in rows})
    out = [
        f"`{meta.get('command', '(not recorded)')}` ({n_models} decoders; {meta['data']['train']:,} "
        f"training and {meta['data']['test']:,} test digits; {prof['decoder']} decoder; encoders "
        f"{prof['epochs']} epochs; {_urdc_minutes(meta)}). Ours next to the anchor's published "
        f"points (trained on 60k digits):\n\n"
    ]
    lines = [[str(c[0]), str(c[1]), str(c[2]), f"{c[3]:.4f} / {c[4]:.4f}", f"{c[5]} / {c[6]}",
              str(c[7])] for c in anchor_comparison(rows)]  # fmt: skip
    out.append(_table(["model", "bits", "lambda", "MSE anchor / ours", "CE or W1 anchor / ours",
                       "accuracy (ours)"], lines))  # fmt: skip
    out.append(
        f"\nEvery decoder at {bits:.3f} bits (universal: a new decoder on the frozen encoder; W1 "
        "from a fresh critic, the training critic's estimate in brackets):\n\n"
    )
    unique = {r.model: r for r in reversed(rows)}  # a model on both curves: one line
    at_rate = sorted(
        (r for r in unique.values() if abs(r.rate_bits - bits) < 1e-9),
        key=lambda r: (r.mode != "end-to-end", r.encoder, r.objective, r.lambda_c, r.lambda_p),
    )
    lines = []
    for r in at_rate:
        w1 = _num(r.w1, ".3f") + (
            f" [{r.w1_training_critic:.3f}]" if r.w1_training_critic is not None else ""
        )
        lines.append([r.mode, _short_encoder(r.encoder), f"{r.lambda_c:g}", f"{r.lambda_p:g}",
                      f"{r.mse:.4f}", f"{r.ce:.3f}", f"{100 * r.accuracy:.1f}", w1])  # fmt: skip
    out.append(_table(["mode", "encoder", "lambda_c", "lambda_p", "MSE", "CE (nats)",
                       "accuracy %", "W1"], lines))  # fmt: skip
    others = sorted({(r.latent_dim, r.levels) for r in rows} - {(d, levels)})
    for dd, ll in others:
        e2e = [r for r in rows if (r.latent_dim, r.levels) == (dd, ll) and r.mode == "end-to-end"]
        cls = sorted((r for r in e2e if r.objective == "classification"), key=lambda r: r.lambda_c)
        per = sorted((r for r in e2e if r.objective == "perception"), key=lambda r: r.lambda_p)
        parts = []
        if cls:
            parts.append(f"lambda_c {cls[0].lambda_c:g} to {cls[-1].lambda_c:g}: MSE "
                         f"{cls[0].mse:.4f} to {cls[-1].mse:.4f} (CE {cls[0].ce:.3f} to "
                         f"{cls[-1].ce:.3f})")  # fmt: skip
        if per:
            parts.append(f"lambda_p {per[0].lambda_p:g} to {per[-1].lambda_p:g}: MSE "
                         f"{per[0].mse:.4f} to {per[-1].mse:.4f} (W1 {_num(per[0].w1, '.3f')} to "
                         f"{_num(per[-1].w1, '.3f')})")  # fmt: skip
        out.append(f"\nAt {dd * math.log2(ll):.3f} bits, end to end: " + "; ".join(parts) + ".\n")
    out.append(
        "\nUniversal distortion penalty (MSE of the best universal decoder over the end-to-end "
        f"MSE-only model; the anchor's is {100 * ANCHOR_PENALTY:.1f}%), and the largest gap to the "
        "end-to-end curve at equal CE or W1:\n\n"
    )
    lines = [[p["objective"], _short_encoder(p["encoder"]), f"{100 * p['endpoint']:.1f}%",
              "-" if p["max_gap"] is None else f"{100 * p['max_gap']:.1f}% at {p['max_gap_at']:.3g}"]
             for p in res["penalties"]]  # fmt: skip
    out.append(_table(["objective", "frozen encoder", "penalty at the MSE end",
                       "largest gap at equal CE / W1"], lines))  # fmt: skip
    out.append("\n![universal distortion penalty](results/urdc/fig_penalty.png)\n")
    return "".join(out)


def codec_tables(res: dict[str, Any]) -> str:
    """The learned codec's issue-15 figures: the default ladder's training time and BD-rates,
    coding and ``compress`` throughput against JPEG, and training steps with a competitor."""
    out = [f"`{res['command']}` ({res['cpu_count']} cores; 1-minute load average "
           f"{res['load_average_1min']:.1f} at the end):\n\n"]  # fmt: skip
    ladder = res.get("ladder")
    if ladder:
        bd = ladder["bd_rate"]
        out.append(
            f"`{ladder['command']}` trained in {ladder['train_minutes']:.1f} min (1-minute load "
            f"average {ladder['load_average_before'][0]:.1f} before: other jobs shared the cores); "
            f"on {ladder['eval_images']:,} digits of {ladder['eval_data']}, BD-rate against JPEG "
            f"**{bd['jpeg']:.1f}%** (goal {ladder['goals']['jpeg']:g}%), against WebP "
            f"**{bd['webp']:.1f}%** (goal {ladder['goals']['webp']:g}%).\n\n"
        )
        out.append(_table(["lambda", "bpp (real bytes)", "bpp (model estimate)", "PSNR (dB)"],
                          [[f"{r['lmbda']:g}", f"{r['bpp']:.3f}", f"{r['bpp_estimated']:.3f}",
                            f"{r['psnr']:.2f}"] for r in ladder["learned"]]))  # fmt: skip
    coding, comp = res.get("coding"), res.get("compress")
    if coding and comp:
        lj, c = coding["learned_over_jpeg"], comp["learned_over_jpeg"]
        out.append(
            f"\nCoding {res['images']:,} test digits (rung lambda {coding['learned']['lmbda']:g}, "
            f"{coding['learned']['bpp']:.2f} bpp, {coding['learned']['psnr']:.1f} dB; JPEG quality "
            f"{coding['jpeg']['quality']}, {coding['jpeg']['bpp']:.2f} bpp, "
            f"{coding['jpeg']['psnr']:.1f} dB): encode {coding['learned']['encode_images_per_s']:,.0f}"
            f" vs {coding['jpeg']['encode_images_per_s']:,.0f} images/s ({lj['encode_speed']:.2f}x), "
            f"decode {coding['learned']['decode_images_per_s']:,.0f} vs "
            f"{coding['jpeg']['decode_images_per_s']:,.0f} ({lj['decode_speed']:.2f}x). `compress` "
            f"(noise, code, decode, measure, write; one worker): "
            f"{comp['learned']['images_per_s']:,.0f} vs {comp['jpeg']['images_per_s']:,.0f} "
            f"images/s, **{c['throughput_wall']:.2f}x** JPEG's wall-clock throughput "
            f"({c['throughput_cpu']:.2f}x per CPU second; goal {c['goal']:g}x).\n"
        )
    training = res.get("training")
    if training:
        s = training["summary_seconds_per_step"]
        out.append(
            f"\nSeconds per training step (batch {training['batch_size']}), alone / beside "
            f"{training['competitors']} busy process(es):\n\n"
        )
        names = {"1": "1 thread (the default)", "2": "2 threads",
                 "2_passive": "2 threads, OMP_WAIT_POLICY=PASSIVE"}  # fmt: skip
        out.append(_table(["torch threads", "alone", "contended", "slowdown"],
                          [[label, f"{s['alone'][k]:.3f}", f"{s['contended'][k]:.3f}",
                            f"{s['contended'][k] / s['alone'][k]:.1f}x"]
                           for k, label in names.items()]))  # fmt: skip
    return "".join(out)


BUILDERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "lcon-quick": lcon_tables,
    "lcon-gaussian-jpeg": lcon_tables,
    "lcon-laplace-learned": lcon_tables,
    "lcon-laplace-learned-nominal": lcon_tables,
    "urdc": urdc_tables,
    "codec-speed": codec_tables,
}


def render(readme: str, root: Path = ROOT) -> str:
    """``readme`` with every marked table rewritten from its results file."""

    def one(m: re.Match[str]) -> str:
        name = m.group("name")
        family = name if name in BUILDERS else name.split("-")[0]
        builder = BUILDERS.get(family)
        if builder is None:
            raise SystemExit(f"error: no table builder for results/{name}")
        return m.group(1) + "\n" + builder(_load(name, root)).rstrip("\n") + "\n\n" + m.group(4)

    return MARKER.sub(one, readme)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = ap.parse_args(argv)
    text = args.readme.read_text()
    new = render(text, args.readme.resolve().parent)
    if args.check:
        if new != text:
            print("README.md tables differ from results/: run python tools/readme_tables.py")
            return 1
        return 0
    args.readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
