"""The root ``lossylearn`` command, its sub-command groups, and the one error path of the CLI.

Commands raise :class:`~lossylearn.errors.LossylearnError` for anything the user can fix and never
catch it; :func:`_one_error_path` prints it as ``error: MESSAGE`` on one line of stderr and exits
with status 2. The root command runs every sub-command inside it, so :func:`main` (the console
script) and ``typer.testing.CliRunner`` on :data:`app` show exactly the same thing.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from lossylearn.cli import audit, codec, compress, study, theory, universal
from lossylearn.errors import LossylearnError
from lossylearn.version import __version__

__all__ = ["app", "main"]

console = Console(stderr=True)
out_console = Console()


def _fail(message: str) -> NoReturn:
    """``error: MESSAGE`` on one line of stderr (file names and other text from the user's data
    are printed literally, never as markup), exit status 2."""
    console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)


@contextmanager
def _one_error_path() -> Iterator[None]:
    """The CLI's only handler of user errors: every command's LossylearnError (and any file system
    refusal no check foresaw) ends here as one line and exit status 2."""
    try:
        yield
    except LossylearnError as exc:
        _fail(str(exc))
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # output closed early (``| head``): Typer exits quietly
            raise
        _fail((f"{exc.filename}: " if exc.filename else "") + str(exc.strerror or exc))
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: an unfinished store can be completed with --resume")
        sys.exit(130)


class _Root(TyperGroup):
    """The root command: runs every sub-command inside :func:`_one_error_path`."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        with _one_error_path():
            return super().main(*args, **kwargs)


app = typer.Typer(
    name="lossylearn",
    cls=_Root,
    help=(
        "Lossy compression of machine-learning data that keeps what learning needs.\n\n"
        "LCoN: inject noise calibrated to a privacy target or a PSNR, then compress with a codec "
        "whose distortion matches the noise (MSE = sigma^2 for Gaussian, MAE = b for Laplacian). "
        "The stored images are samples from the posterior of the clean data: small, private, and "
        "still good for training.\n\n"
        "Start with:  lossylearn compress --dataset mnist --noise gaussian --psnr 20 --codec jpeg --out S"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        out_console.print(f"lossylearn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Lossy compression of machine-learning data that keeps what learning needs."""


app.command()(compress.compress)
app.command()(compress.inspect)
app.command()(compress.export)
app.command()(audit.audit)
app.add_typer(study.app, name="study")
app.add_typer(codec.app, name="codec")
app.add_typer(theory.app, name="theory")
app.add_typer(universal.app, name="universal")


def main() -> None:
    """Console-script entry point (``lossylearn``, ``python -m lossylearn.cli``): one-line errors
    and exit status 2 for user mistakes, 130 when interrupted (the root command's
    :func:`_one_error_path`)."""
    app()
