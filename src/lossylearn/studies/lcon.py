"""The LCoN study: the paper's section VI experiments (Fig. 2, Fig. 3 and Fig. 4) as one function.

For every noise level of the grid, the training pool is noised and coded with the matched codec into
a real store (``lossylearn.compress``); the three training schemes (clean = baseline 1, noisy =
baseline 2, lcon) get as many examples as fit in the same stored bits (clean and noisy counted at
their lossless PNG size, shared headers once); one model per scheme and seed is trained and tested
on clean, noisy, LCoN, FGSM, LCoN-processed FGSM and PGD test sets. A second sweep fixes the noise
(variance 1600 on the 0-255 scale by default) and moves the codec's target distortion (Fig. 3).
Everything lands in ``out``: results.json, results.csv, figures/*.png and report.html.

With ``codec="learned"`` (section VI-B, Fig. 4: Laplacian noise and a neural codec trained for MAE)
a share of the training pool (``codec_fraction``, default 0.2) is held out: for every store a codec
is trained on the noisy versions of those images for the matched distortion
(:mod:`.codec_training`), and no classifier, of any scheme, sees them. The checkpoints land in
``out/codecs``.

Commands and what they cost:

* ``lossylearn study lcon --profile quick --out D``: embedded MNIST (1,000 training / 500 test
  digits), 3 PSNRs, 11 small-CNN trainings; about 45 s on one busy CPU core.
* ``lossylearn study lcon --profile paper --data-dir shared/data/mnist --out D``: the 5,000
  embedded training digits and the official 10,000 test digits, the paper's 7 PSNRs, 3 seeds, a
  7-point Fig. 3 sweep; about 3 h on one busy CPU core, most of it the attacks on all 10,000 test
  images (``--adv-n-test 2000`` brings it near 1 h). Measured: ``--seeds 0,1 --epochs 5
  --adv-n-test 1000`` took 23.5 min (50 trainings; 9.6 min training, 12.5 min evaluation).
* ``lossylearn study lcon --profile paper --noise laplace --codec learned --data-dir
  shared/data/mnist --out D``: Fig. 4's PSNRs (8.1, 11.9, 16.1, 18.6, 22.1), no distortion sweep;
  1,000 of the 5,000 training digits train the codecs, 4,000 the classifiers.
* ``lossylearn study lcon --profile paper --dataset celeba --data-dir D --out O``: the paper's own
  task (gender, ResNet-34 at 64x64, 162,770 training / 19,962 test faces, 7 PSNRs x 3 schemes x
  3 seeds + Fig. 3: about 80 trainings of 10 epochs' worth of steps, 1.63M images each). On CPU
  this is out of reach (ResNet-34 trains at about 14 images/s per core here: days per model). On
  one GPU expect a few hours: an estimate (not measured here) from ~0.9 GFLOP per training image,
  i.e. 1-3 minutes per model on an H100, plus about a minute per model of attacks and LCoN
  processing of the test set, plus loading (decoding and resizing 202,599 JPEGs, ~15 min).
  ``--profile quick --dataset celeba`` (a narrow ResNet-18 at 32x32, 1,000 faces) runs on a CPU.
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from .. import __version__
from ..errors import LossylearnError
from ..learn import ClassifierTrainConfig as TrainConfig
from ..learn import (
    ModelConfig,
    accuracy,
    adversarial_images,
    build_model,
    count_parameters,
    default_model_name,
    float_to_uint8,
    resolve_device,
    torch_threads,
    train_classifier,
)
from .calibration import CodedSizes, SchemeBudget, calibrate_storage
from .claims import Claim, check_claims
from .codec_training import CodecTrainingConfig, matched_checkpoint
from .results import SCHEMES, ResultRow, SummaryRow, summarize, write_csv, write_json

__all__ = [
    "LAPLACE_PSNRS",
    "PAPER_PSNRS",
    "PROFILES",
    "StudyConfig",
    "StudyResult",
    "profile_config",
    "run_lcon_study",
]

#: PSNR grid of the paper's Fig. 2 (dB, noisy images against clean, from the noise variance).
PAPER_PSNRS: tuple[float, ...] = (8.1, 10.1, 11.9, 14.2, 16.1, 18.6, 22.1)
#: PSNR grid of the paper's Fig. 4 (Laplacian noise, learned MAE codec).
LAPLACE_PSNRS: tuple[float, ...] = (8.1, 11.9, 16.1, 18.6, 22.1)
PROFILES: tuple[str, ...] = ("quick", "paper")
MATCH_NOISE: tuple[str, ...] = ("nominal", "effective")
RESULTS_FORMAT = "lossylearn-study-lcon/1"
PARTIAL = "results.partial.json"

# Noise streams of the study's own noisy sets (compress uses small chunk numbers; these stay clear).
_STREAM_NOISY_TRAIN = 1_000_001
_STREAM_NOISY_TEST = 1_000_002
_STREAM_LCON_TEST = 1_000_003
_STREAM_LCON_ADV = 1_000_100
_STREAM_CODEC_TRAIN = 1_000_004
_N_SAMPLES = 8


@dataclass(frozen=True)
class StudyConfig:
    """Every setting of one LCoN study (a profile fills them; options override single fields)."""

    profile: str
    dataset: str = "mnist"
    data_dir: str | None = None
    attribute: str = "Male"
    image_size: int | None = None
    n_train: int | None = None
    n_test: int | None = None
    psnrs: tuple[float, ...] = PAPER_PSNRS
    noise: str = "gaussian"
    codec: str = "jpeg"
    codec_options: dict[str, Any] = field(default_factory=dict)
    codec_fraction: float = 0.2
    """With ``codec="learned"``: the share of the training pool held out to train the codecs (the
    classifiers never see it, as in the paper's section VI-B)."""
    codec_epochs: int = 8
    codec_finetune_epochs: int = 3
    codec_rounds: int = 6
    match_noise: str = "nominal"
    """``nominal``: the codec targets MSE = sigma^2 / MAE = b; ``effective``: the distortion the noise
    really adds after clipping, estimated from the noisy training images alone
    (:func:`lossylearn.privacy.effective.effective_distortion`)."""
    calibrate: bool = True
    seeds: tuple[int, ...] = (0,)
    data_seed: int = 0
    model: str = "auto"
    width: int = 64
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    hflip: bool = False
    equal_steps: bool = True
    fgsm_eps: tuple[float, ...] = (0.05, 0.1, 0.2)
    pgd_eps: tuple[float, ...] = (0.1,)
    pgd_steps: int = 10
    adv_n_test: int | None = None
    distortion_sweep: bool = True
    sweep_variance: float = 1600.0
    sweep_factors: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
    adv_psnr: float | None = None
    device: str = "auto"
    threads: int | None = None
    workers: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise LossylearnError(f"unknown profile {self.profile!r}; known: {', '.join(PROFILES)}")
        if not self.psnrs:
            raise LossylearnError("the noise sweep needs at least one PSNR")
        if any(not math.isfinite(p) or p <= 0 for p in self.psnrs):
            raise LossylearnError(f"PSNRs must be positive dB values, got {list(self.psnrs)}")
        if not self.seeds:
            raise LossylearnError("at least one seed is needed")
        if len(set(self.seeds)) != len(self.seeds):
            raise LossylearnError(f"seeds must be distinct, got {list(self.seeds)}")
        if self.noise not in ("gaussian", "laplace"):
            raise LossylearnError(f"unknown noise {self.noise!r}; known: gaussian, laplace")
        for name in ("n_train", "n_test", "adv_n_test"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise LossylearnError(f"{name.replace('_', '-')} must be >= 1, got {v}")
        if any(e < 0 or e > 1 for e in (*self.fgsm_eps, *self.pgd_eps)):
            raise LossylearnError(
                "attack epsilons are on the [0, 1] pixel scale and must lie in [0, 1]"
            )
        if self.sweep_variance <= 0 or any(f <= 0 for f in self.sweep_factors):
            raise LossylearnError(
                "the distortion sweep needs a positive variance and positive factors"
            )
        if self.workers < 1:
            raise LossylearnError(f"workers must be >= 1, got {self.workers}")
        if self.match_noise not in MATCH_NOISE:
            raise LossylearnError(
                f"unknown match-noise {self.match_noise!r}; known: {', '.join(MATCH_NOISE)}"
            )
        if self.codec == "learned":
            if "checkpoint" in self.codec_options:
                raise LossylearnError(
                    "the study trains its own learned codec per noise level on a held-out split; "
                    "drop the checkpoint option"
                )
            if not 0.0 < self.codec_fraction < 1.0:
                raise LossylearnError(
                    f"codec-fraction must lie strictly between 0 and 1, got {self.codec_fraction}"
                )
            self.codec_training()  # validates epochs and rounds

    def codec_training(self) -> CodecTrainingConfig:
        """How the learned codecs of this study are trained."""
        return CodecTrainingConfig(
            epochs=self.codec_epochs, finetune_epochs=self.codec_finetune_epochs,
            rounds=self.codec_rounds, seed=self.data_seed, device=self.device, progress=self.progress,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """The settings that decide the results (not how fast or verbosely they are computed)."""
        d = self.to_dict()
        for k in ("device", "threads", "workers", "progress"):
            d.pop(k)
        return json.loads(json.dumps(d))


_QUICK: dict[str, Any] = dict(
    n_train=1000, n_test=500, psnrs=(10.1, 16.1, 22.1), seeds=(0,), epochs=5, batch_size=32,
    fgsm_eps=(0.05, 0.1, 0.2), pgd_eps=(0.1,), pgd_steps=5, adv_n_test=250, sweep_factors=(0.25, 1.0, 4.0),
    threads=1,
)  # fmt: skip
_PAPER: dict[str, Any] = dict(
    n_train=None, n_test=None, psnrs=PAPER_PSNRS, seeds=(0, 1, 2), epochs=10, batch_size=64,
    fgsm_eps=(0.05, 0.1, 0.15, 0.2, 0.25, 0.3), pgd_eps=(0.1,), pgd_steps=10,
    sweep_factors=(0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
)  # fmt: skip
# The learned codec in the quick profile: short trainings, a loose target search.
_QUICK_CODEC: dict[str, Any] = dict(codec_epochs=3, codec_finetune_epochs=1, codec_rounds=3)
# Faces: ResNet, flips, and perturbations on the scale used for natural images (k/255).
_CELEBA_QUICK: dict[str, Any] = dict(
    model="resnet18", width=16, image_size=32, hflip=True, batch_size=64, epochs=2,
    fgsm_eps=(1 / 255, 2 / 255, 4 / 255), pgd_eps=(2 / 255,),
)  # fmt: skip
_CELEBA_PAPER: dict[str, Any] = dict(
    model="resnet34", width=64, image_size=64, hflip=True, batch_size=128, epochs=10,
    fgsm_eps=(1 / 255, 2 / 255, 4 / 255, 8 / 255), pgd_eps=(2 / 255,),
)  # fmt: skip


def profile_config(
    profile: str = "quick", *, dataset: str = "mnist", **overrides: Any
) -> StudyConfig:
    """The configuration of a named profile for ``dataset``, with ``overrides`` (``None`` = keep).

    * ``quick``: CI-sized (1,000 training / 500 test images, PSNR 10.1, 16.1, 22.1 dB, one seed,
      5 epochs of batch 32; Fig. 3 at 0.25x, 1x, 4x the matched distortion).
    * ``paper``: the paper's PSNR grid, 3 seeds, all training and test images, 10 epochs,
      FGSM epsilons 0.05..0.3 (MNIST) and a 7-point Fig. 3 sweep.

    With ``noise="laplace"`` the paper profile uses Fig. 4's PSNRs; with ``codec="learned"`` the
    distortion sweep is off unless asked for (each target trains a codec), and the quick profile
    trains the codecs briefly (3 + 1 epochs, at most 3 lambdas).

    For ``celeba`` the models are ResNets (ResNet-34 at 64x64 for ``paper``, a narrow ResNet-18 at
    32x32 for ``quick``) trained with horizontal flips and attacked with epsilons of k/255.
    """
    if profile not in PROFILES:
        raise LossylearnError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    base = dict(_QUICK if profile == "quick" else _PAPER)
    if dataset.strip().lower() == "celeba":
        base.update(_CELEBA_QUICK if profile == "quick" else _CELEBA_PAPER)
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("noise") == "laplace" and profile == "paper":
        base["psnrs"] = LAPLACE_PSNRS
    if given.get("codec") == "learned":
        # Fig. 4 has no distortion sweep, and with a learned codec every target costs a training.
        base["distortion_sweep"] = False
        if profile == "quick":
            base.update(_QUICK_CODEC)
    base.update(given)
    for k in ("psnrs", "seeds", "fgsm_eps", "pgd_eps", "sweep_factors"):
        if k in base:
            base[k] = tuple(base[k])
    return StudyConfig(profile=profile, dataset=dataset, **base)


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
class _TestSets:
    """The test sets of one LCoN setting (noise + codec quality)."""

    clean: np.ndarray
    labels: np.ndarray
    noisy: np.ndarray
    lcon: np.ndarray
    spec: Any
    codec: Any
    quality: int


@dataclass
class _Point:
    """One LCoN training set (a store) and the numbers rows carry about it."""

    sweep: str
    psnr: float
    sigma: float
    target: float
    achieved: float
    reached: bool
    metric: str
    quality: int
    bpp: float
    store: Path
    codec_options: dict[str, Any] = field(default_factory=dict)


def _versions(threads: int | None) -> dict[str, str]:
    import matplotlib
    import PIL

    dev = resolve_device("auto")
    return {
        "lossylearn": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "matplotlib": matplotlib.__version__,
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"cpu ({threads or torch.get_num_threads()} torch threads)",
    }


def _noise_kwargs(
    config: StudyConfig, *, psnr: float | None = None, variance: float | None = None
) -> dict[str, Any]:
    if psnr is not None:
        return {"psnr": float(psnr)}
    assert variance is not None
    if config.noise == "gaussian":
        return {"sigma": math.sqrt(variance)}
    return {"b": math.sqrt(variance / 2.0)}


def _resolve(config: StudyConfig, shape: tuple[int, int, int], **noise: Any) -> Any:
    from ..privacy import resolve_noise

    spec, _ = resolve_noise(kind=config.noise, image_shape=shape, seeded=True, **noise)
    return spec


def _noisy(images: np.ndarray, spec: Any, seed: int, stream: int) -> np.ndarray:
    from ..privacy import NoiseSource, add_noise

    return add_noise(images, spec, NoiseSource.create(seed, stream))


def _png_sizes(images: np.ndarray) -> CodedSizes:
    """Lossless PNG bytes per image, with the per-set PNG header counted once."""
    from ..codecs import get_codec

    png = get_codec("png")
    shape = tuple(int(v) for v in images.shape[1:])
    q = _png_quality(png)
    sizes = np.fromiter(
        (len(png.encode(img, q)) for img in images), dtype=np.int64, count=len(images)
    )
    return CodedSizes(sizes, len(png.shared_header(q, shape)))


def _png_quality(png: Any) -> int:
    """The PNG codec's quality argument: lossless, so its only (first) quality level."""
    return int(tuple(getattr(png, "qualities", (0,)))[0])


def _psnr_of_variance(variance: float) -> float:
    return 10.0 * math.log10(255.0**2 / variance)


class _Runner:
    """Carries shared state through one study run."""

    def __init__(self, config: StudyConfig, out: Path, console: Console) -> None:
        self.config = config
        self.out = out
        self.console = console
        self.rows: list[ResultRow] = []
        self.calibration: list[dict[str, Any]] = []
        self.stores: list[dict[str, Any]] = []
        self.samples: dict[str, Any] = {}
        self.timing: dict[str, float] = {
            "compress": 0.0,
            "train": 0.0,
            "evaluate": 0.0,
            "calibrate": 0.0,
        }
        self.n_models = 0
        self.codec_records: list[dict[str, Any]] = []
        self._codecs: dict[str, Any] = {}

    # -- data ---------------------------------------------------------------------------------
    def load(self) -> None:
        from ..data import load_dataset

        c = self.config
        caps = [v for v in (c.n_train, c.n_test) if v is not None]
        limit = max(caps) if len(caps) == 2 and c.dataset == "celeba" else None
        ds = load_dataset(
            c.dataset, c.data_dir, attribute=c.attribute, image_size=c.image_size, limit=limit
        )
        rng = np.random.default_rng(c.data_seed)
        tr = rng.permutation(len(ds.train_labels))[: c.n_train]
        te = np.sort(rng.permutation(len(ds.test_labels))[: c.n_test])
        self.train_x = np.ascontiguousarray(ds.train_images[tr])
        self.train_y = ds.train_labels[tr]
        self.codec_x = self.train_x[:0]
        if c.codec == "learned":
            # The codecs train on their own split; no classifier (clean, noisy or LCoN) sees it.
            n_codec = int(round(c.codec_fraction * len(self.train_y)))
            if n_codec < 20 or len(self.train_y) - n_codec < 20:
                raise LossylearnError(
                    f"codec-fraction {c.codec_fraction:g} of {len(self.train_y)} training images "
                    "leaves fewer than 20 for the codec or the classifiers"
                )
            self.codec_x = self.train_x[:n_codec]
            self.train_x = np.ascontiguousarray(self.train_x[n_codec:])
            self.train_y = self.train_y[n_codec:]
        self.test_x = np.ascontiguousarray(ds.test_images[te])
        self.test_y = ds.test_labels[te]
        self.shape = tuple(int(v) for v in self.train_x.shape[1:])
        self.dataset_info = {
            "name": ds.name,
            "source": ds.source,
            "classes": list(ds.classes),
            "image_shape": list(self.shape),
            "n_train_pool": int(len(self.train_y)),
            "n_codec_train": int(len(self.codec_x)),
            "n_test": int(len(self.test_y)),
            "train_class_counts": np.bincount(self.train_y, minlength=len(ds.classes)).tolist(),
        }
        name = c.model if c.model != "auto" else default_model_name(self.shape[:2])
        self.model_config = ModelConfig(
            name, self.shape[2], (self.shape[0], self.shape[1]), len(ds.classes), c.width
        )
        t = time.perf_counter()
        self.clean_sizes = _png_sizes(self.train_x)
        self.timing["calibrate"] += time.perf_counter() - t
        self.samples["clean"] = self.test_x[:_N_SAMPLES]

    # -- codecs and stores -----------------------------------------------------------------------
    def codec(self, options: dict[str, Any]) -> Any:
        """The study's codec with ``options`` (built once per distinct options)."""
        from ..codecs import get_codec

        key = json.dumps(options, sort_keys=True)
        if key not in self._codecs:
            self._codecs[key] = get_codec(self.config.codec, **options)
        return self._codecs[key]

    def matched(self, spec: Any, noisy: np.ndarray) -> float:
        """The distortion a store at this noise is matched to: nominal (sigma^2 or b), or effective
        (after clipping, estimated from the noisy training images ``noisy``; no clean data)."""
        if self.config.match_noise == "nominal":
            return float(spec.matched_target()[1])
        from ..privacy.effective import effective_distortion

        return effective_distortion(noisy, spec)

    def codec_options(self, name: str, spec: Any, target: float) -> dict[str, Any]:
        """Codec options for one store; a learned codec is trained for it first (on the codec split,
        for ``target`` in the noise's matched metric)."""
        c = self.config
        options = dict(c.codec_options)
        if c.codec != "learned":
            return options
        metric = spec.matched_target()[0]
        goal = float(target)
        noisy = _noisy(self.codec_x, spec, c.data_seed, _STREAM_CODEC_TRAIN)
        t = time.perf_counter()
        record = matched_checkpoint(
            noisy, metric=metric, target=goal, path=self.out / "codecs" / name,
            config=c.codec_training(), meta={"study_store": name, "noise": spec.kind},
        )  # fmt: skip
        self.timing["codec_training"] = self.timing.get("codec_training", 0.0) + (
            time.perf_counter() - t
        )
        record["path"] = str(Path(record["path"]).relative_to(self.out))
        self.codec_records.append({"store": name, **record})
        if c.progress:
            self.console.print(
                f"codec for {name}: {metric.upper()} {record['held_out_distortion']:.4g} held out "
                f"(target {goal:.4g}), lambda {record['lmbda']:.4g}"
                + (" (reused)" if record["reused"] else f", {record['seconds']:.0f} s")
            )
        return {**options, "checkpoint": str(self.out / "codecs" / name)}

    def make_store(
        self, name: str, sweep: str, nominal_psnr: float, codec_options: dict[str, Any], **kw: Any
    ) -> _Point:
        from ..pipeline import compress
        from ..store.owner import read_clean_stats

        c = self.config
        path = self.out / "stores" / name
        t = time.perf_counter()
        m = compress(
            out=path, images=self.train_x, labels=self.train_y, noise=c.noise, codec=c.codec,
            codec_options=codec_options or None, match="dataset", seed=c.data_seed,
            workers=c.workers, resume=True, progress=c.progress,
            warn=lambda msg: self.console.print(f"[yellow]note[/]: {msg}"), **kw,
        )  # fmt: skip
        self.timing["compress"] += time.perf_counter() - t
        md = m.to_dict()
        clean = read_clean_stats(path)  # the study holds the clean data: it is the owner
        q = md["codec"]["quality"]
        if q is None:
            raise LossylearnError(
                f"store {path} holds several codec qualities; the study needs one per store"
            )
        sigma = float(md["noise"].get("sigma") or md["noise"].get("b") or 0.0)
        point = _Point(
            sweep=sweep, psnr=nominal_psnr, sigma=sigma, target=float(md["codec"]["target_distortion"]),
            achieved=float(md["codec"]["achieved_distortion"]), reached=bool(md["codec"]["target_reached"]),
            metric=str(md["codec"]["target_metric"]), quality=int(q), bpp=float(md["stats"]["bits_per_pixel"]),
            store=path, codec_options=codec_options,
        )  # fmt: skip
        self.stores.append(
            {
                "name": name, "sweep": sweep, "psnr": nominal_psnr, "path": str(path.relative_to(self.out)),
                "quality": point.quality, "metric": point.metric, "target_distortion": point.target,
                "achieved_distortion": point.achieved, "target_reached": point.reached,
                "message": md["codec"].get("message", ""), "bits_per_pixel": point.bpp,
                "stored_bytes": int(md["stats"]["stored_bytes"]),
                "shared_header_bytes": int(md["stats"]["shared_header_bytes"]),
                "psnr_noisy_db": clean.psnr_noisy_db, "psnr_stored_db": clean.psnr_stored_db,
                "mse_stored_to_clean": clean.mse_stored_to_clean,
                "mae_noisy_to_clean": clean.mae_noisy_to_clean,
                "noise": md["noise"], "privacy": md["privacy"],
            }
        )  # fmt: skip
        return point

    def store_training_set(self, point: _Point) -> tuple[np.ndarray, np.ndarray, CodedSizes]:
        from ..store import open_store

        store = open_store(point.store)
        x, y = store.arrays()
        sizes = np.array([len(store.payload(i)) for i in range(len(store))], dtype=np.int64)
        return x, y, CodedSizes(sizes, int(store.manifest.stats.shared_header_bytes))

    def test_sets(self, spec: Any, point: _Point) -> _TestSets:
        from ..pipeline import lcon_transform

        seed = self.config.data_seed
        codec = self.codec(point.codec_options)
        noisy = _noisy(self.test_x, spec, seed, _STREAM_NOISY_TEST)
        lcon = lcon_transform(
            self.test_x,
            spec=spec,
            codec=codec,
            quality=point.quality,
            seed=seed,
            stream=_STREAM_LCON_TEST,
        )
        return _TestSets(
            self.test_x, self.test_y, noisy, lcon.reconstructed, spec, codec, point.quality
        )

    # -- training and evaluation ----------------------------------------------------------------
    def train_and_test(
        self, point: _Point, scheme: str, x: np.ndarray, y: np.ndarray, budget: SchemeBudget,
        tests: _TestSets, *, full: bool,
    ) -> None:  # fmt: skip
        c = self.config
        for seed in c.seeds:
            # Equal steps: every scheme gets the optimizer steps of `epochs` passes over the whole pool,
            # so a small (storage-calibrated) training set is not also under-trained.
            steps = (
                c.epochs * math.ceil(len(self.train_y) / c.batch_size) if c.equal_steps else None
            )
            tcfg = TrainConfig(
                epochs=c.epochs, batch_size=c.batch_size, lr=c.lr, optimizer=c.optimizer, seed=seed,
                threads=c.threads, device=c.device, progress=c.progress, hflip=c.hflip, steps=steps,
            )  # fmt: skip
            label = (
                f"{point.sweep} psnr {point.psnr:g} target {point.target:g} {scheme} seed {seed}"
            )
            t = time.perf_counter()
            res = train_classifier(
                x, y, model_config=self.model_config, config=tcfg, description=label
            )
            self.timing["train"] += time.perf_counter() - t
            t = time.perf_counter()
            accs = self.evaluate(res.model, tests, seed=seed, full=full)
            self.timing["evaluate"] += time.perf_counter() - t
            self.n_models += 1
            for test, eps, acc, n_test in accs:
                self.rows.append(
                    ResultRow(
                        sweep=point.sweep,
                        psnr=point.psnr,
                        noise_sigma=point.sigma,
                        target_distortion=point.target,
                        achieved_distortion=point.achieved,
                        target_reached=point.reached,
                        metric=point.metric,
                        quality=point.quality,
                        train=scheme,
                        test=test,
                        epsilon=eps,
                        accuracy=acc,
                        n_test=n_test,
                        n_train=budget.n_train,
                        train_bits=budget.train_bits,
                        budget_bits=budget.budget_bits,
                        bits_per_pixel=point.bpp,
                        seed=seed,
                        model=self.model_config.name,
                        epochs=c.epochs,
                        train_seconds=round(res.seconds, 3),
                    )  # fmt: skip
                )
            if c.progress:
                brief = ", ".join(
                    f"{t}{'@' + format(e, 'g') if e else ''} {a:.3f}" for t, e, a, _ in accs[:4]
                )
                self.console.print(f"[{self.n_models}] {label}: n_train {budget.n_train}, {brief}")

    def evaluate(
        self, model: torch.nn.Module, tests: _TestSets, *, seed: int, full: bool
    ) -> list[tuple[str, float, float, int]]:
        """Accuracies on every test set; ``full`` adds LCoN-processed FGSM and PGD."""
        from ..pipeline import lcon_transform

        c = self.config
        dev = c.device
        out = [
            (
                "clean",
                0.0,
                accuracy(model, tests.clean, tests.labels, device=dev),
                len(tests.labels),
            ),
            (
                "noisy",
                0.0,
                accuracy(model, tests.noisy, tests.labels, device=dev),
                len(tests.labels),
            ),
            ("lcon", 0.0, accuracy(model, tests.lcon, tests.labels, device=dev), len(tests.labels)),
        ]
        ax, ay = tests.clean[: c.adv_n_test], tests.labels[: c.adv_n_test]
        for k, eps in enumerate(c.fgsm_eps):
            adv = adversarial_images(
                model, ax, ay, attack="fgsm", epsilon=eps, device=dev, seed=seed
            )
            out.append(("fgsm", float(eps), accuracy(model, adv, ay, device=dev), len(ay)))
            if full:
                lc = lcon_transform(
                    float_to_uint8(adv), spec=tests.spec, codec=tests.codec, quality=tests.quality,
                    seed=c.data_seed, stream=_STREAM_LCON_ADV + k,
                )  # fmt: skip
                out.append(
                    (
                        "lcon-fgsm",
                        float(eps),
                        accuracy(model, lc.reconstructed, ay, device=dev),
                        len(ay),
                    )
                )
        if full:
            for eps in c.pgd_eps:
                adv = adversarial_images(
                    model,
                    ax,
                    ay,
                    attack="pgd",
                    epsilon=eps,
                    device=dev,
                    seed=seed,
                    pgd_steps=c.pgd_steps,
                )
                out.append(("pgd", float(eps), accuracy(model, adv, ay, device=dev), len(ay)))
        return out

    # -- sweeps -------------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Write the rows so far to ``results.partial.json`` (a long run can be inspected early)."""
        write_json(
            self.out / PARTIAL,
            {
                "format": RESULTS_FORMAT,
                "complete": False,
                "config": self.config.to_dict(),
                "stores": self.stores,
                "calibration": self.calibration,
                "timing": {k: round(v, 2) for k, v in self.timing.items()},
                "rows": [r.to_dict() for r in self.rows],
            },
        )

    def noise_sweep(self) -> None:
        c = self.config
        for p in c.psnrs:
            spec = _resolve(c, self.shape, psnr=float(p))
            name = f"noise-psnr{p:g}"
            noisy_x = _noisy(self.train_x, spec, c.data_seed, _STREAM_NOISY_TRAIN)
            target = self.matched(spec, noisy_x)
            options = self.codec_options(name, spec, target)
            point = self.make_store(
                name,
                "noise",
                float(p),
                options,
                target_distortion=target,
                **_noise_kwargs(c, psnr=p),
            )
            t = time.perf_counter()
            lcon_x, lcon_y, lcon_sizes = self.store_training_set(point)
            noisy_sizes = _png_sizes(noisy_x)
            budgets = calibrate_storage(
                {"clean": self.clean_sizes, "noisy": noisy_sizes, "lcon": lcon_sizes},
                enabled=c.calibrate,
            )
            self.timing["calibrate"] += time.perf_counter() - t
            self.calibration.append(
                {
                    "psnr": float(p), "enabled": c.calibrate,
                    "png_bits_per_pixel": {
                        "clean": 8 * self.clean_sizes.total_bytes / (len(self.train_x) * self.shape[0] * self.shape[1]),
                        "noisy": 8 * noisy_sizes.total_bytes / (len(self.train_x) * self.shape[0] * self.shape[1]),
                    },
                    "lcon_bits_per_pixel": point.bpp,
                    "schemes": {k: v.to_dict() for k, v in budgets.items()},
                }
            )  # fmt: skip
            tests = self.test_sets(spec, point)
            self.samples.setdefault("noise", {})[float(p)] = (
                tests.noisy[:_N_SAMPLES],
                tests.lcon[:_N_SAMPLES],
            )
            sets = {
                "clean": (self.train_x, self.train_y),
                "noisy": (noisy_x, self.train_y),
                "lcon": (lcon_x, lcon_y),
            }
            for scheme in SCHEMES:
                b = budgets[scheme]
                x, y = sets[scheme]
                self.train_and_test(
                    point, scheme, x[: b.n_train], y[: b.n_train], b, tests, full=True
                )
            self.checkpoint()

    def distortion_sweep(self) -> float:
        """Fig. 3; returns the matched distortion."""
        c = self.config
        spec = _resolve(c, self.shape, **_noise_kwargs(c, variance=c.sweep_variance))
        metric = spec.matched_target()[0]
        matched = self.matched(spec, _noisy(self.train_x, spec, c.data_seed, _STREAM_NOISY_TRAIN))
        psnr = round(_psnr_of_variance(c.sweep_variance), 2)
        trained: dict[tuple[int, str], list[ResultRow]] = {}
        for f in c.sweep_factors:
            target = float(matched) * float(f)
            name = f"distortion-{metric}{target:g}"
            options = self.codec_options(name, spec, target)
            point = self.make_store(
                name, "distortion", psnr, options,
                target_distortion=target, **_noise_kwargs(c, variance=c.sweep_variance),
            )  # fmt: skip
            key = (point.quality, json.dumps(options, sort_keys=True))
            tests = self.test_sets(spec, point)
            self.samples.setdefault("distortion", {})[target] = tests.lcon[:_N_SAMPLES]
            self.samples.setdefault("distortion_noisy", tests.noisy[:_N_SAMPLES])
            if key in trained:
                # Same noise seed and same codec quality: the store holds the very same bytes as an
                # earlier target's (the codec could not go further), so its models are the same too.
                self.rows += [
                    replace(r, target_distortion=point.target, achieved_distortion=point.achieved,
                            target_reached=point.reached, bits_per_pixel=point.bpp)
                    for r in trained[key]
                ]  # fmt: skip
                self.console.print(
                    f"target {target:g}: same codec quality {point.quality} as an earlier target; results reused"
                )
                continue
            x, y, sizes = self.store_training_set(point)
            budget = calibrate_storage({"lcon": sizes}, enabled=False)["lcon"]
            start = len(self.rows)
            self.train_and_test(point, "lcon", x, y, budget, tests, full=False)
            trained[key] = self.rows[start:]
            self.checkpoint()
        return float(matched)


def _prepare_out(out: Path, config: StudyConfig, overwrite: bool) -> None:
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
    write_json(marker, config.identity())


def run_lcon_study(
    config: StudyConfig,
    out: str | Path,
    *,
    command: str | None = None,
    overwrite: bool = False,
    console: Console | None = None,
) -> StudyResult:
    """Run the study described by ``config`` and write results.json, results.csv, figures and
    report.html into ``out``. Stores already in ``out`` from a run with the same settings are reused;
    ``overwrite`` replaces a study with different settings.
    """
    from .figures import write_figures
    from .report import write_report

    started = time.perf_counter()
    out = Path(out)
    console = console or Console(stderr=True, quiet=not config.progress)
    _prepare_out(out, config, overwrite)
    resolve_device(config.device)
    runner = _Runner(config, out, console)
    with torch_threads(config.threads):
        runner.load()
        runner.noise_sweep()
        matched = runner.distortion_sweep() if config.distortion_sweep else None
    summary = summarize(runner.rows)
    unreached = {
        s["psnr"]: s["message"]
        for s in runner.stores
        if s["sweep"] == "noise" and not s["target_reached"]
    }
    sweep_note = "; ".join(
        f"target {s['target_distortion']:g}: {s['message']}"
        for s in runner.stores
        if s["sweep"] == "distortion" and not s["target_reached"]
    )
    claims = check_claims(
        summary, unreached=unreached, sweep_matched=matched, sweep_note=sweep_note
    )
    seconds = time.perf_counter() - started
    payload = {
        "format": RESULTS_FORMAT,
        "complete": True,
        "command": command or "",
        "versions": _versions(config.threads),
        "config": config.to_dict(),
        "dataset": runner.dataset_info,
        "model": {**runner.model_config.to_dict(), "parameters": count_parameters(build_model(runner.model_config))},
        "sweep_matched_distortion": matched,
        "stores": runner.stores,
        "calibration": runner.calibration,
        "codec_training": runner.codec_records,
        "claims": [c.to_dict() for c in claims],
        "timing": {**{k: round(v, 2) for k, v in runner.timing.items()}, "total": round(seconds, 2),
                   "models_trained": runner.n_models},
        "rows": [r.to_dict() for r in runner.rows],
        "summary": [s.to_dict() for s in summary],
    }  # fmt: skip
    write_json(out / "results.json", payload)
    write_csv(out / "results.csv", runner.rows)
    figures = write_figures(
        out / "figures", summary, runner.samples, config=config, matched=matched
    )
    report = write_report(out / "report.html", payload, figures)
    (out / PARTIAL).unlink(missing_ok=True)
    files = {
        "results.json": "results.json",
        "results.csv": "results.csv",
        "report.html": str(report.relative_to(out)),
    }
    files.update({p.stem: str(p.relative_to(out)) for p in figures.values()})
    return StudyResult(
        out=out, config=config, rows=runner.rows, summary=summary, claims=claims,
        calibration=runner.calibration, stores=runner.stores, seconds=seconds, files=files,
    )  # fmt: skip
