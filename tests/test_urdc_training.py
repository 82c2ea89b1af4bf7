"""Networks, training loops and metrics of lossylearn.studies.urdc, on slices of the embedded digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lossylearn.data import load_dataset
from lossylearn.errors import LossylearnError
from lossylearn.learn import (
    ClassifierTrainConfig,
    images_to_tensor,
    random_shift,
    resolve_device,
    seeded,
    torch_threads,
    train_classifier,
)
from lossylearn.studies.urdc.metrics import (
    classifier_scores,
    estimate_w1,
    mean_squared_error,
    receive,
    transmit,
)
from lossylearn.studies.urdc.models import (
    CLASSIFIER,
    ConvDecoder,
    Critic,
    Encoder,
    MLPDecoder,
    NetConfig,
    build_decoder,
)
from lossylearn.studies.urdc.quantizer import DitheredQuantizer
from lossylearn.studies.urdc.study import ResultRow, compute_penalties, get_profile, plan_models
from lossylearn.studies.urdc.train import Head, Objective, UrdcTrainConfig, train_codec


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: the CI box has 2 cores; leave one to pytest-xdist siblings."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    ds = load_dataset("mnist", limit=600)
    return (
        images_to_tensor(ds.train_images),
        torch.from_numpy(ds.train_labels),
        images_to_tensor(ds.test_images[:300]),
        torch.from_numpy(ds.test_labels[:300]),
    )


@torch.no_grad()
def test_networks_compute_the_anchor_functions() -> None:
    x = torch.rand(5, 1, 28, 28)
    # the anchor's layer widths: encoder 784-512-256-128-128-3, decoders d-128-512 + deconvolutions
    # or d-128-512-1024-784, critic 64/128/256 convolutions + a linear score
    sizes = {
        type(m).__name__: sum(p.numel() for p in m.parameters())
        for m in (Encoder(3), ConvDecoder(3), MLPDecoder(3), Critic())
    }
    assert sizes == {
        "Encoder": 585_097,
        "ConvDecoder": 326_465,
        "MLPDecoder": 1_398_800,
        "Critic": 1_030_145,
    }
    # the encoder's code is tanh of its last normalised layer: pin that layer, and every image
    # gets tanh(bias)
    enc = Encoder(3).eval()
    enc.net[-2].weight.zero_()
    enc.net[-2].bias.copy_(torch.tensor([0.5, -0.5, 2.0]))
    torch.testing.assert_close(enc(x), torch.tanh(torch.tensor([0.5, -0.5, 2.0])).expand(5, 3))
    # the MLP decoder's sigmoid output is laid out row by row: a constant last layer whose bias is
    # logit(p) draws the image p.reshape(28, 28) for any latent
    z = torch.rand(5, 3) * 2 - 1
    mlp = MLPDecoder(3).eval()
    p = torch.linspace(0.05, 0.95, 28 * 28)
    mlp.net[-2].weight.zero_()
    mlp.net[-2].bias.copy_(torch.logit(p))
    torch.testing.assert_close(mlp(z), p.reshape(1, 1, 28, 28).expand(5, 1, 28, 28))
    # in eval mode each image is coded, decoded and scored on its own (no batch statistics)
    conv, critic = ConvDecoder(3).eval(), Critic().eval()
    for net, batch in ((Encoder(3).eval(), x), (conv, z), (MLPDecoder(3).eval(), z), (critic, x)):
        torch.testing.assert_close(net(batch)[2:3], net(batch[2:3]))
    critic.fc.weight.zero_()
    critic.fc.bias.fill_(0.25)
    assert critic(x).tolist() == [0.25] * 5
    # the NHWC weight layout is a speed choice only: same weights, same function
    plain, fast = (
        ConvDecoder(3, channels_last=False).eval(),
        ConvDecoder(3, channels_last=True).eval(),
    )
    fast.load_state_dict(plain.state_dict())
    torch.testing.assert_close(fast(z), plain(z), rtol=1e-5, atol=1e-6)


def test_net_config_round_trip_and_errors() -> None:
    cfg = NetConfig(latent_dim=4, levels=4, decoder="mlp", mlp_decoder_hidden=(64, 256))
    assert NetConfig.from_dict(cfg.to_dict()) == cfg
    assert isinstance(build_decoder(cfg), MLPDecoder)
    with pytest.raises(LossylearnError, match="unknown decoder"):
        NetConfig(decoder="resnet")
    with pytest.raises(LossylearnError):
        Objective(-1.0, 0.0)
    with pytest.raises(LossylearnError):
        resolve_device("tpu")


def test_classifier_beats_chance_by_far(digits) -> None:
    _, _, xt, yt = digits
    ds = load_dataset("mnist", limit=600)
    cfg = ClassifierTrainConfig(epochs=4, seed=0, batch_size=32, progress=False, device="cpu")
    clf = train_classifier(
        ds.train_images, ds.train_labels, model_config=CLASSIFIER, config=cfg
    ).model
    ce, acc = classifier_scores(clf, xt, yt)
    assert acc > 0.75 and ce < 1.0  # chance: 10% and ln 10 = 2.30 nats


def test_end_to_end_then_universal_decoder_learns(digits) -> None:
    x, y, xt, yt = digits
    q = DitheredQuantizer(3, 3)
    with seeded(0):
        enc, dec = Encoder(3), build_decoder(NetConfig(decoder="mlp"))
    cfg = UrdcTrainConfig(epochs=4, batch_size=32)
    logs = train_codec(
        enc,
        [Head(dec, Objective())],
        q,
        x,
        y,
        classifier=None,
        config=cfg,
        train_encoder=True,
        seed=0,
    )
    assert logs[-1].mse[0] < logs[0].mse[0]
    data, size = transmit(enc, q, xt, seed=11)
    assert size.payload_bits == int(np.ceil(300 * q.rate_bits))
    rec, symbols = receive(data, dec)
    # the receiver, rebuilding the dither from (seed, index), matches the sender-side decode exactly
    with torch.no_grad():
        u = q.dither_for(11, np.arange(300))
        direct = dec(q.dequantize(q.indices(enc(xt), u), u))
    torch.testing.assert_close(rec, direct)
    mse = mean_squared_error(rec, xt)
    mean_image_mse = mean_squared_error(x.mean(0, keepdim=True).expand_as(xt), xt)
    assert mse < mean_image_mse  # 4.755 bits beat sending nothing
    # a fresh decoder on the frozen encoder reaches a comparable distortion (cached latents path)
    dec2 = build_decoder(NetConfig(decoder="mlp"))
    enc_before = [p.clone() for p in enc.parameters()]
    train_codec(
        enc,
        [Head(dec2, Objective())],
        q,
        x,
        y,
        classifier=None,
        config=cfg,
        train_encoder=False,
        seed=1,
    )
    assert all(torch.equal(a, b) for a, b in zip(enc_before, enc.parameters(), strict=True))
    rec2, _ = receive(data, dec2)
    assert mean_squared_error(rec2, xt) < mean_image_mse
    with pytest.raises(LossylearnError, match="classifier"):
        train_codec(
            enc,
            [Head(dec2, Objective(0.01, 0))],
            q,
            x,
            y,
            classifier=None,
            config=cfg,
            train_encoder=False,
            seed=1,
        )


def test_w1_critic_separates_far_from_near(digits) -> None:
    x, _, xt, _ = digits
    blank = torch.zeros_like(x)
    far = estimate_w1(x, blank, xt, torch.zeros_like(xt), steps=40, seed=0, batch_size=32)
    near = estimate_w1(x[:300], x[300:], xt[:150], xt[150:], steps=40, seed=0, batch_size=32)
    assert far > 1.0 and far > 5 * abs(near)


def _row(mode: str, enc: str, lc: float, mse: float, ce: float) -> ResultRow:
    return ResultRow(
        mode=mode,
        objective="classification",
        rate_bits=4.754887502163468,
        latent_dim=3,
        levels=3,
        lambda_c=lc,
        lambda_p=0.0,
        mse=mse,
        ce=ce,
        accuracy=0.9,
        w1=1.0,
        entropy_bits=4.0,
        stored_bits_per_image=4.76,
        encoder=enc,
        model=f"{mode}-{lc}",
        decoder="mlp",
    )


def test_penalties_on_the_anchor_numbers() -> None:
    rows = [
        _row("end-to-end", "a", 0.0, 0.0456, 1.468),
        _row("end-to-end", "b", 0.0066, 0.0475, 0.279),
        _row("end-to-end", "c", 0.015, 0.0506, 0.176),
        _row("universal", "c", 0.0, 0.0500, 0.217),
        _row("universal", "c", 0.015, 0.0504, 0.167),
    ]
    (p,) = compute_penalties(rows, 4.754887502163468)
    assert p.encoder == "c"
    assert p.endpoint == pytest.approx((0.0500 - 0.0456) / 0.0456)
    # at CE 0.217 the end-to-end curve interpolates to 0.0506 + (0.0475-0.0506)*(0.217-0.176)/(0.279-0.176)
    ref = 0.0506 + (0.0475 - 0.0506) * (0.217 - 0.176) / (0.279 - 0.176)
    assert p.max_gap == pytest.approx((0.0500 - ref) / ref)
    assert p.max_gap_at == pytest.approx(0.217)


def test_plans_cover_the_grids() -> None:
    quick = plan_models(get_profile("quick"))
    kinds = [s.kind for s in quick]
    assert (
        kinds.count("end-to-end") == 3
        and kinds.count("shared") == 1
        and kinds.count("universal") == 6
    )
    ids = [s.model_id for s in quick]
    assert len(ids) == len(set(ids))
    mse_only = next(s for s in quick if s.model_id == "e2e-3x3-c0-p0")
    assert set(mse_only.curves) == {"classification", "perception"}
    prof = get_profile("paper")
    paper = plan_models(prof)
    # 4.755 bits: 4 lambda_c + 3 lambda_p > 0 (lambda_p = 0 is the MSE-only model); 6 and 8 bits:
    # the grids' endpoints, c0 (both curves), c0.015, p0.015
    assert sum(s.kind == "end-to-end" for s in paper) == 7 + 2 * 3
    # the universal rate's models come first, the other rates' perception models last
    first_other = next(i for i, s in enumerate(paper) if s.rate != prof.universal_rate)
    assert all(s.rate != prof.universal_rate for s in paper[first_other:])
    assert [s.objectives[0].lambda_p > 0 for s in paper[-2:]] == [True, True]
    # per-model epochs: encoders 40, universal decoders and W1-trained models 20
    by_id = {s.model_id: s for s in paper}
    enc = by_id["e2e-3x3-c0.015-p0"]
    assert prof.epochs_of(enc.kind, enc.objectives) == 40
    uni = by_id["uni-e2e-3x3-c0.015-p0--c0-p0"]
    assert prof.epochs_of(uni.kind, uni.objectives) == 20
    rdp = by_id["e2e-4x4-c0-p0.015"]
    assert prof.epochs_of(rdp.kind, rdp.objectives) == 20
    # every universal decoder comes after its encoder
    seen: set[str] = set()
    for s in paper:
        if s.kind == "universal":
            assert s.encoder_id in seen
        seen.add(s.model_id)
    with pytest.raises(LossylearnError, match="known profiles"):
        get_profile("huge")


def test_profile_overrides_and_their_errors() -> None:
    from lossylearn.studies.urdc.study import override_profile

    prof = override_profile(
        get_profile("paper"), rates="3x3,4x4", rdc_lambdas="0,0.0066,0.015", rdp_lambdas=""
    )
    assert prof.rates == ((3, 3), (4, 4)) and prof.universal_rate == (3, 3)
    assert prof.rdc_lambdas == (0.0, 0.0066, 0.015) and prof.universal_rdc_encoder == 0.015
    assert prof.rdp_lambdas == () and prof.universal_rdp_lambdas == ()
    assert prof.endpoint_rates == ((4, 4),)
    plan = plan_models(prof)
    # 3 lambda_c at 3x3, the endpoints 0 and 0.015 at 4x4
    assert sum(s.kind == "end-to-end" for s in plan) == 5
    assert {s.model_id for s in plan if s.rate == (4, 4)} == {"e2e-4x4-c0-p0", "e2e-4x4-c0.015-p0"}
    short = override_profile(get_profile("paper"), epochs=10)
    assert (short.epochs, short.decoder_epochs, short.perception_epochs) == (10, 10, 10)
    assert short.augment_shift == 2
    assert override_profile(short, augment_shift=0).augment_shift == 0
    # 3 decoders on the end-to-end encoder, 3 on the shared one
    assert sum(s.kind == "universal" for s in plan) == 6
    rdp_only = override_profile(prof, rdc_lambdas="0", rdp_lambdas="0,0.015")
    kinds = [(s.kind, s.curves) for s in plan_models(rdp_only)]
    assert kinds.count(("universal", ("perception",))) == 2 and ("shared", ()) not in kinds
    with pytest.raises(LossylearnError, match="rates must look like"):
        override_profile(prof, rates="3by3")
    with pytest.raises(LossylearnError, match="comma-separated"):
        override_profile(prof, rdc_lambdas="0,a")


def test_random_shift_is_a_zero_filled_translation() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(40, 1, 28, 28)
    assert random_shift(x, 0, gen) is x
    out = random_shift(x, 2, gen)
    seen = set()
    for img, sh in zip(x[:, 0], out[:, 0], strict=True):
        padded = torch.nn.functional.pad(img, (2, 2, 2, 2))
        # exactly one offset in [-2, 2]^2 reproduces the output: a crop of the zero-padded image
        hits = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(padded[dy : dy + 28, dx : dx + 28], sh)
        ]
        assert len(hits) == 1
        seen.add(hits[0])
    assert len(seen) > 10  # each image draws its own offset
    again = random_shift(x, 2, torch.Generator().manual_seed(3))
    assert torch.equal(again, out)
    with pytest.raises(LossylearnError, match="augment_shift"):
        UrdcTrainConfig(augment_shift=14)


def _translate(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Zero-filled translation by (dy, dx) pixels, as :func:`random_shift` does."""
    h, w = images.shape[-2:]
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    return padded[..., 2 - dy : 2 - dy + h, 2 - dx : 2 - dx + w]


#: The 16 translations by 2 pixels (the augmentation's range) in either direction.
SHIFTS_2PX = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if max(abs(dy), abs(dx)) == 2]
#: Seeds of the shift-augmentation comparison, and the bounds on its seed-averaged ratios. Measured
#: over seeds 0-9 (4 epochs; scratch script in the issue 10 report): the code-displacement ratio
#: (augmented / plain) had mean 0.75, sd 0.07, range 0.66-0.90, and at most 0.82 averaged over any
#: 3 of the 10 seeds; a control whose random_shift draws the same offsets but returns its input
#: (augmentation that does nothing) had mean 0.99, sd 0.09, at least 0.90 over any 3 seeds. The
#: MSE ratio had mean 1.05, sd 0.02, range 1.02-1.09 (6 epochs: up to 1.11 on one seed).
SHIFT_SEEDS = (0, 1, 2)
MAX_CODE_DISPLACEMENT_RATIO = 0.875
MAX_MSE_RATIO = 1.15


def test_shift_augmented_encoder_codes_shifted_digits_alike(digits) -> None:
    """With augment_shift the encoder's code moves less when a test digit is shifted by 2 pixels,
    and the decoder still reconstructs the unshifted digits (the losses target them).

    One training run is at the mercy of floating point (another processor gives another run), so
    both claims are averaged over SHIFT_SEEDS with bounds measured over ten seeds (see above).
    """
    x, y, xt, _ = digits
    q = DitheredQuantizer(3, 3)
    u = q.dither_for(0, np.arange(xt.shape[0]))
    others = torch.randperm(xt.shape[0], generator=torch.Generator().manual_seed(123))
    mean_image_mse = mean_squared_error(x.mean(0, keepdim=True).expand_as(xt), xt)
    displacement_ratios, mse_ratios = [], []
    for seed in SHIFT_SEEDS:
        displacement, mse = {}, {}
        for shift in (0, 2):
            with seeded(seed):
                enc, dec = Encoder(3), build_decoder(NetConfig(decoder="mlp"))
            cfg = UrdcTrainConfig(epochs=4, batch_size=32, augment_shift=shift)
            train_codec(
                enc,
                [Head(dec, Objective())],
                q,
                x,
                y,
                classifier=None,
                config=cfg,
                train_encoder=True,
                seed=seed,
            )
            with torch.no_grad():
                code = enc(xt)
                # How far the code moves under a 2-pixel shift, relative to how far apart the
                # codes of two different digits are (so that shrinking every code does not count).
                moved = np.mean(
                    [
                        float((enc(_translate(xt, dy, dx)) - code).norm(dim=1).mean())
                        for dy, dx in SHIFTS_2PX
                    ]
                )
                spread = float((code - code[others]).norm(dim=1).mean())
                displacement[shift] = moved / spread
                mse[shift] = mean_squared_error(dec(q.dequantize(q.indices(code, u), u)), xt)
        assert mse[2] < mean_image_mse  # still a codec, not the mean image
        displacement_ratios.append(displacement[2] / displacement[0])
        mse_ratios.append(mse[2] / mse[0])
    assert np.mean(displacement_ratios) < MAX_CODE_DISPLACEMENT_RATIO, displacement_ratios
    assert np.mean(mse_ratios) < MAX_MSE_RATIO, mse_ratios


def test_anchor_comparison_matches_points_by_mode_rate_and_lambda() -> None:
    from lossylearn.studies.urdc.report import anchor_comparison

    rows = [
        _row("end-to-end", "e2e-3x3-c0-p0", 0.0, 0.0470, 1.7),
        _row("end-to-end", "e2e-3x3-c0.015-p0", 0.015, 0.0530, 0.22),
        _row("universal", "e2e-3x3-c0.015-p0", 0.0, 0.0520, 0.30),
        _row("universal", "shared-3x3", 0.0, 0.0490, 0.40),  # not the anchor protocol's encoder
    ]
    table = anchor_comparison(rows)
    assert [(t[0], t[2], t[3], t[4]) for t in table] == [
        ("end-to-end classification", "lambda_c = 0", 0.0456, 0.0470),
        ("end-to-end classification", "lambda_c = 0.015", 0.0506, 0.0530),
        ("universal classification", "lambda_c = 0", 0.0500, 0.0520),
    ]
    assert table[1][5:7] == ["CE 0.176", "CE 0.220"]
