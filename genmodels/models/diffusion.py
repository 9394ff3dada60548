"""Denoising diffusion (DDPM, Ho et al. 2020) with ε- or v-prediction (Salimans & Ho 2022),
linear or cosine (Nichol & Dhariwal 2021) noise schedules, sampled by the ancestral DDPM
sampler or by DDIM (Song et al. 2021) with any number of steps and η."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from genmodels.checks import ConfigError, check_choice, check_ranges
from genmodels.models.base import register
from genmodels.models.denoising import DenoisingConfig, DenoisingModel
from genmodels.schedulers import DDIMScheduler, DDPMScheduler, NoiseSchedule, Scheduler


@dataclass
class DiffusionConfig(DenoisingConfig):
    schedule: str = "cosine"  # linear | cosine
    timesteps: int = 1000  # T of the training chain
    prediction: str = "epsilon"  # epsilon | v_prediction: what the net regresses
    sampler: str = "ddim"  # ddpm (ancestral) | ddim
    eta: float = 0.0  # DDIM's η: 0 deterministic, 1 DDPM-like noise

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self, "model", "schedule", ("linear", "cosine"))
        check_choice(self, "model", "prediction", ("epsilon", "v_prediction"))
        check_choice(self, "model", "sampler", ("ddpm", "ddim"))
        check_ranges(self, "model", positive=("timesteps",))
        if not 0 <= self.eta <= 1:
            raise ConfigError(f"model.eta = {self.eta!r} should be in [0, 1] (0: deterministic "
                              "DDIM, 1: as much noise as DDPM)")


@register
class Diffusion(DenoisingModel):
    """DDPM training: x_t = √ᾱ_t x + √(1 − ᾱ_t) ε at a uniform t in 0..T−1, the net regresses
    ε (or v) from (x_t, t / T)."""

    kind = "diffusion"
    Config = DiffusionConfig

    def __init__(self, config: DiffusionConfig, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(config, input_shape)
        self.noise_schedule = NoiseSchedule(config.schedule, config.timesteps)

    def regression(self, x: Tensor, generator: torch.Generator | None = None
                   ) -> tuple[Tensor, Tensor, Tensor]:
        c = self.config
        t = torch.randint(c.timesteps, (len(x),), generator=generator, device=x.device)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_t = self.noise_schedule.add_noise(x, noise, t)
        target = self.noise_schedule.target(c.prediction, x, noise, t)
        return x_t, t.to(x.dtype) / c.timesteps, target

    def scheduler(self) -> Scheduler:
        if self.config.sampler == "ddpm":
            return DDPMScheduler(self.noise_schedule, self.config.prediction)
        return DDIMScheduler(self.noise_schedule, self.config.prediction, self.config.eta)
