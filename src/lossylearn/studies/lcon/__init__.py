"""The LCoN study: the paper's section VI experiments (Fig. 2, Fig. 3 and Fig. 4) as stages.

For every noise level of the grid, the training pool is noised and coded with the matched codec into
a real store (``lossylearn.compress``); the three training schemes (clean = baseline 1, noisy =
baseline 2, lcon) get as many examples as fit in the same stored bits (clean and noisy counted at
their lossless PNG size, shared headers once); one model per scheme and seed is trained and tested
on clean, noisy, LCoN, FGSM, LCoN-processed FGSM and PGD test sets. A second sweep fixes the noise
(variance 1600 on the 0-255 scale by default) and moves the codec's target distortion (Fig. 3).
Everything lands in ``out``: results.json, results.csv, figures/*.png and report.html.

The codec target is always decided by :class:`lossylearn.pipeline.TargetPolicy` (see
:mod:`.points`). With ``codec="learned"`` (section VI-B, Fig. 4: Laplacian noise and a neural codec
trained for MAE) a share of the training pool (``codec_fraction``, default 0.2) is held out: for
every store a codec is trained on the noisy versions of those images for the matched distortion
(:mod:`.codec_training`), and no classifier, of any scheme, sees them. The checkpoints land in
``out/codecs``.

Stages (:mod:`.run` calls them in order; each takes and returns values):

* :func:`.data.load_data` (config -> :class:`.data.StudyData`)
* :func:`.points.plan_points` (config -> list of :class:`.points.Point`) and
  :func:`.points.point_policy` (point -> :class:`~lossylearn.pipeline.TargetPolicy`)
* :func:`.stores.matched_codec` and :func:`.stores.make_store` (point -> :class:`.stores.StoreInfo`),
  :func:`.stores.training_set` (store -> images, labels, coded sizes)
* :func:`.budget.calibrate_storage` (coded sizes per scheme -> :class:`.budget.SchemeBudget` each)
* :func:`.evaluate.test_sets`, :func:`.evaluate.train_model`, :func:`.evaluate.evaluate`,
  :func:`.evaluate.result_rows` (store, scheme, budget -> :class:`.results.ResultRow` list)
* :func:`.results.summarize`, :func:`.claims.check_claims`, :func:`.figures.write_figures`,
  :func:`.report.report_sections` (the page: :func:`lossylearn.studies.common.write_report`)

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

Names load on first use, so importing this package does not import torch.
"""

from __future__ import annotations

from lossylearn.studies.common import lazy_exports

_HOME = {
    "LAPLACE_PSNRS": "config", "PAPER_PSNRS": "config", "PROFILES": "config",
    "PROFILE_LAYERS": "config", "StudyConfig": "config", "profile_config": "config",
    "StudyResult": "run", "run_lcon_study": "run",
}  # fmt: skip

__all__ = sorted(_HOME)
__getattr__ = lazy_exports(__name__, _HOME)
