"""ODE samplers for flow matching and rectified flow (Lipman et al. 2023; Liu et al. 2023).

Convention (time runs from noise to data, the reverse of diffusers' ``FlowMatch*``
schedulers, whose σ = 1 − t): x_0 ~ N(0, I) is noise at t = 0, x_1 a data point at t = 1,

    x_t = (1 − t) x_0 + t x_1,    u = dx_t/dt = x_1 − x_0,

and a network v(x, t) trained on ‖v(x_t, t) − (x_1 − x_0)‖², t ~ U[0, 1], learns the marginal
velocity E[x_1 − x_0 | x_t]. Sampling integrates dx/dt = v(x, t) from noise at t = 0 to
t = 1 on the uniform grid t_k = k/n, k = 0, …, n.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import Tensor

from genmodels.checks import check_choice
from genmodels.errors import InputError
from genmodels.schedulers.base import Scheduler, check_steps

SOLVERS = ("euler", "heun")


class FlowScheduler(Scheduler):
    """Euler or Heun steps of dx/dt = v(x, t) over n uniform intervals of [0, 1], h = 1/n.

    - "euler": x_{k+1} = x_k + h v(x_k, t_k); ``timesteps`` t_0, …, t_{n−1}, n evaluations.
    - "heun" (explicit trapezoid, 2nd order): x̃ = x_k + h v_k with v_k = v(x_k, t_k), then
      x_{k+1} = x_k + h/2 (v_k + v(x̃, t_{k+1})) on every interval, the last one included
      (the velocity is defined at t = 1; diffusers makes its last interval Euler only
      because its denoiser form divides by σ = 0). Stateful like diffusers'
      ``FlowMatchHeunDiscreteScheduler``: each interval takes two ``step`` calls, the first
      returns the predictor x̃ at t_{k+1}, the second the corrected x_{k+1};
      ``timesteps`` lists every evaluation time t_0, t_1, t_1, …, t_{n−1}, t_{n−1}, t_n,
      and ``nfe`` = 2n.

    The network is fed t itself. Call ``set_timesteps`` before each sampling loop, and step
    through ``timesteps`` in order (:class:`InputError` otherwise)."""

    def __init__(self, solver: str = "euler") -> None:
        check_choice(SimpleNamespace(solver=solver), "FlowScheduler", "solver", SOLVERS)
        self.solver = solver
        self.steps = 0
        self.timesteps = torch.zeros(0)
        self._index = 0
        self._start: tuple[Tensor, Tensor] | None = None  # Heun: (x_k, v_k) of this interval

    def set_timesteps(self, steps: int) -> None:
        """``steps`` intervals of length 1/steps."""
        check_steps(steps)
        grid = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
        if self.solver == "euler":
            times = grid[:-1]
        else:
            times = torch.cat([grid[:1], grid[1:-1].repeat_interleave(2), grid[-1:]])
        self.steps = steps
        self.timesteps = times.float()  # (nfe,)
        self._index = 0
        self._start = None

    @property
    def label(self) -> str:
        return self.solver

    def net_time(self, timestep: float | Tensor) -> Tensor:
        return torch.as_tensor(timestep, dtype=torch.float32)

    def step(self, model_output: Tensor, timestep: float | Tensor, sample: Tensor,
             generator: torch.Generator | None = None) -> Tensor:
        """The sample at the next entry of ``timesteps`` from the velocity ``model_output``
        at (``sample``, ``timestep``), both (N, …); ``generator`` is unused (deterministic)."""
        if self._index >= len(self.timesteps):
            raise InputError("FlowScheduler.step: no timestep left; call set_timesteps(steps) "
                             "before each sampling loop")
        expected = float(self.timesteps[self._index])
        if not math.isclose(float(timestep), expected, abs_tol=1e-6):
            raise InputError(f"FlowScheduler.step: timestep {float(timestep):g} where "
                             f"{expected:g} is next; step through scheduler.timesteps in order")
        first = self.solver == "euler" or self._index % 2 == 0
        self._index += 1
        h = 1 / self.steps
        if first:  # Euler, or Heun's predictor
            if self.solver == "heun":
                self._start = (sample, model_output)
            return sample + h * model_output
        start, velocity = self._start
        self._start = None
        return start + h / 2 * (velocity + model_output)


__all__ = ["SOLVERS", "FlowScheduler"]
