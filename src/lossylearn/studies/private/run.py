"""``study private``: how well does a classifier learn from per-image-private records?

For each per-image epsilon, method and seed, the study makes the records of the private part of
the pool (positions ``n_public ..`` of the MNIST training pool, never seen by the encoder), trains
a fresh LeNet on them alone, and measures its accuracy on the clean test split (the official
10,000 digits when ``--data-dir`` holds them). Methods:

* ``latent-lcon``: a real universal store (:func:`lossylearn.universal.store.compress_universal`,
  latent noise and the matched quantizer), read back with ``open_store(DIR, decoder=NAME)`` through
  each decoder of the profile;
* ``latent-noisy``: the same noisy latents (the very same draws: noise stream 0 of the same seed)
  decoded without quantization (float32, 32 d bits per image);
* ``pixel-lcon``: today's pixel LCoN, a real JPEG store from :func:`lossylearn.compress` with
  ``--epsilon E --unit image`` (the image's L2 sensitivity 255 * 28).

Labels are in the clear (``label_epsilon`` null), or, at the total per-record epsilons of the
profile, split into an image part and a k-ary randomized-response part (``label_share``). The
no-noise point (epsilon null) stores clean latents with the checkpoint's quantizer; pixel-lcon at
no noise is the clean images. References: the classifier trained on the clean private images (the
ceiling) and on the public part alone.

All noise here is **seeded** (a measurement, so every row is reproducible): the stores' manifests
therefore say ``guarantee: false`` and carry the guarantee the same noise would give unseeded.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossylearn.data import load_dataset
from lossylearn.learn import ClassifierTrainConfig, accuracy, train_classifier
from lossylearn.pipeline.plan import DataSource
from lossylearn.privacy.source import NoiseSource
from lossylearn.privacy.streams import CHUNK_STREAMS, chunk_stream
from lossylearn.store import open_store
from lossylearn.studies.common import write_json
from lossylearn.studies.private.latent_classifier import fit_class_means
from lossylearn.studies.private.profiles import StudyProfile
from lossylearn.studies.urdc.models import CLASSIFIER
from lossylearn.universal.checkpoint import load_checkpoint
from lossylearn.universal.codec import decode_latents, encode_latents
from lossylearn.universal.labels import randomized_response, rr_transition
from lossylearn.universal.latent_noise import LatentMechanism, clip_l2
from lossylearn.universal.store import UniversalRequest, compress_universal
from lossylearn.universal.train import split_pool, train_universal

__all__ = ["run_private_study"]

Log = Callable[[str], None]


class _Study:
    def __init__(self, prof: StudyProfile, out: Path, work: Path, data_dir: Any, log: Log) -> None:
        self.prof, self.out, self.work, self.log = prof, out, work, log
        ds = load_dataset("mnist", data_dir)
        self.pool = ds.split("train")
        tx, ty = ds.split("test")
        lim = prof.test_limit or len(ty)
        self.test_x, self.test_y = tx[:lim], ty[:lim]
        self.data_note = {"source": ds.source, "test_images": int(len(self.test_y))}
        self.rows: list[dict[str, Any]] = []
        self.started = time.time()

    # -- setup ------------------------------------------------------------------------------------

    def checkpoint(self, given: Path | None, data_dir: Any) -> Path:
        if given is not None:
            return given
        u = self.work / "U"
        self.log(f"training the universal checkpoint ({self.prof.train.epochs} epochs)")
        train_universal(u, profile=self.prof.train, data_dir=data_dir)
        if "robust" in self.prof.decoders:
            from lossylearn.universal.robust import train_robust_decoder

            self.log(f"training the robust decoder for epsilon {self.prof.robust_epsilon}")
            train_robust_decoder(u, epsilon=self.prof.robust_epsilon, clip_norm=None,
                                 epochs=self.prof.robust_epochs, data_dir=data_dir)  # fmt: skip
        return u

    def accuracy_of(self, images: np.ndarray, labels: np.ndarray, seed: int) -> float:
        cfg = ClassifierTrainConfig(epochs=self.prof.classifier_epochs, batch_size=64, seed=seed,
                                    threads=1, progress=False)  # fmt: skip
        model = train_classifier(images, labels, model_config=CLASSIFIER, config=cfg).model
        return accuracy(model, self.test_x, self.test_y, device="cpu")

    # -- one point --------------------------------------------------------------------------------

    def split(self, total: float, rr: bool) -> tuple[float, float | None]:
        if not rr:
            return total, None
        return total * (1 - self.prof.label_share), total * self.prof.label_share

    def row(self, **kw: Any) -> None:
        eps = kw["epsilon"]
        row = {
            "method": kw["method"], "decoder": kw.get("decoder"),
            "epsilon": None if math.isinf(eps) else eps, "delta": None if math.isinf(eps) else self.prof.delta,
            "unit": "image", "label_epsilon": kw.get("label_epsilon"),
            "total_epsilon": None if math.isinf(kw["total"]) else kw["total"],
            "classifier": kw.get("classifier", "image"), "loss": kw.get("loss", "ce"),
            "accuracy": kw["accuracy"], "bits_per_image": kw["bits"], "seed": kw["seed"],
            "clip_norm": kw.get("clip"), "seconds": round(kw["seconds"], 2),
        }  # fmt: skip
        self.rows.append(row)
        lab = "clear" if row["label_epsilon"] is None else f"RR eps_L={row['label_epsilon']:.3g}"
        self.log(f"{row['method']:12s} {str(row['decoder'] or row['classifier']):7s} eps={eps:<6g} labels {lab:16s} "
                 f"seed {row['seed']}: accuracy {row['accuracy']:.4f}")  # fmt: skip

    def latent_row(
        self, z: np.ndarray, y: np.ndarray, test: np.ndarray, clip: float | None, **kw: Any
    ) -> None:
        """A row of the nearest-class-mean rule on stored latents (means corrected for RR)."""
        leps = kw["label_epsilon"]
        t = None if leps is None else rr_transition(leps, 10)
        rule = fit_class_means(z, y, transition=t)
        acc = rule.accuracy(test if clip is None else clip_l2(test, clip), self.test_y)
        self.row(
            classifier="latent",
            loss="class means" if t is None else "RR-corrected class means",
            accuracy=acc,
            clip=clip,
            seconds=time.time() - kw.pop("t0"),
            **kw,
        )


def _rr(labels: np.ndarray, eps: float | None, rng: NoiseSource) -> np.ndarray:
    return labels if eps is None else randomized_response(labels, 10, eps, rng)


def run_private_study(
    prof: StudyProfile,
    *,
    out: Path,
    data_dir: str | Path | None = None,
    checkpoint: Path | None = None,
    command: str = "",
    log: Log | None = None,
) -> dict[str, Any]:
    """Run the study and write ``out/results.json`` (rows as they come), figures and report.html."""
    from lossylearn.pipeline import compress
    from lossylearn.studies.private.report import summarise, write_outputs

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = log or (lambda m: None)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="study-private-") as tmp:
        work = Path(tmp)
        st = _Study(prof, out, work, data_dir, say)
        u = st.checkpoint(checkpoint, data_dir)
        ck = load_checkpoint(u)
        n_public = int(ck.config["data"]["public"]["n"])
        (pub_x, pub_y), (priv_x, priv_y) = split_pool(*st.pool, n_public)
        priv_x, priv_y = priv_x[: prof.private_limit], priv_y[: prof.private_limit]
        clip = float(ck.config["public_latent_norms"][prof.clip_quantile])
        latents = encode_latents(ck, priv_x)
        test_latents = encode_latents(ck, st.test_x)
        seed0 = prof.seeds[0]
        refs = {
            "ceiling_clean_private": st.accuracy_of(priv_x, priv_y, seed0),
            "public_only": st.accuracy_of(pub_x, pub_y, seed0),
        }
        say(f"references: {refs}")
        meta = {"profile": prof.to_dict(), "command": command, "data": st.data_note,
                "checkpoint": {"config": {k: v for k, v in ck.config.items() if k != "data"},
                               "data": {**ck.config["data"], "public": {
                                   k: v for k, v in ck.config["data"]["public"].items()
                                   if k != "image_sha256_prefixes"}}},
                "private_images": int(len(priv_y)), "clip_norm": clip, "references": refs,
                "seeded_noise": "every row uses seeded noise (a reproducible measurement): no "
                                "store made here claims a guarantee; the epsilons are those the "
                                "same noise gives from the CSPRNG"}  # fmt: skip

        def save() -> None:
            write_json(out / "results.json", {"meta": {**meta, "elapsed_s": round(time.time() - st.started, 1)},
                                              "rows": st.rows, "summary": summarise(st.rows)}, indent=2)  # fmt: skip

        source = DataSource(images=priv_x, labels=priv_y)
        for n_seed, seed in enumerate(prof.seeds):
            images = "image" in prof.classifiers and n_seed < (prof.image_seeds or len(prof.seeds))
            for total in prof.epsilons:
                modes = [False] + ([True] if total in prof.rr_epsilons else [])
                for rr in modes:
                    eps, leps = st.split(total, rr)
                    noisy = not math.isinf(eps)
                    common = {"epsilon": eps, "total": total, "label_epsilon": leps, "seed": seed}
                    if "latent-lcon" in prof.methods:
                        t0 = time.time()
                        req = UniversalRequest(u, noise_space="latent" if noisy else "none",
                                               epsilon=eps if noisy else None,
                                               delta=prof.delta if noisy else None,
                                               clip_norm=clip if noisy else None, label_epsilon=leps)  # fmt: skip
                        m = compress_universal(req, out=work / "store", source=source, seed=seed,
                                               chunk_size=len(priv_y), overwrite=True)  # fmt: skip
                        bits = m.codec["bits"]["stored_bits_per_image"]
                        if "latent" in prof.classifiers:
                            s = open_store(work / "store")
                            st.latent_row(s.latents().numpy(), s.labels, test_latents,
                                          clip if noisy else None, method="latent-lcon",
                                          bits=bits, t0=t0, **common)  # fmt: skip
                        for dec in prof.decoders if images else ():
                            s = open_store(work / "store", decoder=dec)
                            x, y = s.arrays()
                            acc = st.accuracy_of(x, y, seed)
                            st.row(method="latent-lcon", decoder=dec, accuracy=acc, bits=bits,
                                   clip=clip if noisy else None, seconds=time.time() - t0, **common)  # fmt: skip
                    if "latent-noisy" in prof.methods:
                        t0 = time.time()
                        rng = NoiseSource.create(seed, chunk_stream(0))
                        z = LatentMechanism(eps, prof.delta, clip, ck.net.latent_dim).release(
                            latents, rng) if noisy else latents  # fmt: skip
                        y = _rr(priv_y, leps, rng)
                        if "latent" in prof.classifiers:
                            st.latent_row(z, y, test_latents, clip if noisy else None,
                                          method="latent-noisy", bits=32.0 * ck.net.latent_dim,
                                          t0=t0, **common)  # fmt: skip
                        for dec in prof.decoders if images else ():
                            x = decode_latents(ck.decoder(dec)[1], torch.from_numpy(z).float())
                            acc = st.accuracy_of(x, y, seed)
                            st.row(method="latent-noisy", decoder=dec, accuracy=acc,
                                   bits=32.0 * ck.net.latent_dim, clip=clip if noisy else None,
                                   seconds=time.time() - t0, **common)  # fmt: skip
                    if "pixel-lcon" in prof.methods:
                        t0 = time.time()
                        if noisy:
                            m = compress(out=work / "pixel", images=priv_x, labels=priv_y,
                                         epsilon=eps, delta=prof.delta, unit="image",
                                         codec="jpeg", seed=seed, overwrite=True, progress=False,
                                         warn=lambda msg: None)  # fmt: skip
                            x, y = open_store(work / "pixel").arrays()
                            bits = 8.0 * m.stats.stored_bytes / len(y)
                        else:
                            x, y, bits = priv_x, priv_y, 8.0 * 784
                        # label coins: the last chunk stream, which no store of fewer than
                        # 1e6 chunks draws its pixel noise from (independent of that noise)
                        rng = NoiseSource.create(seed, chunk_stream(CHUNK_STREAMS - 1))
                        y = _rr(y, leps, rng)
                        acc = st.accuracy_of(x, y, seed)
                        st.row(method="pixel-lcon", accuracy=acc, bits=bits,
                               seconds=time.time() - t0, **common)  # fmt: skip
                    save()
        save()
        write_outputs(out, meta, st.rows)
        return {"meta": meta, "rows": st.rows}
