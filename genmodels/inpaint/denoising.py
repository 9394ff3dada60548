"""Inpainting with diffusion and flow-matching models: sample the missing pixels by running the
model's sampler from noise while the observed pixels steer it. Nothing is trained for it.

Images are in the model's training range [-1, 1] (``held_out_images`` of a ``symmetric``
run); ``mask`` (n, 1, H, W) is 1 on observed pixels. Every method runs the n·S chains (S per
image) as one batch and returns completions (n, S, C, H, W): the sampler's output clamped to
[-1, 1] (as ``model.sample`` clamps) on missing pixels, the images copied exactly on observed
ones. With ``return_latents=True`` it also returns codes (n, S, D):

- flow methods: the starting noise x_0 of each trajectory, flattened (D = C·H·W); the ODE is
  deterministic, so x_0 and the observed pixels determine the completion;
- ``repaint``: an empty tensor (D = 0): fresh noise enters at every step, so no single code
  stands behind a completion.

Methods (:data:`DIFFUSION_METHODS`, :data:`FLOW_METHODS`):

- ``repaint`` (diffusion): RePaint (Lugmayr et al. 2022, "RePaint: inpainting using denoising
  diffusion probabilistic models", CVPR), :func:`repaint`;
- ``replace`` (flow): the observed pixels replaced by the interpolant of the truth at each
  time (the flow analogue of the replacement method of Song et al. 2021, "Score-based
  generative modeling through stochastic differential equations", ICLR), :func:`flow_replacement`;
- ``dps`` (flow): diffusion posterior sampling (Chung et al. 2023, "Diffusion posterior
  sampling for general noisy inverse problems", ICLR) on the flow's velocity, :func:`flow_dps`.

Random draws use the global torch generator: seed it (``genmodels.utils.seed_everything``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genmodels.errors import InputError
from genmodels.inpaint.methods import chains, check_positive, complete, with_codes
from genmodels.inpaint.options import JUMP_LENGTH, RESAMPLE, STEP_SIZE
from genmodels.models import Diffusion, FlowMatching
from genmodels.models.denoising import DenoisingModel
from genmodels.schedulers import DDPMScheduler, NoiseSchedule, Scheduler

DATA_RANGE = (-1.0, 1.0)  # images train in the symmetric view


def check_images(model: DenoisingModel, x: Tensor) -> None:
    """Raise InputError unless ``x`` is a batch (n, C, H, W) of the model's images in [-1, 1]."""
    if model.config.net != "unet":
        raise InputError(f"inpainting needs images; this {model.kind} model generates points "
                         f"of shape {model.input_shape}")
    if x.dim() != 4 or tuple(x.shape[1:]) != model.input_shape:
        expected = ", ".join(map(str, model.input_shape))
        raise InputError(f"images of shape {tuple(x.shape)} for a {model.kind} model of images "
                         f"{model.input_shape}: expected (n, {expected})")
    low, high = DATA_RANGE
    if not (x.min() >= low and x.max() <= high):
        raise InputError(f"a {model.kind} model's images should lie in [{low}, {high}] (its "
                         f"symmetric training view), got [{float(x.min()):.3g}, "
                         f"{float(x.max()):.3g}]")


def _steps(model: DenoisingModel, steps: int | None) -> int:
    if steps is None:
        return model.default_steps
    check_positive("steps", steps)
    return steps


# --- diffusion: RePaint ------------------------------------------------------------------------
def _ancestral(model: Diffusion, steps: int | None) -> DDPMScheduler:
    """The DDPM sampler of ``model``'s noise schedule and prediction type on ``steps``
    timesteps (ConfigError beyond the schedule's T)."""
    scheduler = DDPMScheduler(model.noise_schedule, model.config.prediction)
    scheduler.set_timesteps(_steps(model, steps))
    return scheduler


def repaint_schedule(steps: int, jump_length: int = JUMP_LENGTH,
                     resample: int = RESAMPLE) -> list[int]:
    """The grid levels a RePaint chain visits, from ``steps`` − 1 (noise) down to −1 (clean),
    as the paper's ``get_schedule_jump`` (n_sample = 1): going down one level at a time; on
    reaching a level ℓ ∈ {0, j, 2j, …} with ℓ + j < ``steps``, go back up j levels, r − 1
    times per such ℓ, so that each of those stretches of j steps is run r times. A pair
    (a, a − 1) is a reverse step, a pair (a, a + j) a jump up."""
    check_positive("jump_length", jump_length)
    check_positive("resample", resample)
    jumps = dict.fromkeys(range(0, steps - jump_length, jump_length), resample - 1)
    level, levels = steps - 1, [steps - 1]
    while level >= 0:
        level -= 1
        levels.append(level)
        if jumps.get(level, 0) > 0:
            jumps[level] -= 1
            level += jump_length
            levels.append(level)
    return levels


def forward_jump(schedule: NoiseSchedule, x: Tensor, t: int, later: int) -> Tensor:
    """A draw from the forward kernel q(x_later | x_t) = N(√(ᾱ_later / ᾱ_t) x_t,
    (1 − ᾱ_later / ᾱ_t) I), t < later: the composition of the one-step kernels between them."""
    ratio = schedule.alpha_bar(later, x) / schedule.alpha_bar(t, x)
    return ratio.sqrt() * x + (1 - ratio).sqrt() * torch.randn_like(x)


@torch.no_grad()
def repaint(model: Diffusion, x: Tensor, mask: Tensor, samples: int, *,
            steps: int | None = None, jump_length: int = JUMP_LENGTH, resample: int = RESAMPLE,
            return_latents: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """RePaint (Lugmayr et al. 2022, algorithm 1) on the ancestral DDPM sampler
    (:class:`~genmodels.schedulers.DDPMScheduler` over the model's noise schedule and
    prediction type, whatever sampler the model draws its own samples with), on a grid of
    ``steps`` timesteps τ_ℓ = ℓ·(T // steps) (default ``model.sample_steps``).

    From x ~ N(0, I), at every level ℓ the chain visits (:func:`repaint_schedule`): the
    observed pixels are set to a fresh forward draw of the truth, √ᾱ_τ x + √(1 − ᾱ_τ) ε
    (``NoiseSchedule.add_noise``), the missing ones kept; a reverse step then takes the merged
    image to level ℓ − 1 with the net, x ~ p_θ(x_{τ−} | x_τ), or a resampling jump takes it back
    up j levels with the forward kernel (:func:`forward_jump`). Each stretch of
    ``jump_length`` = j steps is run ``resample`` = r times; the jumps let the missing pixels,
    generated from a partly inconsistent image, harmonise with the observed ones (r = 1 is plain
    replacement). Net evaluations: steps + (r − 1)·j·⌈(steps − j) / j⌉ for steps > j.

    The merge comes before each net evaluation, as in the authors' code: the same as the
    paper's merge after each step, plus one at the start (which matters when the first
    timestep's ᾱ is not near 0, as with few steps of "leading" spacing)."""
    scheduler = _ancestral(model, steps)
    levels = repaint_schedule(len(scheduler.timesteps), jump_length, resample)
    chain_x, chain_mask = chains(x, mask, samples)
    observed = chain_mask.bool()
    current = scheduler.init_noise(chain_x.shape, device=x.device)
    for level, following in zip(levels[:-1], levels[1:], strict=True):
        t = level * scheduler.stride
        if following > level:
            current = forward_jump(model.noise_schedule, current, t, following * scheduler.stride)
            continue
        known = model.noise_schedule.add_noise(chain_x, torch.randn_like(chain_x), t)
        current = torch.where(observed, known, current)
        time = scheduler.net_time(t).to(x.device).expand(len(current))
        current = scheduler.step(model.net(current, time), t, current)
    completions = complete(x, mask, current.clamp(*DATA_RANGE))
    if return_latents:
        return completions, x.new_zeros(len(x), samples, 0)
    return completions


# --- flow matching: replacement and DPS --------------------------------------------------------
# the velocity fed to the solver at a time: (state, time (N,), starting noise, truth, mask) ->
# (the state after any change to its observed pixels, velocity)
Velocity = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def _integrate(model: FlowMatching, x: Tensor, mask: Tensor, samples: int, steps: int | None,
               velocity: Velocity, return_latents: bool) -> Tensor | tuple[Tensor, Tensor]:
    """Run the model's ODE solver (``model.scheduler()``: Euler or Heun over ``steps``
    uniform intervals of [0, 1]) from x_0 ~ N(0, I) on the n·S chains, asking ``velocity``
    for the state and velocity at each evaluation; then complete and return as the module
    says."""
    scheduler: Scheduler = model.scheduler()
    scheduler.set_timesteps(_steps(model, steps))
    chain_x, chain_mask = chains(x, mask, samples)
    noise = scheduler.init_noise(chain_x.shape, device=x.device)
    current = noise
    for t in scheduler.timesteps:
        time = scheduler.net_time(t).to(x.device).expand(len(current))
        current, v = velocity(current, time, noise, chain_x, chain_mask)
        current = scheduler.step(v, t, current)
    completions = complete(x, mask, current.clamp(*DATA_RANGE))
    return with_codes(completions, noise.flatten(1), samples, return_latents)


def _per_image(time: Tensor) -> Tensor:
    """Times (N,) shaped (N, 1, 1, 1) against images."""
    return time.view(-1, 1, 1, 1)


@torch.no_grad()
def flow_replacement(model: FlowMatching, x: Tensor, mask: Tensor, samples: int, *,
                     steps: int | None = None,
                     return_latents: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Replacement on the straight path x_t = (1 − t) x_0 + t x_1: before every velocity
    evaluation at time t (both of Heun's per interval), the observed pixels of the state are
    set to (1 − t) x_0 + t x_obs, the interpolant of the truth with the trajectory's own
    starting noise x_0, and the solver moves the whole image with v(x_t, t). At t = 1 they
    are the truth. ``steps`` intervals (default ``model.sample_steps``); one net evaluation
    per interval with Euler, two with Heun (the model's ``solver``).

    For data whose missing pixels are independent of the observed ones the missing pixels
    follow the unconditional flow: exact marginals. Otherwise the missing pixels see observed
    pixels on a path that the model did not generate, which biases them towards the
    unconditional law (docs/inpainting.md)."""
    def replaced(current: Tensor, time: Tensor, noise: Tensor, truth: Tensor,
                 mask: Tensor) -> tuple[Tensor, Tensor]:
        t = _per_image(time)
        current = torch.where(mask.bool(), (1 - t) * noise + t * truth, current)
        return current, model.net(current, time)

    return _integrate(model, x, mask, samples, steps, replaced, return_latents)


@torch.no_grad()
def flow_dps(model: FlowMatching, x: Tensor, mask: Tensor, samples: int, *,
             steps: int | None = None, step_size: float = STEP_SIZE,
             return_latents: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Diffusion posterior sampling (Chung et al. 2023, algorithm 1) on the flow's ODE.

    The clean image the velocity predicts from x_t is x̂_1 = x_t + (1 − t) v(x_t, t) (=
    E[x_1 | x_t] for the optimal velocity, the flow's Tweedie estimate); DPS approximates
    p(x_obs | x_t) by a Gaussian around x̂_1's observed pixels and follows the gradient of
    ‖m ⊙ (x̂_1 − x)‖² with respect to x_t (through the net), normalised per image by the
    residual's norm ‖m ⊙ (x̂_1 − x)‖ as the paper's ζ_i = ζ' / ‖y − A(x̂_0)‖:

        x_{k+1} = x_k + h v(x_k, t_k) − ζ ∇_{x_k} ‖m ⊙ (x̂_1 − x)‖² / ‖m ⊙ (x̂_1 − x)‖

    with Euler (h = 1/``steps``; ζ = ``step_size``). The guidance enters the solver as the
    velocity v − (ζ/h) ∇‖r‖² / ‖r‖, so Heun averages it between the two ends of an interval
    (ζ per interval either way). The observed pixels are never replaced, only pasted at the
    end. ζ is per step, so the total pull grows with ``steps``. The authors' code pulls by
    0.5 ∇‖r‖ (ζ = 0.25 here) at each of 1000 DDPM steps on 256×256 RGB images; the default
    ζ = 0.5 at 50 steps moves a 28×28 image's pixels by about as much in all, but it is not
    tuned on a trained model. Each evaluation backpropagates through the net once."""
    if not (math.isfinite(step_size) and step_size >= 0):
        raise InputError(f"step_size (DPS's ζ) should be a number >= 0, got {step_size}")
    scale = step_size * _steps(model, steps)  # ζ / h

    def guided(current: Tensor, time: Tensor, noise: Tensor, truth: Tensor,
               mask: Tensor) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            state = current.detach().requires_grad_()
            v = model.net(state, time)
            residual = mask * (state + (1 - _per_image(time)) * v - truth)
            squared = residual.flatten(1).pow(2).sum(1)  # (N,)
            gradient = torch.autograd.grad(squared.sum(), state)[0]
        norm = _per_image(squared.detach().sqrt().clamp_min(torch.finfo(squared.dtype).tiny))
        return current, v.detach() - scale * gradient / norm

    return _integrate(model, x, mask, samples, steps, guided, return_latents)


DIFFUSION_METHODS: dict[str, Callable[..., Tensor | tuple[Tensor, Tensor]]] = {
    "repaint": repaint,
}
FLOW_METHODS: dict[str, Callable[..., Tensor | tuple[Tensor, Tensor]]] = {
    "replace": flow_replacement,
    "dps": flow_dps,
}


def net_evaluations(model: DenoisingModel, method: str, options: dict) -> int:
    """How many times ``method`` calls ``model.net`` with ``options`` (the progress bar's
    total); each call takes all n·S chains."""
    if method == "repaint":
        steps = len(_ancestral(model, options.get("steps")).timesteps)
        levels = repaint_schedule(steps, options.get("jump_length", JUMP_LENGTH),
                                  options.get("resample", RESAMPLE))
        return sum(b < a for a, b in zip(levels[:-1], levels[1:], strict=True))
    scheduler = model.scheduler()
    scheduler.set_timesteps(_steps(model, options.get("steps")))
    return scheduler.nfe
