"""``lossylearn export`` against hostile class names and output folders (issue 10, part A)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lossylearn
from lossylearn.data import ImageDataset
from lossylearn.errors import CodecError, StoreError
from lossylearn.export import LABELS_FILE, class_folders, export_store
from lossylearn.store import open_store
from lossylearn.store.reader import Store

CLASSES = ("..", "x?y", "x!y", "ok", "a/b", ".", "", "Cat", "cat", "labels.json")


def _assert_safe_and_unique(folders: dict[int, str]) -> None:
    names = list(folders.values())
    assert len({n.casefold() for n in names}) == len(names), names
    for n in names:
        assert n and n not in (".", "..") and not n.startswith("."), n
        assert "/" not in n and "\\" not in n and "\0" not in n, n
        assert n.casefold() != LABELS_FILE
        assert len(n.encode()) < 255


def test_folder_rule_safe_unique_deterministic():
    labels = list(range(len(CLASSES))) + [12, -1]  # 12 and -1 have no class name
    folders = class_folders(CLASSES, labels)
    _assert_safe_and_unique(folders)
    assert folders == class_folders(CLASSES, reversed(labels))
    assert folders[0] == "__"  # '..'
    assert folders[1] == "x_y+1" and folders[2] == "x_y+2"  # 'x?y' and 'x!y' merge -> disambiguated
    assert folders[3] == "ok"
    assert folders[4] == "a_b"
    assert folders[5] == "_+5" and folders[6] == "_+6"  # '.' and '' both give '_'
    assert folders[7] == "Cat+7" and folders[8] == "cat+8"  # equal on case-insensitive disks
    assert folders[9] == "labels.json+9"  # the mapping file's name is reserved
    assert folders[12] == "12" and folders[-1] == "-1"


@pytest.mark.parametrize(
    "classes",
    [
        ("x_y+1", "x?y", "x!y"),  # a name that looks like a disambiguated one
        ("a" * 300, "a" * 299 + "b"),  # equal once cut to the length limit
        ("é", "e\u0301"),  # the same letter composed and decomposed
        ("..\\..\\evil", "/etc/passwd", "~", "$HOME", "\n", " "),
        ("12", "x"),  # a class named like another label's number
    ],
)
def test_folder_rule_hostile_names(classes):
    labels = list(range(len(classes))) + [12]
    _assert_safe_and_unique(class_folders(classes, labels))


def _store(tmp_path: Path, classes: tuple[str, ...], name: str = "s") -> Path:
    rng = np.random.default_rng(0)
    n = 40
    images = rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)
    labels = (np.arange(n) % len(classes)).astype(np.int64)
    ds = ImageDataset(
        name="hostile",
        train_images=images,
        train_labels=labels,
        test_images=images[:2].copy(),
        test_labels=labels[:2].copy(),
        classes=classes,
        source="test arrays",
    )
    out = tmp_path / name
    lossylearn.compress(
        out=out, dataset=ds, noise="gaussian", sigma=20, codec="png", seed=0, progress=False
    )
    return out


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory) -> Path:
    return _store(tmp_path_factory.mktemp("hostile"), ("..", "x?y", "x!y", "ok"))


def test_export_stays_inside_dest_and_keeps_labels_apart(hostile_store, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    dest = work / "dest"
    assert export_store(hostile_store, dest, fmt="png") == 40
    assert [p.name for p in work.iterdir()] == ["dest"]  # nothing beside DEST, no temporaries
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["__", "x_y+1", "x_y+2", "ok", LABELS_FILE]
    )
    mapping = json.loads((dest / LABELS_FILE).read_text())
    assert [(e["label"], e["class"], e["folder"], e["images"]) for e in mapping["labels"]] == [
        (0, "..", "__", 10),
        (1, "x?y", "x_y+1", 10),
        (2, "x!y", "x_y+2", 10),
        (3, "ok", "ok", 10),
    ]
    store = open_store(hostile_store)
    for e in mapping["labels"]:
        files = sorted((dest / e["folder"]).iterdir())
        want = sorted(int(v) for v in store.indices[store.labels == e["label"]])
        assert [int(f.stem) for f in files] == want


def test_failure_on_last_image_leaves_nothing_and_says_which(hostile_store, tmp_path, monkeypatch):
    dest = tmp_path / "out" / "dest"  # the parent does not exist yet either
    real = Store.__getitem__

    def flaky(self, i):
        if i == len(self) - 1:
            raise CodecError("payload is corrupt (simulated)")
        return real(self, i)

    monkeypatch.setattr(Store, "__getitem__", flaky)
    with pytest.raises(StoreError) as err:
        export_store(hostile_store, dest, fmt="png")
    msg = str(err.value)
    assert "\n" not in msg
    assert "image 39" in msg and "payload is corrupt" in msg and "nothing was written" in msg
    assert not (tmp_path / "out").exists()  # no partial export, no temporary, no created parent
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(Store, "__getitem__", real)
    assert export_store(hostile_store, dest, fmt="png") == 40  # a re-run is not refused


def test_unexpected_error_is_wrapped_and_cleaned(hostile_store, tmp_path, monkeypatch):
    def boom(self, i):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Store, "container", boom)
    with pytest.raises(StoreError, match="image 0 .*No space left"):
        export_store(hostile_store, tmp_path / "d", fmt="native")
    assert list(tmp_path.iterdir()) == []


def test_dest_is_a_file_or_not_empty(hostile_store, tmp_path):
    f = tmp_path / "file"
    f.write_text("keep me")
    with pytest.raises(StoreError, match="not a folder"):
        export_store(hostile_store, f)
    assert f.read_text() == "keep me"
    with pytest.raises(StoreError, match="cannot create"):
        export_store(hostile_store, f / "sub")
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("keep me")
    with pytest.raises(StoreError, match="not empty"):
        export_store(hostile_store, full)
    assert [p.name for p in full.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "full"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_store(hostile_store, empty, fmt="native") == 40
    assert len(list(empty.rglob("*.png"))) == 40


def test_cli_one_line_error_for_a_file_dest(hostile_store, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "lossylearn.cli", "export", str(hostile_store), str(f)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not a folder" in lines[0], proc.stderr


def test_existing_empty_dest_is_filled_in_place(hostile_store, tmp_path, monkeypatch):
    empty = tmp_path / "cwd"
    empty.mkdir()
    inode = empty.stat().st_ino
    monkeypatch.chdir(empty)
    link = tmp_path / "link"
    link.symlink_to(empty)

    def boom(self, i):
        raise CodecError("bad bytes")

    with monkeypatch.context() as m:
        m.setattr(Store, "container", boom)
        with pytest.raises(StoreError, match="bad bytes"):
            export_store(hostile_store, link, fmt="native")
    assert list(empty.iterdir()) == [] and link.is_symlink()
    assert export_store(hostile_store, ".", fmt="native") == 40  # the working directory itself
    assert empty.stat().st_ino == inode  # the same folder, not a replacement
    assert sorted(p.name for p in empty.iterdir()) == sorted(
        ["__", "x_y+1", "x_y+2", "ok", LABELS_FILE]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "link"]
