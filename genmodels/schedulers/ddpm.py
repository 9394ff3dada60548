"""The ancestral sampler of denoising diffusion probabilistic models (Ho et al. 2020)."""

from __future__ import annotations

import torch
from torch import Tensor

from genmodels.schedulers.base import DiscreteScheduler


class DDPMScheduler(DiscreteScheduler):
    """DDPM's reverse step x_t → x_prev ~ N(μ̃, β̃ I) with the "fixed_small" variance and no
    clipping of x̂_0 (Ho et al. 2020, eqs. 6–7, Algorithm 2), for a jump from t to prev < t:
    with α = ᾱ_t / ᾱ_prev and β = 1 − α,

        μ̃ = √ᾱ_prev β / (1 − ᾱ_t) · x̂_0 + √α (1 − ᾱ_prev) / (1 − ᾱ_t) · x_t,
        β̃ = (1 − ᾱ_prev) / (1 − ᾱ_t) · β,

    x̂_0 from the network's ε or v
    (:meth:`~genmodels.schedulers.noise.NoiseSchedule.predict_x0_and_noise`). The last step
    (to the clean end) returns μ̃ without noise. Equals diffusers' ``DDPMScheduler(
    clip_sample=False, variance_type="fixed_small")`` with "leading" spacing; a seeded
    ``generator`` draws the same noise as there."""

    def step(self, model_output: Tensor, timestep: int | Tensor, sample: Tensor,
             generator: torch.Generator | None = None, noise: Tensor | None = None) -> Tensor:
        """x_prev from the network's ``model_output`` at x_t = ``sample`` (both (N, …));
        ``noise`` (like ``sample``) replaces the draw from ``generator``."""
        prev = self.previous(timestep)
        x0, _ = self.schedule.predict_x0_and_noise(self.prediction, model_output, sample,
                                                   timestep)
        alpha_bar = self.schedule.alpha_bar(timestep, sample)
        alpha_bar_prev = self.schedule.alpha_bar(prev, sample)
        alpha = alpha_bar / alpha_bar_prev
        x0_coeff = alpha_bar_prev.sqrt() * (1 - alpha) / (1 - alpha_bar)
        sample_coeff = alpha.sqrt() * (1 - alpha_bar_prev) / (1 - alpha_bar)
        mean = x0_coeff * x0 + sample_coeff * sample
        if prev < 0:
            return mean
        std = self.schedule.posterior_variance(timestep, prev, sample).sqrt()
        return mean + std * self.draw_noise(sample, generator, noise)


__all__ = ["DDPMScheduler"]
