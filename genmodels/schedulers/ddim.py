"""Denoising diffusion implicit models (Song et al. 2021): DDPM's marginals with a
non-Markovian reverse process, deterministic for η = 0."""

from __future__ import annotations

import torch
from torch import Tensor

from genmodels.checks import ConfigError
from genmodels.schedulers.base import DiscreteScheduler
from genmodels.schedulers.noise import NoiseSchedule


class DDIMScheduler(DiscreteScheduler):
    """DDIM's step from t to prev < t (Song et al. 2021, eqs. 12 and 16):

        x_prev = √ᾱ_prev x̂_0 + √(1 − ᾱ_prev − σ²) ε̂ + σ z,   σ = η √β̃,

    with x̂_0 and ε̂ from the network's output (:meth:`NoiseSchedule.predict_x0_and_noise`),
    β̃ the DDPM posterior variance and z ~ N(0, I). η = 0 is the deterministic DDIM sampler
    (a discretisation of the probability-flow ODE), η = 1 has DDPM's variance. Equals
    diffusers' ``DDIMScheduler(clip_sample=False, set_alpha_to_one=True, steps_offset=0,
    timestep_spacing="leading")`` with ``step(eta=eta)``."""

    def __init__(self, schedule: NoiseSchedule, prediction: str = "epsilon",
                 eta: float = 0.0) -> None:
        if not 0 <= eta <= 1:
            raise ConfigError(f"DDIMScheduler.eta = {eta!r} should be in [0, 1] (0: DDIM, "
                              "1: DDPM's variance)")
        super().__init__(schedule, prediction)
        self.eta = eta

    @property
    def label(self) -> str:
        return f"ddim, η = {self.eta:g}" if self.eta else "ddim"

    def step(self, model_output: Tensor, timestep: int | Tensor, sample: Tensor,
             generator: torch.Generator | None = None, noise: Tensor | None = None) -> Tensor:
        """x_prev from the network's ``model_output`` at x_t = ``sample`` (both (N, …));
        for η > 0, ``noise`` (like ``sample``; diffusers' ``variance_noise``) replaces the
        draw from ``generator``."""
        prev = self.previous(timestep)
        x0, eps = self.schedule.predict_x0_and_noise(self.prediction, model_output, sample,
                                                     timestep)
        alpha_bar_prev = self.schedule.alpha_bar(prev, sample)
        std = self.eta * self.schedule.posterior_variance(timestep, prev, sample).sqrt()
        # clamp: 1 − ᾱ_prev − σ² ≥ 0 in exact arithmetic, a rounding error below 0 at η = 1
        direction = (1 - alpha_bar_prev - std**2).clamp(min=0).sqrt() * eps
        prev_sample = alpha_bar_prev.sqrt() * x0 + direction
        if self.eta == 0:
            return prev_sample
        return prev_sample + std * self.draw_noise(sample, generator, noise)


__all__ = ["DDIMScheduler"]
