"""Pure parts of the LCoN study: storage calibration, summaries, claims, profiles, the planned
stores and their targets, the privacy section, the stream table, CLI parsing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lossylearn.cli.parse import floats, ints
from lossylearn.errors import LossylearnError
from lossylearn.studies import (
    LAPLACE_PSNRS,
    PAPER_PSNRS,
    CodedSizes,
    ResultRow,
    calibrate_storage,
    check_claims,
    fig3_claims,
    largest_prefix,
    profile_config,
    summarize,
)


def test_largest_prefix_counts_the_shared_header() -> None:
    sizes = np.array([10, 20, 30, 40])
    assert largest_prefix(sizes, 5, 5) == 0
    assert largest_prefix(sizes, 5, 15) == 1
    assert largest_prefix(sizes, 5, 34) == 1
    assert largest_prefix(sizes, 5, 35) == 2
    assert largest_prefix(sizes, 5, 65) == 3
    assert largest_prefix(sizes, 5, 10_000) == 4


def test_calibration_gives_every_scheme_the_smallest_full_budget() -> None:
    lcon = CodedSizes(np.full(100, 50), 600)  # 5,600 bytes in all
    clean = CodedSizes(np.full(100, 200), 60)
    noisy = CodedSizes(np.full(100, 700), 60)
    b = calibrate_storage({"clean": clean, "noisy": noisy, "lcon": lcon})
    assert b["lcon"].n_train == 100 and b["lcon"].train_bits == 8 * 5600
    assert b["clean"].n_train == (5600 - 60) // 200 == 27
    assert b["noisy"].n_train == (5600 - 60) // 700 == 7
    for v in b.values():
        assert v.budget_bits == 8 * 5600
        assert 0 <= v.relative_gap < 0.15
    # A baseline whose whole set is smaller than the LCoN set sets the budget instead.
    small = calibrate_storage({"clean": CodedSizes(np.full(10, 100), 0), "lcon": lcon})
    assert small["clean"].n_train == 10 and small["lcon"].n_train == (1000 - 600) // 50
    off = calibrate_storage({"clean": clean, "lcon": lcon}, enabled=False)
    assert off["clean"].n_train == off["lcon"].n_train == 100
    with pytest.raises(LossylearnError, match="without a single example"):
        calibrate_storage(
            {"noisy": CodedSizes(np.full(3, 10_000), 0), "lcon": CodedSizes(np.full(3, 1), 0)}
        )


def _row(psnr: float, train: str, test: str, acc: float, seed: int = 0, eps: float = 0.0,
         sweep: str = "noise", target: float = 100.0, achieved: float = 100.0) -> ResultRow:  # fmt: skip
    return ResultRow(
        sweep=sweep, psnr=psnr, noise_sigma=10.0, target_distortion=target, achieved_distortion=achieved,
        target_reached=True, metric="mse", quality=50, train=train, test=test, epsilon=eps, accuracy=acc,
        n_test=100, n_train=10, train_bits=800, budget_bits=800, bits_per_pixel=0.5, seed=seed, model="cnn",
        epochs=1, train_seconds=0.1,
    )  # fmt: skip


def test_summary_mean_and_sample_std_over_seeds() -> None:
    rows = [_row(10, "lcon", "clean", a, seed=s) for s, a in enumerate([0.8, 0.9, 1.0])]
    (s,) = summarize(rows)
    assert s.n_seeds == 3
    assert math.isclose(s.mean, 0.9)
    assert math.isclose(s.std, 0.1)


def test_claims_hold_and_fail_with_reasons() -> None:
    rows = []
    for p in (10.0, 20.0):
        rows += [
            _row(p, "lcon", "clean", 0.9),
            _row(p, "noisy", "clean", 0.7),
            _row(p, "clean", "clean", 0.91),
        ]
        rows += [_row(p, "lcon", "fgsm", 0.5, eps=0.1), _row(p, "noisy", "fgsm", 0.3, eps=0.1),
                 _row(p, "clean", "fgsm", 0.6 if p == 10 else 0.2, eps=0.1)]  # fmt: skip
    for t, a in ((25.0, 0.5), (100.0, 0.8), (400.0, 0.6)):
        rows += [
            _row(16, "lcon", x, a, sweep="distortion", target=t, achieved=t)
            for x in ("clean", "noisy", "lcon")
        ]
    claims = {c.name: c for c in check_claims(summarize(rows), sweep_matched=100.0)}
    assert claims["lcon_beats_noisy"].holds is True
    assert claims["lcon_beats_noisy"].detail.startswith("4 of 4")
    assert claims["lcon_close_to_clean"].holds is True
    assert claims["lcon_more_robust_fgsm"].holds is False
    assert "PSNR 10 eps 0.1" in claims["lcon_more_robust_fgsm"].detail
    assert claims["fig3_peak_at_matched"].holds is True
    # Peak far from the matched distortion fails.
    far = check_claims(summarize(rows), sweep_matched=1600.0)
    assert next(c for c in far if c.name == "fig3_peak_at_matched").holds is False


def _sweep_rows(curve: dict[float, list[float]]) -> list[ResultRow]:
    return [
        _row(16, "lcon", x, a, seed=k, sweep="distortion", target=t, achieved=t)
        for t, accs in curve.items() for k, a in enumerate(accs) for x in ("clean", "noisy", "lcon")
    ]  # fmt: skip


def test_fig3_verdicts_use_the_seeds_spread() -> None:
    # A flat plateau (differences well inside the seeds' spread) that ends at the matched point:
    # not a peak, but the matched point is the cheapest distortion without loss.
    plateau = _sweep_rows({25.0: [0.89, 0.91, 0.90], 50.0: [0.90, 0.92, 0.90],
                           100.0: [0.88, 0.91, 0.90], 200.0: [0.80, 0.81, 0.79]})  # fmt: skip
    claims = {c.name: c for c in fig3_claims(summarize(plateau), 100.0)}
    assert claims["fig3_peak_at_matched"].holds is False
    assert claims["fig3_matched_cheapest_without_loss"].holds is True
    assert claims["fig3_peak_at_matched"].detail.startswith("a plateau ending at the matched")
    # The same means with no spread between seeds: 50 alone is best, away from 100 by a factor 2.
    tight = _sweep_rows({25.0: [0.90] * 3, 50.0: [0.907] * 3, 100.0: [0.897] * 3, 200.0: [0.80] * 3})
    claims = {c.name: c for c in fig3_claims(summarize(tight), 100.0)}
    assert claims["fig3_peak_at_matched"].holds is False
    assert claims["fig3_matched_cheapest_without_loss"].holds is False
    assert claims["fig3_peak_at_matched"].detail.startswith("no peak near the matched distortion")
    # A clear interior peak at the matched point holds both.
    peak = _sweep_rows({25.0: [0.80, 0.81, 0.79], 100.0: [0.90, 0.91, 0.90], 400.0: [0.70] * 3})
    claims = {c.name: c for c in fig3_claims(summarize(peak), 100.0)}
    assert claims["fig3_peak_at_matched"].holds is True
    assert claims["fig3_matched_cheapest_without_loss"].holds is True


def test_profiles_and_overrides() -> None:
    q = profile_config("quick")
    assert q.psnrs == (10.1, 16.1, 22.1) and q.seeds == (0,) and q.n_train == 1000
    p = profile_config("paper")
    assert p.psnrs == PAPER_PSNRS and p.seeds == (0, 1, 2) and p.n_train is None
    c = profile_config("paper", dataset="celeba")
    assert c.model == "resnet34" and c.image_size == 64 and c.hflip
    o = profile_config("quick", psnrs=[12.0], epochs=None, calibrate=False)
    assert o.psnrs == (12.0,) and o.epochs == 5 and not o.calibrate
    with pytest.raises(LossylearnError, match="unknown profile"):
        profile_config("huge")
    with pytest.raises(LossylearnError, match="seeds must be distinct"):
        profile_config("quick", seeds=[1, 1])
    with pytest.raises(LossylearnError, match="epsilons"):
        profile_config("quick", fgsm_eps=[8.0])
    lap = profile_config("paper", noise="laplace", codec="learned")
    assert lap.psnrs == LAPLACE_PSNRS and not lap.distortion_sweep and lap.codec_epochs == 8
    lq = profile_config("quick", noise="laplace", codec="learned", distortion_sweep=True)
    assert lq.distortion_sweep and lq.codec_epochs == 3 and lq.psnrs == (10.1, 16.1, 22.1)
    with pytest.raises(LossylearnError, match="codec-fraction"):
        profile_config("quick", codec="learned", codec_fraction=1.5)
    with pytest.raises(LossylearnError, match="trains its own learned codec"):
        profile_config("quick", codec="learned", codec_options={"checkpoint": "x"})


def test_matched_checkpoint_is_reused_only_for_the_same_target(tmp_path: Path) -> None:
    from lossylearn.studies.lcon.codec_training import CodecTrainingConfig, matched_checkpoint

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 28, 28, 1), dtype=np.uint8)
    cfg = CodecTrainingConfig(epochs=1, finetune_epochs=1, rounds=1, progress=False)
    path = tmp_path / "ck"
    first = matched_checkpoint(images, metric="mse", target=900.0, path=path, config=cfg)
    assert not first["reused"] and first["rounds"] and first["metric"] == "mse"
    again = matched_checkpoint(images, metric="mse", target=900.0, path=path, config=cfg)
    assert again["reused"] and again["lmbda"] == first["lmbda"]
    other = matched_checkpoint(images, metric="mse", target=400.0, path=path, config=cfg)
    assert not other["reused"] and other["target"] == 400.0


def test_cli_list_parsing() -> None:
    assert floats("8.1, 10.1", "--psnr") == (8.1, 10.1)
    assert ints("0,1,2", "--seeds") == (0, 1, 2)
    assert floats(None, "--psnr") is None
    with pytest.raises(LossylearnError, match="--psnr takes comma-separated numbers"):
        floats("a,b", "--psnr")


def test_plan_points_puts_the_matched_store_first_and_policies_follow_the_one_rule() -> None:
    from lossylearn.pipeline import TargetPolicy
    from lossylearn.studies.lcon.points import noise_spec, plan_points, point_policy

    q = profile_config("quick")
    points = plan_points(q)
    assert [p.name for p in points] == [
        "noise-psnr10.1", "noise-psnr16.1", "noise-psnr22.1",
        "distortion-x1", "distortion-x0.25", "distortion-x4",
    ]  # fmt: skip
    assert all(p.train for p in points)
    sweep = [p for p in points if p.sweep == "distortion"]
    assert {p.noise.sigma for p in sweep} == {40.0} and {p.psnr for p in sweep} == {16.09}
    assert point_policy(points[0], q, None) == TargetPolicy("nominal")
    assert point_policy(sweep[0], q, None) == TargetPolicy("nominal")
    assert point_policy(sweep[2], q, 1600.0) == TargetPolicy("given", 6400.0)
    with pytest.raises(LossylearnError, match="matched distortion first"):
        point_policy(sweep[1], q, None)
    spec = noise_spec(sweep[0], (28, 28, 1))
    assert spec.matched_target() == ("mse", 1600.0)

    # An effective target without factor 1: the matched store is still made first, untrained.
    e = profile_config("quick", match_noise="effective", sweep_factors=[0.5, 2.0, 0.5])
    sweep = [p for p in plan_points(e) if p.sweep == "distortion"]
    assert [(p.name, p.train) for p in sweep] == [
        ("distortion-x1", False),
        ("distortion-x0.5", True),
        ("distortion-x2", True),
    ]
    assert point_policy(sweep[0], e, None) == TargetPolicy("effective")
    # With the nominal rule no anchor is needed: sigma^2 is known without images.
    n = profile_config("quick", sweep_factors=[0.5, 2.0])
    assert [p.name for p in plan_points(n) if p.sweep == "distortion"] == [
        "distortion-x0.5",
        "distortion-x2",
    ]
    assert [p.sweep for p in plan_points(profile_config("quick", distortion_sweep=False))] == [
        "noise"
    ] * 3
    lap = plan_points(profile_config("paper", noise="laplace", codec="learned"))
    assert [p.psnr for p in lap] == list(LAPLACE_PSNRS) and {p.noise.kind for p in lap} == {
        "laplace"
    }


def test_profiles_are_layers_of_data() -> None:
    from lossylearn.studies.lcon.config import PROFILE_LAYERS

    q = profile_config("quick", dataset="celeba", noise="laplace", codec="learned")
    expected = {}
    for layer in ("base", "celeba", "learned"):  # later layers win
        expected.update(PROFILE_LAYERS[("quick", layer)])
    assert expected["epochs"] == 2 and expected["model"] == "resnet18"
    for k, v in expected.items():
        assert getattr(q, k) == v, k
    assert ("quick", "laplace") not in PROFILE_LAYERS and q.psnrs == (10.1, 16.1, 22.1)
    assert q.target_policy.basis == "nominal"
    assert profile_config("quick", match_noise="effective").target_policy.needs_noisy_images


def test_privacy_section_states_the_guarantee_or_its_absence() -> None:
    from lossylearn.studies.lcon.report import privacy_section

    figures = {"mechanism": "Laplace", "epsilon": 9.026408785382067, "delta": 0.0, "unit": "pixel",
               "per_image": {"epsilon": 7076.7}}  # fmt: skip
    seeded = {"name": "a", "privacy": {"guarantee": False, "statement": "No guarantee <seeded>.",
                                       "if_unseeded": figures}}  # fmt: skip
    secure = {"name": "b", "privacy": {"guarantee": True, "statement": "(9.026, 0)-DP", **figures}}
    html = privacy_section([seeded, secure])
    assert "carry no privacy guarantee" in html and "1 of 2 stores" in html
    assert "epsilon (if unseeded)" in html and "No guarantee &lt;seeded&gt;." in html
    a = html[html.index('<td class="l">a</td>') :].split("</tr>")[0]
    b = html[html.index('<td class="l">b</td>') :].split("</tr>")[0]
    assert "none (seeded)" in a and "<td>9.026</td>" in a and "<td>pixel</td>" in a
    assert "none (seeded)" not in b and "<td>9.026</td>" in b and "<td>7077</td>" in b
    only_secure = privacy_section([secure])
    assert "no privacy guarantee" not in only_secure and "epsilon (if unseeded)" not in only_secure


def test_noise_streams_never_collide() -> None:
    from lossylearn.privacy import streams
    from lossylearn.privacy.streams import (
        CHUNK_STREAMS,
        Stream,
        check_streams,
        chunk_stream,
        stream,
    )

    check_streams()
    assert all(int(m) >= CHUNK_STREAMS for m in Stream)
    assert chunk_stream(0) == 0 and chunk_stream(CHUNK_STREAMS - 1) == CHUNK_STREAMS - 1
    with pytest.raises(ValueError, match="chunk numbers"):
        chunk_stream(CHUNK_STREAMS)
    assert stream(Stream.STUDY_LCON_ADV, 3) == int(Stream.STUDY_LCON_ADV) + 3
    with pytest.raises(ValueError, match="out of range"):
        stream(Stream.STUDY_NOISY_TEST, 1)
    with pytest.raises(ValueError, match="out of range"):
        stream(Stream.STUDY_LCON_ADV, 100)
    # An overlapping block is caught (the table is checked on import).
    sizes = dict(streams.BLOCK_SIZES)
    try:
        streams.BLOCK_SIZES[Stream.STUDY_LCON_ADV] = 7_000
        with pytest.raises(RuntimeError, match="overlap"):
            check_streams()
    finally:
        streams.BLOCK_SIZES.clear()
        streams.BLOCK_SIZES.update(sizes)
    with pytest.raises(LossylearnError, match="FGSM epsilons"):
        profile_config("quick", fgsm_eps=[0.001 * k for k in range(101)])
