"""One network for a whole lambda ladder: gain units (Cui et al., CVPR 2021), folded into rungs.

A :class:`GainedModel` shares the analysis and synthesis transforms (and, for the hyperprior, the
hyper transforms) between all the lambdas of a ladder. Rung ``i`` multiplies the latents by a
learned per-channel gain ``g_i`` before quantization and by a learned inverse gain ``h_i`` before
synthesis, and has its own entropy bottleneck (a density fitted to its own latents)::

    y = g_a(x) * g_i        y_hat = round(y)        x_hat = g_s(y_hat * h_i)

Every training batch holds the same number of images for each lambda, so one run of the shared
networks trains the whole ladder at the cost of one model.

:meth:`GainedModel.fold` turns rung ``i`` into a plain :class:`FactorizedPrior` /
:class:`ScaleHyperprior`: ``g_i`` scales the output channels (weights and bias) of the last
analysis convolution and ``h_i`` the input channels of the first synthesis convolution, both
exact because convolutions are linear. The checkpoint therefore holds ordinary rungs: the format,
the entropy coding and the decoders are those of separately trained models.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, replace

import numpy as np
import torch
from torch import Tensor, nn

from lossylearn.codecs.learned.checkpoint import Rung
from lossylearn.codecs.learned.coding import EntropyParameters
from lossylearn.codecs.learned.entropy_bottleneck import EntropyBottleneck
from lossylearn.codecs.learned.models import (
    FactorizedPrior,
    ModelConfig,
    ModelOutput,
    ScaleHyperprior,
    build_codec_model,
    crop,
    pad_to_multiple,
)
from lossylearn.codecs.learned.train import (
    CodecTrainConfig,
    _check_images,
    measure,
    progress_bar,
    training_distortion,
)
from lossylearn.errors import CodecError
from lossylearn.learn.devices import resolve_device, seeded, torch_threads

__all__ = ["GainedModel", "train_joint"]

_LR_FLOOR = 0.05
"""The cosine learning-rate schedule ends at this fraction of the peak."""


class GainedModel(nn.Module):
    """A codec model with one gain pair and one entropy bottleneck per lambda of a ladder."""

    def __init__(self, config: ModelConfig, lmbdas: Sequence[float]) -> None:
        super().__init__()
        if not lmbdas:
            raise CodecError("a variable-rate model needs at least one lambda")
        self.config = config
        self.lmbdas = tuple(float(v) for v in lmbdas)
        self.base = build_codec_model(config)
        eb_channels = self.base.entropy_bottleneck.channels
        self.bottlenecks = nn.ModuleList(
            [self.base.entropy_bottleneck]
            + [
                EntropyBottleneck(
                    eb_channels, filters=config.eb_filters, tail_mass=config.tail_mass
                )
                for _ in self.lmbdas[1:]
            ]
        )
        # Quantization step ~ 1 / sqrt(lambda) for MSE: start the gains there, around 1.
        mid = sum(math.log(v) for v in self.lmbdas) / len(self.lmbdas)
        start = torch.tensor([0.5 * (math.log(v) - mid) for v in self.lmbdas])
        c = config.latent_channels
        self.log_gain = nn.Parameter(start[:, None].repeat(1, c))
        self.log_inv_gain = nn.Parameter(-start[:, None].repeat(1, c))

    @property
    def levels(self) -> int:
        return len(self.lmbdas)

    def quantile_parameters(self) -> list[nn.Parameter]:
        return [eb.quantiles for eb in self.bottlenecks]

    def aux_loss(self) -> Tensor:
        return sum((eb.aux_loss() for eb in self.bottlenecks), torch.zeros(()))

    def forward(
        self, x: Tensor, groups: Sequence[int], *, generator: torch.Generator | None = None
    ) -> list[ModelOutput]:
        """``x`` holds ``groups[i]`` images for lambda ``i``, in order; one output per lambda."""
        if len(groups) != self.levels or sum(groups) != x.shape[0]:
            raise CodecError("groups must give the number of images of every lambda")
        h, w = x.shape[-2:]
        level = torch.repeat_interleave(
            torch.arange(self.levels, device=x.device),
            torch.tensor(list(groups), device=x.device),
        )
        gain = torch.exp(self.log_gain)[level][:, :, None, None]
        inv_gain = torch.exp(self.log_inv_gain)[level][:, :, None, None]
        y = self.base.g_a(pad_to_multiple(x, self.config.stride)) * gain
        parts = list(torch.split(y, list(groups)))
        liks: list[dict[str, Tensor]] = []
        if isinstance(self.base, ScaleHyperprior):
            z_parts = torch.split(self.base.h_a(torch.abs(y)), list(groups))
            z_hat, z_lik = [], []
            for eb, z in zip(self.bottlenecks, z_parts, strict=True):
                zh, zl = eb(z, generator=generator)
                z_hat.append(zh)
                z_lik.append(zl)
            scales = self.base.h_s(torch.cat(z_hat))
            y_hat, y_lik = self.base.gaussian_conditional(y, scales, generator=generator)
            for yl, zl in zip(torch.split(y_lik, list(groups)), z_lik, strict=True):
                liks.append({"y": yl, "z": zl})
        else:
            hats = []
            for eb, part in zip(self.bottlenecks, parts, strict=True):
                yh, yl = eb(part, generator=generator)
                hats.append(yh)
                liks.append({"y": yl})
            y_hat = torch.cat(hats)
        x_hat = crop(self.base.g_s(y_hat * inv_gain), h, w)
        return [
            ModelOutput(xh, lk)
            for xh, lk in zip(torch.split(x_hat, list(groups)), liks, strict=True)
        ]

    @torch.no_grad()
    def fold(self, level: int) -> FactorizedPrior | ScaleHyperprior:
        """Rung ``level`` as an ordinary model (gains folded into the outer convolutions)."""
        model = build_codec_model(self.config)
        state = {k: v.detach().clone() for k, v in self.base.state_dict().items()}
        for k, v in self.bottlenecks[level].state_dict().items():
            state[f"entropy_bottleneck.{k}"] = v.detach().clone()
        gain = torch.exp(self.log_gain[level]).to(torch.float64)
        inv_gain = torch.exp(self.log_inv_gain[level]).to(torch.float64)
        last = f"g_a.{len(self.base.g_a) - 1}"
        w = state[f"{last}.weight"].double() * gain[:, None, None, None]
        state[f"{last}.weight"] = w.to(state[f"{last}.weight"].dtype)
        state[f"{last}.bias"] = (state[f"{last}.bias"].double() * gain).to(
            state[f"{last}.bias"].dtype
        )
        # ConvTranspose2d weights are (in, out, k, k): the inverse gain scales the inputs.
        first = state["g_s.0.weight"]
        state["g_s.0.weight"] = (first.double() * inv_gain[:, None, None, None]).to(first.dtype)
        model.load_state_dict(state)
        return model.eval()


def train_joint(
    images: np.ndarray,
    model_config: ModelConfig,
    lmbdas: Sequence[float],
    config: CodecTrainConfig,
    *,
    validation: np.ndarray | None = None,
) -> list[Rung]:
    """Train one :class:`GainedModel` for all ``lmbdas`` and fold it into one rung per lambda.

    Each step takes ``config.batch_size`` images per lambda; ``config.epochs`` passes over the
    images (per lambda) set the number of steps. The learning rate follows a cosine from
    ``config.lr`` down to ``config.lr / 20``. The quantiles are fitted by the
    aux loss while training and solved exactly at the end (then the integer tables are built).
    """
    with torch_threads(config.threads):
        return _train_joint(images, model_config, lmbdas, config, validation)


def _train_joint(
    images: np.ndarray,
    model_config: ModelConfig,
    lmbdas: Sequence[float],
    config: CodecTrainConfig,
    validation: np.ndarray | None,
) -> list[Rung]:
    images = _check_images(images, model_config)
    lams = sorted(float(v) for v in lmbdas)
    if not lams or not all(v > 0 and math.isfinite(v) for v in lams):
        raise CodecError(f"lambdas must be positive numbers, got {list(lmbdas)}")
    if len(set(lams)) != len(lams):
        raise CodecError(f"lambdas must differ, got {lams}")
    dev = resolve_device(config.device)
    with seeded(config.seed):
        model = GainedModel(model_config, lams)
    model.to(dev).train()
    quantiles = {id(p) for p in model.quantile_parameters()}
    main = [p for p in model.parameters() if id(p) not in quantiles]
    opt = torch.optim.Adam(main, lr=config.lr)
    aux_opt = torch.optim.Adam(model.quantile_parameters(), lr=config.aux_lr)
    data = torch.from_numpy(np.ascontiguousarray(images)).to(dev)
    n, per = data.shape[0], config.batch_size
    pixels = images.shape[1] * images.shape[2]
    total = config.epochs * math.ceil(n / per)
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    rng = np.random.default_rng([config.seed, len(lams)])
    gen = torch.Generator(device=dev).manual_seed(config.seed)
    weights = torch.tensor(lams, device=dev)
    history: list[dict[str, float]] = []
    sums, count, order, pos = np.zeros(2 + 2 * len(lams)), 0, rng.permutation(n), 0
    start = time.perf_counter()
    progress = progress_bar(config.progress, f"train {len(lams)} lambdas jointly", total)
    with progress as (bar, task):
        for step in range(total):
            cosine = 0.5 * (1.0 + math.cos(math.pi * step / total))
            lr = config.lr * (_LR_FLOOR + (1.0 - _LR_FLOOR) * cosine)
            for g in opt.param_groups:
                g["lr"] = lr
            take = []
            for _ in lams:  # each lambda sees its own images; reshuffle when a pass ends
                if pos + per > n:
                    order, pos = rng.permutation(n), 0
                take.append(order[pos : pos + min(per, n)])
                pos += min(per, n)
            idx = torch.from_numpy(np.concatenate(take)).to(dev)
            x = data[idx].permute(0, 3, 1, 2).float() / 255.0
            sizes = [len(t) for t in take]
            outs = model(x, sizes, generator=gen)
            bpp = torch.stack([o.bits().mean() / pixels for o in outs])
            dist = torch.stack(
                [
                    training_distortion(o.x_hat, xi, config.distortion)
                    for o, xi in zip(outs, torch.split(x, sizes), strict=True)
                ]
            )
            loss = (weights * dist + bpp).mean()
            opt.zero_grad()
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(main, config.grad_clip)
            opt.step()
            aux = model.aux_loss()
            aux_opt.zero_grad()
            aux.backward()
            aux_opt.step()
            sums += [loss.item(), aux.item(), *bpp.tolist(), *dist.tolist()]
            count += 1
            if count * per >= n or step == total - 1:  # one record per pass over the images
                m = sums / count
                history.append(
                    {"epoch": len(history) + 1, "steps": count, "loss": float(m[0]),
                     "aux_loss": float(m[1]), "bpp": [float(v) for v in m[2 : 2 + len(lams)]],
                     config.distortion: [float(v) for v in m[2 + len(lams) :]],
                     "seconds": time.perf_counter() - start}
                )  # fmt: skip
                sums, count = np.zeros_like(sums), 0
            bar.update(task, advance=1, status=f"loss {loss.item():.3f}")
    model.cpu().eval()
    seconds = time.perf_counter() - start
    rungs = []
    for i, lam in enumerate(lams):
        folded = model.fold(i)
        aux_final = folded.entropy_bottleneck.solve_quantiles()
        info = {
            "train": {
                **asdict(replace(config, progress=False)), "recipe": "joint", "lmbdas": lams,
                "level": i, "steps": total, "images": int(n), "device": str(dev),
                "threads": torch.get_num_threads(), "seconds": seconds,
                "aux_loss_final": aux_final, "epochs_run": config.epochs,
            },
            "history": [
                {**h, "bpp": h["bpp"][i], config.distortion: h[config.distortion][i]}
                for h in history
            ],
        }  # fmt: skip
        rung = Rung(lam, folded, EntropyParameters.build(folded), info)
        if validation is not None:
            rung.info["validation"] = asdict(measure(rung, validation))
        rungs.append(rung)
    return rungs
