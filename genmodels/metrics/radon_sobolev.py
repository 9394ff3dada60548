"""The function xi of the Radon-Sobolev distance to N(0, I_D) (Turinici 2019, arXiv:1911.13135).

For G, G' ~ N(0, I_D) independent, xi(x) = E|x e_1 - G| - (1/2) E|G - G'|, so that the squared
energy distance between a law mu and N(0, I_D) is 2 [E_mu xi(|Z|) - (1/2) E_mu |Z - Z'|].
|x e_1 - G|^2 is noncentral chi-square with D degrees of freedom and noncentrality x^2, a
Poisson(x^2 / 2) mixture of central chi-squares with D + 2k degrees of freedom, whence

    E|x e_1 - G| = sqrt(2) sum_k Pois(k; x^2/2) a_k,    a_k = Gamma(D/2 + 1/2 + k) / Gamma(D/2 + k),
    d/dx E|x e_1 - G| = sqrt(2) x sum_k Pois(k; x^2/2) a_k / (D + 2k),

the latter from d/dlam Pois(k; lam) = Pois(k - 1; lam) - Pois(k; lam) and a_{k+1} - a_k =
a_k / (D + 2k). The series needs ~24 sqrt(lam) terms, lam = x^2 / 2. For large x, from
E|x e_1 - G| = sqrt(2) Gamma((D + 1)/2) / Gamma(D/2) 1F1(-1/2; D/2; -lam) (the mean of a
noncentral chi) and the large-argument expansion of 1F1 (DLMF 13.7.2, dropping a relative
O(e^-lam) part),

    E|x e_1 - G| = x sum_n t_n,    d/dx E|x e_1 - G| = sum_n (1 - 2n) t_n,
    t_0 = 1,    t_{n+1} = t_n (n - 1/2)(n + 1/2 - D/2) / ((n + 1) lam),

so E|x e_1 - G| = x + (D - 1)/(2x) - (D - 1)(D - 3)/(8x^3) + ... For lam >= D + 120, each
|t_{n+1} / t_n| <= 1/2 for n < 60, and 60 terms leave a relative error below 1e-17: that is
where ``xi_exact`` switches from the series to the expansion.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

_TAIL_SIGMAS = 12  # Poisson terms beyond lam +- (12 sqrt(lam) + 30) weigh less than 1e-30
_TAIL_EXTRA = 30
_EXPANSION_TERMS = 60  # terms of the large-radius expansion, used for lam >= D + 120
_BLOCK_ENTRIES = 2**20  # Poisson terms summed at once: 8 MB per float64 temporary


def expected_norm_gaussian(dim: int) -> float:
    """E|G| for G ~ N(0, I_dim): sqrt(2) Gamma((dim + 1) / 2) / Gamma(dim / 2)."""
    _check_dim(dim)
    return math.sqrt(2) * math.exp(math.lgamma((dim + 1) / 2) - math.lgamma(dim / 2))


def _check_dim(dim: int) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive int, got {dim!r}")


def _expansion_from(dim: int) -> float:
    """The lam = r^2 / 2 from which the large-radius expansion is used (module docstring)."""
    return dim + 2.0 * _EXPANSION_TERMS


def _window(dim: int) -> int:
    """Number of Poisson terms that covers lam +- (12 sqrt(lam) + 30) for any lam below
    ``_expansion_from(dim)``: about 24 sqrt(dim + 120) + 62."""
    return math.ceil(2 * (_TAIL_SIGMAS * math.sqrt(_expansion_from(dim)) + _TAIL_EXTRA)) + 2


def _log_weights(dim: int, count: int, device: torch.device) -> Tensor:
    """log(a_k / k!) for k = 0 .. count - 1, float64: the Poisson series' terms are
    sqrt(2) exp(k log lam - lam + log(a_k / k!))."""
    k = torch.arange(count, dtype=torch.float64, device=device)
    return torch.lgamma(dim / 2 + 0.5 + k) - torch.lgamma(dim / 2 + k) - torch.lgamma(k + 1)


def _poisson_series(r: Tensor, lam: Tensor, dim: int, first: Tensor, width: int,
                    log_weights: Tensor) -> tuple[Tensor, Tensor]:
    """E|r e_1 - G| and its derivative in r, float64 (m,), for r and lam = r^2 / 2 (m,), by the
    series over k = first .. first + width - 1 (first (m,) int64) of each element."""
    k = first[:, None] + torch.arange(width, device=r.device)  # (m, width)
    terms = k.to(torch.float64)
    weighted = torch.exp(torch.xlogy(terms, lam[:, None]) - lam[:, None] + log_weights[k])
    return (math.sqrt(2) * weighted.sum(1),
            math.sqrt(2) * r * (weighted / (dim + 2 * terms)).sum(1))


def _expansion(r: Tensor, lam: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """E|r e_1 - G| and its derivative in r, float64 (m,), by the large-radius expansion
    (module docstring), right to 1e-17 for lam = r^2 / 2 >= ``_expansion_from(dim)``; inf and
    derivative +-1 for r = +-inf, NaN for NaN."""
    n = torch.arange(_EXPANSION_TERMS - 1, dtype=torch.float64, device=r.device)
    ratios = (n - 0.5) * (n + 0.5 - dim / 2) / (n + 1)  # t_{n+1} / t_n times lam
    terms = torch.cumprod(ratios / lam[:, None], dim=1)  # (m, 59): t_1 .. t_59
    return r.abs() * (1 + terms.sum(1)), r.sign() * (1 - (terms * (1 + 2 * n)).sum(1))


def _block(r: Tensor, dim: int, terms: int | None,
           log_weights: Tensor) -> tuple[Tensor, Tensor]:
    """E|r e_1 - G| and its derivative for a block of radii r (m,), float64 (``xi_exact``)."""
    lam = r.square() / 2
    if terms is not None:
        return _poisson_series(r, lam, dim, torch.zeros_like(r, dtype=torch.long), terms,
                               log_weights)
    near = lam < _expansion_from(dim)  # False for inf and NaN
    near_lam = torch.where(near, lam, 0.0)
    first = (near_lam - _TAIL_SIGMAS * near_lam.sqrt() - _TAIL_EXTRA).floor().clamp_min(0)
    series = _poisson_series(r, near_lam, dim, first.long(), _window(dim), log_weights)
    expansion = _expansion(r, torch.where(near, _expansion_from(dim), lam), dim)
    return tuple(torch.where(near, from_series, from_expansion)
                 for from_series, from_expansion in zip(series, expansion, strict=True))


def _expected_distance(r: Tensor, dim: int, terms: int | None) -> tuple[Tensor, Tensor]:
    """E|r e_1 - G| and its derivative in r, float64 with r's shape: k = 0 .. terms - 1 of the
    Poisson series if ``terms``, else the series over each element's window of ``_window(dim)``
    terms below the switch and the expansion above it (and for inf or NaN). Radii go in blocks
    of at most ``_BLOCK_ENTRIES`` terms: memory O(numel(r) + _BLOCK_ENTRIES), whatever the
    radii."""
    flat = r.detach().to(torch.float64).reshape(-1)
    width = _window(dim) if terms is None else terms
    count = width if terms is not None else width + math.ceil(_expansion_from(dim))
    log_weights = _log_weights(dim, count, flat.device)
    rows = max(1, _BLOCK_ENTRIES // max(width, _EXPANSION_TERMS))
    blocks = [_block(flat[start:start + rows], dim, terms, log_weights)
              for start in range(0, max(len(flat), 1), rows)]
    value, derivative = (torch.cat(parts) for parts in zip(*blocks, strict=True))
    return value.reshape(r.shape), derivative.reshape(r.shape)


class _ExpectedDistance(torch.autograd.Function):
    """E|r e_1 - G| for G ~ N(0, I_dim), with the analytic derivative in backward."""

    @staticmethod
    def forward(ctx: FunctionCtx, r: Tensor, dim: int, terms: int | None) -> Tensor:
        value, derivative = _expected_distance(r, dim, terms)
        ctx.save_for_backward(derivative.to(r.dtype))
        return value.to(r.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor, None, None]:
        (derivative,) = ctx.saved_tensors
        return grad * derivative, None, None


def xi_exact(r: Tensor, dim: int, terms: int | None = None) -> Tensor:
    """xi(r) = E|r e_1 - G| - (1/2) E|G - G'| for G, G' ~ N(0, I_dim), elementwise.

    r: float tensor of radii, any shape (xi is even in r). Computed in float64 (module
    docstring), returned in r's dtype; differentiable once, through the analytic derivative
    (0 at r = 0). By default each element with r^2 / 2 < D + 120 sums the ~24 sqrt(D + 120)
    + 62 Poisson terms around its Poisson mean (neglecting a mass below 1e-30), and larger
    radii use the large-radius expansion (60 terms, relative error below 1e-17): memory
    O(numel(r)) plus blocks of 2^20 terms, whatever the radii; r = inf gives inf (slope 1), NaN
    gives NaN. ``terms`` sums k = 0 .. terms - 1 of the series for every element instead.
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
