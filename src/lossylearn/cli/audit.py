"""``lossylearn audit STORE --out DIR``: what a store leaks about the people in it (data owner only).

torch and the audit load only inside the command.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["audit", "privacy_app"]


def audit(
    store: Annotated[
        Path, typer.Argument(help="A store folder (its owner file beside it, if you have it).")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder for audit.json, audit.html and figures/ (never inside the store: the audit "
            "is derived from the clean data).",
        ),
    ],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the clean dataset the store was made from, when the manifest's dataset "
            "needs files (IDX, CelebA, image folder); checked against the owner file's fingerprint."
        ),
    ] = None,
    pool: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Candidates the attacker ranks: the store's sources plus distractors from the "
            "same split, then the other split (default: every image of the dataset).",
        ),
    ] = None,
    queries: Annotated[
        int | None,
        typer.Option(min=1, help="Attack only this many stored images (a seeded random subset)."),
    ] = None,
    membership: Annotated[
        bool,
        typer.Option(
            "--membership",
            help="Also train a classifier on the store and run a loss-threshold membership "
            "inference attack on it (clean members vs never-stored images).",
        ),
    ] = False,
    attacks: Annotated[
        str,
        typer.Option(
            help="Comma-separated attacks: pixel-nn, denoised-nn, likelihood (lossless "
            "Gaussian stores only), feature-nn."
        ),  # fmt: skip
    ] = "pixel-nn,denoised-nn,likelihood,feature-nn",
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads.")] = 1,
    seed: Annotated[
        int, typer.Option(help="Seed of the query subset and the attacker's models.")
    ] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print audit.json instead of the summary.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    codec_checkpoint: Annotated[
        Path | None,
        typer.Option(help="A learned-codec store's checkpoint, when not where it records."),
    ] = None,
) -> None:
    """Re-identify each stored image in a pool of clean images (the attacker's best of several
    attacks), bound I(clean; stored) per pixel, and optionally run membership inference; write
    audit.json, audit.html and figures into --out and link them beside the store."""
    from lossylearn.audit.run import AuditConfig
    from lossylearn.audit.run import audit as run_audit
    from lossylearn.cli.parse import strings

    err = Console(stderr=True)
    config = AuditConfig(
        pool=pool, queries=queries, attacks=strings(attacks),
        membership=membership, seed=seed, threads=threads, progress=progress,
    )  # fmt: skip
    command = " ".join(["lossylearn audit", *(shlex.quote(a) for a in sys.argv[2:])])
    result = run_audit(
        store, out, data_dir=data_dir, config=config, command=command,
        log=(lambda s: err.print(s, highlight=False)) if progress else None,
        codec_checkpoint=str(codec_checkpoint) if codec_checkpoint else None,
    )  # fmt: skip
    doc = result.doc
    if as_json:
        Console().print_json(json.dumps(doc))
        return
    r, lb, mem = doc["reidentification"], doc["leakage_bound"], doc.get("membership")
    t = Table(title=f"audit of {store}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    for a in r["attacks"]:
        t.add_row(a["name"], f"top-1 {a['top1']:.2%}, top-5 {a['top5']:.2%}")
    t.add_row(
        "re-identified",
        f"[bold]{r['top1']:.2%}[/] top-1 ({r['best_attack']}) of {r['n_queries']} in a pool of "
        f"{r['pool_size']}; chance {r['chance_top1']:.3%}",
    )
    t.add_row(
        "leakage bound",
        f"{lb['bits_per_pixel']:.4f} bits/pixel ({lb['bits_per_image']:.1f} bits/image), basis "
        f"{lb['basis']} (stored {lb['stored_bits_per_pixel']:.4f}, channel {lb['channel_bits_per_pixel']:.4f})",
    )
    if mem:
        t.add_row(
            "membership",
            f"AUC {mem['auc']:.3f} (loss threshold, {mem['n_members']} + {mem['n_nonmembers']})",
        )
    Console().print(t)
    err.print(
        f"wrote {out / 'audit.json'} and {out / 'audit.html'} (derived from clean data: keep them with the owner)"
    )


privacy_app = typer.Typer(
    name="privacy",
    help="Audit noisy and LCoN stores across the paper's noise grid (re-identification, leakage "
    "bound, membership inference) beside LCoN accuracy; tests whether compression makes "
    "individuals less re-identifiable than noise alone.",
    add_completion=False,
    invoke_without_command=True,
)


@privacy_app.callback(invoke_without_command=True)
def privacy(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Output folder: results.json, figures/, report.html, audits/ (no stores)."
        ),
    ],
    profile: Annotated[
        str, typer.Option(help="quick (embedded MNIST, ~2 min) or paper (the paper's grid).")
    ] = "quick",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="MNIST folder (the official t10k files add the 10k test digits to the pool)."
        ),
    ] = None,
    variants: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated store families: jpeg-nominal, jpeg-effective, "
            "learned-nominal, learned-effective (default: the profile's)."
        ),  # fmt: skip
    ] = None,
    psnr: Annotated[
        str | None, typer.Option(help="Comma-separated PSNR grid in dB (default: the profile's).")
    ] = None,
    n_train: Annotated[
        int | None, typer.Option(min=20, help="Training pool size (the stores' images).")
    ] = None,
    n_test: Annotated[int | None, typer.Option(min=10, help="Test images for accuracy.")] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Classifier epochs of the LCoN runs.")
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Comma-separated training seeds of the LCoN runs.")
    ] = None,
    pool: Annotated[
        int | None,
        typer.Option(min=2, help="Candidates per audit (default: the profile's; paper: all)."),
    ] = None,
    queries: Annotated[
        int | None, typer.Option(min=1, help="Stored images attacked per store (default: all).")
    ] = None,
    membership_psnr: Annotated[
        str | None, typer.Option(help="PSNRs with a membership attack.")
    ] = None,
    membership_epochs: Annotated[
        int | None, typer.Option(min=1, help="Epochs of the membership attack's target model.")
    ] = None,
    feature_epochs: Annotated[
        int | None, typer.Option(min=1, help="Epochs of the attacker's feature model.")
    ] = None,
    work: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the stores and LCoN runs (kept, reused by a rerun); default: "
            "a temporary folder removed at the end."
        ),  # fmt: skip
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads.")] = 1,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Run the privacy study; write results.json, figures/, report.html and audits/ into --out."""
    from lossylearn.cli.parse import floats, ints, strings
    from lossylearn.studies.privacy import privacy_config, run_privacy_study

    err = Console(stderr=True)
    config = privacy_config(
        profile, data_dir=str(data_dir) if data_dir else None,
        variants=strings(variants) if variants else None, psnrs=floats(psnr, "--psnr"),
        n_train=n_train, n_test=n_test, epochs=epochs, seeds=ints(seeds, "--seeds"), pool=pool,
        queries=queries, membership_psnrs=floats(membership_psnr, "--membership-psnr"),
        membership_epochs=membership_epochs, feature_epochs=feature_epochs,
        threads=threads, progress=progress,
    )  # fmt: skip
    command = " ".join(["lossylearn study privacy", *(shlex.quote(a) for a in sys.argv[3:])])
    result = run_privacy_study(
        config, out, work=work, command=command,
        log=(lambda s: err.print(s, highlight=False)) if progress else None,
    )  # fmt: skip
    t = Table(title="privacy study")
    for col in (
        "variant",
        "store",
        "PSNR",
        "top-1",
        "leakage bits/px",
        "accuracy",
        "membership AUC",
    ):
        t.add_column(col)
    for r in result.payload["rows"]:
        t.add_row(
            r["variant"], r["kind"], f"{r['psnr']:g}", f"{r['top1']:.1%}",
            f"{r['leakage_bits_per_pixel']:.3f}",
            "" if r.get("accuracy") is None else f"{r['accuracy']:.1%}",
            "" if r.get("membership_auc") is None else f"{r['membership_auc']:.3f}",
        )  # fmt: skip
    Console().print(t)
    for c in result.payload["claims"]:
        Console().print(
            f"{ {True: 'holds', False: 'fails', None: 'n/a'}[c['holds']] }: {c['statement']}",
            highlight=False,
        )
    err.print(f"report: {out / 'report.html'} ({result.seconds:.0f} s)")
