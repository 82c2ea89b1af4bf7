"""Issue 14's urdc additions: the perception grid, the curriculum-trained shared encoder, the
channels-last critic and the training critic's W1 (the anchor's protocol)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from lossylearn.errors import LossylearnError
from lossylearn.learn import seeded, torch_threads
from lossylearn.studies.urdc.metrics import critic_gap
from lossylearn.studies.urdc.models import Critic
from lossylearn.studies.urdc.profiles import get_profile, override_profile, plan_models
from lossylearn.studies.urdc.ray_points import train_points
from lossylearn.studies.urdc.study import run_study


@pytest.fixture(autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


@pytest.mark.parametrize("seed,batch", [(0, 2), (1, 5), (77, 9), (4096, 3)])
def test_channels_last_critic_is_the_same_function(seed: int, batch: int) -> None:
    """NHWC memory changes neither the critic's values, its gradient-penalty gradient, nor its
    weights' format on disk: each layout loads the other's state dict."""
    with seeded(seed):
        nchw = Critic()
    nhwc = Critic(channels_last=True)
    nhwc.load_state_dict(nchw.state_dict())
    x = torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    grads = []
    for critic in (nchw, nhwc):
        xi = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(critic(xi).sum(), xi)
        grads.append(g)
    assert torch.allclose(nchw(x), nhwc(x), rtol=1e-4, atol=1e-5)
    assert torch.allclose(grads[0], grads[1], rtol=1e-3, atol=1e-6)
    back = Critic()
    back.load_state_dict(nhwc.state_dict())
    assert torch.allclose(back(x), nchw(x), rtol=1e-4, atol=1e-5)
    # the anchor's W1 of a critic: zero on identical sets, antisymmetric in its arguments
    y = torch.rand_like(x)
    assert critic_gap(nhwc, x, x) == pytest.approx(0.0, abs=1e-6)
    assert critic_gap(nhwc, x, y) == pytest.approx(-critic_gap(nhwc, y, x), abs=1e-5)


def test_paper_profile_has_the_perception_grid_and_the_curriculum() -> None:
    prof = get_profile("paper")
    plan = plan_models(prof)
    at_rate = [s for s in plan if s.rate == prof.universal_rate and "perception" in s.curves]
    lambdas = {
        mode: {s.objectives[0].lambda_p for s in at_rate if (s.kind == "universal") == uni}
        for mode, uni in (("end-to-end", False), ("universal", True))
    }
    assert len(lambdas["end-to-end"]) >= 4 and lambdas["universal"] == lambdas["end-to-end"]
    # a fresh W1 critic only for the perception curves' decoders
    assert not prof.w1_all_decoders
    # from scratch (the paper's default), the shared encoder trains as long as the others
    shared = next(s for s in plan if s.kind == "shared")
    assert shared.warm_start is None and prof.epochs_of("shared", shared.objectives) == prof.epochs
    # the curriculum: three heads, starting from the MSE-only encoder, trained before it
    warm = override_profile(prof, shared_heads="0.05,0,0.015", shared_warm_start=True)
    plan = plan_models(warm)
    order = [s.model_id for s in plan]
    shared = next(s for s in plan if s.kind == "shared")
    assert [o.lambda_c for o in shared.objectives] == [0.0, 0.015, 0.05]
    assert shared.warm_start == "e2e-3x3-c0-p0" and shared.model_id.endswith("-warm")
    assert order.index(shared.warm_start) < order.index(shared.model_id)
    assert warm.epochs_of(shared.kind, shared.objectives) == warm.shared_epochs
    with pytest.raises(LossylearnError, match="at least two heads"):
        override_profile(prof, shared_heads="0.015")
    # a classification grid without lambda_c = 0 has no MSE-only model to start from
    assert not override_profile(warm, rdc_lambdas="0.0066,0.015").shared_warm_start
    with pytest.raises(LossylearnError, match="MSE-only"):
        replace(warm, rdc_lambdas=(0.0066, 0.015), universal_rdc_lambdas=(0.0066, 0.015))
    with pytest.raises(LossylearnError, match="at least 1"):
        replace(prof, shared_epochs=0)


class _RecordingSweep:
    """Records what the Ray engine would be asked to run (no Ray, no training)."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple[list[str], list[str]]] = {}

    def submit(self, key: str, fn: Any, *args: Any, after: Any = ()) -> Any:
        chain = [s.model_id for s in args[-1]]
        self.calls[key] = (chain, [p.key for p in after])
        return _Point(key)


class _Point:
    def __init__(self, key: str) -> None:
        self.key = key

    def get(self) -> str:
        return self.key


def test_ray_points_carry_every_model_a_point_depends_on(tmp_path: Path) -> None:
    prof = override_profile(get_profile("paper"), shared_warm_start=True)
    sweep = _RecordingSweep()
    assert train_points(sweep, plan_models(prof), prof, tmp_path, None, 0, "cpu", 1) == []
    shared = next(s for s in plan_models(prof) if s.kind == "shared")
    chain, after = sweep.calls[shared.model_id]
    assert chain == ["e2e-3x3-c0-p0", shared.model_id] and after == ["e2e-3x3-c0-p0"]
    # a universal decoder of the shared encoder: the MSE encoder, the shared one, then itself
    uni = next(k for k in sweep.calls if k.startswith(f"uni-{shared.model_id}--"))
    chain, after = sweep.calls[uni]
    assert chain == ["e2e-3x3-c0-p0", shared.model_id, uni] and after == [shared.model_id]
    for key, (chain, _) in sweep.calls.items():
        assert chain[-1] == key and len(set(chain)) == len(chain)


def test_warm_started_shared_encoder_runs_and_records_its_start(tmp_path: Path) -> None:
    prof = replace(
        override_profile(get_profile("quick"), epochs=1, limit=60, rdp_lambdas=""),
        shared_warm_start=True,
        w1_all_decoders=False,
    )
    result = run_study(prof, out=tmp_path, threads=1, progress=False, write_report=False)
    sid = "shared-3x3-c0-p0+c0.015-p0-warm"
    cfg = json.loads((tmp_path / "models" / sid / "config.json").read_text())
    assert cfg["warm_start"] == "e2e-3x3-c0-p0"
    start = torch.load(tmp_path / "models" / "e2e-3x3-c0-p0" / "encoder.pt", weights_only=True)
    tuned = torch.load(tmp_path / "models" / sid / "encoder.pt", weights_only=True)
    assert any(not torch.equal(start[k], tuned[k]) for k in start)  # trained on, not copied
    assert {h["encoder"] for h in result.shared_heads} == {sid}
    uni = [r for r in result.rows if r.encoder == sid]
    assert uni and all(r.objective == "classification" for r in uni)
    # no perception curve: no fresh W1 anywhere, and no training critic
    assert all(r.w1 is None and r.w1_training_critic is None for r in result.rows)
