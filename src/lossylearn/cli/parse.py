"""What every command parses the same way: comma lists, target pairs, and choice enums.

The list parsers raise :class:`~lossylearn.errors.LossylearnError` naming the option; the root
command (:mod:`lossylearn.cli.main`) prints it. The enums are built from the library's own
constants, so a choice the library adds shows up in ``--help`` without a second list here.
Options that several command groups declare alike (``--device``, ``--ray-address``) live here too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Annotated, TypeVar, overload

import typer

from lossylearn.codecs.metrics import DISTORTION_METRICS
from lossylearn.errors import LossylearnError
from lossylearn.export import FORMATS
from lossylearn.pipeline.plan import ENGINES, MATCH_MODES
from lossylearn.pipeline.targets import TARGET_BASES
from lossylearn.privacy.calibration import UNITS
from lossylearn.privacy.mechanisms import KINDS, RANGE_HANDLING
from lossylearn.theory.info import plain

__all__ = [
    "RAY_ADDRESS_HELP",
    "Architecture",
    "DeviceOpt",
    "Distortion",
    "Engine",
    "ExportFormat",
    "MatchMode",
    "MatchNoise",
    "NoiseKind",
    "RangeHandling",
    "TrainNoise",
    "Unit",
    "choices",
    "floats",
    "ints",
    "pairs",
    "strings",
]

T = TypeVar("T")


def choices(name: str, values: Iterable[str]) -> type[StrEnum]:
    """A string enum whose members are ``values``, in order (Typer lists them in ``--help``)."""
    return StrEnum(name, [(v, v) for v in values])  # type: ignore[return-value]


NoiseKind = choices("NoiseKind", KINDS)
Unit = choices("Unit", UNITS)
RangeHandling = choices("RangeHandling", RANGE_HANDLING)
MatchMode = choices("MatchMode", MATCH_MODES)
#: ``given`` is not a choice: ``--target-distortion`` gives the number.
MatchNoise = choices("MatchNoise", (b for b in TARGET_BASES if b != "given"))
ExportFormat = choices("ExportFormat", FORMATS)
Distortion = choices("Distortion", DISTORTION_METRICS)
TrainNoise = choices("TrainNoise", ("none", *KINDS))
Engine = choices("Engine", ENGINES)
#: ``--device`` of the commands that train on torch.
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")]
#: ``--ray-address`` of every command that runs on Ray.
RAY_ADDRESS_HELP = (
    "With --engine ray: the cluster to join (auto, HOST:PORT, ray://HOST:PORT); its nodes must "
    "share --out's filesystem. Default: start a local Ray."
)
#: = ``lossylearn.codecs.learned.models.ARCHITECTURES``, which cannot be imported here: that module
#: loads torch, and ``import lossylearn.cli`` must not.
Architecture = choices("Architecture", ("factorized", "hyperprior"))


def _convert(convert: Callable[[str], T], text: str, message: str) -> T:
    """``convert(text)``, its ValueError reworded as ``message`` (which names the option)."""
    try:
        return convert(text)
    except ValueError:
        raise LossylearnError(message) from None


def _items(text: str, option: str, convert: Callable[[str], T], kind: str) -> tuple[T, ...]:
    """Comma-separated values (spaces ignored, empty items skipped), at least one."""
    message = f"{option} takes comma-separated {kind}s; got {text!r}"
    values = tuple(_convert(convert, v, message) for v in text.replace(" ", "").split(",") if v)
    if not values:
        raise LossylearnError(f"{option} needs at least one {kind}")
    return values


#: What ``floats`` accepts, by (nonneg, allow_inf), for its refusals.
_FLOAT_KINDS = {
    (False, False): "finite numbers",
    (False, True): "numbers (not nan)",
    (True, False): "finite numbers >= 0",
    (True, True): "numbers >= 0 (inf allowed)",
}


@overload
def floats(
    text: str, option: str, *, nonneg: bool = ..., allow_inf: bool = ...
) -> tuple[float, ...]: ...
@overload
def floats(text: None, option: str, *, nonneg: bool = ..., allow_inf: bool = ...) -> None: ...
def floats(
    text: str | None, option: str, *, nonneg: bool = False, allow_inf: bool = True
) -> tuple[float, ...] | None:
    """``'8.1, 10.1'`` -> ``(8.1, 10.1)``; None stays None. NaN is always refused; ``nonneg``
    refuses numbers below 0 and ``allow_inf=False`` refuses +-inf."""
    if text is None:
        return None
    values = _items(text, option, float, "number")
    for v in values:
        if math.isnan(v) or (nonneg and v < 0) or (math.isinf(v) and not allow_inf):
            kind = _FLOAT_KINDS[nonneg, allow_inf]
            raise LossylearnError(f"{option} must be {kind}; got {plain(v)}")
    return values


@overload
def ints(text: str, option: str) -> tuple[int, ...]: ...
@overload
def ints(text: None, option: str) -> None: ...
def ints(text: str | None, option: str) -> tuple[int, ...] | None:
    """``'0,1,2'`` -> ``(0, 1, 2)``; None stays None."""
    if text is None:
        return None
    return _items(text, option, int, "integer")


def strings(text: str) -> tuple[str, ...]:
    """``'jpeg, webp'`` -> ``('jpeg', 'webp')``; empty items are dropped (the result may be empty)."""
    return tuple(s.strip() for s in text.split(",") if s.strip())


def pairs(text: str, option: str, second: str) -> list[tuple[float, float]]:
    """``'0.3:inf;0.45:0'`` -> ``[(0.3, inf), (0.45, 0.0)]``: targets ``D:x`` separated by ``;``,
    each a finite D >= 0 and ``second`` >= 0 (inf allowed)."""
    out = []
    for item in text.replace(" ", "").split(";"):
        if not item:
            continue
        parts = item.split(":")
        if len(parts) != 2:
            raise LossylearnError(f"{option} are 'D:{second};D:{second}'; got {item!r}")
        message = f"{option} must be numbers; got {item!r}"
        D, c = _convert(float, parts[0], message), _convert(float, parts[1], message)
        if not (math.isfinite(D) and D >= 0) or math.isnan(c) or c < 0:
            raise LossylearnError(
                f"{option} need a finite D >= 0 and {second} >= 0 (inf allowed); got {item!r}"
            )
        out.append((D, c))
    if not out:
        raise LossylearnError(f"{option} needs at least one target")
    return out
