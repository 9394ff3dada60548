"""The VampPrior VAE (Tomczak & Welling 2018, "VAE with a VampPrior"): the prior is the
encoder's posterior averaged over K learned pseudo-inputs, p(z) = (1/K) Σ_k q(z | u_k)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from genmodels.checks import check_ranges
from genmodels.models.base import register
from genmodels.models.distributions import DiagonalGaussianMixture
from genmodels.models.vae import VAE, VAEConfig


@dataclass
class VampPriorConfig(VAEConfig):
    pseudo_inputs: int = 500  # K (the paper's MNIST value)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges(self, "model", positive=("pseudo_inputs",))


@register
class VampPriorVAE(VAE):
    """A VAE whose :meth:`prior` is the VampPrior; pseudo-inputs u_k (K, C, H, W) are learned,
    clipped to the data range (the paper's hardtanh) and start near 0.05 ± 0.01, as in the
    paper. The KL is estimated by Monte Carlo (no closed form for a mixture)."""

    kind = "vamp_vae"
    Config = VampPriorConfig
    closed_form_kl = False

    def __init__(self, config: VampPriorConfig, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(config, input_shape)
        self.pseudo_inputs = nn.Parameter(
            0.05 + 0.01 * torch.randn(config.pseudo_inputs, *self.input_shape))

    def prior(self) -> DiagonalGaussianMixture:
        q = self.encode(self.pseudo_inputs.clamp(*self.data_range)).base_dist  # (K, D)
        return DiagonalGaussianMixture(q.loc, q.scale)
