"""The discrete-time Gaussian forward process of diffusion models (Ho et al. 2020) and the
algebra between what a network predicts, the clean data and the noise.

With betas β_1..β_T and ᾱ_t = ∏_{s≤t} (1 − β_s), the forward process at an integer
timestep t ∈ {0, …, T−1} is

    x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε,    ε ~ N(0, I),

and the sampler's clean end is t = −1 with ᾱ_{−1} = 1 (diffusers' ``set_alpha_to_one``). A
network predicts ε ("epsilon", Ho et al. 2020) or v = √ᾱ_t ε − √(1 − ᾱ_t) x_0
("v_prediction", Salimans & Ho 2022); either one, with x_t, gives back both x_0 and ε, which
is all the DDPM and DDIM steps need.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import Tensor

from genmodels.checks import ConfigError, check_choice

KINDS = ("linear", "cosine")
PREDICTIONS = ("epsilon", "v_prediction")
COSINE_OFFSET = 0.008  # s of Nichol & Dhariwal 2021, eq. 17
MAX_BETA = 0.999  # their clipping of the cosine betas


def check_prediction(prediction: str, where: str) -> None:
    """Raise :class:`ConfigError` unless ``prediction`` is one of :data:`PREDICTIONS`."""
    check_choice(SimpleNamespace(prediction=prediction), where, "prediction", PREDICTIONS)


class NoiseSchedule:
    """The betas and ᾱ_t of a T-step forward process, and its noising and prediction algebra.

    ``kind="linear"``: β_t evenly spaced from ``beta_start`` to ``beta_end`` (Ho et al. 2020;
    diffusers' "linear"). ``kind="cosine"``: ᾱ(τ) = cos²((τ + s)/(1 + s) · π/2) with s = 0.008
    and β_t = min(1 − ᾱ((t+1)/T) / ᾱ(t/T), 0.999) (Nichol & Dhariwal 2021; diffusers'
    "squaredcos_cap_v2"); it ignores ``beta_start`` and ``beta_end``. Both are computed in
    float64 and stored in float32 as ``betas`` and ``alphas_cumprod``, each (T,).

    Timesteps ``t`` are integers: a Python int or a 0-d tensor (one timestep for the batch) or
    an integer tensor (N,) (one per sample, as in training)."""

    def __init__(self, kind: str = "linear", timesteps: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 0.02) -> None:
        check_choice(SimpleNamespace(kind=kind), "NoiseSchedule", "kind", KINDS)
        if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
            raise ConfigError(f"NoiseSchedule.timesteps = {timesteps!r} should be an int >= 1")
        if kind == "linear" and not 0 < beta_start <= beta_end < 1:
            raise ConfigError(f"NoiseSchedule beta_start = {beta_start!r}, beta_end = "
                              f"{beta_end!r} should satisfy 0 < beta_start <= beta_end < 1")
        self.kind = kind
        self.timesteps = timesteps
        if kind == "linear":
            betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        else:
            tau = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
            alpha_bar = torch.cos((tau + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
            betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=MAX_BETA)
        self.betas = betas.float()  # (T,)
        self.alphas_cumprod = torch.cumprod(1 - betas, dim=0).float()  # (T,)

    def __repr__(self) -> str:
        return f"NoiseSchedule(kind={self.kind!r}, timesteps={self.timesteps})"

    def alpha_bar(self, t: int | Tensor, like: Tensor) -> Tensor:
        """ᾱ_t in ``like``'s dtype and device, shaped to broadcast against ``like`` (N, …): a
        0-d tensor for one timestep, (N, 1, …, 1) for a timestep per sample. Negative t (the
        sampler's clean end, t = −1) gives ᾱ = 1."""
        table = self.alphas_cumprod.to(dtype=like.dtype, device=like.device)  # (T,)
        t = torch.as_tensor(t, device=like.device)
        values = torch.where(t >= 0, table[t.clamp(min=0)], 1.0)
        if values.dim() == 1:
            values = values.reshape(-1, *(1,) * (like.dim() - 1))
        return values

    def add_noise(self, x0: Tensor, noise: Tensor, t: int | Tensor) -> Tensor:
        """The forward sample x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε; x0, noise (N, …), t (N,)."""
        alpha_bar = self.alpha_bar(t, x0)
        return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise

    def target(self, prediction: str, x0: Tensor, noise: Tensor, t: int | Tensor) -> Tensor:
        """The regression target of a network trained to predict ``prediction``: ε for
        "epsilon", v = √ᾱ_t ε − √(1 − ᾱ_t) x_0 for "v_prediction" (Salimans & Ho 2022,
        §4); x0, noise (N, …), t (N,)."""
        check_prediction(prediction, "NoiseSchedule.target")
        if prediction == "epsilon":
            return noise
        alpha_bar = self.alpha_bar(t, x0)
        return alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0

    def predict_x0_and_noise(self, prediction: str, output: Tensor, x_t: Tensor,
                             t: int | Tensor) -> tuple[Tensor, Tensor]:
        """The clean sample and the noise (x̂_0, ε̂) that a network ``output`` implies at x_t:

        - "epsilon": ε̂ = output, x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t (Ho et al. 2020, eq. 15);
        - "v_prediction": x̂_0 = √ᾱ_t x_t − √(1 − ᾱ_t) v, ε̂ = √ᾱ_t v + √(1 − ᾱ_t) x_t.

        output, x_t (N, …); t one timestep or (N,)."""
        check_prediction(prediction, "NoiseSchedule.predict_x0_and_noise")
        alpha_bar = self.alpha_bar(t, x_t)
        signal, sigma = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
        if prediction == "epsilon":
            return (x_t - sigma * output) / signal, output
        return signal * x_t - sigma * output, signal * output + sigma * x_t

    def posterior_variance(self, t: int | Tensor, prev: int | Tensor, like: Tensor) -> Tensor:
        """The variance β̃ = (1 − ᾱ_prev)/(1 − ᾱ_t) · (1 − ᾱ_t/ᾱ_prev) of q(x_prev | x_t, x_0):
        DDPM's "fixed_small" variance (Ho et al. 2020, eq. 7, for a jump from t to prev < t)
        and σ_t²(η = 1) of DDIM (Song et al. 2021, eq. 16). Zero at the clean end (prev < 0)."""
        alpha_bar, alpha_bar_prev = self.alpha_bar(t, like), self.alpha_bar(prev, like)
        return (1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)


__all__ = ["KINDS", "PREDICTIONS", "NoiseSchedule", "check_prediction"]
