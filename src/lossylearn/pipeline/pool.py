"""Running chunks: in this process or on a pool of worker processes, one thread each.

Workers run in parallel, so each uses one BLAS/torch thread (more would only fight over the
cores), and each ends when its parent dies, even by SIGKILL.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager

from lossylearn.pipeline.chunks import ChunkOutcome, ChunkTask


def _worker_init(parent: int) -> None:
    # Workers already run in parallel; torch's intra-op threads would only fight over the cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    _exit_with_parent(parent)


def _exit_with_parent(parent: int) -> None:
    """End this worker when the parent dies (even by SIGKILL), instead of waiting forever on a
    task queue that nobody will feed: the kernel's parent-death signal on Linux, and everywhere a
    thread that watches the parent's pid."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="lossylearn-parent-watch", daemon=True).start()


def _pool(workers: int) -> ProcessPoolExecutor:
    # fork is fast and safe for the Pillow codecs; once torch is loaded (learned codec) use spawn.
    method = "spawn" if "torch" in sys.modules else "fork"
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )


def bounded_map(
    fn: Callable[[ChunkTask], ChunkOutcome], tasks: Iterator[ChunkTask], workers: int
) -> Iterator[ChunkOutcome]:
    """Run tasks in order of submission with at most 2 * workers in flight (memory stays flat)."""
    if workers <= 1:
        for t in tasks:
            yield fn(t)
        return
    with _pool(workers) as pool:
        pending: list[Future[ChunkOutcome]] = []
        for t in tasks:
            pending.append(pool.submit(fn, t))
            while len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        for f in pending:
            yield f.result()


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """One torch thread while this process codes chunks itself (a learned codec): measured on 2
    cores, torch's default 2 threads ran 2-47x slower per step once another process used a core
    (benchmarks/codec_speed.py); the pool workers use 1 thread each for the same reason."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
