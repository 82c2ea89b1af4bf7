"""Learned-codec checkpoints with hostile config.json fields or damaged weights (issue 10, part B).

Every such checkpoint must be refused with a one-line CodecError naming what is wrong, by the
library and by the two commands that load one (``codec eval --checkpoint`` and
``compress --codec learned --codec-checkpoint``). The checkpoints are untrained tiny models: only
loading is tested, so no training is needed.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from learned_codec_support import TINY, one_thread

from lossylearn.codecs import get_codec
from lossylearn.codecs.learned.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    Checkpoint,
    Rung,
    save_checkpoint,
    validate_config,
)
from lossylearn.codecs.learned.codec import LearnedCodec
from lossylearn.codecs.learned.coding import EntropyParameters
from lossylearn.codecs.learned.models import build_codec_model
from lossylearn.errors import CodecError


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ck")
    out = {}
    with one_thread():
        for arch, cfg in TINY.items():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = build_codec_model(cfg).eval()
            model.entropy_bottleneck.solve_quantiles()
            rung = Rung(0.01, model, EntropyParameters.build(model), {"untrained": True})
            out[arch] = save_checkpoint(Checkpoint(cfg, "mse", [rung]), root / arch)
    return out


def _copy(src: Path, dst: Path, edit=None, weights: bytes | None = None, fix_sha: bool = True):
    shutil.copytree(src, dst)
    cfg = json.loads((dst / CONFIG_NAME).read_text())
    if weights is not None:
        (dst / WEIGHTS_NAME).write_bytes(weights)
        if fix_sha:
            cfg["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    if edit is not None:
        edit(cfg)
    (dst / CONFIG_NAME).write_text(json.dumps(cfg))
    return dst


def _set(path: tuple[Any, ...], value: Any):
    def edit(cfg: dict[str, Any]) -> None:
        obj = cfg
        for p in path[:-1]:
            obj = obj[p]
        if value is _DELETE:
            del obj[path[-1]]
        else:
            obj[path[-1]] = value

    return edit


_DELETE = object()


def _refused(path: Path, *needles: str) -> str:
    with pytest.raises(CodecError) as err:
        LearnedCodec(path)
    msg = str(err.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


BAD_FIELDS = [
    (("model", "channels"), "16", "'model.channels'"),
    (("model", "channels"), [16], "'model.channels'"),
    (("model", "channels"), None, "'model.channels'"),
    (("model", "channels"), -16, "'model.channels'"),
    (("model", "channels"), True, "'model.channels'"),
    (("model", "channels"), 16.5, "'model.channels'"),
    (("model", "channels"), 10**9, "'model.channels'"),
    (("model", "channels"), _DELETE, "'model.channels' is missing"),
    (("model", "latent_channels"), 0, "'model.latent_channels'"),
    (("model", "in_channels"), "1", "'model.in_channels'"),
    (("model", "downsamples"), 10**6, "'model.downsamples'"),
    (("model", "architecture"), ["factorized"], "'model.architecture'"),
    (("model", "architecture"), _DELETE, "'model.architecture' is missing"),
    (("model", "kernel_size"), 4, "'model.kernel_size' must be odd"),
    (("model", "eb_filters"), "333", "'model.eb_filters'"),
    (("model", "eb_filters"), [3, -3, 3], "'model.eb_filters'"),
    (("model", "tail_mass"), float("nan"), "'model.tail_mass'"),
    (("model", "tail_mass"), 0, "'model.tail_mass'"),
    (("model", "colour"), 1, "'model.colour' is not a model setting"),
    (("model",), None, "'model' must be a JSON object"),
    (("model",), _DELETE, "'model' is missing"),
    (("distortion",), "psnr", "'distortion'"),
    (("distortion",), None, "'distortion'"),
    (("rungs",), [], "'rungs'"),
    (("rungs",), {"0": {}}, "'rungs'"),
    (("rungs",), _DELETE, "'rungs' is missing"),
    (("rungs", 0), "rung", "'rungs[0]' must be a JSON object"),
    (("rungs", 0, "lmbda"), "0.01", "'rungs[0].lmbda'"),
    (("rungs", 0, "lmbda"), -1, "'rungs[0].lmbda'"),
    (("rungs", 0, "lmbda"), float("inf"), "'rungs[0].lmbda'"),
    (("rungs", 0, "lmbda"), _DELETE, "'rungs[0].lmbda' is missing"),
    (("rungs", 0, "quality"), 3, "'rungs[0].quality'"),
    (("rungs", 0, "info"), [1], "'rungs[0].info'"),
    (("rungs", 0, "entropy"), None, "'rungs[0].entropy'"),
    (("rungs", 0, "entropy", "precision"), "16", "'rungs[0].entropy.precision'"),
    (("rungs", 0, "entropy", "precision"), 10**9, "'rungs[0].entropy.precision'"),
    (("rungs", 0, "entropy", "z_tables_shape"), 8, "'rungs[0].entropy.z_tables_shape'"),
    (("rungs", 0, "entropy", "z_tables_shape"), [7, 9], "'rungs[0].entropy.z_tables_shape'"),
    (("meta",), "none", "'meta'"),
    (("weights_file",), "../../weights.pt", "'weights_file'"),
    (("weights_file",), 3, "'weights_file'"),
    (("weights_sha256",), None, "'weights_sha256'"),
    (("weights_sha256",), "zz", "'weights_sha256'"),
]


@pytest.mark.parametrize(("path", "value", "needle"), BAD_FIELDS)
def test_bad_config_field_is_named(checkpoints, tmp_path, path, value, needle):
    ck = _copy(checkpoints["factorized"], tmp_path / "ck", _set(path, value))
    _refused(ck, needle, str(ck / CONFIG_NAME))


HYPER_FIELDS = [
    (("model", "hyper_channels"), 0, "'model.hyper_channels'"),
    (("model", "hyper_downsamples"), "1", "'model.hyper_downsamples'"),
    (("rungs", 0, "entropy", "y_tables_shape"), None, "'rungs[0].entropy.y_tables_shape'"),
    (("rungs", 0, "entropy", "scale_levels"), 1.5, "'rungs[0].entropy.scale_levels'"),
    (("rungs", 0, "entropy", "hyper"), [], "'rungs[0].entropy.hyper'"),
    (("rungs", 0, "entropy", "hyper", "frac_bits"), 99, "'rungs[0].entropy.hyper.frac_bits'"),
    (("rungs", 0, "entropy", "hyper", "layers"), "conv", "'rungs[0].entropy.hyper.layers'"),
    (("rungs", 0, "entropy", "hyper", "layers", 0), None, "'rungs[0].entropy.hyper.layers'"),
    (
        ("rungs", 0, "entropy", "hyper", "layers", 0, "stride"),
        1,
        "'rungs[0].entropy.hyper.layers' does not describe",
    ),
    (
        ("rungs", 0, "entropy", "hyper", "layers", 1, "padding"),
        [-1, 1],
        "'rungs[0].entropy.hyper.layers' does not describe",
    ),
]


@pytest.mark.parametrize(("path", "value", "needle"), HYPER_FIELDS)
def test_bad_hyperprior_field_is_named(checkpoints, tmp_path, path, value, needle):
    ck = _copy(checkpoints["hyperprior"], tmp_path / "ck", _set(path, value))
    _refused(ck, needle)


def test_architecture_and_tables_must_agree(checkpoints, tmp_path):
    # a factorized config that carries hyperprior tables, and the reverse
    hyper = json.loads((checkpoints["hyperprior"] / CONFIG_NAME).read_text())

    def add_hyper(cfg):
        cfg["rungs"][0]["entropy"]["hyper"] = hyper["rungs"][0]["entropy"]["hyper"]

    _refused(_copy(checkpoints["factorized"], tmp_path / "f", add_hyper), "belongs to a hyperprior")
    ck = _copy(
        checkpoints["hyperprior"], tmp_path / "h", _set(("model", "architecture"), "factorized")
    )
    _refused(ck, "y_tables_shape", "belongs to a hyperprior")


def test_valid_checkpoints_still_load_and_code(checkpoints):
    for path in checkpoints.values():
        validate_config(json.loads((path / CONFIG_NAME).read_text()))
        codec = get_codec("learned", checkpoint=str(path))
        img = np.zeros((12, 12, 1), np.uint8)
        assert codec.decode(codec.encode(img, 0), 0, img.shape).shape == img.shape


def _saved(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_truncated_or_corrupt_weights(checkpoints, tmp_path):
    src = checkpoints["hyperprior"]
    raw = (src / WEIGHTS_NAME).read_bytes()
    # truncated, config untouched: the recorded checksum catches it
    _refused(_copy(src, tmp_path / "a", weights=raw[: len(raw) // 2], fix_sha=False), "checksum")
    # truncated or garbage with a matching checksum: torch cannot read it
    for name, data in (("b", raw[: len(raw) // 2]), ("c", b""), ("d", b"not a zip" * 50)):
        _refused(_copy(src, tmp_path / name, weights=data), "not a readable weights file")
    blob = torch.load(src / WEIGHTS_NAME, weights_only=True)
    bad: dict[str, tuple[Any, str]] = {}
    bad["e"] = ([blob["rung0"]], "not a learned-codec weights file")
    bad["f"] = ({}, "lacks the weights of rung 0")
    e = copy.deepcopy(blob)
    e["rung0"]["state_dict"] = [1, 2]
    bad["g"] = (e, "state_dict is not a dictionary of tensors")
    e = copy.deepcopy(blob)
    e["rung0"]["entropy"]["z_medians"] = 3
    bad["h"] = (e, "entropy is not a dictionary of tensors")
    e = copy.deepcopy(blob)
    e["rung0"]["state_dict"]["g_a.0.weight"] = torch.full_like(
        e["rung0"]["state_dict"]["g_a.0.weight"], float("nan")
    )
    bad["i"] = (e, "NaN")
    e = copy.deepcopy(blob)
    e["rung0"]["state_dict"]["g_a.0.weight"] = torch.zeros(3, 3)
    bad["j"] = (e, "do not fit the configured model")
    e = copy.deepcopy(blob)
    del e["rung0"]["state_dict"]["g_a.0.weight"]
    bad["k"] = (e, "do not fit the configured model")
    e = copy.deepcopy(blob)
    e["rung0"]["entropy"] = {k: torch.full_like(v, 7) for k, v in e["rung0"]["entropy"].items()}
    bad["l"] = (e, "rung 0")
    e = copy.deepcopy(blob)
    del e["rung0"]["entropy"]["z_medians"]
    bad["m"] = (e, "z_medians")
    for name, (obj, needle) in bad.items():
        _refused(_copy(src, tmp_path / name, weights=_saved(obj)), needle)


def test_config_that_would_allocate_a_huge_model_is_refused_cheaply(checkpoints, tmp_path):
    # valid types and ranges, but 4096 channels: shapes are compared on the meta device first
    ck = _copy(checkpoints["factorized"], tmp_path / "ck", _set(("model", "channels"), 4096))
    _refused(ck, "do not fit the configured model", "g_a.0.weight")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lossylearn.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_line(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_commands_print_one_line(checkpoints, tmp_path):
    ck = _copy(checkpoints["factorized"], tmp_path / "ck", _set(("model", "channels"), "16"))
    proc = _cli("codec", "eval", "--checkpoint", ck, "--dataset", "mnist", "--limit", "4",
                "--baselines", "jpeg", "--out", tmp_path / "eval")  # fmt: skip
    _one_line(proc, "error:", "'model.channels'")
    proc = _cli("compress", "--codec", "learned", "--codec-checkpoint", ck, "--dataset", "mnist",
                "--limit", "4", "--psnr", "20", "--seed", "0", "--out", tmp_path / "s")  # fmt: skip
    _one_line(proc, "error:", "'model.channels'")
    assert not (tmp_path / "s" / "manifest.json").exists()


# -- threads (issue 10, part C) -------------------------------------------------------------


def test_training_threads_default_is_recorded_and_restored():
    from lossylearn.codecs.learned.train import DEFAULT_THREADS, train_rung
    from lossylearn.codecs.learned.train import CodecTrainConfig as TrainConfig

    images = np.random.default_rng(0).integers(0, 256, (4, 12, 12, 1), dtype=np.uint8)
    assert TrainConfig().threads == DEFAULT_THREADS == 1
    torch.set_num_threads(2)  # what torch picks by itself on a 2-core machine
    try:
        rung = train_rung(images, TINY["factorized"], 0.01, TrainConfig(max_steps=1))
        assert rung.info["train"]["threads"] == 1
        assert torch.get_num_threads() == 2  # restored afterwards
    finally:
        torch.set_num_threads(1)
    rung = train_rung(images, TINY["factorized"], 0.01, TrainConfig(max_steps=1, threads=None))
    assert rung.info["train"]["threads"] == torch.get_num_threads() == 1
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(CodecError, match="threads"):
            TrainConfig(threads=bad)


def test_eval_records_threads(checkpoints, tmp_path):
    from lossylearn.pipeline.codec_data import DEFAULT_THREADS, evaluate_checkpoint

    result = evaluate_checkpoint(
        checkpoint=checkpoints["factorized"], dataset="mnist", out=tmp_path / "eval", limit=4,
        baselines=("jpeg",), baseline_qualities=(50,),
    )  # fmt: skip
    assert f"torch threads: {DEFAULT_THREADS}" in result.notes
    saved = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert f"torch threads: {DEFAULT_THREADS}" in saved["notes"]
