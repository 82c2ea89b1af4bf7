"""Ablation for issue 17: encoder objective, latent size d, clip quantile (latent class-means learner)."""
import json, math, sys, time
from dataclasses import replace
from pathlib import Path
from lossylearn.studies.private.profiles import PROFILES
from lossylearn.studies.private.run import run_private_study
from lossylearn.universal.train import PROFILES as TP, train_universal
variants = {
    "A-mse-only-d10": dict(latent_dim=10, levels=4, lambda_c=0.0, latent_ce=0.0),
    "B-latentce-d10": dict(latent_dim=10, levels=4, lambda_c=0.05, latent_ce=1.0),
    "C-latentce-d4": dict(latent_dim=4, levels=4, lambda_c=0.05, latent_ce=1.0),
    "D-urdc-ce-d10": dict(latent_dim=10, levels=4, lambda_c=0.05, latent_ce=0.0),
}
out = {}
for name, kw in variants.items():
    u = Path(f"/tmp/u17/abl-U-{name}")
    if not u.exists():
        t = time.time()
        train_universal(u, profile=replace(TP["quick"], epochs=10, classifier_epochs=3, **kw), data_dir="/work/shared/data/mnist")
        print(name, "train", round(time.time() - t), flush=True)
    for q in (["q25", "q50", "q90"] if name.startswith("B") else ["q50"]):
        p = replace(PROFILES["quick"], epsilons=(2.0, 8.0, 32.0, math.inf), rr_epsilons=(8.0,), seeds=(0, 1),
                    methods=("latent-lcon", "latent-noisy"), classifiers=("latent",), clip_quantile=q, test_limit=None)
        res = run_private_study(p, out=Path(f"/tmp/u17/abl-{name}-{q}"), data_dir="/work/shared/data/mnist", checkpoint=u)
        for r in res["rows"]:
            print(name, q, r["method"], r["epsilon"], r["label_epsilon"], r["seed"], round(r["accuracy"], 4), round(r["bits_per_image"], 2), flush=True)
