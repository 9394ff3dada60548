"""Exponential moving average of a model's weights (Polyak averaging).

Used for sampling and evaluation, e.g. in GANs (Yazıcı et al., 2019, "The unusual effectiveness
of averaging in GAN training").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class EMA:
    """Shadow copy ``s <- d * s + (1 - d) * w`` of every floating parameter and buffer.

    ``d`` is ``decay``, or with ``warmup`` min(decay, (1 + n) / (10 + n)) at the n-th update
    (n = 0, 1, ...; diffusers' ``EMAModel`` warm-up): the average forgets the initial weights
    within a few hundred steps instead of holding decay^n of them (0.999^2000 = 13 %).
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = False) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay should lie in (0, 1), got {decay}")
        self.decay, self.warmup = decay, warmup
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def decay_at(self, n: int) -> float:
        """The decay of the n-th update (n = 0 first)."""
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module, n: int = 0) -> None:
        """Move the average towards ``model``'s weights; ``n`` counts the updates before this
        one (it matters with ``warmup`` only)."""
        weight = 1.0 - self.decay_at(n)
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                self.shadow[name].lerp_(value, weight)
            else:
                self.shadow[name].copy_(value)

    def state_dict(self) -> dict[str, Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        for name, value in state.items():
            self.shadow[name].copy_(value)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily load the averaged weights into ``model``."""
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.load_state_dict(backup)
