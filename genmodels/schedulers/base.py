"""The contract of a sampler, after diffusers' schedulers: ``set_timesteps`` picks the grid,
and the sampling loop (:func:`genmodels.schedulers.denoise`) feeds the network
``net_time(t)`` and hands its output to ``step``, which returns the sample at the next
timestep::

    scheduler.set_timesteps(50)
    x = scheduler.init_noise((n, 2), generator=g)
    for t in scheduler.timesteps:
        x = scheduler.step(net(x, scheduler.net_time(t).expand(n)), t, x, generator=g)

:class:`DiscreteScheduler` holds what DDPM and DDIM share: a :class:`NoiseSchedule`, the
prediction type and diffusers' "leading" timestep spacing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor

from genmodels.checks import ConfigError
from genmodels.errors import InputError
from genmodels.schedulers.noise import NoiseSchedule, check_prediction


def check_steps(steps: int, most: int | None = None) -> None:
    """Raise :class:`ConfigError` unless ``steps`` is an int in 1..``most``."""
    bound = "" if most is None else f" and <= {most} (the schedule's timesteps)"
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1 or (
            most is not None and steps > most):
        raise ConfigError(f"steps = {steps!r} should be an int >= 1{bound}")


class Scheduler(ABC):
    """A sampler: a grid of timesteps and the update between consecutive ones.

    After ``set_timesteps(steps)``, ``timesteps`` lists the timesteps in sampling order, one
    per network evaluation; ``step`` turns the network's output at ``timestep`` into the
    sample at the next timestep (the last ``step`` returns the final sample)."""

    timesteps: Tensor

    @abstractmethod
    def set_timesteps(self, steps: int) -> None:
        """Choose a grid of ``steps`` steps (:class:`ConfigError` when out of range)."""

    @abstractmethod
    def net_time(self, timestep: int | float | Tensor) -> Tensor:
        """The time in [0, 1] the network is fed at ``timestep``: a 0-d float32 tensor."""

    @abstractmethod
    def step(self, model_output: Tensor, timestep: int | float | Tensor, sample: Tensor,
             generator: torch.Generator | None = None) -> Tensor:
        """The sample at the timestep after ``timestep``; model_output, sample (N, …)."""

    def init_noise(self, shape: Sequence[int], generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> Tensor:
        """The starting sample: standard normal noise of ``shape`` (float32)."""
        return torch.randn(tuple(shape), generator=generator, device=device)

    @property
    def nfe(self) -> int:
        """Network evaluations of a whole loop over ``timesteps``."""
        return len(self.timesteps)

    @property
    def label(self) -> str:
        """What figures and logs call this sampler: ``ddpm``, ``ddim`` (``ddim, η = 1``),
        ``euler``, ``heun``."""
        return type(self).__name__.removesuffix("Scheduler").lower()


class DiscreteScheduler(Scheduler):
    """A sampler over the integer timesteps of a :class:`NoiseSchedule` (DDPM, DDIM).

    ``set_timesteps(n)`` takes diffusers' default "leading" spacing: with stride k = T // n,
    timesteps (n−1)k, …, k, 0; each step jumps from t to t − k, and the last one (t = 0) to
    the clean end (ᾱ = 1). n = T is the full chain T−1, …, 0. The network is fed t / T.
    Before any ``set_timesteps`` the grid is the full chain."""

    def __init__(self, schedule: NoiseSchedule, prediction: str = "epsilon") -> None:
        check_prediction(prediction, type(self).__name__)
        self.schedule = schedule
        self.prediction = prediction
        self.set_timesteps(schedule.timesteps)

    def set_timesteps(self, steps: int) -> None:
        check_steps(steps, self.schedule.timesteps)
        self.stride = self.schedule.timesteps // steps
        self.timesteps = torch.arange(steps - 1, -1, -1) * self.stride  # (steps,) int64

    def net_time(self, timestep: int | Tensor) -> Tensor:
        return torch.as_tensor(timestep, dtype=torch.float32) / self.schedule.timesteps

    def previous(self, timestep: int | Tensor) -> int:
        """The timestep a step from ``timestep`` lands on: t − stride (negative: the clean
        end)."""
        return int(timestep) - self.stride

    @staticmethod
    def draw_noise(sample: Tensor, generator: torch.Generator | None,
                   noise: Tensor | None) -> Tensor:
        """``noise`` if given, else standard normal noise like ``sample`` from
        ``generator`` (as diffusers draws it, so that a seeded generator gives both the same
        noise)."""
        if noise is None:
            return torch.randn(sample.shape, generator=generator, device=sample.device,
                               dtype=sample.dtype)
        if generator is not None:
            raise InputError("step: pass a generator or noise, not both")
        if noise.shape != sample.shape:
            raise InputError(f"step: noise of shape {tuple(noise.shape)} for a sample of "
                             f"shape {tuple(sample.shape)}")
        return noise


__all__ = ["DiscreteScheduler", "Scheduler", "check_steps"]
