"""What diffusion and flow-matching models share: a time-conditioned net (a U-Net for images,
an MLP for points, :func:`genmodels.nets.denoiser`) trained by regression on noised data, and
sampling by one loop over a scheduler (:func:`genmodels.schedulers.denoise`) from noise.

A subclass says how a training pair is made (:meth:`DenoisingModel.regression`) and which
scheduler samples (:meth:`DenoisingModel.scheduler`); the Trainer, checkpoints, EMA, the
evaluation and the figures are the same for both. Images live in [-1, 1] (the ``symmetric``
view) while training; :meth:`DenoisingModel.sample` returns them in [0, 1] like every other model.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from genmodels.checks import ConfigError, check_choice, check_ranges, check_widths
from genmodels.models.base import Batch, IterativeSampler, Losses, Model
from genmodels.nets import denoiser
from genmodels.schedulers import Scheduler, denoise

if TYPE_CHECKING:
    from genmodels.config import Config

EVAL_SEED = 0  # the held-out loss draws its times and noise from this seed: comparable runs


@dataclass
class DenoisingConfig:
    """The net, shared by both kinds (see :func:`genmodels.nets.denoiser`)."""

    net: str = "unet"  # unet (images; sides multiples of 2^(len(channels) - 1)) | mlp (points)
    channels: list[int] = field(default_factory=lambda: [32, 64, 64])  # unet stage widths
    attention: bool = True  # unet: self-attention at the lowest resolution
    hidden: list[int] = field(default_factory=lambda: [256, 256])  # mlp widths
    time_dim: int = 128  # width of the sinusoidal time embedding
    sample_steps: int = 50  # sampler steps of sample() and the figures (--steps overrides)

    def __post_init__(self) -> None:
        check_choice(self, "model", "net", ("unet", "mlp"))
        check_ranges(self, "model", positive=("time_dim", "sample_steps"))
        check_widths(self, "model", "channels", "hidden")


class DenoisingModel(Model, IterativeSampler):
    """Base of the ``diffusion`` and ``flow_matching`` kinds (not registered itself)."""

    Config = DenoisingConfig
    point_nets = ("mlp",)
    metric_units = {"loss": "squared error per element"}

    def __init__(self, config: DenoisingConfig, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(config, input_shape)
        c = config
        self.default_steps = c.sample_steps
        try:
            self.net = denoiser(c.net, self.input_shape, c.channels, c.hidden, c.attention,
                                c.time_dim)
        except ValueError as err:  # a size the U-Net cannot take, or the wrong net for the data
            raise ConfigError(str(err)) from None
        if c.net not in self.point_nets:
            self.sample_batch_size = 64  # 1.6-1.8x the images/s of batch 256 on 2 CPU cores

    def validate(self, config: Config) -> None:
        """Images train in [-1, 1]: the ``symmetric`` view."""
        if self.config.net == "unet" and config.data.view != "symmetric":
            raise ConfigError(f"data.view = {config.data.view!r}: a {self.kind} model trains on "
                              "images in [-1, 1]; set data.view=symmetric")

    # --- what a subclass defines ----------------------------------------------------------
    @abstractmethod
    def regression(self, x: Tensor, generator: torch.Generator | None = None
                   ) -> tuple[Tensor, Tensor, Tensor]:
        """(net input x_t, net time t (N,) in [0, 1], regression target) for data x."""

    @abstractmethod
    def scheduler(self) -> Scheduler:
        """A fresh scheduler of this model's sampler (``set_timesteps`` not yet called)."""

    # --- training and evaluation ----------------------------------------------------------
    def loss(self, batch: Batch, generator: torch.Generator | None = None) -> Losses:
        """Mean squared error of the net's prediction, per element."""
        x_t, t, target = self.regression(batch[0], generator)
        return {"loss": F.mse_loss(self.net(x_t, t), target)}

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Batch]) -> dict[str, float]:
        """The held-out loss, its times and noise drawn from a generator seeded with
        ``EVAL_SEED``, so that evaluations of a run (and of two runs) compare."""
        generator: torch.Generator | None = None
        total, count = 0.0, 0
        for batch in batches:
            if generator is None:
                generator = torch.Generator(batch[0].device).manual_seed(EVAL_SEED)
            total += float(self.loss(batch, generator)["loss"]) * len(batch[0])
            count += len(batch[0])
        return {"loss": total / max(count, 1)}

    # --- sampling -------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               steps: int | None = None) -> Tensor:
        """(n, C, H, W) images in [0, 1], or (n, d) points, after ``steps`` sampler steps
        (default ``model.sample_steps``) from N(0, I) noise."""
        scheduler = self.scheduler()
        scheduler.set_timesteps(self.default_steps if steps is None else steps)
        device = next(self.parameters()).device
        x = scheduler.init_noise((n, *self.input_shape), generator, device)
        if x.dim() == 4:  # NHWC for oneDNN's convolutions: the same values, up to 1.1x faster
            x = x.contiguous(memory_format=torch.channels_last)
        x = denoise(self.net, scheduler, x, generator)
        return x if self.config.net == "mlp" else (x.clamp(-1, 1) + 1) / 2

    def summary_pass(self, x: Tensor) -> Tensor:
        return self.net(x, torch.full((len(x),), 0.5, device=x.device))

    def sampler_label(self, steps: int | None = None) -> str:
        """``heun, 25 steps``: the scheduler (or flow solver) and the steps of :meth:`sample`."""
        return f"{self.scheduler().label}, {super().sampler_label(steps)}"

    def figures(self, folder: Path, step: int, batch: Batch) -> list[Path]:
        from genmodels.plots import save_image_grid, scatter_points

        generator = torch.Generator(next(self.parameters()).device).manual_seed(0)
        path, how = folder / f"samples_{step:07d}.png", self.sampler_label()
        if self.config.net == "mlp":
            return [scatter_points(self.sample(2500, generator), path, batch[0],
                                   title=f"2500 samples of {self.kind} at step {step} ({how}) "
                                         "over held-out data")]
        return [save_image_grid(self.sample(64, generator), path,
                                title=f"64 samples of {self.kind} at step {step} ({how})")]
