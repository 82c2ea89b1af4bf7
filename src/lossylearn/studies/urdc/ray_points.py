"""URDC models as sweep points (``lossylearn study urdc --engine ray``).

Each model of the plan is one point (:mod:`lossylearn.studies.ray_sweep`): a Ray task trains it
(or reloads it) into ``out/models`` as the driver would, a universal decoder's task after its
encoder's. The driver then reloads every model in plan order and records its rows, exactly as a
rerun of the study does, so the rows are the local engine's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lossylearn.learn import resolve_device
from lossylearn.progress import progress_bars
from lossylearn.studies.ray_sweep import Failure, Pending, collect_all
from lossylearn.studies.urdc.profiles import ModelSpec, StudyProfile
from lossylearn.studies.urdc.study import _StudyRun

__all__ = ["model_task", "train_points"]


def model_task(
    profile: StudyProfile, out: str, data_dir: Path | None, seed: int, device: str,
    threads: int | None, chain: list[ModelSpec],
) -> str:  # fmt: skip
    """One point, in a Ray worker: train (or reload) each model of ``chain`` (the models it
    depends on, e.g. a universal decoder's encoder, then itself) into ``out/models``; its id."""
    run = _StudyRun(profile, Path(out), data_dir, seed, resolve_device(device), threads, print)
    with progress_bars(False) as bar:
        run.classifier_stage(bar)  # reloads the classifier the driver trained
        for spec in chain:
            run.run_model(spec, bar)
    return chain[-1].model_id


def train_points(
    sweep: Any, specs: list[ModelSpec], profile: StudyProfile, out: Path, data_dir: Path | None,
    seed: int, device: str, threads: int | None,
) -> list[Failure]:  # fmt: skip
    """Every model as a point of ``sweep`` (a model after the one it depends on); waits for all
    of them and returns the failures (each failed point once; its dependents fail with it)."""
    by_id = {s.model_id: s for s in specs}
    points: dict[str, Any] = {}

    def needs(spec: ModelSpec) -> ModelSpec | None:
        # a universal decoder needs its encoder; a warm-started encoder the one it starts from
        dep = spec.encoder_id if spec.encoder_id != spec.model_id else spec.warm_start
        return by_id.get(dep) if dep is not None else None

    for spec in specs:
        chain = [spec]
        while (dep := needs(chain[0])) is not None:
            chain.insert(0, dep)
        after = [points[chain[-2].model_id]] if len(chain) > 1 else []
        points[spec.model_id] = sweep.submit(
            spec.model_id, model_task, profile, str(out.absolute()), data_dir, seed, device,
            threads, chain, after=after,
        )  # fmt: skip
    return collect_all(Pending(lambda p=p: [p.get()]) for p in points.values())
