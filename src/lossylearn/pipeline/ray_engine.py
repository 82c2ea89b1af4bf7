"""``compress --engine ray``: the chunks of a run as Ray tasks, on this machine or a cluster.

The Ray engine runs the very function the local pool runs, :func:`~lossylearn.pipeline.chunks.
run_chunk`, once per :class:`~lossylearn.pipeline.chunks.ChunkTask`, so both engines write the
same bytes: a chunk's noise comes from its own stream, ``NoiseSource.create(seed,
chunk_stream(chunk))``, never from how chunks are spread over workers, and its shard is named by
its chunk number (``shards/shard-NNNNN.parquet``). The driver still loads the source, searches the
quality on chunk 0 and commits the manifest; only the remaining chunks go to Ray.

Why Ray tasks and not Ray Data:

* **Names and order.** A store's shards are named by content (their chunk number under a run
  whose configuration the manifest pins), and the manifest lists them in chunk order. Ray Data's
  Parquet writer names each file with a fresh UUID on every run and does not keep block order by
  default, so a second run, or a retried block, would write other file names for the same rows:
  the two engines could not give the same bytes, and a resumed run could hold a block twice.
* **Resume already exists per chunk.** The run state records each finished chunk (its shard's
  SHA-256 and sums) as its result arrives; ``--resume`` keeps every recorded shard whose checksum
  still matches and redoes the rest. A chunk task is that unit of work and that unit of record; a
  Ray Data pipeline would need its own, second notion of progress.
* **Nothing to stream.** A chunk task carries its clean images (a few MB) and returns a few
  numbers; the shard is written by the worker itself. There is no block of results to move back
  through the driver, which is what Ray Data's streaming executor is for.

Ray schedules the tasks, bounds nothing by itself, and retries a task whose worker died
(``max_retries``); :func:`ray_map` keeps at most ``max_in_flight`` tasks submitted (memory stays
flat) and yields each result as it arrives, so the run state records every chunk as soon as it is
done (a killed run loses only the chunks still in flight). Each task uses one torch/BLAS thread,
like the local pool's workers.

On a cluster (``--ray-address``) every worker writes its shard into ``--out`` itself, so ``--out``
must be a filesystem that every node mounts at the same path (NFS, a shared volume), and every
node needs lossylearn installed in the same version.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, TypeVar

from lossylearn.errors import LossylearnError

__all__ = ["RAY_MISSING", "ray_available", "ray_map", "ray_session", "require_ray"]

T = TypeVar("T")
R = TypeVar("R")

RAY_MISSING = "the Ray engine needs Ray, an optional extra: pip install 'lossylearn[ray]'"
CHUNK_RETRIES = 3
"""Times Ray reruns a chunk task whose worker or node died (a chunk is idempotent: same bytes)."""


def ray_available() -> bool:
    """Whether Ray is installed (without importing it)."""
    return importlib.util.find_spec("ray") is not None


def require_ray() -> ModuleType:
    """The ``ray`` module, or a one-line :class:`LossylearnError` saying how to install it."""
    if not ray_available():
        raise LossylearnError(RAY_MISSING)
    try:
        import ray
    except ImportError as exc:  # installed but broken
        raise LossylearnError(f"{RAY_MISSING} (importing it failed: {exc})") from None
    return ray


@contextmanager
def ray_session(address: str | None, *, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray, ready to take tasks, for the block.

    A session that is already open (a test's, a notebook's) is used as it is and left open.
    Otherwise: ``address`` (or ``RAY_ADDRESS``) joins that cluster (``auto``: the one ``ray start``
    started on this machine); without one a new local Ray with ``num_cpus`` CPUs starts, never a
    cluster that happens to run here. A session opened here is shut down when the block ends.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:  # "local": a new Ray of our own, even where `ray start` left one running
        kwargs.update(num_cpus=num_cpus, include_dashboard=False)
    try:
        ray.init(address=address or "local", **kwargs)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LossylearnError(f"cannot start or join {where}: {first}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def one_thread() -> None:
    """One torch/BLAS thread in this (worker) process: tasks run side by side, one per CPU."""
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _in_worker(fn: Callable[[T], R], task: T) -> R:
    one_thread()
    return fn(task)


def _task_name(task: Any) -> str:
    chunk = getattr(task, "chunk", None)
    return "lossylearn" if chunk is None else f"lossylearn-chunk-{chunk}"


def _result(ray: ModuleType, ref: Any) -> Any:
    """``ray.get(ref)``; a task's LossylearnError comes back as itself (one line for the CLI)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, LossylearnError):
            raise cause from None
        raise
    except ray.exceptions.RayError as exc:  # a worker or node died more often than retried
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise LossylearnError(
            f"a Ray task failed {CHUNK_RETRIES + 1} times ({type(exc).__name__}: {first}); "
            "finish the store with --resume"
        ) from None


def ray_map(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    *,
    address: str | None = None,
    max_in_flight: int,
    num_cpus: int | None = None,
) -> Iterator[R]:
    """``fn(task)`` for every task as a Ray task (one CPU, one thread each), with at most
    ``max_in_flight`` submitted at once; yields each result as it arrives (completion order, so
    a caller records every finished task at once). ``address`` and ``num_cpus`` open the session
    as :func:`ray_session` says. Closing the iterator early cancels the tasks still pending."""
    if max_in_flight < 1:
        raise LossylearnError(f"max_in_flight must be >= 1, got {max_in_flight}")
    with ray_session(address, num_cpus=num_cpus) as ray:
        remote = ray.remote(_in_worker)
        pending: list[Any] = []
        source = iter(tasks)
        more = True
        try:
            while True:
                while more and len(pending) < max_in_flight:
                    task = next(source, None)
                    if task is None:
                        more = False
                        break
                    options = remote.options(
                        num_cpus=1, max_retries=CHUNK_RETRIES, name=_task_name(task)
                    )
                    pending.append(options.remote(fn, task))
                if not pending:
                    return
                ready, pending = ray.wait(pending, num_returns=1)
                yield _result(ray, ready[0])
        finally:
            for ref in pending:  # the caller stopped early (an error, an interrupt)
                ray.cancel(ref)
