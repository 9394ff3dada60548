"""GAN objectives as plain functions of critic outputs (logits for the probabilistic ones), and
the gradient penalties a critic's loss can add.

Each loss kind gives (critic_loss, generator_loss); both are minimised. Shapes: d_real (n,),
d_fake (m,) -> 0-d tensors.

- minimax: Goodfellow et al. 2014, G minimises log(1 - D(G(z)));
- non_saturating: the same critic, G minimises -log D(G(z));
- hinge: Lim & Ye 2017, Miyato et al. 2018;
- least_squares: Mao et al. 2017 (a = 0, b = c = 1);
- wasserstein: Arjovsky et al. 2017, E D(x̃) − E D(x); its critic needs a Lipschitz bound,
  e.g. the ``gp`` penalty (WGAN-GP, Gulrajani et al. 2017) or spectral norm.

Penalties (:data:`PENALTIES`), added to the critic's loss times λ: ``gp``,
:func:`gradient_penalty`; ``r1``, :func:`r1_penalty`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Critic = Callable[[Tensor], Tensor]  # (n, ...) -> (n,)


def _logistic_critic(d_real: Tensor, d_fake: Tensor) -> Tensor:
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


CRITIC_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "minimax": _logistic_critic,
    "non_saturating": _logistic_critic,
    "hinge": lambda d_real, d_fake: F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean(),
    "least_squares": lambda d_real, d_fake: 0.5 * ((d_real - 1).pow(2).mean()
                                                   + d_fake.pow(2).mean()),
    "wasserstein": lambda d_real, d_fake: d_fake.mean() - d_real.mean(),
}

GENERATOR_LOSSES: dict[str, Callable[[Tensor], Tensor]] = {
    "minimax": lambda d_fake: -F.softplus(d_fake).mean(),
    "non_saturating": lambda d_fake: F.softplus(-d_fake).mean(),
    "hinge": lambda d_fake: -d_fake.mean(),
    "least_squares": lambda d_fake: 0.5 * (d_fake - 1).pow(2).mean(),
    "wasserstein": lambda d_fake: -d_fake.mean(),
}


def gradient_penalty(critic: Critic, real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """E (‖∇_x D(x̂)‖₂ − 1)² at x̂ = ε real + (1 − ε) fake, ε ~ U(0, 1) per example
    (Gulrajani et al. 2017). ``critic`` maps (n, ...) to (n,)."""
    eps = torch.rand(len(real), *[1] * (real.dim() - 1), generator=generator,
                     device=real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def r1_penalty(critic: Critic, real: Tensor) -> Tensor:
    """½ E_real ‖∇_x D(x)‖₂² on real examples only (Mescheder et al. 2018, "Which training
    methods for GANs do actually converge?"), so that λ times it is their (γ/2) E ‖∇D‖² with
    γ = λ. ``critic`` maps (n, ...) to (n,); differentiable in its weights."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(real).sum(), real, create_graph=True)
    return 0.5 * grad.flatten(1).pow(2).sum(1).mean()


# penalty name -> (its key in the loss logs, (critic, real, fake) -> 0-d tensor)
PENALTIES: dict[str, tuple[str, Callable[[Critic, Tensor, Tensor], Tensor]]] = {
    "gp": ("gradient_penalty", gradient_penalty),
    "r1": ("r1_penalty", lambda critic, real, fake: r1_penalty(critic, real)),
}
