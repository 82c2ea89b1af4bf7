"""The command line as a user meets it: the real console script, exit codes, one-line errors."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures import make_celeba_tree, write_idx
from PIL import Image

from lossylearn.store import open_store

LOSSYLEARN = [sys.executable, "-m", "lossylearn.cli"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LOSSYLEARN, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "s"
    proc = run("compress", "--psnr", "20", "--limit", "300", "--seed", "0", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "bits/pixel" in proc.stdout
    return out


def test_help_teaches():
    proc = run("compress", "--help")
    assert proc.returncode == 0
    for option in (
        "--psnr",
        "--epsilon",
        "--unit",
        "--discrete",
        "--match",
        "--resume",
        "--workers",
    ):
        assert option in proc.stdout


def test_inspect_prints_manifest_and_writes_grid(store, tmp_path):
    grid = tmp_path / "grid.png"
    proc = run("inspect", store, "--grid", grid, "--n", "16")
    assert proc.returncode == 0, proc.stderr
    assert "jpeg" in proc.stdout and "no guarantee (seeded noise)" in proc.stdout
    assert "PSNR noisy" in proc.stdout  # the owner file beside the store: the owner sees it
    with Image.open(grid) as im:
        assert im.size == (4 * 30 * 2, 4 * 30 * 2)
    proc = run("inspect", store, "--json", "--grid", grid)
    assert json.loads(proc.stdout)["format"] == "lossylearn-store/2"


def test_export_jpeg_and_png(store, tmp_path):
    s = open_store(store)
    assert run("export", store, tmp_path / "j", "--format", "jpeg").returncode == 0
    files = sorted((tmp_path / "j").rglob("*.jpg"))
    assert len(files) == len(s)
    # any decoder opens them, and they hold exactly what the store decodes to
    i = int(np.where(s.indices == int(files[0].stem))[0][0])
    with Image.open(files[0]) as im:
        assert im.format == "JPEG"
        assert np.array_equal(np.asarray(im)[..., None], s[i][0])
    assert run("export", store, tmp_path / "p", "--format", "png").returncode == 0
    assert len(list((tmp_path / "p").rglob("*.png"))) == len(s)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--psnr", "20", "--sigma", "10"], ["psnr", "sigma"]),
        (["--epsilon", "0", "--delta", "1e-5"], ["epsilon"]),
        (["--epsilon", "-1", "--delta", "1e-5"], ["epsilon"]),
        (["--epsilon", "1", "--delta", "1.5"], ["delta"]),
        (["--epsilon", "1", "--delta", "0"], ["delta"]),
    ],
)
def test_impossible_privacy_parameters(tmp_path, args, needles):
    proc = run("compress", *args, "--limit", "10", "--out", tmp_path / "s")
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_output_folder_holding_another_store(store):
    assert_one_line_error(
        run("compress", "--psnr", "20", "--limit", "10", "--out", store), "already holds"
    )


def test_truncated_idx(tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    images = np.zeros((10, 28, 28), np.uint8)
    write_idx(d / "t10k-images-idx3-ubyte.gz", images)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.zeros(10, np.uint8))
    raw = gzip.decompress((d / "t10k-images-idx3-ubyte.gz").read_bytes())
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[: len(raw) // 2]))
    proc = run(
        "compress", "--data-dir", d, "--split", "test", "--psnr", "20", "--out", tmp_path / "s"
    )
    assert_one_line_error(proc, "truncated")


def test_celeba_without_attribute_file(tmp_path):
    root = tmp_path / "celeba"
    make_celeba_tree(root, n=6)
    (root / "list_attr_celeba.txt").unlink()
    proc = run(
        "compress",
        "--dataset",
        "celeba",
        "--data-dir",
        root,
        "--psnr",
        "20",
        "--out",
        tmp_path / "s",
    )
    assert_one_line_error(proc, "list_attr_celeba.txt")


def test_folder_with_mixed_sizes(tmp_path):
    root = tmp_path / "imgs"
    for cls, size in (("a", (16, 16)), ("b", (20, 16))):
        (root / cls).mkdir(parents=True)
        for k in range(3):
            Image.new("L", size, color=k * 40).save(root / cls / f"{k}.png")
    proc = run(
        "compress",
        "--dataset",
        "folder",
        "--data-dir",
        root,
        "--psnr",
        "20",
        "--out",
        tmp_path / "s",
    )
    assert_one_line_error(proc, "size")


def test_missing_store(tmp_path):
    assert_one_line_error(run("inspect", tmp_path / "nope"), "no such store")


def test_console_script_installed():
    exe = shutil.which("lossylearn", path=str(Path(sys.executable).parent))
    assert exe is not None
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "lossylearn" in proc.stdout


def test_cli_import_does_not_load_torch():
    # every command would start ~1.5 s slower; torch loads only in the commands that train
    code = "import sys, lossylearn.cli; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
