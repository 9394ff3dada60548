"""Flow matching / rectified flow (Lipman et al. 2023; Liu et al. 2023): the net regresses the
velocity u = x_1 − x_0 of the straight path x_t = (1 − t) x_0 + t x_1 from noise x_0 ~ N(0, I)
to data x_1, at a uniform t; sampling integrates dx/dt = v(x, t) from t = 0 to 1 with Euler
or Heun steps. Optionally the pairs (x_0, x_1) of a batch are coupled by minibatch optimal
transport (Tong et al. 2023), which straightens the paths."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from genmodels.checks import check_choice
from genmodels.models.base import register
from genmodels.models.denoising import DenoisingConfig, DenoisingModel
from genmodels.schedulers import FlowScheduler, Scheduler, ot_pairing


@dataclass
class FlowMatchingConfig(DenoisingConfig):
    solver: str = "heun"  # euler | heun (2nd order; two net evaluations per step)
    ot_pairing: bool = False  # couple noise and data of a batch by exact minibatch OT (POT)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self, "model", "solver", ("euler", "heun"))


@register
class FlowMatching(DenoisingModel):
    """Conditional flow matching with the linear interpolant (rectified flow)."""

    kind = "flow_matching"
    Config = FlowMatchingConfig

    def regression(self, x: Tensor, generator: torch.Generator | None = None
                   ) -> tuple[Tensor, Tensor, Tensor]:
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        if self.config.ot_pairing:
            noise = noise[ot_pairing(noise, x)]
        t = torch.rand(len(x), generator=generator, device=x.device, dtype=x.dtype)  # (N,)
        t_ = t.view(-1, *(1,) * (x.dim() - 1))
        return (1 - t_) * noise + t_ * x, t, x - noise

    def scheduler(self) -> Scheduler:
        return FlowScheduler(self.config.solver)
