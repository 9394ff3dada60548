"""Diffusion and flow-matching samplers with diffusers-style contracts (issue 25).

    >>> schedule = NoiseSchedule("cosine", timesteps=1000)
    >>> xt = schedule.add_noise(x0, noise, t)                 # training: t int (N,)
    >>> loss = (net(xt, t / 1000) - schedule.target("epsilon", x0, noise, t)).pow(2).mean()
    >>> sampler = DDIMScheduler(schedule, "epsilon", eta=0.0)  # or DDPMScheduler(schedule)
    >>> sampler.set_timesteps(50)
    >>> x = denoise(net, sampler, sampler.init_noise((n, 2), generator=g), generator=g)

Flow matching (noise at t = 0, data at t = 1, velocity x_1 − x_0)::

    >>> sampler = FlowScheduler("heun"); sampler.set_timesteps(20)   # nfe = 40
    >>> x = denoise(velocity_net, sampler, sampler.init_noise((n, 2)))
    >>> perm = ot_pairing(noise, data)                        # OT-coupled pairs (noise[perm], data)
"""

from genmodels.schedulers.base import DiscreteScheduler, Scheduler
from genmodels.schedulers.ddim import DDIMScheduler
from genmodels.schedulers.ddpm import DDPMScheduler
from genmodels.schedulers.flow import SOLVERS, FlowScheduler
from genmodels.schedulers.loop import denoise
from genmodels.schedulers.noise import KINDS, PREDICTIONS, NoiseSchedule
from genmodels.schedulers.ot import ot_pairing

__all__ = ["KINDS", "PREDICTIONS", "SOLVERS", "DDIMScheduler", "DDPMScheduler",
           "DiscreteScheduler", "FlowScheduler", "NoiseSchedule", "Scheduler", "denoise",
           "ot_pairing"]
