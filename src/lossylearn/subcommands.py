"""Mounts the sub-applications (theory, learned codec, studies) on the main command line."""

from __future__ import annotations

import typer


def mount(app: typer.Typer) -> None:
    """Attach the ``codec`` (learned codec), ``study`` (``lcon``, ``urdc``) and ``theory`` groups."""
    from lossylearn.codecs.learned.cli import app as codec_app
    from lossylearn.studies.cli import app as lcon_app
    from lossylearn.theory.cli import app as theory_app
    from lossylearn.urdc.cli import app as urdc_app

    study = typer.Typer(
        help="Experiments with quick (CI-sized) and paper profiles: results.json, figures, report.html.",
        no_args_is_help=True,
    )
    study.add_typer(lcon_app, name="lcon")
    study.add_typer(urdc_app, name="urdc")
    app.add_typer(study, name="study")
    app.add_typer(codec_app, name="codec")
    app.add_typer(theory_app, name="theory")
