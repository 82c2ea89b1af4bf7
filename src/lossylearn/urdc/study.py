"""The universal RDC/RDP study: profiles, the driver, results.json.

``run_study`` trains (or reloads, when ``out`` already holds a model with the same configuration)
the frozen classifier, the end-to-end codecs of each profile grid, the universal decoders on frozen
encoders, and the shared multi-objective encoder with its own universal decoders; it evaluates every
decoder on the test split through the real bitstream and writes ``results.json`` after each model,
so an interrupted run leaves valid partial results. Figures and ``report.html`` come from
:mod:`lossylearn.urdc.report`.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lossylearn.errors import LossylearnError, StoreError
from lossylearn.urdc.metrics import (
    classifier_scores,
    codec_metrics,
    estimate_w1,
    mean_squared_error,
    receive,
    transmit,
)
from lossylearn.urdc.models import (
    DECODER_KINDS,
    Classifier,
    Encoder,
    NetConfig,
    build_decoder,
)
from lossylearn.urdc.quantizer import BitstreamSize, DitheredQuantizer
from lossylearn.urdc.train import (
    Head,
    Objective,
    TrainConfig,
    images_to_tensor,
    resolve_device,
    train_classifier,
    train_codec,
)

__all__ = [
    "PROFILES",
    "StudyProfile",
    "ResultRow",
    "Penalty",
    "StudyResult",
    "get_profile",
    "override_profile",
    "plan_models",
    "run_study",
    "compute_penalties",
]

Rate = tuple[int, int]


@dataclass(frozen=True)
class StudyProfile:
    """Grids and budgets of one study run."""

    name: str
    rates: tuple[Rate, ...]
    rdc_lambdas: tuple[float, ...]
    rdp_rates: tuple[Rate, ...]
    rdp_lambdas: tuple[float, ...]
    universal_rate: Rate
    universal_rdc_encoder: float
    universal_rdc_lambdas: tuple[float, ...]
    universal_rdp_encoder: float
    universal_rdp_lambdas: tuple[float, ...]
    shared_objectives: tuple[tuple[float, float], ...]
    epochs: int
    classifier_epochs: int
    w1_steps: int
    decoder: str
    limit: int | None = None
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.decoder not in DECODER_KINDS:
            raise LossylearnError(
                f"unknown decoder {self.decoder!r}; known decoders: {', '.join(DECODER_KINDS)}"
            )
        if self.universal_rate not in self.rates:
            raise LossylearnError("the universal rate must be one of the profile's rates")
        if self.universal_rdc_encoder not in self.rdc_lambdas:
            raise LossylearnError("the universal RDC encoder's lambda_c must be in rdc_lambdas")
        if self.universal_rdp_lambdas and self.universal_rdp_encoder not in self.rdp_lambdas:
            raise LossylearnError("the universal RDP encoder's lambda_p must be in rdp_lambdas")
        if self.epochs < 1 or self.classifier_epochs < 1 or self.w1_steps < 1:
            raise LossylearnError(
                "epochs, classifier epochs and W1 critic steps must be at least 1"
            )
        if self.limit is not None and self.limit < 20:
            raise LossylearnError(f"limit must be at least 20 images, got {self.limit}")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


PROFILES: dict[str, StudyProfile] = {
    "quick": StudyProfile(
        name="quick",
        rates=((3, 3),),
        rdc_lambdas=(0.0, 0.015),
        rdp_rates=((3, 3),),
        rdp_lambdas=(0.0, 0.015),
        universal_rate=(3, 3),
        universal_rdc_encoder=0.015,
        universal_rdc_lambdas=(0.0, 0.015),
        universal_rdp_encoder=0.015,
        universal_rdp_lambdas=(0.0, 0.015),
        shared_objectives=((0.0, 0.0), (0.015, 0.0)),
        epochs=4,
        classifier_epochs=3,
        w1_steps=100,
        decoder="mlp",
        limit=2000,
    ),
    "paper": StudyProfile(
        name="paper",
        rates=((3, 3), (3, 4), (4, 4)),
        rdc_lambdas=(0.0, 0.001, 0.0025, 0.004, 0.0066, 0.01, 0.015),
        rdp_rates=((3, 3), (3, 4), (4, 4)),
        rdp_lambdas=(0.0, 0.0025, 0.005, 0.01, 0.015),
        universal_rate=(3, 3),
        universal_rdc_encoder=0.015,
        universal_rdc_lambdas=(0.0, 0.001, 0.0025, 0.004, 0.0066, 0.01, 0.015),
        universal_rdp_encoder=0.015,
        universal_rdp_lambdas=(0.0, 0.0025, 0.005, 0.01, 0.015),
        shared_objectives=((0.0, 0.0), (0.015, 0.0)),
        epochs=30,
        classifier_epochs=10,
        w1_steps=1000,
        decoder="conv",
        limit=None,
    ),
}


def get_profile(name: str) -> StudyProfile:
    """The named profile; unknown names raise a LossylearnError listing the known ones."""
    if name not in PROFILES:
        raise LossylearnError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}")
    return PROFILES[name]


def _parse_floats(text: str, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise LossylearnError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if any(v < 0 for v in values):
        raise LossylearnError(f"{what} must be >= 0, got {text!r}")
    return tuple(sorted(set(values)))


def _parse_rates(text: str) -> tuple[Rate, ...]:
    rates = []
    for tok in text.replace(" ", "").split(","):
        d, sep, levels = tok.partition("x")
        if not (sep and d.isdigit() and levels.isdigit()) or int(d) < 1 or int(levels) < 2:
            raise LossylearnError(f"rates must look like 3x3,3x4 (d x L), got {text!r}")
        rates.append((int(d), int(levels)))
    return tuple(dict.fromkeys(rates))


def override_profile(
    profile: StudyProfile,
    *,
    epochs: int | None = None,
    limit: int | None = None,
    w1_steps: int | None = None,
    decoder: str | None = None,
    rates: str | None = None,
    rdc_lambdas: str | None = None,
    rdp_lambdas: str | None = None,
) -> StudyProfile:
    """A copy of ``profile`` with budgets or grids replaced (the CLI's overrides).

    ``rates`` ("3x3,3x4") sets the end-to-end rates of both curves; ``rdc_lambdas`` / ``rdp_lambdas``
    ("0,0.0066,0.015"; "" for none) set the end-to-end and universal grids, and the universal encoder
    becomes the grid's largest lambda.
    """
    changes: dict[str, object] = {}
    if epochs is not None:
        changes["epochs"] = epochs
        changes["classifier_epochs"] = min(profile.classifier_epochs, epochs)
    if limit is not None:
        changes["limit"] = limit
    if w1_steps is not None:
        changes["w1_steps"] = w1_steps
    if decoder is not None:
        changes["decoder"] = decoder
    if rates is not None:
        parsed = _parse_rates(rates)
        changes["rates"] = parsed
        changes["rdp_rates"] = parsed
        changes["universal_rate"] = (
            profile.universal_rate if profile.universal_rate in parsed else parsed[0]
        )
    if rdc_lambdas is not None:
        lam = _parse_floats(rdc_lambdas, "rdc lambdas")
        if not lam:
            raise LossylearnError("the classification grid needs at least one lambda_c")
        changes.update(rdc_lambdas=lam, universal_rdc_lambdas=lam, universal_rdc_encoder=max(lam))
        changes["shared_objectives"] = tuple(sorted({(0.0, 0.0), (max(lam), 0.0)}))
    if rdp_lambdas is not None:
        lam = _parse_floats(rdp_lambdas, "rdp lambdas")
        changes.update(
            rdp_lambdas=lam, universal_rdp_lambdas=lam, universal_rdp_encoder=max(lam, default=0.0)
        )
    return replace(profile, **changes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class ModelSpec:
    """One model to train: an end-to-end codec, a shared encoder with heads, or a universal decoder."""

    model_id: str
    kind: str  # "end-to-end" | "shared" | "universal"
    rate: Rate
    objectives: tuple[Objective, ...]
    encoder_id: str  # itself for end-to-end / shared
    curves: tuple[str, ...] = ()  # "classification" and/or "perception": where its rows go


def _rate_tag(rate: Rate) -> str:
    return f"{rate[0]}x{rate[1]}"


def _e2e_id(rate: Rate, obj: Objective) -> str:
    return f"e2e-{_rate_tag(rate)}-{obj.tag}"


def plan_models(profile: StudyProfile) -> list[ModelSpec]:
    """Every model of the profile, in training order (encoders before their universal decoders)."""
    specs: dict[str, ModelSpec] = {}

    def add(spec: ModelSpec) -> None:
        old = specs.get(spec.model_id)
        if old is None:
            specs[spec.model_id] = spec
        else:
            merged = old.curves + tuple(c for c in spec.curves if c not in old.curves)
            specs[spec.model_id] = replace(old, curves=merged)

    for rate in profile.rates:
        for c in profile.rdc_lambdas:
            obj = Objective(c, 0.0)
            mid = _e2e_id(rate, obj)
            add(ModelSpec(mid, "end-to-end", rate, (obj,), mid, ("classification",)))
        if rate in profile.rdp_rates:
            for p in profile.rdp_lambdas:
                obj = Objective(0.0, p)
                mid = _e2e_id(rate, obj)
                add(ModelSpec(mid, "end-to-end", rate, (obj,), mid, ("perception",)))
    ur = profile.universal_rate

    def add_universal(encoder_id: str, objectives: list[Objective], curve: str) -> None:
        for obj in objectives:
            add(
                ModelSpec(
                    f"uni-{encoder_id}--{obj.tag}", "universal", ur, (obj,), encoder_id, (curve,)
                )
            )

    rdc_objs = [Objective(c, 0.0) for c in profile.universal_rdc_lambdas]
    rdp_objs = [Objective(0.0, p) for p in profile.universal_rdp_lambdas]
    add_universal(
        _e2e_id(ur, Objective(profile.universal_rdc_encoder, 0.0)), rdc_objs, "classification"
    )
    if rdp_objs and ur in profile.rdp_rates:
        add_universal(
            _e2e_id(ur, Objective(0.0, profile.universal_rdp_encoder)), rdp_objs, "perception"
        )
    if profile.shared_objectives:
        heads = tuple(Objective(c, p) for c, p in profile.shared_objectives)
        sid = f"shared-{_rate_tag(ur)}-" + "+".join(o.tag for o in heads)
        add(ModelSpec(sid, "shared", ur, heads, sid, ()))
        add_universal(sid, rdc_objs, "classification")
        if any(o.lambda_p > 0 for o in heads):
            add_universal(sid, rdp_objs, "perception")
    return list(specs.values())


# ---------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ResultRow:
    """One decoder on one curve, measured on the test split."""

    mode: str  # "end-to-end" | "universal"
    objective: str  # "classification" | "perception"
    rate_bits: float
    latent_dim: int
    levels: int
    lambda_c: float
    lambda_p: float
    mse: float
    ce: float
    accuracy: float
    w1: float
    entropy_bits: float
    stored_bits_per_image: float
    encoder: str
    model: str
    decoder: str

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class Penalty:
    """Distortion penalty of the universal decoders on one frozen encoder, against end to end.

    ``endpoint``: the lowest MSE any universal decoder reaches vs the end-to-end MSE-only model
    (the anchor's ~10%). ``max_gap``: the largest relative MSE gap at equal CE (or W1), the
    end-to-end curve linearly interpolated, over the range both cover (None when they do not meet).
    """

    objective: str
    encoder: str
    e2e_mse_only: float
    universal_best_mse: float
    endpoint: float
    max_gap: float | None
    max_gap_at: float | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class StudyResult:
    """Everything a study run measured."""

    profile: StudyProfile
    rows: list[ResultRow] = field(default_factory=list)
    penalties: list[Penalty] = field(default_factory=list)
    classifier: dict[str, float] = field(default_factory=dict)
    shared_heads: list[dict[str, object]] = field(default_factory=list)
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    originals: np.ndarray | None = None
    meta: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The results.json document."""
        return {
            "rows": [r.to_dict() for r in self.rows],
            "penalties": [p.to_dict() for p in self.penalties],
            "classifier": self.classifier,
            "shared_encoder_heads": self.shared_heads,
            "profile": self.profile.to_dict(),
            "meta": self.meta,
        }


def _metric(row: ResultRow, objective: str) -> float:
    return row.ce if objective == "classification" else row.w1


def compute_penalties(rows: list[ResultRow], rate_bits: float) -> list[Penalty]:
    """Penalties of every universal encoder at ``rate_bits``, for both objectives."""
    out: list[Penalty] = []
    for objective in ("classification", "perception"):
        at_rate = [
            r for r in rows if r.objective == objective and abs(r.rate_bits - rate_bits) < 1e-9
        ]
        e2e = sorted(
            (r for r in at_rate if r.mode == "end-to-end"), key=lambda r: _metric(r, objective)
        )
        mse_only = [r for r in e2e if r.lambda_c == 0 and r.lambda_p == 0]
        if not mse_only:
            continue
        xs = np.array([_metric(r, objective) for r in e2e])
        ys = np.array([r.mse for r in e2e])
        for enc in sorted({r.encoder for r in at_rate if r.mode == "universal"}):
            uni = [r for r in at_rate if r.mode == "universal" and r.encoder == enc]
            best = min(r.mse for r in uni)
            gap, gap_at = None, None
            for r in uni:
                m = _metric(r, objective)
                if len(xs) >= 2 and xs[0] <= m <= xs[-1]:
                    ref = float(np.interp(m, xs, ys))
                    g = (r.mse - ref) / ref
                    if gap is None or g > gap:
                        gap, gap_at = g, m
            out.append(
                Penalty(
                    objective=objective,
                    encoder=enc,
                    e2e_mse_only=mse_only[0].mse,
                    universal_best_mse=best,
                    endpoint=(best - mse_only[0].mse) / mse_only[0].mse,
                    max_gap=gap,
                    max_gap_at=gap_at,
                )
            )
    return out


# ----------------------------------------------------------------------------------------- driver


def _write_json_atomic(path: Path, doc: dict[str, object]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False))
    os.replace(tmp, path)


def _save(directory: Path, modules: dict[str, nn.Module], config: dict[str, object]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, module in modules.items():
        torch.save(module.state_dict(), directory / f"{name}.pt")
    _write_json_atomic(directory / "config.json", config)


def _try_load(directory: Path, modules: dict[str, nn.Module], config: dict[str, object]) -> bool:
    """Load weights saved with an identical configuration; False when absent or different."""
    cfg_path = directory / "config.json"
    if not cfg_path.is_file() or not all((directory / f"{n}.pt").is_file() for n in modules):
        return False
    if json.loads(cfg_path.read_text()) != json.loads(json.dumps(config)):
        return False
    for name, module in modules.items():
        module.load_state_dict(
            torch.load(directory / f"{name}.pt", map_location="cpu", weights_only=True)
        )
    return True


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int], Callable[[], None]]]:
    """Yield a factory ``(description, total) -> advance()`` backed by a Rich progress bar."""
    if not enabled:
        yield lambda desc, total: lambda: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ) as bar:

        def factory(desc: str, total: int) -> Callable[[], None]:
            task = bar.add_task(desc, total=total)
            return lambda: bar.advance(task)

        yield factory


def _sample_indices(labels: np.ndarray) -> np.ndarray:
    """First test image of each class (up to 10), for the report's reconstruction strips."""
    picks = [int(np.flatnonzero(labels == k)[0]) for k in range(10) if np.any(labels == k)]
    return np.array(picks, dtype=np.int64)


class _StudyRun:
    """State of one study run: data, classifier, trained encoders, cached bitstreams, the result."""

    def __init__(
        self,
        profile: StudyProfile,
        out: Path,
        data_dir: Path | None,
        seed: int,
        dev: torch.device,
        threads: int | None,
        say: Callable[[str], None],
    ) -> None:
        from lossylearn.data import load_dataset

        self.profile, self.out, self.seed, self.dev, self.say = profile, out, seed, dev, say
        self.models_dir = out / "models"
        self.started = time.perf_counter()
        ds = load_dataset("mnist", data_dir, limit=profile.limit)
        if ds.image_shape != (28, 28, 1):
            raise LossylearnError(
                f"the urdc study needs 28x28 grayscale digits, got {ds.image_shape}"
            )
        self.x_tr = images_to_tensor(ds.train_images, dev)
        self.y_tr = torch.from_numpy(ds.train_labels).to(dev)
        self.x_te = images_to_tensor(ds.test_images, dev)
        self.y_te = torch.from_numpy(ds.test_labels).to(dev)
        self.train_cfg = TrainConfig(epochs=profile.epochs, batch_size=profile.batch_size)
        self.data_note = {
            "source": ds.source,
            "train": int(self.x_tr.shape[0]),
            "test": int(self.x_te.shape[0]),
        }
        self.dither_seed = seed
        self.sample_idx = _sample_indices(ds.test_labels)
        self.result = StudyResult(profile=profile)
        self.result.originals = ds.test_images[self.sample_idx, :, :, 0]
        self.result.meta = {
            "seed": seed,
            "device": str(dev),
            "threads": threads,
            "data": self.data_note,
            "dither_seed": seed,
            "train": self.train_cfg.to_dict(),
            "bitstream": "urdc v1: 24-byte header + one mixed-radix integer of ceil(N d log2 L) bits",
        }
        self.classifier = Classifier().to(dev)
        self.encoders: dict[str, Encoder] = {}
        self.bitstreams: dict[str, tuple[tuple[bytes, BitstreamSize], bytes]] = {}
        self.samples: dict[str, np.ndarray] = {}

    def flush(self) -> None:
        """Write results.json (atomically) with everything measured so far."""
        self.result.meta["elapsed_s"] = round(time.perf_counter() - self.started, 1)
        _write_json_atomic(self.out / "results.json", self.result.to_json())

    def model_seed(self, model_id: str) -> int:
        """Seed of one model: a function of the study seed and the model's id, not its position."""
        return self.seed + zlib.crc32(model_id.encode()) % 1_000_000

    def train_classifier(self, bar: Callable[[str, int], Callable[[], None]]) -> None:
        """Train (or reload) the frozen classifier and record its test scores."""
        prof = self.profile
        cfg = {
            "kind": "classifier",
            "epochs": prof.classifier_epochs,
            "seed": self.seed,
            "data": self.data_note,
            "architecture": "conv5(32)-pool-conv5(64)-pool-fc128-fc10",
        }
        if not _try_load(self.models_dir / "classifier", {"weights": self.classifier}, cfg):
            steps = prof.classifier_epochs * TrainConfig(batch_size=128).steps_per_epoch(
                self.x_tr.shape[0]
            )
            self.classifier = train_classifier(
                self.x_tr,
                self.y_tr,
                epochs=prof.classifier_epochs,
                seed=self.seed,
                on_step=bar("classifier", steps),
            )
            _save(self.models_dir / "classifier", {"weights": self.classifier}, cfg)
        self.classifier.eval().requires_grad_(False)
        ce, acc = classifier_scores(self.classifier, self.x_te, self.y_te)
        self.result.classifier = {"test_ce": ce, "test_accuracy": acc}
        self.say(f"classifier: test accuracy {acc:.4f}, CE {ce:.4f} nats")

    def evaluate(
        self, spec: ModelSpec, decoder: nn.Module, q: DitheredQuantizer
    ) -> dict[str, float]:
        """Test metrics of one decoder through the real bitstream (cached next to its weights)."""
        directory = self.models_dir / spec.model_id
        cached = directory / "metrics.json"
        eval_cfg = {
            "w1_steps": self.profile.w1_steps,
            "seed": self.seed,
            "dither_seed": self.dither_seed,
        }
        if cached.is_file() and (directory / "samples.npy").is_file():
            doc = json.loads(cached.read_text())
            if doc.get("eval") == eval_cfg:
                self.samples[spec.model_id] = np.load(directory / "samples.npy")
                return doc["metrics"]
        if spec.encoder_id not in self.bitstreams:
            enc = self.encoders[spec.encoder_id]
            self.bitstreams[spec.encoder_id] = (
                transmit(enc, q, self.x_te, seed=self.dither_seed),
                transmit(enc, q, self.x_tr, seed=self.dither_seed)[0],
            )
        (test_bytes, size), train_bytes = self.bitstreams[spec.encoder_id]
        rec_te, symbols = receive(test_bytes, decoder, device=self.dev)
        rec_tr, _ = receive(train_bytes, decoder, device=self.dev)
        w1 = estimate_w1(
            self.x_tr, rec_tr, self.x_te, rec_te, steps=self.profile.w1_steps, seed=self.seed + 7
        )
        metrics = codec_metrics(
            recon=rec_te,
            originals=self.x_te,
            labels=self.y_te,
            symbols=symbols,
            size=size,
            quantizer=q,
            classifier=self.classifier,
            w1=w1,
        ).to_dict()
        picked = rec_te[torch.from_numpy(self.sample_idx).to(rec_te.device)].squeeze(1)
        samples = (picked.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "samples.npy", samples)
        _write_json_atomic(cached, {"eval": eval_cfg, "metrics": metrics})
        self.samples[spec.model_id] = samples
        return metrics

    def add_rows(self, spec: ModelSpec, net: NetConfig, metrics: dict[str, float]) -> None:
        """One row per curve the decoder belongs to."""
        obj = spec.objectives[0]
        for objective in spec.curves:
            self.result.rows.append(
                ResultRow(
                    mode="universal" if spec.kind == "universal" else "end-to-end",
                    objective=objective,
                    rate_bits=net.latent_dim * float(np.log2(net.levels)),
                    latent_dim=net.latent_dim,
                    levels=net.levels,
                    lambda_c=obj.lambda_c,
                    lambda_p=obj.lambda_p,
                    mse=metrics["mse"],
                    ce=metrics["ce"],
                    accuracy=metrics["accuracy"],
                    w1=metrics["w1"],
                    entropy_bits=metrics["entropy_bits"],
                    stored_bits_per_image=metrics["stored_bits_per_image"],
                    encoder=spec.encoder_id,
                    model=spec.model_id,
                    decoder=net.decoder,
                )
            )
        self.result.samples[spec.model_id] = self.samples[spec.model_id]
        self.say(
            f"{spec.model_id}: MSE {metrics['mse']:.4f} CE {metrics['ce']:.3f} "
            f"acc {metrics['accuracy']:.3f} W1 {metrics['w1']:.3f}"
        )

    def run_model(self, spec: ModelSpec, bar: Callable[[str, int], Callable[[], None]]) -> None:
        """Train (or reload) one planned model, evaluate it, and record its rows."""
        net = NetConfig(latent_dim=spec.rate[0], levels=spec.rate[1], decoder=self.profile.decoder)
        q = DitheredQuantizer(net.latent_dim, net.levels)
        seed = self.model_seed(spec.model_id)
        config: dict[str, object] = {
            "kind": spec.kind,
            "net": net.to_dict(),
            "objectives": [asdict(o) for o in spec.objectives],
            "encoder": spec.encoder_id,
            "train": self.train_cfg.to_dict(),
            "seed": seed,
            "data": self.data_note,
            "classifier": "../classifier",
        }
        torch.manual_seed(seed)
        steps = self.profile.epochs * self.train_cfg.steps_per_epoch(int(self.x_tr.shape[0]))
        heads = [Head(build_decoder(net).to(self.dev), o) for o in spec.objectives]
        modules: dict[str, nn.Module] = {}
        for k, h in enumerate(heads):
            suffix = str(k) if len(heads) > 1 else ""
            modules["decoder" + suffix] = h.decoder
            if h.critic is not None:
                modules["critic" + suffix] = h.critic
        if spec.kind == "universal":
            if spec.encoder_id not in self.encoders:
                raise LossylearnError(
                    f"universal decoder {spec.model_id} needs encoder {spec.encoder_id}"
                )
            enc = self.encoders[spec.encoder_id]
            config["encoder_weights"] = f"../{spec.encoder_id}/encoder.pt"
        else:
            enc = Encoder(net.latent_dim, net.encoder_width).to(self.dev)
            modules["encoder"] = enc
        if not _try_load(self.models_dir / spec.model_id, modules, config):
            train_codec(
                enc,
                heads,
                q,
                self.x_tr,
                self.y_tr,
                classifier=self.classifier,
                config=self.train_cfg,
                train_encoder=spec.kind != "universal",
                seed=seed,
                on_step=bar(spec.model_id, steps),
            )
            _save(self.models_dir / spec.model_id, modules, config)
        enc.eval().requires_grad_(False)
        for h in heads:
            h.decoder.eval()
        if spec.kind != "universal":
            self.encoders[spec.model_id] = enc
        if spec.kind == "shared":
            data = transmit(enc, q, self.x_te, seed=self.dither_seed)[0]
            for h in heads:
                rec, _ = receive(data, h.decoder, device=self.dev)
                ce, acc = classifier_scores(self.classifier, rec, self.y_te)
                mse = mean_squared_error(rec, self.x_te)
                self.result.shared_heads.append(
                    {
                        "encoder": spec.model_id,
                        **asdict(h.objective),
                        "mse": mse,
                        "ce": ce,
                        "accuracy": acc,
                    }
                )
                self.say(
                    f"{spec.model_id} head {h.objective.tag}: MSE {mse:.4f} CE {ce:.3f} acc {acc:.3f}"
                )
            return
        self.add_rows(spec, net, self.evaluate(spec, heads[0].decoder, q))


def run_study(
    profile: StudyProfile,
    *,
    out: Path,
    data_dir: Path | None = None,
    seed: int = 0,
    device: str = "auto",
    threads: int | None = 2,
    progress: bool = True,
    write_report: bool = True,
    log: Callable[[str], None] | None = None,
) -> StudyResult:
    """Run the study of ``profile`` into ``out`` (results.json, figures, report.html, models/).

    Models already in ``out/models`` with an identical configuration are reloaded, not retrained;
    results.json is rewritten after every model.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StoreError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    if threads is not None and dev.type == "cpu":
        torch.set_num_threads(threads)
    run = _StudyRun(profile, out, data_dir, seed, dev, threads, log or (lambda s: None))
    ur = profile.universal_rate
    with _progress(progress) as bar:
        run.train_classifier(bar)
        run.flush()
        for spec in plan_models(profile):
            run.run_model(spec, bar)
            run.result.penalties = compute_penalties(run.result.rows, ur[0] * float(np.log2(ur[1])))
            run.flush()
    if write_report:
        from lossylearn.urdc.report import write_report as _write_report

        _write_report(run.result, out)
    run.flush()
    return run.result
