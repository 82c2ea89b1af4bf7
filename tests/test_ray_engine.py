"""The Ray engine: compress and study sweeps as Ray tasks, on one local Ray of 2 CPUs.

Ray is an optional extra: where it is not installed every test that needs it is skipped, with the
reason (CI installs it). One local Ray serves the whole module (starting one takes seconds).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures import kill_after_shards
from typer.testing import CliRunner

import lossylearn
from lossylearn.cli import app as root
from lossylearn.data import load_dataset
from lossylearn.errors import LossylearnError, StoreError
from lossylearn.pipeline import RunOptions
from lossylearn.store import open_store
from lossylearn.store.owner import read_clean_stats

runner = CliRunner()
SKIP = "Ray is an optional extra (pip install 'lossylearn[ray]'); CI installs it"


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray with 2 CPUs for the module; shut down after it."""
    ray = pytest.importorskip("ray", reason=SKIP)
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR",
        log_to_driver=False,
    )  # fmt: skip
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def digits():
    x, y = load_dataset("mnist").split("train")
    return x, y


def store_bytes(directory: Path) -> dict[str, bytes]:
    """Every file of a store except the manifest's run section (id, timing, engine, workers) and
    the digest that covers it."""
    files = {}
    for p in sorted(directory.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "manifest.json":
                m = json.loads(data)
                m.pop("run")
                m.pop("integrity")
                data = json.dumps(m, sort_keys=True).encode()
            files[str(p.relative_to(directory))] = data
    return files


def test_both_engines_write_the_same_store(ray_local, digits, tmp_path):
    x, y = digits
    kw = dict(images=x[:600], labels=y[:600], psnr=16, seed=3, chunk_size=100, workers=2,
              progress=False)  # fmt: skip
    local = lossylearn.compress(**kw, out=tmp_path / "local")
    ray = lossylearn.compress(**kw, out=tmp_path / "ray", engine="ray")
    assert local.run["engine"] == "local" and ray.run["engine"] == "ray"
    assert len(list((tmp_path / "ray" / "shards").glob("*.parquet"))) == 6
    assert store_bytes(tmp_path / "local") == store_bytes(tmp_path / "ray")
    assert read_clean_stats(tmp_path / "local") == read_clean_stats(tmp_path / "ray")


KILL_SCRIPT = """
import sys, lossylearn
from lossylearn.data import load_dataset
x, y = load_dataset("mnist").split("train")
lossylearn.compress(images=x[:3000], labels=y[:3000], psnr=16, seed=4, chunk_size=100,
                    match="image", workers=2, engine="ray", out=sys.argv[1], progress=False)
"""


def test_killed_ray_run_resumes_to_the_local_bytes(ray_local, digits, tmp_path):
    """kill -9 of a Ray run part-way (it started its own Ray); --resume on Ray completes it with
    no chunk twice and none missing, to the bytes of a local run."""
    cut = tmp_path / "cut"
    kill_after_shards(KILL_SCRIPT, cut, 4, timeout=180)
    assert not (cut / "manifest.json").exists()
    with pytest.raises(StoreError):
        open_store(cut)
    x, y = digits
    kw = dict(images=x[:3000], labels=y[:3000], psnr=16, seed=4, chunk_size=100, match="image",
              progress=False)  # fmt: skip
    lossylearn.compress(**kw, out=cut, resume=True, engine="ray", workers=2)
    lossylearn.compress(**kw, out=tmp_path / "full")
    assert store_bytes(cut) == store_bytes(tmp_path / "full")
    store = open_store(cut)
    assert sorted(store.indices.tolist()) == list(range(3000))


def test_ray_map_bounds_the_tasks_in_flight(ray_local):
    from lossylearn.pipeline.ray_engine import ray_map

    pulled = []

    def tasks():
        for k in range(12):
            pulled.append(k)
            yield k

    def square(k):
        return k * k

    got = []
    for value in ray_map(square, tasks(), max_in_flight=3):
        got.append(value)
        assert len(pulled) - len(got) <= 3 - 1  # the rest are still in flight
    assert sorted(got) == [k * k for k in range(12)]


def test_a_task_error_comes_back_as_one_line(ray_local):
    from lossylearn.pipeline.ray_engine import ray_map

    def refuse(k):
        raise LossylearnError(f"chunk {k}: refused")

    with pytest.raises(LossylearnError, match=r"^chunk 0: refused$"):
        list(ray_map(refuse, iter([0]), max_in_flight=1))


def test_sweep_retries_a_failed_point_and_reports_one_that_keeps_failing(ray_local, tmp_path):
    from lossylearn.studies.ray_sweep import (
        Pending,
        PointFailed,
        RaySweep,
        collect_all,
        write_sweep_log,
    )

    marker = tmp_path / "attempted"

    def flaky(v):
        if not marker.exists():
            marker.write_text("1")
            raise RuntimeError("first attempt fails")
        return v + 1

    def broken(v):
        raise ValueError(f"bad point {v}")

    with RaySweep(retries=1, threads=1) as sweep:
        a = sweep.submit("a", flaky, 1)
        b = sweep.submit("b", broken, 2)
        c = sweep.submit("c", flaky, 3, after=[b])  # waits for b, so fails with it
        assert a.get() == 2
        with pytest.raises(PointFailed, match="bad point 2") as info:
            b.get()
        assert info.value.failure.attempts == 2
        failures = collect_all(Pending(lambda p=p: [p.get()]) for p in (a, b, c))
        assert [f.key for f in failures] == ["b", "c"]
        assert failures[1].attempts == 0 and failures[1].error.startswith("not run, a point it")
        said = []
        write_sweep_log(tmp_path, sweep, failures, say=said.append)
    log = json.loads((tmp_path / "sweep.json").read_text())
    assert log["retried"] == {"a": ["RuntimeError: first attempt fails"]}
    assert [f["key"] for f in log["failed"]] == ["b", "c"] and log["gpus_per_point"] == 0
    assert said == [
        "retried a: 1 failed attempt(s) (RuntimeError: first attempt fails), then it succeeded"
    ]


LCON = ["--profile", "quick", "--n-train", "200", "--n-test", "60", "--psnr", "16.1",
        "--epochs", "1", "--adv-n-test", "30", "--sweep-factors", "0.25,8", "--threads", "1",
        "--no-progress"]  # fmt: skip


def test_lcon_sweep_on_ray_gives_the_local_rows(ray_local, tmp_path):
    rows = {}
    for engine in ("local", "ray"):
        res = runner.invoke(
            root, ["study", "lcon", *LCON, "--out", str(tmp_path / engine), "--engine", engine]
        )
        assert res.exit_code == 0, res.output
        doc = json.loads((tmp_path / engine / "results.json").read_text())
        rows[engine] = [{k: v for k, v in r.items() if k != "train_seconds"} for r in doc["rows"]]
        assert doc["config"]["threads"] == 1
    assert rows["local"] == rows["ray"] and len(rows["ray"]) > 0
    assert not (tmp_path / "local" / "sweep.json").exists()
    assert json.loads((tmp_path / "ray" / "sweep.json").read_text())["failed"] == []


def test_lcon_with_the_learned_codec_runs_on_ray(ray_local, tmp_path):
    """The learned codec travels to the Ray tasks (it once failed: constriction's models do not
    pickle) and gives the local engine's rows."""
    args = ["study", "lcon", "--profile", "quick", "--noise", "laplace", "--codec", "learned",
            "--n-train", "400", "--n-test", "100", "--psnr", "22.1", "--epochs", "1",
            "--adv-n-test", "40", "--fgsm-eps", "0.1", "--match-noise", "effective",
            "--threads", "1", "--no-progress"]  # fmt: skip
    rows = {}
    for engine in ("local", "ray"):
        res = runner.invoke(root, [*args, "--out", str(tmp_path / engine), "--engine", engine])
        assert res.exit_code == 0, res.output
        doc = json.loads((tmp_path / engine / "results.json").read_text())
        rows[engine] = [{k: v for k, v in r.items() if k != "train_seconds"} for r in doc["rows"]]
    assert rows["local"] == rows["ray"] and any(r["test"] == "lcon-fgsm" for r in rows["ray"])


def test_lcon_point_that_keeps_failing_is_reported(ray_local, tmp_path, monkeypatch):
    from lossylearn.studies.lcon import profile_config, run_lcon_study
    from lossylearn.studies.lcon import run as lcon_run

    real = lcon_run._fit_and_test

    def fails_for_noisy(x, y, seed, label, *rest):
        if " noisy " in label:
            raise RuntimeError("out of memory (simulated)")
        return real(x, y, seed, label, *rest)

    monkeypatch.setattr(lcon_run, "_fit_and_test", fails_for_noisy)
    config = profile_config(
        "quick", n_train=200, n_test=60, psnrs=(16.1,), epochs=1, adv_n_test=30,
        distortion_sweep=False, threads=1, progress=False,
    )  # fmt: skip
    with pytest.raises(
        LossylearnError, match=r"1 lcon point\(s\) failed.*noisy seed 0.*3 attempts"
    ):
        run_lcon_study(config, tmp_path / "s", engine="ray")
    partial = json.loads((tmp_path / "s" / "results.partial.json").read_text())
    [failed] = partial["failed"]
    assert failed["key"].startswith("noise psnr 16.1 ") and failed["key"].endswith(" noisy seed 0")
    assert failed["error"] == "RuntimeError: out of memory (simulated)" and failed["attempts"] == 3
    assert {r["train"] for r in partial["rows"]} == {"clean", "lcon"}  # the others are kept
    assert not (tmp_path / "s" / "results.json").exists()


def test_urdc_models_on_ray_report_failures_then_give_the_local_rows(
    ray_local, tmp_path, monkeypatch
):
    """A model that fails every attempt is reported with the models that wait for it, the others
    are kept; the rerun retries it, and then the rows are the local engine's."""
    from lossylearn.studies.urdc import ray_points

    real = ray_points.model_task

    def shared_fails(profile, out, data_dir, seed, device, threads, chain):
        if chain[-1].kind == "shared":
            raise RuntimeError("node lost (simulated)")
        return real(profile, out, data_dir, seed, device, threads, chain)

    args = ["study", "urdc", "--profile", "quick", "--limit", "120", "--epochs", "1",
            "--w1-steps", "3", "--rdp-lambdas", "", "--no-progress", "--threads", "1"]  # fmt: skip
    with monkeypatch.context() as m:
        m.setattr(ray_points, "model_task", shared_fails)
        res = runner.invoke(root, [*args, "--out", str(tmp_path / "ray"), "--engine", "ray"])
    assert res.exit_code == 2 and "3 urdc point(s) failed" in res.output, res.output
    doc = json.loads((tmp_path / "ray" / "results.json").read_text())
    failed = {f["key"]: f for f in doc["meta"]["failed"]}
    shared = "shared-3x3-c0-p0+c0.015-p0"
    assert set(failed) == {shared, f"uni-{shared}--c0-p0", f"uni-{shared}--c0.015-p0"}
    assert failed[shared]["attempts"] == 3 and "node lost" in failed[shared]["error"]
    assert doc["rows"] and all(r["encoder"] != shared for r in doc["rows"])
    docs = {}
    for engine in ("local", "ray"):
        res = runner.invoke(root, [*args, "--out", str(tmp_path / engine), "--engine", engine])
        assert res.exit_code == 0, res.output
        docs[engine] = json.loads((tmp_path / engine / "results.json").read_text())
    assert docs["local"]["rows"] == docs["ray"]["rows"]
    assert docs["local"]["shared_encoder_heads"] == docs["ray"]["shared_encoder_heads"]
    assert "failed" not in docs["ray"]["meta"]


def test_missing_extra_and_misused_options_are_one_line(tmp_path, monkeypatch):
    import lossylearn.pipeline.ray_engine as engine
    from lossylearn.studies.ray_sweep import open_sweep

    with pytest.raises(LossylearnError, match="needs --engine ray"):
        RunOptions(out=tmp_path / "a", ray_address="auto")
    with pytest.raises(LossylearnError, match="unknown --engine 'spark'"):
        RunOptions(out=tmp_path / "a", engine="spark")
    monkeypatch.setattr(engine, "ray_available", lambda: False)
    with pytest.raises(LossylearnError, match=r"pip install 'lossylearn\[ray\]'"):
        RunOptions(out=tmp_path / "a", engine="ray")
    with pytest.raises(LossylearnError, match=r"pip install 'lossylearn\[ray\]'"):
        open_sweep("ray")
    res = runner.invoke(root, ["compress", "--psnr", "20", "--engine", "ray", "--out",
                               str(tmp_path / "b")])  # fmt: skip
    assert res.exit_code == 2
    assert "pip install 'lossylearn[ray]'" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "b").exists()  # refused before anything was written
