"""Learned codec building blocks: GDN, entropy models, integer tables, integer hyper-synthesis."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import ndtr

from lossylearn.codecs.learned.entropy_bottleneck import EntropyBottleneck
from lossylearn.codecs.learned.gaussian_conditional import (
    GaussianConditional,
    scale_indexes,
    scale_table,
)
from lossylearn.codecs.learned.gdn import GDN, IGDN, NonNegative, lower_bound
from lossylearn.codecs.learned.integer_hyper import IntegerHyperSynthesis, log_midpoints
from lossylearn.codecs.learned.models import (
    ModelConfig,
    build_codec_model,
    pad_to_multiple,
    preset_config,
)
from lossylearn.codecs.learned.tables import quantize_pmf
from lossylearn.errors import CodecError


def _set_gdn(gdn: GDN, beta: torch.Tensor, gamma: torch.Tensor) -> None:
    with torch.no_grad():
        gdn.beta.copy_(gdn.beta_reparam.init(beta))
        gdn.gamma.copy_(gdn.gamma_reparam.init(gamma))


def test_gdn_and_igdn_match_their_closed_forms() -> None:
    beta = torch.tensor([1.0, 0.5])
    gamma = torch.tensor([[0.2, 0.1], [0.05, 0.3]])
    x = torch.tensor([[1.5, -2.0]]).view(1, 2, 1, 1)
    norm = beta + gamma @ (x.view(2) ** 2)
    gdn, igdn = GDN(2), IGDN(2)
    _set_gdn(gdn, beta, gamma)
    _set_gdn(igdn, beta, gamma)
    assert torch.allclose(gdn(x).view(2), x.view(2) / torch.sqrt(norm), atol=1e-6)
    assert torch.allclose(igdn(x).view(2), x.view(2) * torch.sqrt(norm), atol=1e-6)


def test_nonnegative_reparametrization_and_lower_bound_gradient() -> None:
    nn_ = NonNegative(minimum=1e-6)
    value = torch.tensor([0.0, 0.3, 2.0])
    assert torch.allclose(nn_(nn_.init(value)), value.clamp(min=1e-6), atol=1e-6)
    x = torch.tensor([0.0, 2.0], requires_grad=True)
    # d/dx of -max(x, 1): at x=0 (below the bound) the gradient -1 pushes x up, so it passes
    (-lower_bound(x, 1.0)).sum().backward()
    assert x.grad is not None and x.grad.tolist() == [-1.0, -1.0]
    y = torch.tensor([0.0], requires_grad=True)
    lower_bound(y, 1.0).sum().backward()  # gradient +1 would push y further down: blocked
    assert y.grad is not None and y.grad.tolist() == [0.0]


def test_entropy_bottleneck_bins_sum_to_one_and_quantiles_fit() -> None:
    torch.manual_seed(0)
    eb = EntropyBottleneck(3).double()
    values = torch.arange(-2000, 2001, dtype=torch.float64).view(1, 1, -1, 1).repeat(1, 3, 1, 1)
    total = eb.likelihood(values).sum(dim=2).view(-1)
    assert torch.allclose(total, torch.ones(3, dtype=torch.float64), atol=1e-9)
    # a few Adam steps on the aux loss move the quantiles towards the fit ...
    opt = torch.optim.Adam([eb.quantiles], lr=0.05)
    before = eb.aux_loss().item()
    for _ in range(50):
        opt.zero_grad()
        eb.aux_loss().backward()
        opt.step()
    assert eb.aux_loss().item() < before
    # ... and bisection solves them exactly
    assert eb.solve_quantiles() < 1e-6
    # the lower quantile has F = tail/2, the median F = 1/2
    logits = eb._logits_cumulative(eb.quantiles.detach())
    assert torch.allclose(logits[:, 0, 1], torch.zeros(3, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(logits[:, 0, 0], -eb.quantile_targets[2].expand(3), atol=1e-9)
    tables, medians = eb.build_tables()
    assert tables.num_tables == 3 and medians.dtype == np.float32
    for t in range(3):
        n = int(tables.lengths[t])
        assert tables.freqs[t, : n + 1].sum() == 2**16 and tables.freqs[t, : n + 1].min() >= 1
        assert np.all(tables.freqs[t, n + 1 :] == 0)


def test_gaussian_conditional_likelihood_and_tables_are_the_gaussian_bins() -> None:
    gc = GaussianConditional()
    y = torch.tensor([0.0, 1.0, -3.0, 7.0], dtype=torch.float64)
    s = torch.tensor([0.5, 2.0, 1.0, 4.0], dtype=torch.float64)
    want = ndtr((y.abs().numpy() + 0.5) / s.numpy()) - ndtr((y.abs().numpy() - 0.5) / s.numpy())
    want = np.where(y.numpy() == 0, ndtr(0.5 / s.numpy()) - ndtr(-0.5 / s.numpy()), want)
    assert np.allclose(gc.likelihood(y, s).numpy(), want, rtol=1e-9)
    table = scale_table()
    assert table.size == 64 and math.isclose(table[0], 0.11) and math.isclose(table[-1], 256.0)
    tables = gc.build_tables(table[:8])
    for t, sc in enumerate(table[:8]):
        p = tables.probabilities(t)[:-1]
        k = -int(tables.offsets[t])
        exact = ndtr((np.arange(-k, k + 1) + 0.5) / sc) - ndtr((np.arange(-k, k + 1) - 0.5) / sc)
        assert np.max(np.abs(p - exact)) <= (p.size + 1) / 2.0**16  # min-1 frequencies
    # the index is the smallest table scale >= the scale
    idx = scale_indexes(np.array([0.01, table[3], table[3] * 1.01, 1e6]), table)
    assert idx.tolist() == [0, 3, 4, 63]


def test_quantize_pmf_is_exact_positive_and_proportional() -> None:
    pmf = np.array([0.5, 0.3, 0.2 - 1e-9, 0.0])
    freqs = quantize_pmf(pmf, 1e-9, precision=16)
    assert freqs.sum() == 2**16 and freqs.min() >= 1 and freqs.size == 5
    assert np.allclose(freqs[:3] / 2**16, pmf[:3], atol=3 / 2**16)
    assert np.array_equal(freqs, quantize_pmf(pmf, 1e-9, precision=16))
    with pytest.raises(ValueError):
        quantize_pmf(np.array([-0.1, 1.1]), 0.0)


def test_integer_hyper_synthesis_tracks_float_and_is_exact_integer() -> None:
    torch.manual_seed(3)
    model = build_codec_model(preset_config("mnist", "hyperprior"))
    z = torch.randint(-6, 7, (4, 24, 4, 4)).double()
    ref = model.h_s.double()(z).detach().numpy()
    ih = IntegerHyperSynthesis.from_sequential(model.h_s)
    one = 1 << ih.frac_bits
    out = ih((z.numpy() * one).astype(np.int64))
    assert out.dtype == np.int64
    assert np.max(np.abs(out / one - ref)) < 2e-3
    # the same integer input always gives the same output, and single images equal the batch
    assert np.array_equal(out[1:2], ih((z[1:2].numpy() * one).astype(np.int64)))
    mids = log_midpoints(scale_table())
    assert mids.size == 63 and np.all(np.diff(mids) > 0)


@pytest.mark.parametrize("arch", ["factorized", "hyperprior"])
@pytest.mark.parametrize("hw", [(28, 28), (30, 27), (5, 3)])
def test_models_pad_and_crop_any_size(arch: str, hw: tuple[int, int]) -> None:
    cfg = ModelConfig(arch, 1, 8, 4, 2, hyper_channels=4 if arch == "hyperprior" else 0,
                      hyper_downsamples=1 if arch == "hyperprior" else 0)  # fmt: skip
    torch.manual_seed(0)
    model = build_codec_model(cfg).eval()
    x = torch.rand(2, 1, *hw)
    out = model(x)
    assert out.x_hat.shape == x.shape
    assert torch.all(out.bits() > 0)
    padded = pad_to_multiple(x, cfg.stride)
    assert padded.shape[-2] % cfg.stride == 0 and padded.shape[-1] % cfg.stride == 0
    assert torch.equal(padded[..., : hw[0], : hw[1]], x)
    assert torch.equal(padded[..., -1, : hw[1]], x[..., -1, :])  # edge rows repeated


def test_presets_and_config_validation() -> None:
    rgb = preset_config("rgb64", "hyperprior")
    assert rgb.in_channels == 3 and rgb.stride == 64
    model = build_codec_model(rgb).eval()
    out = model(torch.rand(1, 3, 64, 64))
    assert out.x_hat.shape == (1, 3, 64, 64) and set(out.likelihoods) == {"y", "z"}
    assert preset_config("mnist").stride == 4 and preset_config("mnist", "hyperprior").stride == 8
    assert ModelConfig.from_dict(rgb.to_dict()) == rgb
    with pytest.raises(CodecError, match="unknown architecture"):
        ModelConfig("autoregressive", 1, 8, 8, 2)
    with pytest.raises(CodecError, match="unknown keys"):
        ModelConfig.from_dict({**rgb.to_dict(), "attention": True})
    with pytest.raises(CodecError, match="unknown model preset"):
        preset_config("kodak")
