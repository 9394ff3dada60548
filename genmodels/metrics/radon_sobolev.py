"""The function xi of the Radon-Sobolev distance to N(0, I_D) (Turinici 2019, arXiv:1911.13135).

For G, G' ~ N(0, I_D) independent, xi(x) = E|x e_1 - G| - (1/2) E|G - G'|, so that the squared
energy distance between a law mu and N(0, I_D) is 2 [E_mu xi(|Z|) - (1/2) E_mu |Z - Z'|].
|x e_1 - G|^2 is noncentral chi-square with D degrees of freedom and noncentrality x^2, a
Poisson(x^2 / 2) mixture of central chi-squares with D + 2k degrees of freedom, whence

    E|x e_1 - G| = sqrt(2) sum_k Pois(k; x^2/2) a_k,    a_k = Gamma(D/2 + 1/2 + k) / Gamma(D/2 + k),
    d/dx E|x e_1 - G| = sqrt(2) x sum_k Pois(k; x^2/2) a_k / (D + 2k),

the latter from d/dlam Pois(k; lam) = Pois(k - 1; lam) - Pois(k; lam) and a_{k+1} - a_k =
a_k / (D + 2k).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

_TAIL_SIGMAS = 12  # Poisson terms beyond lam +- (12 sqrt(lam) + 30) weigh less than 1e-30
_TAIL_EXTRA = 30


def expected_norm_gaussian(dim: int) -> float:
    """E|G| for G ~ N(0, I_dim): sqrt(2) Gamma((dim + 1) / 2) / Gamma(dim / 2)."""
    _check_dim(dim)
    return math.sqrt(2) * math.exp(math.lgamma((dim + 1) / 2) - math.lgamma(dim / 2))


def _check_dim(dim: int) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}")


def _poisson_series(r: Tensor, dim: int, terms: int | None) -> tuple[Tensor, Tensor]:
    """E|r e_1 - G| and its derivative in r, float64 with r's shape, by the Poisson series.

    ``terms=None`` sums, for each lam = r^2 / 2, the k within lam +- (12 sqrt(lam) + 30), a
    window as wide for all elements as the widest needs; an int sums k = 0 .. terms - 1.
    """
    r = r.detach().to(torch.float64)
    lam = r.reshape(-1, 1).square() / 2
    if terms is None:
        spread = _TAIL_SIGMAS * lam.sqrt() + _TAIL_EXTRA
        width = math.ceil(2 * spread.max().item()) + 2
        k = (lam - spread).floor().clamp_min(0) + torch.arange(width, device=r.device)
    else:
        k = torch.arange(terms, dtype=torch.float64, device=r.device)
    log_poisson = torch.xlogy(k, lam) - lam - torch.lgamma(k + 1)
    log_a = torch.lgamma(dim / 2 + 0.5 + k) - torch.lgamma(dim / 2 + k)
    weighted = torch.exp(log_poisson + log_a)  # (numel(r), number of terms)
    value = math.sqrt(2) * weighted.sum(1)
    derivative = math.sqrt(2) * r.reshape(-1) * (weighted / (dim + 2 * k)).sum(1)
    return value.reshape(r.shape), derivative.reshape(r.shape)


class _ExpectedDistance(torch.autograd.Function):
    """E|r e_1 - G| for G ~ N(0, I_dim), with the analytic derivative in backward."""

    @staticmethod
    def forward(ctx: FunctionCtx, r: Tensor, dim: int, terms: int | None) -> Tensor:
        value, derivative = _poisson_series(r, dim, terms)
        ctx.save_for_backward(derivative.to(r.dtype))
        return value.to(r.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor, None, None]:
        (derivative,) = ctx.saved_tensors
        return grad * derivative, None, None


def xi_exact(r: Tensor, dim: int, terms: int | None = None) -> Tensor:
    """xi(r) = E|r e_1 - G| - (1/2) E|G - G'| for G, G' ~ N(0, I_dim), elementwise.

    r: float tensor of radii, any shape (xi is even in r). Summed in float64 by the Poisson
    series (module docstring), returned in r's dtype; differentiable once, through the
    analytic derivative (0 at r = 0). ``terms`` fixes the series to k = 0 .. terms - 1;
    by default each element sums the ~24 sqrt(max r^2 / 2) + 60 terms around its Poisson
    mean, neglecting a Poisson mass below 1e-30. Memory O(numel(r) * number of terms).
    """
    _check_dim(dim)
    if terms is not None and terms < 1:
        raise ValueError(f"terms must be a positive int or None, got {terms}")
    return _ExpectedDistance.apply(r, dim, terms) - expected_norm_gaussian(dim) / math.sqrt(2)


def xi_smooth(r: Tensor, dim: int) -> Tensor:
    """sqrt(r^2 + c_1) + c_0, the smooth stand-in for ``xi_exact`` (Turinici 2019), elementwise.

    c_1 = 1 / xi''(0)^2 and c_0 = xi(0) - 1 / xi''(0) match xi's value and curvature at 0,
    with xi(0) = E|G| (1 - 1/sqrt(2)) and xi''(0) = Gamma(1/2 + D/2) / (sqrt(2) Gamma(1 + D/2));
    like xi it grows as r + O(1) for large r.
    """
    _check_dim(dim)
    curvature = math.exp(math.lgamma(0.5 + dim / 2) - math.lgamma(1 + dim / 2)) / math.sqrt(2)
    xi_at_zero = expected_norm_gaussian(dim) * (1 - 1 / math.sqrt(2))
    return torch.sqrt(r.square() + 1 / curvature**2) + xi_at_zero - 1 / curvature
