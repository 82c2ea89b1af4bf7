"""Study sweeps on Ray (``lossylearn study lcon|urdc ... --engine ray``): one task per point.

A study is a grid of points that do not depend on each other's results: for LCoN one classifier
per (store, scheme, seed), trained and then tested on that store's test sets; for URDC one model
(a universal decoder waits for its encoder's task). A study hands each point to a *sweep*:

* :class:`LocalSweep` (``--engine local``, the default) runs it here, at once, exactly as before;
* :class:`RaySweep` (``--engine ray``) submits it as a Ray task: one GPU when the cluster has
  one (``num_gpus=1``, else 0), ``threads`` CPUs, and torch limited to ``threads`` threads. The
  study's large inputs (training images, test sets) go to the object store once and are shared
  by every task that uses them.

Failures are retried and reported, never dropped:

* A task that raises is rerun by Ray (``retry_exceptions=True``) up to ``retries`` more times; a
  task whose worker or node died is rerun the same way (``max_retries``). Every failed attempt
  notes its error in a small ledger actor before it re-raises, so a point that succeeded on a
  retry is still reported (``retried()``, and ``sweep.json`` beside the results).
* A point that fails every attempt raises :class:`PointFailed` when its value is asked for (with
  its key, last error and attempts). The studies collect these, let every other point finish,
  write what they have (with the failures) and then stop with one error naming each failed point;
  a rerun reuses what was finished (stores, trained models).

Results are gathered in the study's own order, whatever order the tasks finish in, so the rows of
``results.json`` are the local engine's. On a cluster (``--ray-address``) the tasks that read or
write files (URDC's ``models/``) need ``--out`` on a filesystem every node mounts at the same path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from lossylearn.errors import LossylearnError

__all__ = [
    "DEFAULT_RETRIES",
    "ENGINES",
    "Failure",
    "LocalSweep",
    "Pending",
    "PointFailed",
    "RaySweep",
    "Sweep",
    "collect_all",
    "failure_message",
    "open_sweep",
    "write_sweep_log",
]

ENGINES = ("local", "ray")
DEFAULT_RETRIES = 2
"""Reruns of a failed point (3 attempts in all) before it is reported as failed."""
_PRIMITIVE = (str, bytes, int, float, bool, type(None))


@dataclass(frozen=True)
class Failure:
    """A point that failed every attempt."""

    key: str
    error: str
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


class PointFailed(LossylearnError):
    """A sweep point failed every attempt."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(f"{failure.key}: {failure.error} ({failure.attempts} attempts)")
        self.failure = failure


class Point(Protocol):
    """A submitted point: ``get()`` is its value, or raises :class:`PointFailed`."""

    key: str

    def get(self) -> Any: ...


class Sweep(Protocol):
    """Where a study's points run (see the module docstring)."""

    engine: str
    deferred: bool
    """False: ``submit`` has run the point already (its errors raise there)."""

    def submit(
        self, key: str, fn: Callable[..., Any], *args: Any, after: Iterable[Point] = ()
    ) -> Point:
        """Run ``fn(*args)`` as point ``key``, after the points ``after``."""
        ...

    def retried(self) -> dict[str, list[str]]:
        """Points that failed an attempt and then succeeded: key -> the errors of those attempts."""
        ...


def failure_message(study: str, failures: list[Failure], where: str) -> str:
    """The one line a study stops with when points failed."""
    named = "; ".join(f"{f.key} ({f.error}, {f.attempts} attempts)" for f in failures[:5])
    more = f"; and {len(failures) - 5} more" if len(failures) > 5 else ""
    return (
        f"{len(failures)} {study} point(s) failed on every attempt: {named}{more}; the other points "
        f"are in {where}; rerun the same command to retry them"
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass
class _Done:
    key: str
    value: Any

    def get(self) -> Any:
        return self.value


class LocalSweep:
    """Every point runs here when it is submitted (the default engine; results as before)."""

    engine = "local"
    deferred = False

    def __enter__(self) -> LocalSweep:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(
        self, key: str, fn: Callable[..., Any], *args: Any, after: Iterable[Point] = ()
    ) -> Point:
        return _Done(key, fn(*args))

    def retried(self) -> dict[str, list[str]]:
        return {}


class _Ledger:
    """A Ray actor: the errors of failed attempts, by point key."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def note(self, key: str, error: str) -> None:
        self.errors.setdefault(key, []).append(error)

    def read(self) -> dict[str, list[str]]:
        return self.errors


def _set_threads(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _attempt(
    ledger: Any, key: str, threads: int, fn: Callable[..., Any], n_args: int, *rest: Any
) -> Any:
    """One attempt at a point, in a Ray worker (``rest``: the arguments, then the results of the
    points it waits for, which Ray resolved before starting it)."""
    _set_threads(threads)
    try:
        return fn(*rest[:n_args])
    except Exception as exc:
        import ray

        ray.get(ledger.note.remote(key, _describe(exc)))  # noted before Ray retries or gives up
        raise


@dataclass
class _RayPoint:
    key: str
    ref: Any
    sweep: RaySweep

    def get(self) -> Any:
        return self.sweep._get(self)


class RaySweep:
    """Points as Ray tasks (see the module docstring); a context manager that opens Ray (joining
    ``address``, or starting a local Ray of ``num_cpus`` CPUs) and closes what it opened."""

    engine = "ray"
    deferred = True

    def __init__(
        self, address: str | None = None, *, retries: int = DEFAULT_RETRIES, threads: int = 1,
        num_cpus: int | None = None,
    ) -> None:  # fmt: skip
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise LossylearnError(f"retries must be a whole number >= 0, got {retries!r}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise LossylearnError(f"threads must be a whole number >= 1, got {threads!r}")
        self.address = address
        self.retries = retries
        self.threads = threads
        self.num_cpus = num_cpus
        self.num_gpus = 0
        self._stack = ExitStack()
        self._objects: dict[int, tuple[Any, Any]] = {}
        self._ray: Any = None
        self._ledger: Any = None
        self._remote: Any = None

    def __enter__(self) -> RaySweep:
        from lossylearn.pipeline.ray_engine import ray_session

        self._ray = ray = self._stack.enter_context(
            ray_session(self.address, num_cpus=self.num_cpus)
        )
        try:
            self.num_gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
            self._ledger = ray.remote(num_cpus=0)(_Ledger).remote()
            self._remote = ray.remote(_attempt)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._objects.clear()
        self._stack.close()

    def _shared(self, obj: Any) -> Any:
        """``obj`` itself when small and plain, else its object-store reference (put once)."""
        if isinstance(obj, _PRIMITIVE):
            return obj
        held = self._objects.get(id(obj))
        if held is None or held[0] is not obj:
            held = self._objects[id(obj)] = (obj, self._ray.put(obj))
        return held[1]

    def submit(
        self, key: str, fn: Callable[..., Any], *args: Any, after: Iterable[Point] = ()
    ) -> Point:
        if self._ray is None:
            raise RuntimeError("RaySweep.submit outside its `with` block")
        waits = [p.ref for p in after if isinstance(p, _RayPoint)]
        task = self._remote.options(
            num_cpus=self.threads, num_gpus=self.num_gpus, max_retries=self.retries,
            retry_exceptions=True, name=f"lossylearn: {key}"[:200],
        )  # fmt: skip
        shared = [self._shared(a) for a in args]
        ref = task.remote(self._ledger, key, self.threads, fn, len(args), *shared, *waits)
        return _RayPoint(key, ref, self)

    def _get(self, point: _RayPoint) -> Any:
        ray = self._ray
        try:
            return ray.get(point.ref)
        except ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None)
            error = _describe(cause if isinstance(cause, BaseException) else exc)
            attempts = len(self._read().get(point.key, []))
            if not isinstance(exc, ray.exceptions.RayTaskError):
                attempts = self.retries + 1  # its worker or node died every time
            elif attempts == 0:  # it never ran: a point it waits for failed
                error = f"not run, a point it waits for failed: {error}"
            raise PointFailed(Failure(point.key, error, attempts)) from None

    def _read(self) -> dict[str, list[str]]:
        return dict(self._ray.get(self._ledger.read.remote()))

    def retried(self) -> dict[str, list[str]]:
        return self._read()


def open_sweep(
    engine: str, *, address: str | None = None, retries: int = DEFAULT_RETRIES, threads: int = 1,
    num_cpus: int | None = None,
) -> LocalSweep | RaySweep:  # fmt: skip
    """The sweep of ``engine`` (``local`` or ``ray``), to use as a context manager."""
    if engine not in ENGINES:
        raise LossylearnError(f"unknown --engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if address is not None and engine != "ray":
        raise LossylearnError("--ray-address needs --engine ray")
    if engine == "local":
        return LocalSweep()
    from lossylearn.pipeline.ray_engine import require_ray

    require_ray()
    return RaySweep(address, retries=retries, threads=threads, num_cpus=num_cpus)


def write_sweep_log(
    out: Path, sweep: LocalSweep | RaySweep, failures: list[Failure], *, say: Callable[[str], None]
) -> None:
    """With the Ray engine: ``out/sweep.json`` (points retried and points failed), and one line
    per retried point through ``say``. The local engine writes nothing (results as before)."""
    if sweep.engine == "local":
        return
    failed = {f.key for f in failures}
    retried = {k: v for k, v in sweep.retried().items() if k not in failed}
    for key, errors in retried.items():
        say(f"retried {key}: {len(errors)} failed attempt(s) ({errors[-1]}), then it succeeded")
    doc = {
        "engine": sweep.engine,
        "address": getattr(sweep, "address", None),
        "gpus_per_point": getattr(sweep, "num_gpus", 0),
        "retries": getattr(sweep, "retries", 0),
        "retried": retried,
        "failed": [f.to_dict() for f in failures],
    }
    from lossylearn.store.layout import atomic_write_bytes

    atomic_write_bytes(out / "sweep.json", (json.dumps(doc, indent=1) + "\n").encode())


class Pending:
    """A list made once, when first collected, by ``finish()`` (which may ask points for their
    values): at once with a :class:`LocalSweep`, after the tasks with a :class:`RaySweep`."""

    def __init__(self, finish: Callable[[], list[Any]]) -> None:
        self._finish = finish
        self.value: list[Any] | None = None

    def collect(self) -> list[Any]:
        """The list (raises :class:`PointFailed` when a point it needs failed)."""
        if self.value is None:
            self.value = self._finish()
        return self.value


def collect_all(parts: Iterable[Pending]) -> list[Failure]:
    """Collect every part, in order; the failures (once per failed point), not raised."""
    failures: dict[str, Failure] = {}
    for part in parts:
        try:
            part.collect()
        except PointFailed as exc:
            failures.setdefault(exc.failure.key, exc.failure)
    return list(failures.values())
