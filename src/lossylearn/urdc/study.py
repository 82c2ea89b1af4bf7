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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lossylearn.errors import LossylearnError, StoreError
from lossylearn.urdc.metrics import classifier_scores, codec_metrics, estimate_w1, receive, transmit
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
            raise LossylearnError(f"unknown decoder {self.decoder!r}; known decoders: {', '.join(DECODER_KINDS)}")
        if self.universal_rate not in self.rates:
            raise LossylearnError("the universal rate must be one of the profile's rates")
        if self.universal_rdc_encoder not in self.rdc_lambdas:
            raise LossylearnError("the universal RDC encoder's lambda_c must be in rdc_lambdas")
        if self.universal_rdp_lambdas and self.universal_rdp_encoder not in self.rdp_lambdas:
            raise LossylearnError("the universal RDP encoder's lambda_p must be in rdp_lambdas")
        if self.epochs < 1 or self.classifier_epochs < 1 or self.w1_steps < 1:
            raise LossylearnError("epochs, classifier epochs and W1 critic steps must be at least 1")
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
            add(ModelSpec(f"uni-{encoder_id}--{obj.tag}", "universal", ur, (obj,), encoder_id, (curve,)))

    rdc_objs = [Objective(c, 0.0) for c in profile.universal_rdc_lambdas]
    rdp_objs = [Objective(0.0, p) for p in profile.universal_rdp_lambdas]
    add_universal(_e2e_id(ur, Objective(profile.universal_rdc_encoder, 0.0)), rdc_objs, "classification")
    if rdp_objs and ur in profile.rdp_rates:
        add_universal(_e2e_id(ur, Objective(0.0, profile.universal_rdp_encoder)), rdp_objs, "perception")
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
        at_rate = [r for r in rows if r.objective == objective and abs(r.rate_bits - rate_bits) < 1e-9]
        e2e = sorted((r for r in at_rate if r.mode == "end-to-end"), key=lambda r: _metric(r, objective))
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
        module.load_state_dict(torch.load(directory / f"{name}.pt", map_location="cpu", weights_only=True))
    return True


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int], Callable[[], None]]]:
    """Yield a factory ``(description, total) -> advance()`` backed by a Rich progress bar."""
    if not enabled:
        yield lambda desc, total: (lambda: None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

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
    """Run the study of ``profile`` into ``out`` (results.json, figures, report.html, models/)."""
    from lossylearn.data import load_dataset

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StoreError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    models_dir = out / "models"
    dev = resolve_device(device)
    if threads is not None and dev.type == "cpu":
        torch.set_num_threads(threads)
    say = log or (lambda s: None)
    started = time.perf_counter()

    ds = load_dataset("mnist", data_dir, limit=profile.limit)
    if ds.image_shape != (28, 28, 1):
        raise LossylearnError(f"the urdc study needs 28x28 grayscale digits, got {ds.image_shape}")
    x_tr = images_to_tensor(ds.train_images, dev)
    y_tr = torch.from_numpy(ds.train_labels).to(dev)
    x_te = images_to_tensor(ds.test_images, dev)
    y_te = torch.from_numpy(ds.test_labels).to(dev)
    train_cfg = TrainConfig(epochs=profile.epochs, batch_size=profile.batch_size)
    data_note = {"source": ds.source, "train": int(x_tr.shape[0]), "test": int(x_te.shape[0])}
    dither_seed = seed

    result = StudyResult(profile=profile)
    sample_idx = _sample_indices(ds.test_labels)
    result.originals = ds.test_images[sample_idx, :, :, 0]
    result.meta = {
        "seed": seed,
        "device": str(dev),
        "threads": threads,
        "data": data_note,
        "dither_seed": dither_seed,
        "train": train_cfg.to_dict(),
        "bitstream": "urdc v1: 24-byte header + one mixed-radix integer of ceil(N d log2 L) bits",
    }

    def flush() -> None:
        result.meta["elapsed_s"] = round(time.perf_counter() - started, 1)
        _write_json_atomic(out / "results.json", result.to_json())

    specs = plan_models(profile)
    with _progress(progress) as bar:
        # 1. the frozen classifier
        clf = Classifier().to(dev)
        clf_cfg = {"kind": "classifier", "epochs": profile.classifier_epochs, "seed": seed, "data": data_note,
                   "architecture": "conv5(32)-pool-conv5(64)-pool-fc128-fc10"}
        if not _try_load(models_dir / "classifier", {"weights": clf}, clf_cfg):
            steps = profile.classifier_epochs * TrainConfig(batch_size=128).steps_per_epoch(x_tr.shape[0])
            clf = train_classifier(x_tr, y_tr, epochs=profile.classifier_epochs, seed=seed,
                                   on_step=bar("classifier", steps))
            _save(models_dir / "classifier", {"weights": clf}, clf_cfg)
        clf.eval().requires_grad_(False)
        ce, acc = classifier_scores(clf, x_te, y_te)
        result.classifier = {"test_ce": ce, "test_accuracy": acc}
        say(f"classifier: test accuracy {acc:.4f}, CE {ce:.4f} nats")
        flush()

        encoders: dict[str, Encoder] = {}
        bitstreams: dict[str, tuple[tuple[bytes, BitstreamSize], bytes]] = {}
        evaluated: dict[str, tuple[dict[str, float], np.ndarray]] = {}

        def evaluate(decoder_id: str, decoder: nn.Module, encoder_id: str, q: DitheredQuantizer) -> dict[str, float]:
            if decoder_id in evaluated:
                return evaluated[decoder_id][0]
            cached = models_dir / decoder_id / "metrics.json"
            eval_cfg = {"w1_steps": profile.w1_steps, "seed": seed, "dither_seed": dither_seed}
            if cached.is_file():
                doc = json.loads(cached.read_text())
                if doc.get("eval") == eval_cfg and (models_dir / decoder_id / "samples.npy").is_file():
                    evaluated[decoder_id] = (doc["metrics"], np.load(models_dir / decoder_id / "samples.npy"))
                    return doc["metrics"]
            if encoder_id not in bitstreams:
                enc = encoders[encoder_id]
                bitstreams[encoder_id] = (
                    transmit(enc, q, x_te, seed=dither_seed),
                    transmit(enc, q, x_tr, seed=dither_seed)[0],
                )
            (test_bytes, size), train_bytes = bitstreams[encoder_id]
            rec_te, sym = receive(test_bytes, decoder, device=dev)
            rec_tr, _ = receive(train_bytes, decoder, device=dev)
            w1 = estimate_w1(x_tr, rec_tr, x_te, rec_te, steps=profile.w1_steps, seed=seed + 7)
            m = codec_metrics(recon=rec_te, originals=x_te, labels=y_te, symbols=sym, size=size,
                              quantizer=q, classifier=clf, w1=w1).to_dict()
            samples = (rec_te[torch.from_numpy(sample_idx)].squeeze(1).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            (models_dir / decoder_id).mkdir(parents=True, exist_ok=True)
            np.save(models_dir / decoder_id / "samples.npy", samples)
            _write_json_atomic(cached, {"eval": eval_cfg, "metrics": m})
            evaluated[decoder_id] = (m, samples)
            return m

        def add_rows(spec: ModelSpec, obj: Objective, metrics: dict[str, float], net: NetConfig) -> None:
            mode = "universal" if spec.kind == "universal" else "end-to-end"
            for objective in spec.curves:
                result.rows.append(ResultRow(
                    mode=mode, objective=objective, rate_bits=net.latent_dim * float(np.log2(net.levels)),
                    latent_dim=net.latent_dim, levels=net.levels, lambda_c=obj.lambda_c, lambda_p=obj.lambda_p,
                    mse=metrics["mse"], ce=metrics["ce"], accuracy=metrics["accuracy"], w1=metrics["w1"],
                    entropy_bits=metrics["entropy_bits"], stored_bits_per_image=metrics["stored_bits_per_image"],
                    encoder=spec.encoder_id, model=spec.model_id, decoder=net.decoder,
                ))
            result.samples[spec.model_id] = evaluated[spec.model_id][1]

        for i, spec in enumerate(specs):
            net = NetConfig(latent_dim=spec.rate[0], levels=spec.rate[1], decoder=profile.decoder)
            q = DitheredQuantizer(net.latent_dim, net.levels)
            model_seed = seed + 1000 * (i + 1)
            config = {
                "kind": spec.kind,
                "net": net.to_dict(),
                "objectives": [asdict(o) for o in spec.objectives],
                "encoder": spec.encoder_id,
                "train": train_cfg.to_dict(),
                "seed": model_seed,
                "data": data_note,
                "classifier": "../classifier",
            }
            torch.manual_seed(model_seed)
            directory = models_dir / spec.model_id
            steps = profile.epochs * train_cfg.steps_per_epoch(int(x_tr.shape[0]))
            if spec.kind in ("end-to-end", "shared"):
                enc = Encoder(net.latent_dim, net.encoder_width).to(dev)
                heads = [Head(build_decoder(net).to(dev), o) for o in spec.objectives]
                modules: dict[str, nn.Module] = {"encoder": enc}
                for k, h in enumerate(heads):
                    modules[f"decoder{k}" if len(heads) > 1 else "decoder"] = h.decoder
                    if h.critic is not None:
                        modules[f"critic{k}" if len(heads) > 1 else "critic"] = h.critic
                if not _try_load(directory, modules, config):
                    train_codec(enc, heads, q, x_tr, y_tr, classifier=clf, config=train_cfg, train_encoder=True,
                                seed=model_seed, on_step=bar(spec.model_id, steps))
                    _save(directory, modules, config)
                enc.eval().requires_grad_(False)
                encoders[spec.model_id] = enc
                if spec.kind == "end-to-end":
                    m = evaluate(spec.model_id, heads[0].decoder, spec.model_id, q)
                    add_rows(spec, spec.objectives[0], m, net)
                    say(f"{spec.model_id}: MSE {m['mse']:.4f} CE {m['ce']:.3f} acc {m['accuracy']:.3f} W1 {m['w1']:.3f}")
                else:
                    for h in heads:
                        rec, _ = receive(transmit(enc, q, x_te, seed=dither_seed)[0], h.decoder, device=dev)
                        ce_h, acc_h = classifier_scores(clf, rec, y_te)
                        mse_h = float(((rec - x_te) ** 2).mean())
                        result.shared_heads.append({"encoder": spec.model_id, **asdict(h.objective),
                                                    "mse": mse_h, "ce": ce_h, "accuracy": acc_h})
                        say(f"{spec.model_id} head {h.objective.tag}: MSE {mse_h:.4f} CE {ce_h:.3f}")
            else:
                if spec.encoder_id not in encoders:
                    raise LossylearnError(f"universal decoder {spec.model_id} needs encoder {spec.encoder_id}, not in the plan")
                enc = encoders[spec.encoder_id]
                head = Head(build_decoder(net).to(dev), spec.objectives[0])
                modules = {"decoder": head.decoder}
                if head.critic is not None:
                    modules["critic"] = head.critic
                config["encoder_weights"] = f"../{spec.encoder_id}/encoder.pt"
                if not _try_load(directory, modules, config):
                    train_codec(enc, [head], q, x_tr, y_tr, classifier=clf, config=train_cfg, train_encoder=False,
                                seed=model_seed, on_step=bar(spec.model_id, steps))
                    _save(directory, modules, config)
                m = evaluate(spec.model_id, head.decoder, spec.encoder_id, q)
                add_rows(spec, spec.objectives[0], m, net)
                say(f"{spec.model_id}: MSE {m['mse']:.4f} CE {m['ce']:.3f} acc {m['accuracy']:.3f} W1 {m['w1']:.3f}")
            ur = profile.universal_rate
            result.penalties = compute_penalties(result.rows, ur[0] * float(np.log2(ur[1])))
            flush()

    if write_report:
        from lossylearn.urdc.report import write_report as _write_report

        _write_report(result, out)
    flush()
    return result
