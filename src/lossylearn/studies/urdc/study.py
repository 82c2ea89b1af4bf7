"""The universal RDC/RDP study driver.

``run_study`` trains (or reloads, when ``out`` already holds a model with the same configuration)
the frozen classifier, the end-to-end codecs of each profile grid, the universal decoders on frozen
encoders, and the shared multi-objective encoder with its own universal decoders; it evaluates every
decoder on the test split through the real bitstream and writes ``results.json`` after each model,
so an interrupted run leaves valid partial results. Profiles live in :mod:`.profiles`, rows and
penalties in :mod:`.results`, figures and ``report.html`` in :mod:`.report`.
With ``engine="ray"`` Ray tasks train the models first (:mod:`.ray_points`), then they are reloaded.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lossylearn.errors import LossylearnError, StoreError
from lossylearn.learn import (
    ClassifierTrainConfig,
    build_model,
    images_to_tensor,
    progress_bars,
    resolve_device,
    seeded,
    torch_threads,
    train_classifier,
)
from lossylearn.progress import BarFactory
from lossylearn.studies.common import environment_versions, write_json
from lossylearn.studies.ray_sweep import Failure, failure_message, open_sweep, write_sweep_log
from lossylearn.studies.urdc.checkpoints import save_modules as _save
from lossylearn.studies.urdc.checkpoints import try_load as _try_load
from lossylearn.studies.urdc.metrics import (
    classifier_scores,
    codec_metrics,
    critic_gap,
    estimate_w1,
    mean_squared_error,
    receive,
    transmit,
)
from lossylearn.studies.urdc.models import CLASSIFIER, Encoder, NetConfig, build_decoder
from lossylearn.studies.urdc.profiles import (
    PROFILES,
    ModelSpec,
    StudyProfile,
    get_profile,
    override_profile,
    plan_models,
)
from lossylearn.studies.urdc.quantizer import BitstreamSize, DitheredQuantizer
from lossylearn.studies.urdc.results import (
    Penalty,
    ResultRow,
    StudyResult,
    compute_penalties,
    earlier_runs_elapsed,
    sample_indices,
)
from lossylearn.studies.urdc.train import Head, UrdcTrainConfig, train_codec

__all__ = [
    "PROFILES",
    "Penalty",
    "ResultRow",
    "StudyProfile",
    "StudyResult",
    "compute_penalties",
    "get_profile",
    "override_profile",
    "plan_models",
    "run_study",
]


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
        self.train_images, self.train_labels = ds.train_images, ds.train_labels
        self.x_tr = images_to_tensor(ds.train_images, dev)
        self.y_tr = torch.from_numpy(ds.train_labels).to(dev)
        self.x_te = images_to_tensor(ds.test_images, dev)
        self.y_te = torch.from_numpy(ds.test_labels).to(dev)
        self.train_cfg = UrdcTrainConfig(
            epochs=profile.epochs,
            batch_size=profile.batch_size,
            augment_shift=profile.augment_shift,
            weight_decay=profile.weight_decay,
        )
        self.data_note = {
            "source": ds.source,
            "train": int(self.x_tr.shape[0]),
            "test": int(self.x_te.shape[0]),
        }
        self.dither_seed = seed
        self.sample_idx = sample_indices(ds.test_labels)
        self.result = StudyResult(profile=profile)
        self.result.originals = ds.test_images[self.sample_idx, :, :, 0]
        self.result.meta = {
            "seed": seed,
            "device": str(dev),
            "threads": threads,
            "data": self.data_note,
            "dither_seed": seed,
            "train": self.train_cfg.to_dict(),
            "augmentation": profile.augmentation_note,
            "classifier_train": {
                "epochs": profile.classifier_epochs,
                "augment_shift": profile.classifier_augment_shift,
            },
            "bitstream": "urdc v1: 24-byte header + one mixed-radix integer of ceil(N d log2 L) bits",
            "earlier_runs_elapsed_s": earlier_runs_elapsed(out / "results.json"),
        }
        self.classifier: nn.Module = build_model(CLASSIFIER, seed=seed).to(dev)
        self.classifier_config: dict[str, object] = {}
        self.encoders: dict[str, Encoder] = {}
        self.bitstreams: dict[str, tuple[tuple[bytes, BitstreamSize], bytes]] = {}
        self.samples: dict[str, np.ndarray] = {}

    def flush(self) -> None:
        """Write results.json (atomically) with everything measured so far."""
        self.result.meta["elapsed_s"] = round(time.perf_counter() - self.started, 1)
        write_json(self.out / "results.json", self.result.to_json(), indent=2)

    def model_seed(self, model_id: str) -> int:
        """Seed of one model: a function of the study seed and the model's id, not its position."""
        return self.seed + zlib.crc32(model_id.encode()) % 1_000_000

    def classifier_stage(self, bar: BarFactory) -> None:
        """Train (or reload) the frozen classifier and record its test scores."""
        prof = self.profile
        tcfg = ClassifierTrainConfig(
            epochs=prof.classifier_epochs,
            batch_size=128,
            lr=1e-3,
            seed=self.seed,
            shift=prof.classifier_augment_shift,
            device=str(self.dev),
            progress=False,
        )
        self.classifier_config = cfg = {
            "kind": "classifier",
            "epochs": prof.classifier_epochs,
            "seed": self.seed,
            "data": self.data_note,
            "architecture": "conv5(32)-pool-conv5(64)-pool-fc128-fc10",
            "trainer": "lossylearn.learn.train_classifier",
            "model": CLASSIFIER.to_dict(),
            "train": {k: v for k, v in tcfg.to_dict().items() if k not in ("device", "progress")},
        }
        if prof.classifier_augment_shift:
            cfg["augment_shift"] = prof.classifier_augment_shift
        if not _try_load(self.models_dir / "classifier", {"weights": self.classifier}, cfg):
            self.classifier = train_classifier(
                self.train_images,
                self.train_labels,
                model_config=CLASSIFIER,
                config=tcfg,
                description="classifier",
                on_step=bar("classifier", tcfg.total_steps(len(self.train_images))),
            ).model
            _save(self.models_dir / "classifier", {"weights": self.classifier}, cfg)
        self.classifier.eval().requires_grad_(False)
        self.classifier.to(memory_format=torch.channels_last)  # as train_classifier leaves it
        ce, acc = classifier_scores(self.classifier, self.x_te, self.y_te)
        self.result.classifier = {"test_ce": ce, "test_accuracy": acc}
        self.say(f"classifier: test accuracy {acc:.4f}, CE {ce:.4f} nats")

    def evaluate(
        self,
        spec: ModelSpec,
        decoder: nn.Module,
        q: DitheredQuantizer,
        config: dict[str, object],
        critic: nn.Module | None = None,
    ) -> dict[str, float | None]:
        """Test metrics of one decoder through the real bitstream (cached next to its weights).

        W1 from a fresh critic for decoders on the perception curve (every decoder when the
        profile's ``w1_all_decoders``); the training critic's gap (the anchor's W1) when ``critic``.
        """
        directory = self.models_dir / spec.model_id
        cached = directory / "metrics.json"
        fresh_w1 = self.profile.w1_all_decoders or "perception" in spec.curves
        eval_cfg = {
            "metrics": 2,  # 2: W1 of the training critic added; fresh W1 skipped where not needed
            "fresh_w1": fresh_w1,
            "w1_steps": self.profile.w1_steps,
            "seed": self.seed,
            "dither_seed": self.dither_seed,
            "model": config,
        }
        if cached.is_file() and (directory / "samples.npy").is_file():
            doc = json.loads(cached.read_text())
            if doc.get("eval") == json.loads(json.dumps(eval_cfg)):
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
        w1 = None
        if fresh_w1:
            rec_tr, _ = receive(train_bytes, decoder, device=self.dev)
            fit = (self.x_tr, rec_tr, self.x_te, rec_te)
            w1 = estimate_w1(*fit, steps=self.profile.w1_steps, seed=self.seed + 7)
        metrics = codec_metrics(
            recon=rec_te,
            originals=self.x_te,
            labels=self.y_te,
            symbols=symbols,
            size=size,
            quantizer=q,
            classifier=self.classifier,
            w1=w1,
            w1_training_critic=None if critic is None else critic_gap(critic, self.x_te, rec_te),
        ).to_dict()
        picked = rec_te[torch.from_numpy(self.sample_idx).to(rec_te.device)].squeeze(1)
        samples = (picked.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "samples.npy", samples)
        write_json(cached, {"eval": eval_cfg, "metrics": metrics}, indent=2)
        self.samples[spec.model_id] = samples
        return metrics

    def add_rows(self, spec: ModelSpec, net: NetConfig, metrics: dict[str, float | None]) -> None:
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
                    w1_training_critic=metrics.get("w1_training_critic"),
                    entropy_bits=metrics["entropy_bits"],
                    stored_bits_per_image=metrics["stored_bits_per_image"],
                    encoder=spec.encoder_id,
                    model=spec.model_id,
                    decoder=net.decoder,
                )
            )
        self.result.samples[spec.model_id] = self.samples[spec.model_id]
        w1 = "".join(
            f" {name} {metrics[k]:.3f}"
            for name, k in (("W1", "w1"), ("W1 (training critic)", "w1_training_critic"))
            if metrics.get(k) is not None
        )
        self.say(
            f"{spec.model_id}: MSE {metrics['mse']:.4f} CE {metrics['ce']:.3f} "
            f"acc {metrics['accuracy']:.3f}{w1}"
        )

    def run_model(self, spec: ModelSpec, bar: BarFactory) -> None:
        """Train (or reload) one planned model, evaluate it, and record its rows."""
        net = NetConfig(latent_dim=spec.rate[0], levels=spec.rate[1], decoder=self.profile.decoder)
        q = DitheredQuantizer(net.latent_dim, net.levels)
        seed = self.model_seed(spec.model_id)
        train_cfg = replace(
            self.train_cfg, epochs=self.profile.epochs_of(spec.kind, spec.objectives)
        )
        config: dict[str, object] = {
            "kind": spec.kind,
            "net": net.to_dict(),
            "objectives": [asdict(o) for o in spec.objectives],
            "encoder": spec.encoder_id,
            "train": train_cfg.to_dict(),
            "seed": seed,
            "data": self.data_note,
            "classifier": self.classifier_config,
        }
        steps = train_cfg.epochs * train_cfg.steps_per_epoch(int(self.x_tr.shape[0]))
        with seeded(seed):  # initial weights: decoders (and critics), then a fresh encoder
            heads = [Head(build_decoder(net).to(self.dev), o) for o in spec.objectives]
            fresh = (
                None
                if spec.kind == "universal"
                else Encoder(net.latent_dim, net.encoder_width).to(self.dev)
            )
        modules: dict[str, nn.Module] = {}
        for k, h in enumerate(heads):
            suffix = str(k) if len(heads) > 1 else ""
            modules["decoder" + suffix] = h.decoder
            if h.critic is not None:
                modules["critic" + suffix] = h.critic
        if fresh is None:
            if spec.encoder_id not in self.encoders:
                raise LossylearnError(
                    f"universal decoder {spec.model_id} needs encoder {spec.encoder_id}"
                )
            enc = self.encoders[spec.encoder_id]
            config["encoder_weights"] = f"../{spec.encoder_id}/encoder.pt"
        else:
            enc = modules["encoder"] = fresh
        if spec.warm_start is not None:  # curriculum: continue from a trained encoder
            if spec.warm_start not in self.encoders:
                raise LossylearnError(f"{spec.model_id} starts from encoder {spec.warm_start}")
            config["warm_start"] = spec.warm_start
        if not _try_load(self.models_dir / spec.model_id, modules, config):
            if spec.warm_start is not None:
                enc.load_state_dict(self.encoders[spec.warm_start].state_dict())
            train_codec(
                enc,
                heads,
                q,
                self.x_tr,
                self.y_tr,
                classifier=self.classifier,
                config=train_cfg,
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
        metrics = self.evaluate(spec, heads[0].decoder, q, config, heads[0].critic)
        self.add_rows(spec, net, metrics)


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
    engine: str = "local",
    ray_address: str | None = None,
    command: str | None = None,
) -> StudyResult:
    """Run the study of ``profile`` into ``out`` (results.json, figures, report.html, models/).

    Models already in ``out/models`` with an identical configuration are reloaded, not retrained;
    results.json is rewritten after every model. ``engine="ray"`` trains the models as Ray tasks
    (joining ``ray_address``, or a local Ray; ``out`` on a filesystem every node shares); a model
    that fails every attempt is listed in results.json's ``meta.failed`` and ``sweep.json``, the
    others are kept, and the run stops with an error naming it.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StoreError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    # the thread count applies to this run only (restored afterwards)
    sweep = open_sweep(engine, address=ray_address, threads=threads or 1)
    failures: list[Failure] = []
    with torch_threads(threads if dev.type == "cpu" else None), sweep:
        run = _StudyRun(profile, out, data_dir, seed, dev, threads, log or (lambda s: None))
        run.result.meta.update(
            command=command or "(called from Python)", versions=environment_versions(threads)
        )
        ur = profile.universal_rate
        with progress_bars(progress) as bar:
            run.classifier_stage(bar)
            run.flush()
            specs = plan_models(profile)
            if sweep.deferred:
                from lossylearn.studies.urdc.ray_points import train_points

                failures = train_points(sweep, specs, profile, out, data_dir, seed, device, threads)
                write_sweep_log(out, sweep, failures, say=run.say)
            failed = {f.key for f in failures}
            for spec in specs:
                if {spec.model_id, spec.encoder_id, spec.warm_start} & failed:
                    continue
                run.run_model(spec, bar)
                run.result.penalties = compute_penalties(
                    run.result.rows, ur[0] * float(np.log2(ur[1]))
                )
                run.flush()
    if failures:
        run.result.meta["failed"] = [f.to_dict() for f in failures]
        run.flush()
        raise LossylearnError(failure_message("urdc", failures, str(out / "results.json")))
    if write_report:
        from lossylearn.studies.urdc.report import write_figures_and_report

        write_figures_and_report(run.result, out)
    run.flush()
    return run.result
