"""The LCoN study run: the stages in order, progress on a Rich console, and the files they leave.

1. ``load_data(config)``: the training pool, the codec split, the test set;
2. for each ``plan_points(config)`` (the Fig. 2 stores, then the Fig. 3 stores, matched first):
   ``make_store(point, ..., policy=point_policy(point, config, matched))``, then
   ``test_sets``; for Fig. 2 ``calibrate_storage`` gives each scheme its equal-storage share;
   for every scheme and seed ``train_model``, ``evaluate`` and ``result_rows``;
3. ``summarize``, ``check_claims``, then results.json, results.csv, figures/ and report.html.

Each (store, scheme, seed) model is one point of a sweep (:mod:`lossylearn.studies.ray_sweep`):
trained and tested here at once (``engine="local"``), or as a Ray task (``engine="ray"``) whose
rows are collected in the same order once every point is submitted.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from lossylearn.errors import LossylearnError
from lossylearn.privacy.mechanisms import NoiseSpec
from lossylearn.privacy.streams import Stream
from lossylearn.studies.common import environment_versions, write_json
from lossylearn.studies.lcon.budget import (
    CodedSizes,
    SchemeBudget,
    calibrate_storage,
    calibration_record,
    png_sizes,
)
from lossylearn.studies.lcon.claims import Claim, check_claims
from lossylearn.studies.lcon.config import StudyConfig
from lossylearn.studies.lcon.data import StudyData, load_data
from lossylearn.studies.lcon.evaluate import (
    TestSets,
    evaluate,
    result_rows,
    test_sets,
    train_model,
)
from lossylearn.studies.lcon.points import Point, noise_spec, plan_points, point_policy
from lossylearn.studies.lcon.results import (
    SCHEMES,
    ResultRow,
    SummaryRow,
    summarize,
    write_csv,
)
from lossylearn.studies.lcon.stores import (
    StoreInfo,
    make_store,
    matched_codec,
    noisy_copies,
    training_set,
)
from lossylearn.studies.ray_sweep import (
    LocalSweep,
    Pending,
    RaySweep,
    collect_all,
    failure_message,
    open_sweep,
    write_sweep_log,
)

__all__ = ["PARTIAL", "RESULTS_FORMAT", "StudyResult", "run_lcon_study"]

RESULTS_FORMAT = "lossylearn-study-lcon/1"
PARTIAL = "results.partial.json"
N_SAMPLES = 8
"""Test images shown per row of the sample grids."""


@dataclass
class StudyResult:
    """What a study produced (also written to ``out``)."""

    out: Path
    config: StudyConfig
    rows: list[ResultRow]
    summary: list[SummaryRow]
    claims: list[Claim]
    calibration: list[dict[str, Any]]
    stores: list[dict[str, Any]]
    seconds: float
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class _Log:
    """What the stages have produced so far (the orchestrator's only state)."""

    console: Console
    parts: list[Pending] = field(default_factory=list)
    """Rows in study order, one part per model (or reused rows); see :attr:`rows`."""
    sweep: LocalSweep | RaySweep = field(default_factory=LocalSweep)
    stores: list[dict[str, Any]] = field(default_factory=list)
    calibration: list[dict[str, Any]] = field(default_factory=list)
    codec_records: list[dict[str, Any]] = field(default_factory=list)
    samples: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("compress", "train", "evaluate", "calibrate"), 0.0)
    )
    n_models: int = 0

    @property
    def rows(self) -> list[ResultRow]:
        """The rows collected so far, in study order."""
        return [r for part in self.parts if part.value is not None for r in part.value]

    def timed(self, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, its seconds added to ``timing[key]``."""
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.timing[key] = self.timing.get(key, 0.0) + time.perf_counter() - t

    def say(self, config: StudyConfig, message: str) -> None:
        if config.progress:
            self.console.print(message)


def prepare_out(out: Path, config: StudyConfig, overwrite: bool) -> None:
    """Create ``out``; reuse it only for a study with the same settings (its stores are kept)."""
    marker = out / "study-config.json"
    if out.exists() and any(out.iterdir()):
        if not marker.is_file():
            raise LossylearnError(
                f"{out}: is not empty and holds no LCoN study; choose an empty or new --out"
            )
        same = json.loads(marker.read_text()) == config.identity()
        if not same and not overwrite:
            raise LossylearnError(
                f"{out}: holds a study with different settings; pass --overwrite or choose another --out"
            )
        if not same or overwrite:
            for name in ("stores", "codecs", "figures"):
                shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    write_json(marker, config.identity(), indent=1)


def _checkpoint(
    out: Path, config: StudyConfig, log: _Log, failures: list[Any] | None = None
) -> None:
    """Write the rows so far to ``results.partial.json`` (a long run can be inspected early)."""
    write_json(
        out / PARTIAL,
        {"format": RESULTS_FORMAT, "complete": False, "config": config.to_dict(),
         "stores": log.stores, "calibration": log.calibration,
         "timing": {k: round(v, 2) for k, v in log.timing.items()},
         "rows": [r.to_dict() for r in log.rows],
         **({"failed": [f.to_dict() for f in failures]} if failures else {})},
        indent=1,
    )  # fmt: skip


def _store(
    point: Point, spec: NoiseSpec, matched: float | None, data: StudyData, config: StudyConfig,
    out: Path, log: _Log,
) -> StoreInfo:  # fmt: skip
    policy = point_policy(point, config, matched)
    if config.codec == "learned":
        options, record = log.timed(
            "codec_training", matched_codec, point, spec, policy, data, config, out
        )
    else:
        options, record = matched_codec(point, spec, policy, data, config, out)
    if record is not None:
        log.codec_records.append(record)
        log.say(config, f"codec for {point.name}: {record['metric'].upper()} "
                f"{record['held_out_distortion']:.4g} held out (target {record['target']:.4g}), "
                f"lambda {record['lmbda']:.4g}"
                + (" (reused)" if record["reused"] else f", {record['seconds']:.0f} s"))  # fmt: skip
    store = log.timed(
        "compress", make_store, point, data, config, out, policy=policy, codec_options=options,
        warn=lambda msg: log.console.print(f"[yellow]note[/]: {msg}"),
    )  # fmt: skip
    log.stores.append(store.record)
    return store


def _fit_and_test(
    x: np.ndarray, y: np.ndarray, seed: int, label: str, tests: TestSets, full: bool,
    data: StudyData, config: StudyConfig,
) -> tuple[list[Any], float, float, float]:  # fmt: skip
    """One sweep point, here or in a Ray worker: the model's accuracies, its training loop's
    seconds, and the seconds of training and of testing."""
    t = time.perf_counter()
    res = train_model(x, y, seed=seed, label=label, data=data, config=config)
    trained = time.perf_counter()
    accs = evaluate(res.model, tests, config, seed=seed, full=full)
    return accs, res.seconds, trained - t, time.perf_counter() - trained


def _train_scheme(
    store: StoreInfo, scheme: str, x: np.ndarray, y: np.ndarray, budget: SchemeBudget,
    tests: TestSets, *, full: bool, data: StudyData, config: StudyConfig, log: _Log,
) -> list[Pending]:  # fmt: skip
    """One model per seed on ``(x, y)``, each tested on ``tests``: their rows, as parts."""
    parts: list[Pending] = []
    p = store.point
    shipped = replace(config, progress=False) if log.sweep.deferred else config
    for seed in config.seeds:
        label = f"{p.sweep} psnr {p.psnr:g} target {store.target:g} {scheme} seed {seed}"
        point = log.sweep.submit(
            label, _fit_and_test, x, y, seed, label, tests, full, data, shipped
        )

        def finish(point: Any = point, seed: int = seed, label: str = label) -> list[ResultRow]:
            accs, seconds, t_train, t_eval = point.get()
            log.timing["train"] += t_train
            log.timing["evaluate"] += t_eval
            log.n_models += 1
            brief = ", ".join(f"{a.test}{'@' + format(a.epsilon, 'g') if a.epsilon else ''} "
                              f"{a.accuracy:.3f}" for a in accs[:4])  # fmt: skip
            log.say(config, f"[{log.n_models}] {label}: n_train {budget.n_train}, {brief}")
            return result_rows(store, scheme, budget, accs, seed=seed, train_seconds=seconds,
                               data=data, config=config)  # fmt: skip

        parts.append(Pending(finish))
        if not log.sweep.deferred:
            parts[-1].collect()
    return parts


def _noise_point(
    store: StoreInfo, spec: NoiseSpec, clean_sizes: CodedSizes, data: StudyData,
    config: StudyConfig, log: _Log,
) -> None:  # fmt: skip
    """Fig. 2 at one noise level: clean, noisy and LCoN training sets at equal storage."""
    noisy_x = noisy_copies(data.train_x, spec, config.data_seed, Stream.STUDY_NOISY_TRAIN)
    lcon_x, lcon_y, lcon_sizes = log.timed("calibrate", training_set, store)
    noisy_sizes = log.timed("calibrate", png_sizes, noisy_x)
    budgets = calibrate_storage(
        {"clean": clean_sizes, "noisy": noisy_sizes, "lcon": lcon_sizes}, enabled=config.calibrate
    )
    log.calibration.append(calibration_record(
        store.point.psnr, budgets, enabled=config.calibrate, pixels=data.pixels,
        clean=clean_sizes, noisy=noisy_sizes, lcon_bits_per_pixel=store.bpp,
    ))  # fmt: skip
    tests = test_sets(data, spec, store, config)
    log.samples.setdefault("noise", {})[store.point.psnr] = (
        tests.noisy[:N_SAMPLES],
        tests.lcon[:N_SAMPLES],
    )
    sets = {"clean": (data.train_x, data.train_y), "noisy": (noisy_x, data.train_y),
            "lcon": (lcon_x, lcon_y)}  # fmt: skip
    for scheme in SCHEMES:
        b = budgets[scheme]
        x, y = sets[scheme]
        log.parts += _train_scheme(store, scheme, x[: b.n_train], y[: b.n_train], b, tests,
                                   full=True, data=data, config=config, log=log)  # fmt: skip


def _sweep_point(
    store: StoreInfo, spec: NoiseSpec, trained: dict[tuple[int, str], list[Pending]],
    data: StudyData, config: StudyConfig, log: _Log,
) -> None:  # fmt: skip
    """Fig. 3 at one target: LCoN training on the whole store (no calibration)."""
    tests = test_sets(data, spec, store, config)
    log.samples.setdefault("distortion", {})[store.target] = tests.lcon[:N_SAMPLES]
    log.samples.setdefault("distortion_noisy", tests.noisy[:N_SAMPLES])
    key = (store.quality, json.dumps(store.codec_options, sort_keys=True))
    if key in trained:
        # Same noise seed and same codec quality: the store holds the very same bytes as an
        # earlier target's (the codec could not go further), so its models are the same too.
        same = trained[key]
        log.parts.append(Pending(lambda: [
            replace(r, target_distortion=store.target, achieved_distortion=store.achieved,
                    target_reached=store.reached, bits_per_pixel=store.bpp)
            for part in same for r in part.collect()
        ]))  # fmt: skip
        if not log.sweep.deferred:
            log.parts[-1].collect()
        log.say(config, f"target {store.target:g}: same codec quality {store.quality} as an "
                "earlier target; results reused")  # fmt: skip
        return
    x, y, sizes = training_set(store)
    budget = calibrate_storage({"lcon": sizes}, enabled=False)["lcon"]
    trained[key] = _train_scheme(store, "lcon", x, y, budget, tests, full=False, data=data,
                                 config=config, log=log)  # fmt: skip
    log.parts += trained[key]


def _write_outputs(
    out: Path, config: StudyConfig, data: StudyData, log: _Log, matched: float | None,
    command: str | None, started: float,
) -> StudyResult:  # fmt: skip
    from lossylearn.learn import build_model, count_parameters
    from lossylearn.studies.common import write_report
    from lossylearn.studies.lcon.figures import write_figures
    from lossylearn.studies.lcon.report import STYLE, report_sections

    summary = summarize(log.rows)
    unreached = {s["psnr"]: s["message"] for s in log.stores
                 if s["sweep"] == "noise" and not s["target_reached"]}  # fmt: skip
    sweep_note = "; ".join(f"target {s['target_distortion']:g}: {s['message']}" for s in log.stores
                           if s["sweep"] == "distortion" and not s["target_reached"])  # fmt: skip
    claims = check_claims(
        summary, unreached=unreached, sweep_matched=matched, sweep_note=sweep_note
    )
    seconds = time.perf_counter() - started
    params = count_parameters(build_model(data.model_config))
    payload = {
        "format": RESULTS_FORMAT, "complete": True, "command": command or "",
        "versions": environment_versions(config.threads), "config": config.to_dict(),
        "dataset": data.info,
        "model": {**data.model_config.to_dict(), "parameters": params},
        "sweep_matched_distortion": matched, "stores": log.stores,
        "calibration": log.calibration, "codec_training": log.codec_records,
        "claims": [c.to_dict() for c in claims],
        "timing": {**{k: round(v, 2) for k, v in log.timing.items()}, "total": round(seconds, 2),
                   "models_trained": log.n_models},
        "rows": [r.to_dict() for r in log.rows], "summary": [s.to_dict() for s in summary],
    }  # fmt: skip
    write_json(out / "results.json", payload, indent=1)
    write_csv(out / "results.csv", log.rows)
    figures = write_figures(out / "figures", summary, log.samples, config=config, matched=matched)
    report = write_report(
        out / "report.html",
        title="LCoN study report",
        style=STYLE,
        sections=report_sections(payload, figures),
    )
    (out / PARTIAL).unlink(missing_ok=True)
    files = {"results.json": "results.json", "results.csv": "results.csv",
             "report.html": str(report.relative_to(out))}  # fmt: skip
    files.update({p.stem: str(p.relative_to(out)) for p in figures.values()})
    return StudyResult(
        out=out, config=config, rows=log.rows, summary=summary, claims=claims,
        calibration=log.calibration, stores=log.stores, seconds=seconds, files=files,
    )  # fmt: skip


def run_lcon_study(
    config: StudyConfig,
    out: str | Path,
    *,
    command: str | None = None,
    overwrite: bool = False,
    console: Console | None = None,
    engine: str = "local",
    ray_address: str | None = None,
) -> StudyResult:
    """Run the study described by ``config`` and write results.json, results.csv, figures and
    report.html into ``out``. Stores already in ``out`` from a run with the same settings are reused;
    ``overwrite`` replaces a study with different settings. ``engine="ray"`` trains and tests the
    models as Ray tasks (joining ``ray_address``, or a local Ray); a model that fails every
    attempt is reported in ``results.partial.json`` and ``sweep.json``, and stops the study.
    """
    from lossylearn.learn import resolve_device, torch_threads

    started = time.perf_counter()
    out = Path(out)
    log = _Log(console or Console(stderr=True, quiet=not config.progress))
    prepare_out(out, config, overwrite)
    resolve_device(config.device)
    matched: float | None = None  # the Fig. 3 sweep's matched distortion, from its matched store
    trained: dict[tuple[int, str], list[Pending]] = {}
    sweep = open_sweep(engine, address=ray_address, threads=config.threads or 1)
    with torch_threads(config.threads), sweep:
        log.sweep = sweep
        data = load_data(config)
        clean_sizes = log.timed("calibrate", png_sizes, data.train_x)
        log.samples["clean"] = data.test_x[:N_SAMPLES]
        for point in plan_points(config):
            spec = noise_spec(point, data.shape)
            if point.sweep == "distortion" and matched is None and not point.matched:
                # No matched store before this one: the policy is nominal (sigma^2 or b), which
                # needs no images (plan_points puts an effective sweep's matched store first).
                matched = config.target_policy.target(spec)[1]
            store = _store(point, spec, matched, data, config, out, log)
            if point.sweep == "noise":
                _noise_point(store, spec, clean_sizes, data, config, log)
            else:
                if point.matched:
                    matched = store.target
                if point.train:
                    _sweep_point(store, spec, trained, data, config, log)
            _checkpoint(out, config, log)
        failures = collect_all(log.parts)  # the Ray tasks' rows, in study order
        write_sweep_log(out, sweep, failures, say=lambda m: log.say(config, m))
    if failures:
        _checkpoint(out, config, log, failures)
        raise LossylearnError(failure_message("lcon", failures, str(out / PARTIAL)))
    return _write_outputs(out, config, data, log, matched, command, started)
