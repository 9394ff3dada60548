"""SGD-G2: SGD whose learning rate adapts from a second gradient at a trial point.

Ayadi & Turinici, "Stochastic Runge-Kutta methods and adaptive SGD-G2 stochastic gradient
descent", ICPR 2020, arXiv 2002.09304. With g = ∇f_B(θ) and g̃ = ∇f_B(θ − h g) on the same
mini-batch B, one step is::

    h_opt = 2 h <g - g̃, g> / |g - g̃|^2    if <g - g̃, g> > 0, else h
    h     = β h + (1 - β) h_opt            if h <= h_opt, else (1 - β) h_opt
    θ     = θ - h g                        (with the updated h)

On f(x) = a x²/2, g - g̃ = h a g, so h_opt = 2/a: the rate settles just inside the stable
range (0, 2/a) of gradient descent.

Gradient clipping (``max_grad_norm``) clips only the applied step, θ - h clip(g): h comes from
the unclipped g and g̃, whose difference measures curvature. Clipping both would measure a change
of direction instead: on a quadratic of curvatures 100 and 1 from θ = (1, 1), h = 0.01, clip 1,
h then froze at 0.0100-0.0105 over 30 steps, where the unclipped rate goes from 0.011 up to 0.19.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer


class SGDG2(Optimizer):
    """SGD-G2 with one global rate h: the inner products run over every parameter of every
    group, so the rate is the paper's single scalar and not one per tensor or per group.

    h is kept in ``param_groups[i]["lr"]`` (the same value in every group), so ``state_dict``
    carries it and a run resumes where it stopped. Each :meth:`step` evaluates the closure
    twice: two gradient evaluations per step. The second evaluation replays the random number
    generators of the first, so dropout masks and reparameterisation noise are the same at θ
    and at the trial point: the same f_B is differentiated twice. If the trial evaluation raises
    (e.g. the Trainer's non-finite loss stop), the parameters are put back at θ first.
    """

    requires_closure = True  # the Trainer refuses AMP with it (GradScaler takes no closure)
    adapts_lr = True  # schedules must leave param_groups' lr alone (see make_scheduler)

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, beta: float = 0.9,
                 max_grad_norm: float = 0.0) -> None:
        if not max_grad_norm >= 0:
            raise ValueError(f"SGD-G2 needs max_grad_norm >= 0 (0 = off), got {max_grad_norm}")
        self.max_grad_norm = max_grad_norm
        # the Trainer leaves clipping to the optimiser: it must not clip g and g̃ in the closure
        self.clips_gradients = max_grad_norm > 0
        super().__init__(params, {"lr": lr, "beta": beta})

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        lr = param_group.get("lr", self.defaults["lr"])
        beta = param_group.get("beta", self.defaults["beta"])
        if not lr > 0:
            raise ValueError(f"SGD-G2 needs an initial learning rate > 0, got lr={lr}")
        if not 0 <= beta < 1:
            raise ValueError(f"SGD-G2 needs 0 <= beta < 1, got beta={beta}")
        if self.param_groups and (lr, beta) != (self.param_groups[0]["lr"],
                                                self.param_groups[0]["beta"]):
            raise ValueError("SGD-G2 adapts one rate shared by all parameter groups: give every "
                             f"group the same lr and beta, not {lr}, {beta} after "
                             f"{self.param_groups[0]['lr']}, {self.param_groups[0]['beta']}")
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:
        """One SGD-G2 step. ``closure()`` must zero the gradients, compute the loss on the
        current mini-batch, call ``backward()`` and return the loss. Returns the loss at θ,
        before the step."""
        if closure is None:
            raise RuntimeError("SGD-G2 re-evaluates the gradient at a trial point: call "
                               "step(closure) with a closure that zeroes the gradients, "
                               "computes the loss, calls backward() and returns the loss")
        params = [p for group in self.param_groups for p in group["params"]]
        h, beta = self.param_groups[0]["lr"], self.param_groups[0]["beta"]
        cuda = sorted({p.device.index for p in params if p.device.type == "cuda"})
        rng_cpu = torch.get_rng_state()
        rng_cuda = [torch.cuda.get_rng_state(i) for i in cuda]

        with torch.enable_grad():
            loss = closure()
        thetas = [p.clone() for p in params]  # copies: θ must survive the trial move
        grads = [_grad(p).clone() for p in params]
        for p, g in zip(params, grads, strict=True):
            p.sub_(g, alpha=h)
        try:
            with torch.random.fork_rng(devices=cuda), torch.enable_grad():
                torch.set_rng_state(rng_cpu)
                for i, state in zip(cuda, rng_cuda, strict=True):
                    torch.cuda.set_rng_state(state, i)
                closure()  # g̃ = ∇f_B(θ - h g), left in p.grad
        except BaseException:
            for p, theta, g in zip(params, thetas, grads, strict=True):
                p.copy_(theta)
                p.grad = g
            raise
        diffs = [g - _grad(p) for p, g in zip(params, grads, strict=True)]
        dot = sum(torch.sum(d * g, dtype=torch.float64) for d, g in zip(diffs, grads, strict=True))
        square = sum(torch.sum(d * d, dtype=torch.float64) for d in diffs)
        dot, square = float(dot), float(square)

        h_opt = 2 * h * dot / square if dot > 0 else h
        h = beta * h + (1 - beta) * h_opt if h <= h_opt else (1 - beta) * h_opt
        if self.max_grad_norm > 0:
            norm = torch.nn.utils.get_total_norm(grads)
            grads = torch._foreach_mul(grads, (self.max_grad_norm / (norm + 1e-6)).clamp(max=1))
        for p, theta, g in zip(params, thetas, grads, strict=True):
            p.copy_(theta).sub_(g, alpha=h)
            p.grad = g  # the gradient the step used, as after a one-evaluation optimiser
        for group in self.param_groups:
            group["lr"] = h
        return loss


def _grad(p: Tensor) -> Tensor:
    """p's gradient; zeros where the loss does not reach p."""
    return p.grad if p.grad is not None else torch.zeros_like(p)
