"""The one sampling loop of the diffusion and flow samplers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from genmodels.errors import InputError
from genmodels.schedulers.base import Scheduler


@torch.no_grad()
def denoise(net: Callable[[Tensor, Tensor], Tensor], scheduler: Scheduler, x: Tensor,
            generator: torch.Generator | None = None, progress: Any | None = None) -> Tensor:
    """Run ``scheduler`` over its ``timesteps`` from the starting sample ``x`` (N, …), e.g.
    ``scheduler.init_noise(shape)``: at each timestep t, ``output = net(x, time)`` with
    ``time = scheduler.net_time(t)`` expanded to (N,), then ``x = scheduler.step(output, t,
    x, generator)``. Returns the final sample (N, …), without gradients.

    Call ``scheduler.set_timesteps(steps)`` first. ``progress``, a tqdm bar or anything with
    ``update()``, advances by one per network evaluation. Raises :class:`InputError` naming
    the step when the net's output has the wrong shape or the sample stops being finite (a
    diverging net or sampler)."""
    timesteps = scheduler.timesteps
    for i, t in enumerate(timesteps):
        time = scheduler.net_time(t).to(x.device).expand(len(x))  # (N,)
        output = net(x, time)
        if output.shape != x.shape:
            raise InputError(f"denoise: the net returned shape {tuple(output.shape)} for a "
                             f"sample of shape {tuple(x.shape)} at step {i + 1}")
        x = scheduler.step(output, t, x, generator)
        if not torch.isfinite(x).all():
            raise InputError(f"denoise: the sample became non-finite (NaN or inf) at step "
                             f"{i + 1} of {len(timesteps)} (timestep {t.item():g}); check the "
                             "net's output and the number of steps")
        if progress is not None:
            progress.update()
    return x


__all__ = ["denoise"]
