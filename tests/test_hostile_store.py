"""Hostile users against compress and the store: data loss, privacy, path escapes, tampering.

Each test pins one case of the hostile probe (issue 10): a clear one-line error and nothing lost,
or correct behaviour.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import lossylearn
from lossylearn.errors import CodecError, LossylearnError, StoreError
from lossylearn.store import RUN_STATE, open_store
from lossylearn.store.manifest import Manifest
from lossylearn.store.owner import owner_path

CLI = [sys.executable, "-m", "lossylearn.cli"]


def cli(*args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and err.startswith("error:"), err
    flat = " ".join(err.split())  # Rich wraps long lines at the terminal width
    for n in needles:
        assert n in flat, (n, flat)


def arrays(n: int = 40, seed: int = 0, shape=(8, 8, 1)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), rng.integers(0, 3, n)


def small_store(out: Path, *, seed: int | None = 0, codec: str = "png", **kw) -> Manifest:
    x, y = arrays()
    return lossylearn.compress(
        out=out, images=x, labels=y, sigma=20, codec=codec, seed=seed, progress=False,
        warn=lambda _: None, chunk_size=16, **kw,
    )  # fmt: skip


def rewrite_manifest(out: Path, edit, *, reseal: bool) -> None:
    """Edit manifest.json as an attacker would; ``reseal`` also recomputes the public digest."""
    d = json.loads((out / "manifest.json").read_text())
    edit(d)
    if reseal:  # what anyone can do: the digest covers the manifest's canonical JSON
        body = {k: v for k, v in d.items() if k != "integrity"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        d["integrity"] = {**d["integrity"], "sha256": hashlib.sha256(canonical).hexdigest()}
    (out / "manifest.json").write_text(json.dumps(d))


# -- data loss ------------------------------------------------------------------------------------


def test_overwrite_never_removes_hidden_files_it_did_not_write(tmp_path):
    out = tmp_path / "repo"
    (out / ".git").mkdir(parents=True)
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (out / ".env").write_text("SECRET=1\n")
    with pytest.raises(StoreError, match=r"\.env.*never removes"):
        small_store(out, overwrite=True)
    assert (out / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert (out / ".env").read_text() == "SECRET=1\n"
    # a store with a stranger's file slipped into it is not cleared either
    small_store(tmp_path / "s")
    (tmp_path / "s" / "shards" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="notes.txt"):
        small_store(tmp_path / "s", overwrite=True)
    assert (tmp_path / "s" / "shards" / "notes.txt").read_text() == "mine"


def test_two_runs_into_one_folder_at_once_give_one_sound_store(tmp_path):
    out = tmp_path / "s"
    script = (
        "import sys, numpy as np, lossylearn\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.integers(0, 256, (3000, 8, 8, 1), dtype=np.uint8); y = rng.integers(0, 3, 3000)\n"
        "lossylearn.compress(out=sys.argv[1], images=x, labels=y, sigma=20, codec='png',"
        " chunk_size=100, progress=False)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(out)], stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    codes = [p.wait(timeout=300) for p in procs]
    errs = [p.stderr.read() for p in procs]
    assert sorted(codes) == [0, 1], errs  # one wins, the other is refused
    loser = errs[codes.index(1)]
    assert "another lossylearn run is writing" in loser or "already holds" in loser
    assert len(open_store(out)) == 3000  # every checksum verified


def test_resume_with_another_worker_count_gives_the_same_store(tmp_path, monkeypatch):
    import lossylearn.pipeline.runner as runner

    x, y = arrays(300)
    kw = dict(images=x, labels=y, sigma=20, codec="png", seed=3, chunk_size=50, progress=False)
    lossylearn.compress(out=tmp_path / "full", **kw)
    real = runner.run_chunk
    calls = {"n": 0}

    def dying(task):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(runner, "run_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        lossylearn.compress(out=tmp_path / "cut", **kw)
    monkeypatch.setattr(runner, "run_chunk", real)
    lossylearn.compress(out=tmp_path / "cut", workers=2, resume=True, **kw)
    a, b = open_store(tmp_path / "full"), open_store(tmp_path / "cut")
    assert [a.payload(i) for i in range(len(a))] == [b.payload(i) for i in range(len(b))]


def test_killing_the_parent_ends_the_pool_workers(tmp_path):
    script = (
        "import sys, numpy as np, lossylearn\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.integers(0, 256, (20000, 16, 16, 1), dtype=np.uint8); y = rng.integers(0, 3, 20000)\n"
        "lossylearn.compress(out=sys.argv[1], images=x, labels=y, sigma=20, codec='jpeg',"
        " match='image', chunk_size=200, workers=2, progress=False)\n"
    )
    out = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-c", script, str(out)])
    deadline = time.time() + 120
    children: list[int] = []
    while time.time() < deadline and not children:
        time.sleep(0.2)
        children = [int(c) for c in _children(proc.pid)]
    assert children, "no worker processes appeared"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(c) for c in children):
        time.sleep(0.2)
    assert not any(_alive(c) for c in children), "pool workers outlived their parent"


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- privacy --------------------------------------------------------------------------------------


def test_a_seeded_store_claims_no_guarantee_and_carries_no_seed(tmp_path):
    m = small_store(tmp_path / "s", seed=123456)
    assert not m.has_guarantee and "No differential-privacy guarantee" in m.privacy["statement"]
    assert "epsilon" not in m.privacy
    for p in (tmp_path / "s").rglob("*"):
        if p.is_file():
            assert b"123456" not in p.read_bytes(), p
    # reproducibility lives with the owner, outside the store
    assert json.loads(owner_path(tmp_path / "s").read_text())["seed"] == 123456
    unseeded = small_store(tmp_path / "u", seed=None)
    assert unseeded.has_guarantee and unseeded.privacy["randomness"].startswith("csprng")


def test_nothing_derived_from_clean_data_lands_in_the_store_folder(tmp_path, monkeypatch):
    import lossylearn.pipeline.runner as runner

    x, y = arrays(200)
    digest = hashlib.sha256(x.tobytes() + y.astype(np.int64).tobytes()).hexdigest()
    real = runner.run_chunk

    def dying(task):
        if task.chunk == 2:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(runner, "run_chunk", dying)
    out = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt):
        lossylearn.compress(
            out=out, images=x, labels=y, sigma=20, codec="png", chunk_size=50, progress=False
        )
    state = (out / RUN_STATE).read_text()
    assert digest not in state and "clean" not in state  # no data hash, no clean-error sums
    assert digest in owner_path(out).read_text()  # they are the owner's
    monkeypatch.setattr(runner, "run_chunk", real)
    (out / ".lossylearn-run.json.abc.tmp").write_text("{half")  # a killed writer's temporary
    lossylearn.compress(
        out=out, images=x, labels=y, sigma=20, codec="png", chunk_size=50, progress=False,
        resume=True,
    )  # fmt: skip
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert names == [
        "manifest.json", "shards", *[f"shards/shard-0000{k}.parquet" for k in range(4)]
    ]  # fmt: skip
    text = (out / "manifest.json").read_text()
    assert digest not in text and "to_clean" not in text and "psnr" not in text


@pytest.mark.parametrize(
    "noise", [{"sigma": 0.01}, {"noise": "laplace", "b": 0.01}, {"sigma": 0.01, "discrete": True}]
)
def test_noise_that_changes_almost_no_pixel_is_refused(tmp_path, noise):
    x, y = arrays()
    with pytest.raises(LossylearnError, match=r"changes only 0\.0% of pixels.*--allow-weak-noise"):
        lossylearn.compress(out=tmp_path / "s", images=x, labels=y, codec="png", **noise)
    assert not (tmp_path / "s").exists()
    m = lossylearn.compress(
        out=tmp_path / "s", images=x, labels=y, codec="png", allow_weak_noise=True,
        progress=False, warn=lambda _: None, **noise,
    )  # fmt: skip
    assert m.n_images == 40


# -- path escapes and checksums -------------------------------------------------------------------


def test_manifest_paths_never_leave_the_store(tmp_path):
    out = tmp_path / "s"
    small_store(out)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(out / "shards" / "shard-00000.parquet", outside / "x.parquet")

    def escape(d):
        d["shards"][0]["path"] = "../outside/x.parquet"
        d["files"] = {}

    rewrite_manifest(out, escape, reseal=True)
    with pytest.raises(StoreError, match="outside the store|no checksum"):
        open_store(out)

    def escape_listed(d):
        rel = "../outside/x.parquet"
        first = d["shards"][0]["path"]
        d["files"][rel] = d["files"].pop(first)
        d["shards"][0]["path"] = rel

    small_store(tmp_path / "t")
    rewrite_manifest(tmp_path / "t", escape_listed, reseal=True)
    with pytest.raises(StoreError, match="outside the store"):
        open_store(tmp_path / "t", verify=False)


def test_a_shard_without_a_checksum_is_refused(tmp_path):
    out = tmp_path / "s"
    small_store(out)
    rewrite_manifest(out, lambda d: d["files"].pop("shards/shard-00001.parquet"), reseal=True)
    with pytest.raises(StoreError, match="shard-00001.parquet has no checksum"):
        open_store(out)


# -- tampering ------------------------------------------------------------------------------------


def test_a_forged_privacy_section_is_detected(tmp_path):
    out = tmp_path / "s"
    small_store(out, seed=None)

    def forge(d):
        d["privacy"]["epsilon"] = 0.1
        d["privacy"]["unit"] = "image"

    rewrite_manifest(out, forge, reseal=False)
    proc = cli("inspect", out, "--grid", tmp_path / "g.png")
    one_line_error(proc, "does not match its integrity digest")


def test_a_signed_store_detects_a_resealed_forgery(tmp_path):
    key = tmp_path / "key"
    key.write_bytes(os.urandom(32))
    out = tmp_path / "s"
    x, y = arrays()
    proc = cli(
        "compress", "--dataset", "mnist", "--limit", "40", "--sigma", "20", "--codec", "png",
        "--out", out, "--signing-key", key,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert cli("inspect", out, "--signing-key", key, "--grid", tmp_path / "g.png").returncode == 0
    rewrite_manifest(out, lambda d: d["privacy"].__setitem__("epsilon", 0.1), reseal=True)
    assert cli("inspect", out, "--grid", tmp_path / "g.png").returncode == 0  # digest recomputed
    one_line_error(
        cli("inspect", out, "--signing-key", key, "--grid", tmp_path / "g.png"),
        "signature does not match",
    )
    other = tmp_path / "other"
    other.write_bytes(os.urandom(32))
    small_store(tmp_path / "u")
    one_line_error(
        cli("inspect", tmp_path / "u", "--signing-key", other, "--grid", tmp_path / "g.png"),
        "not signed",
    )


def test_tampered_image_shape_is_refused(tmp_path):
    out = tmp_path / "s"
    x, y = arrays(40, shape=(8, 8, 1))
    lossylearn.compress(
        out=out, images=x, labels=y, sigma=20, codec="jpeg", seed=0, progress=False,
        warn=lambda _: None,
    )  # fmt: skip
    rewrite_manifest(out, lambda d: d.__setitem__("image_shape", [8, 8, 3]), reseal=False)
    with pytest.raises(StoreError, match="integrity digest"):
        open_store(out)
    rewrite_manifest(out, lambda d: None, reseal=True)  # an attacker who recomputes the digest
    with pytest.raises(StoreError, match=r"jpeg-q\d+.bin does not fit image_shape \[8, 8, 3\]"):
        open_store(out)
    # codecs without shared tables rebuild their headers from image_shape: the data no longer fits
    lossylearn.compress(
        out=tmp_path / "p", images=x, labels=y, sigma=20, codec="png", seed=0, progress=False,
        warn=lambda _: None,
    )  # fmt: skip
    rewrite_manifest(tmp_path / "p", lambda d: d.__setitem__("image_shape", [8, 8, 3]), reseal=True)
    with pytest.raises(CodecError, match="png payload is corrupt"):
        open_store(tmp_path / "p")[0]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.__setitem__("n_images", "many"), "'n_images' must be a whole number"),
        (lambda d: d.__setitem__("files", []), "'files' must be an object"),
        (lambda d: d["stats"].__setitem__("bits_per_pixel", "x"), "finite number"),
        (lambda d: d.__setitem__("image_shape", [8, 8]), "image_shape"),
        (lambda d: d.__setitem__("shards", {}), "shards must be a non-empty list"),
    ],
)
def test_malformed_manifest_fields_give_one_line_errors(tmp_path, edit, message):
    out = tmp_path / "s"
    small_store(out)
    rewrite_manifest(out, edit, reseal=True)
    with pytest.raises(StoreError, match=message):
        open_store(out)
    one_line_error(cli("inspect", out, "--grid", tmp_path / "g.png"), message.strip("'"))


def test_manifest_is_strict_json(tmp_path):
    out = tmp_path / "s"
    # png is lossless: the reconstruction equals the noisy image (distortion 0)
    small_store(out)
    text = (out / "manifest.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in manifest"))
    (out / "manifest.json").write_text(text.replace('"mse": 0.0', '"mse": Infinity', 1))
    with pytest.raises(StoreError, match="not valid JSON"):
        open_store(out)


def test_a_fifo_in_place_of_the_manifest_does_not_hang(tmp_path):
    out = tmp_path / "s"
    small_store(out)
    (out / "manifest.json").unlink()
    os.mkfifo(out / "manifest.json")
    proc = cli("inspect", out, "--grid", tmp_path / "g.png", timeout=60)
    one_line_error(proc, "not a regular file")


# -- refused and repeated runs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--seed", "-1"], "--seed must be"), (["--tolerance", "nan"], "--tolerance must be")],
)
def test_a_refused_run_leaves_nothing_behind(tmp_path, args, message):
    out = tmp_path / "s"
    base = ["compress", "--limit", "40", "--sigma", "20", "--codec", "png", "--out", out]
    one_line_error(cli(*base, *args), message)
    assert not out.exists() and not owner_path(out).exists()
    assert cli(*base, "--seed", "1").returncode == 0  # the corrected command just works


def test_a_run_failing_before_any_shard_is_undone(tmp_path):
    out = tmp_path / "s"
    x, y = arrays()
    # refused after the folder was prepared: the effective target is not defined under wrapping
    with pytest.raises(LossylearnError, match="wrap"):
        lossylearn.compress(
            out=out, images=x, labels=y, sigma=20, codec="png", match_noise="effective",
            range_handling="wrap", progress=False,
        )  # fmt: skip
    assert not out.exists() and not owner_path(out).exists()


def test_resume_on_a_complete_store_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "s"
    small_store(out, seed=1)
    with pytest.raises(StoreError, match="complete store made with other settings"):
        x, y = arrays()
        lossylearn.compress(
            out=out, images=x, labels=y, sigma=30, codec="png", seed=1, resume=True,
            progress=False, chunk_size=16,
        )  # fmt: skip
    with pytest.raises(StoreError, match="another --seed"):
        small_store(out, seed=2, resume=True)
    warnings: list[str] = []
    x, y = arrays()
    m = lossylearn.compress(
        out=out, images=x, labels=y, sigma=20, codec="png", seed=1, resume=True,
        progress=False, chunk_size=16, warn=warnings.append,
    )  # fmt: skip
    assert m.n_images == 40 and "nothing to do" in warnings[0]


# -- the output folder ----------------------------------------------------------------------------


def test_out_that_is_a_file_or_unwritable(tmp_path):
    f = tmp_path / "file"
    f.write_text("keep")
    one_line_error(cli("compress", "--limit", "20", "--sigma", "20", "--out", f), "not a folder")
    assert f.read_text() == "keep"
    one_line_error(
        cli("compress", "--limit", "20", "--sigma", "20", "--out", f / "sub"), "Not a directory"
    )
    ro = tmp_path / "ro"
    ro.mkdir()
    one_line_error(
        cli("compress", "--limit", "20", "--sigma", "20", "--out", "/proc/lossylearn-store"),
        "/proc/lossylearn-store",
    )


def test_store_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        small_store(tmp_path / "s")
    finally:
        os.umask(old)
    for p in [tmp_path / "s" / "manifest.json", *(tmp_path / "s" / "shards").iterdir()]:
        assert p.stat().st_mode & 0o777 == 0o644, p


def test_inspect_grid_path_that_is_a_folder(tmp_path):
    small_store(tmp_path / "s")
    (tmp_path / "grid").mkdir()
    one_line_error(cli("inspect", tmp_path / "s", "--grid", tmp_path / "grid"), "is a folder")


# -- learned-codec stores -------------------------------------------------------------------------


def test_a_learned_codec_store_finds_its_checkpoint_from_any_folder(tmp_path, monkeypatch):
    from learned_codec_support import tiny_checkpoint

    src = tiny_checkpoint("factorized")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(src, work / "ck") if src.is_dir() else shutil.copy(src, work / "ck")
    monkeypatch.chdir(work)
    x, y = arrays(24, shape=(28, 28, 1))
    lossylearn.compress(
        out="store", images=x, labels=y, sigma=20, codec="learned",
        codec_options={"checkpoint": "ck"}, seed=0, progress=False, warn=lambda _: None,
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    first = open_store(work / "store")[0][0]  # the recorded (absolute) path
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(work / "store", moved / "store")
    shutil.move(work / "ck", moved / "ck")  # beside the store
    assert np.array_equal(open_store(moved / "store")[0][0], first)
    elsewhere = tmp_path / "elsewhere-ck"
    shutil.move(moved / "ck", elsewhere)
    with pytest.raises(StoreError, match="cannot find the learned checkpoint.*--codec-checkpoint"):
        open_store(moved / "store")
    assert np.array_equal(open_store(moved / "store", codec_checkpoint=elsewhere)[0][0], first)
    other = tiny_checkpoint("hyperprior")
    with pytest.raises(CodecError, match="is not the checkpoint this store was coded with"):
        open_store(moved / "store", codec_checkpoint=other)
