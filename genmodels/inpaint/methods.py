"""Inpainting with a VAE: complete the missing pixels of images from the observed ones.

Every method returns completions (n, S, C, H, W) equal to the images on observed pixels
(copied exactly) and to the model's fill on missing ones; ``mask`` is 1 on observed pixels.
With ``return_latents=True`` it returns ``(completions, codes)``, codes (n, S, D) being the
latent states z_s whose likelihood p(x | z_s) filled each completion (the mean, or a draw).

- ``map``: regularised MAP in latent space, or Langevin sampling around it (:func:`latent_map`);
- ``pseudo_gibbs``: alternate z ~ q(z|x) and x_miss ~ p(x_miss|z) (Rezende et al. 2014, "Stochastic
  backpropagation and approximate inference in deep generative models", ICML, appendix F);
- ``mwg``: Metropolis-within-Gibbs with the encoder as proposal (Mattei & Frellsen 2018,
  "Leveraging the exact likelihood of deep latent variable models", NeurIPS): a Markov chain
  whose stationary law is the model's exact conditional p(x_miss | x_obs);
- ``importance``: sampling importance resampling of codes weighted by p(x_obs, z) / q(z).

The Markov chains run n·S chains at once (S per image) and return each chain's last state.
Random draws use the global torch generator: seed it (``genmodels.utils.seed_everything``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent

from genmodels.inpaint.options import FINALS
from genmodels.models import VAE, vae

STARTS = ("black", "noise")


# --- shared pieces -------------------------------------------------------------------------------
def observed_log_likelihood(likelihood: Independent, x: Tensor, mask: Tensor) -> Tensor:
    """log p(x_obs | z) for a pixel-wise likelihood of batch shape (...) and event (C, H, W):
    the pixels are independent given z, so the missing ones are marginalised by leaving them
    out of the sum. Returns (...)."""
    pixel_log_probs = likelihood.base_dist.log_prob(x)
    return torch.where(mask.bool(), pixel_log_probs, 0.0).flatten(-3).sum(-1)


def defensive_codes(q: Distribution, prior: Distribution, count: int,
                    prior_share: float, components: int = 1) -> tuple[Tensor, Tensor]:
    """``count`` codes (count, n, D) from the defensive mixture (1 − a) q + a p(z), a =
    ``prior_share``, and their log-density (count, n) under it (Hesterberg 1995, "Weighted
    average importance sampling and defensive mixture distributions"). The importance
    weights p(x_obs | z) p(z) / mixture(z) then stay below max p(x_obs | z) / a: finite
    variance even where q is narrower than the posterior, as when few pixels are observed.

    With ``components`` = M > 1, q has batch shape (n·M,) and stands for n uniform mixtures,
    image i's M laws being rows i·M, ..., i·M + M − 1 (e.g. the encoder at M completions)."""
    if not 0 <= prior_share < 1:
        raise ValueError(f"prior_share should be in [0, 1), got {prior_share}")
    from_q = q.sample((count,)).unflatten(1, (-1, components))  # (count, n, M, D)
    pick = torch.randint(components, from_q.shape[:2], device=from_q.device)
    from_q = from_q.gather(2, pick[..., None, None].expand(-1, -1, 1, from_q.shape[-1]))[:, :, 0]
    from_prior = prior.sample(from_q.shape[:-1])
    use_prior = torch.rand(from_q.shape[:-1], device=from_q.device) < prior_share
    z = torch.where(use_prior[..., None], from_prior, from_q)
    log_q = q.log_prob(z.repeat_interleave(components, 1)).unflatten(1, (-1, components))
    log_q = torch.logsumexp(log_q, dim=2) - math.log(components)
    log_share = math.log(prior_share) if prior_share > 0 else -math.inf
    log_density = torch.logaddexp(math.log1p(-prior_share) + log_q,
                                  log_share + prior.log_prob(z))
    return z, log_density


def _data_range(model: VAE) -> tuple[float, float]:
    """The range of the images the model takes, as in ``VAE.check``."""
    config = model.config
    unit = config.likelihood == "bernoulli" or config.sigmoid_mean
    return (0.0 if unit else -1.0), 1.0


def encoder_input(model: VAE, x: Tensor) -> Tensor:
    """Images clamped to the data range: Gaussian draws may fall outside it. Any function of
    the current image is a valid proposal, so chains stay exact."""
    return x.clamp(*_data_range(model))


def _start_fill(model: VAE, x: Tensor, start: str) -> Tensor:
    """The chains' starting fill, shaped like x: ``"black"``, the data range's low end (the
    background of digits), or ``"noise"``, uniform over the data range."""
    if start not in STARTS:
        raise ValueError(f"start = {start!r}; choose one of: {', '.join(STARTS)}")
    low, high = _data_range(model)
    if start == "black":
        return torch.full_like(x, low)
    return low + (high - low) * torch.rand_like(x)


def chains(x: Tensor, mask: Tensor, samples: int) -> tuple[Tensor, Tensor]:
    """Each image and its mask repeated ``samples`` times in a row: (n·S, C, H, W)."""
    return x.repeat_interleave(samples, 0), mask.repeat_interleave(samples, 0)


def complete(x: Tensor, mask: Tensor, fill: Tensor) -> Tensor:
    """(n, S, C, H, W): ``x`` (n, C, H, W) where ``mask`` is 1, ``fill`` (n·S, C, H, W) or
    (n, S, C, H, W) elsewhere."""
    fill = fill.reshape(len(x), -1, *x.shape[1:])
    return torch.where(mask.bool()[:, None], x[:, None], fill)


def with_codes(completions: Tensor, codes: Tensor, samples: int,
            return_latents: bool) -> Tensor | tuple[Tensor, Tensor]:
    """Completions, with the codes (n·S, D) or (n, S, D) reshaped to (n, S, D) if asked."""
    if return_latents:
        return completions, codes.reshape(len(completions), samples, -1)
    return completions


def check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} should be positive, got {value}")


def _check_final(final: str) -> None:
    if final not in FINALS:
        raise ValueError(f"final = {final!r}; choose one of: {', '.join(FINALS)}")


# --- latent MAP and Langevin ---------------------------------------------------------------------
def latent_map(model: VAE, x: Tensor, mask: Tensor, samples: int, *, steps: int = 300,
               lr: float = 0.05, weight: float = 0.1, langevin: bool = False,
               step_size: float = 1e-4) -> Tensor:
    """Codes (n, S, D) minimising E(z) = ‖m ⊙ (x − g(z))‖² + λ‖z‖², g(z) = decode(z).mean,
    with Adam (``steps``, ``lr``) from S prior draws per image, all n·S chains at once.

    ``langevin=True`` then runs ``steps`` unadjusted Langevin steps of size ``step_size`` on
    exp(−E(z) / 2λ), the exact posterior of a Gaussian decoder of variance λ = ``weight``:
    z ← z − ε ∇E / 2λ + √(2ε) ξ, so that the S completions are samples, not S local optima.
    """
    check_positive("steps", steps)
    chain_x, chain_mask = chains(x, mask, samples)

    def energy_gradient(z: Tensor) -> Tensor:
        residual = chain_mask * (chain_x - model.decode(z).mean)
        energy = residual.pow(2).sum() + weight * z.pow(2).sum()
        return torch.autograd.grad(energy, z)[0]

    z = model.prior().sample((len(chain_x),)).requires_grad_()
    optimizer = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            z.grad = energy_gradient(z)
            optimizer.step()
        for _ in range(steps if langevin else 0):
            noise = math.sqrt(2 * step_size) * torch.randn_like(z)
            z = (z - step_size / (2 * weight) * energy_gradient(z) + noise).requires_grad_()
    return z.detach().view(-1, samples, z.shape[-1])


def _map_completions(model: VAE, x: Tensor, mask: Tensor, samples: int, *,
                     return_latents: bool = False, **options) -> Tensor | tuple[Tensor, Tensor]:
    """Completions filled with g(z) at the codes of :func:`latent_map`."""
    codes = latent_map(model, x, mask, samples, **options)
    with torch.no_grad():
        completions = complete(x, mask, model.decode(codes).mean)
    return with_codes(completions, codes, samples, return_latents)


# --- Markov chains ------------------------------------------------------------------------------
@torch.no_grad()
def pseudo_gibbs(model: VAE, x: Tensor, mask: Tensor, samples: int, *, steps: int = 200,
                 final: str = "sample", start: str = "black",
                 return_latents: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Rezende et al. (2014): from a starting fill (``start``, see :func:`_start_fill`),
    ``steps`` times z ~ q(z | x_current) then x_miss ~ p(x_miss | z). Its stationary law is
    p(x_miss | x_obs) only when q is the exact posterior. ``final="mean"`` outputs the
    likelihood's mean at the last z."""
    check_positive("steps", steps)
    _check_final(final)
    chain_x, chain_mask = chains(x, mask, samples)
    observed = chain_mask.bool().expand_as(chain_x)
    current = torch.where(observed, chain_x, _start_fill(model, chain_x, start))
    current, z, likelihood = _pseudo_gibbs_steps(model, chain_x, observed, current, steps)
    completions = complete(x, mask, likelihood.mean if final == "mean" else current)
    return with_codes(completions, z, samples, return_latents)


def _pseudo_gibbs_steps(model: VAE, chain_x: Tensor, observed: Tensor, current: Tensor,
                        steps: int) -> tuple[Tensor, Tensor, Independent]:
    """``steps`` (≥ 1) pseudo-Gibbs sweeps from the full images ``current``; returns the last
    images, codes and likelihood."""
    for _ in range(steps):
        z = model.encode(encoder_input(model, current)).sample()
        likelihood = model.decode(z)
        current = torch.where(observed, chain_x, likelihood.sample())
    return current, z, likelihood


@torch.no_grad()
def metropolis_within_gibbs(model: VAE, x: Tensor, mask: Tensor, samples: int, *,
                            steps: int = 200, burn_in: int = 100, final: str = "sample",
                            start: str = "black",
                            return_latents: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Mattei & Frellsen (2018), algorithm 1: the state is (z, x_miss); each step proposes
    z' ~ q(z | x) for the current full image x, accepts it with probability
    min(1, p(x|z') p(z') q(z|x) / (p(x|z) p(z) q(z'|x))), then draws x_miss ~ p(x_miss | z).
    The chain targets the exact p(z, x_miss | x_obs). q is ``model.proposal`` (the encoder, or
    a Normal of std 0.5 around a deterministic encoder's code). ``final="mean"`` outputs the
    likelihood's mean at the last z instead of the last draw.

    The chains start with the missing pixels black (``start="black"``; ``"noise"``: uniform)
    and run ``burn_in`` pseudo-Gibbs sweeps first (:func:`pseudo_gibbs`). Any starting state
    leaves the stationary law exact; the warm start only shortens the transient. Without it the
    chains of the 50-D IWAE accept ~5% of proposals and, with the top half missing, still
    predict the truth worse than pseudo-Gibbs after 200 steps (docs/inpainting.md)."""
    check_positive("steps", steps)
    _check_final(final)
    if burn_in < 0:
        raise ValueError(f"burn_in should be >= 0, got {burn_in}")
    chain_x, chain_mask = chains(x, mask, samples)
    observed = chain_mask.bool().expand_as(chain_x)
    prior = model.prior()
    current = torch.where(observed, chain_x, _start_fill(model, chain_x, start))
    if burn_in:
        current = _pseudo_gibbs_steps(model, chain_x, observed, current, burn_in)[0]
    z = model.proposal(encoder_input(model, current)).sample()
    for _ in range(steps):
        q = model.proposal(encoder_input(model, current))
        pair = torch.stack([q.sample(), z])  # (2, n·S, D): proposed, current
        likelihoods = model.decode(pair)
        log_weights = likelihoods.log_prob(current) + prior.log_prob(pair) - q.log_prob(pair)
        accept = torch.rand_like(log_weights[0]).log() < log_weights[0] - log_weights[1]
        z = torch.where(accept[:, None], pair[0], pair[1])
        current = torch.where(observed, chain_x, _pick(accept, likelihoods.sample()))
    completions = complete(x, mask,
                            _pick(accept, likelihoods.mean) if final == "mean" else current)
    return with_codes(completions, z, samples, return_latents)


def _pick(accept: Tensor, pair: Tensor) -> Tensor:
    """pair[0] where ``accept`` (N,) else pair[1], for pairs (2, N, ...)."""
    return torch.where(accept.view(-1, *[1] * (pair.dim() - 2)), pair[0], pair[1])


# --- importance resampling ----------------------------------------------------------------------
@torch.no_grad()
def importance_resampling(model: VAE, x: Tensor, mask: Tensor, samples: int, *,
                          k: int = 1000, prior_share: float = 0.1, final: str = "sample",
                          return_latents: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Sampling importance resampling (Rubin 1988): k codes z_j from the defensive mixture
    r = (1 − a) q(z | x̃) + a p(z) (:func:`defensive_codes`, a = ``prior_share``), where x̃
    is x with its missing pixels black (the data range's low end); self-normalised weights
    w_j ∝ p(x_obs | z_j) p(z_j) / r(z_j); S codes resampled with replacement, then
    x_miss ~ p(x_miss | z) (or its mean with ``final="mean"``). Approaches p(x_miss | x_obs)
    as k grows; codes are decoded in chunks of ``vae.IMAGES_PER_CHUNK`` images."""
    check_positive("the number k of importance samples", k)
    _check_final(final)
    q = model.proposal(torch.where(mask.bool(), x, _data_range(model)[0]))
    prior = model.prior()
    chunk = max(1, min(k, vae.IMAGES_PER_CHUNK // len(x)))
    codes, log_weights = [], []
    for start in range(0, k, chunk):
        z, log_proposal = defensive_codes(q, prior, min(chunk, k - start), prior_share)
        log_weights.append(observed_log_likelihood(model.decode(z), x, mask)
                           + prior.log_prob(z) - log_proposal)
        codes.append(z)
    z, log_w = torch.cat(codes).transpose(0, 1), torch.cat(log_weights).T  # (n, k, D), (n, k)
    index = torch.multinomial(torch.softmax(log_w, dim=1), samples, replacement=True)
    chosen = torch.gather(z, 1, index[..., None].expand(-1, -1, z.shape[-1]))  # (n, S, D)
    likelihood = model.decode(chosen)
    completions = complete(x, mask, likelihood.mean if final == "mean" else likelihood.sample())
    return with_codes(completions, chosen, samples, return_latents)


METHODS: dict[str, Callable[..., Tensor | tuple[Tensor, Tensor]]] = {
    "map": _map_completions,
    "pseudo_gibbs": pseudo_gibbs,
    "mwg": metropolis_within_gibbs,
    "importance": importance_resampling,
}
