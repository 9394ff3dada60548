"""How good are completions: pixel error, what a classifier sees in them, and the model's own
conditional likelihood -log p(x_miss | x_obs).

Completions are (n, S, C, H, W), truths (n, C, H, W), masks (n, 1, H, W) with 1 = observed.
``classifier`` is any callable from images (N, C, H, W) to logits (N, classes), such as
``genmodels.classifier()``, which takes images in [0, 1] (use ``final="mean"`` completions of a
Gaussian decoder, whose draws can leave that range).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genmodels.inpaint.masks import check_mask
from genmodels.inpaint.methods import defensive_codes, encoder_input, observed_log_likelihood
from genmodels.metrics.features import apply_in_batches
from genmodels.models import VAE, vae
from genmodels.nets.classifier import INFERENCE_BATCH

ImageClassifier = Callable[[Tensor], Tensor]  # images (N, C, H, W) -> logits (N, classes)


def masked_mse(completions: Tensor, truth: Tensor, mask: Tensor) -> float:
    """Squared error per missing pixel (and channel), averaged over each image's completions,
    then over images."""
    missing = (1 - mask)[:, None].expand_as(completions)
    squared = (completions - truth[:, None]).pow(2) * missing
    per_image = squared.flatten(1).sum(1) / missing.flatten(1).sum(1)
    return float(per_image.mean())


@torch.no_grad()
def completion_classes(completions: Tensor, classifier: ImageClassifier) -> Tensor:
    """(n, S) classes the classifier gives the completions, in batches of
    ``INFERENCE_BATCH`` images (whose activations stay in cache)."""
    n, samples = completions.shape[:2]
    images = completions.flatten(0, 1)  # (n S, C, H, W)
    return torch.cat(apply_in_batches(lambda batch: classifier(batch).argmax(1), images,
                                      INFERENCE_BATCH, images.device)).view(n, samples)


def classifier_accuracy(completions: Tensor, labels: Tensor, classifier: ImageClassifier) -> float:
    """Share of all n·S completions classified as their image's label (n,)."""
    classes = completion_classes(completions, classifier)
    return float((classes == labels.to(classes.device)[:, None]).float().mean())


def true_class_share(completions: Tensor, labels: Tensor, classifier: ImageClassifier) -> float:
    """Share of images whose label is the class of at least one of their S completions."""
    classes = completion_classes(completions, classifier)
    return float((classes == labels.to(classes.device)[:, None]).any(1).float().mean())


def completion_class_entropy(completions: Tensor, classifier: ImageClassifier) -> float:
    """Entropy (nats) of the empirical law of each image's S completion classes, averaged over
    images: 0 when all completions of an image look alike, up to log min(S, classes)."""
    classes = completion_classes(completions, classifier)
    counts = torch.zeros(len(classes), int(classes.max()) + 1, device=classes.device)
    counts.scatter_add_(1, classes, torch.ones_like(classes, dtype=counts.dtype))
    shares = counts / classes.shape[1]
    entropy = -(shares * torch.log(shares.clamp_min(1e-30))).sum(1)
    return float(entropy.mean())


def _check_binary(model: VAE, x: Tensor, what: str) -> None:
    if model.config.likelihood == "bernoulli" and not ((x == 0) | (x == 1)).all():
        raise ValueError(f"{what} of a Bernoulli model needs binary images: grey levels "
                         "have no probability under it (use genmodels.data.static_binarize)")


@torch.no_grad()
def predictive_nll(model: VAE, x: Tensor, mask: Tensor, codes: Tensor) -> Tensor:
    """(n,) log predictive score in nats of a method's completions, −log (1/S) Σ_s
    p(x_miss | z_s): the true missing pixels of ``x`` (n, C, H, W) under the mixture of the
    likelihoods at the codes (n, S, D) behind its S completions (``inpaint(...,
    return_latents=True)``). When the z_s are draws from p(z | x_obs) (Metropolis-within-Gibbs
    at stationarity) the mixture's expectation is p(x_miss | x_obs), so the score estimates
    the model's conditional NLL, from above on average (Jensen), the bias shrinking as S grows.
    """
    model.check(x)
    check_mask(mask, x)
    _check_binary(model, x, "predictive_nll")
    if codes.dim() != 3 or codes.shape[0] != len(x) or codes.shape[1] < 1 \
            or codes.shape[2] != model.latent_dim:
        raise ValueError(f"codes should be (n, S, D) = ({len(x)}, S, {model.latent_dim}), "
                         f"got {tuple(codes.shape)}")
    missing = 1 - mask.to(x.device)[:, None]  # (n, 1, 1 or C, H, W)
    log_p_missing = observed_log_likelihood(model.decode(codes.to(x.device)), x[:, None],
                                            missing)  # (n, S)
    return math.log(codes.shape[1]) - torch.logsumexp(log_p_missing, dim=1)


@torch.no_grad()
def conditional_nll(model: VAE, x: Tensor, mask: Tensor, k: int = 1000,
                    prior_share: float = 0.1, completions: Tensor | None = None) -> Tensor:
    """(n,) −log p(x_miss | x_obs) = log p(x_obs) − log p(x) in nats, for the model's likelihood.

    Both terms are importance-sampled (Burda et al. 2016) with k codes each, from defensive
    mixtures (1 − a) q + a p(z), a = ``prior_share`` (see
    :func:`~genmodels.inpaint.methods.defensive_codes`); q is ``model.proposal``:

    - p(x) ≈ (1/k) Σ_j p(x | z_j) p(z_j) / r(z_j) with q = q(z | x) on the FULL image x (the
      truth is known here);
    - p(x_obs) the same with p(x_obs | z_j), the missing pixels marginalised out of the
      pixel-wise likelihood. Its posterior p(z | x_obs) is wider than q(z | x) where the
      observed pixels are ambiguous (a half digit); then draws from q(z | x) alone miss part of
      p(x_obs) and the estimate comes out too LOW. Give ``completions`` (n, S, C, H, W), e.g.
      Metropolis-within-Gibbs draws from p(x_miss | x_obs), and q becomes the uniform mixture
      of q(z | x) and the S laws q(z | completion), which covers that posterior. Without
      completions both terms share their codes, so their errors partly cancel.

    As in ``VAE.log_likelihood``, codes are drawn in chunks (``vae.IMAGES_PER_CHUNK`` decoded
    images at most) with a streaming log-sum-exp. With a Bernoulli likelihood ``x`` must be
    binary (e.g. ``data.static_binarize``); the estimate is then never negative when the codes
    are shared.
    """
    if k < 1:
        raise ValueError(f"the number k of importance samples should be positive, got {k}")
    model.check(x)
    check_mask(mask, x)
    _check_binary(model, x, "conditional_nll")
    mask = mask.to(x.device)
    q, prior = model.proposal(x), model.prior()
    mixture, components = None, 1
    if completions is not None:
        if completions.dim() != 5 or completions.shape[0] != len(x) \
                or completions.shape[2:] != x.shape[1:]:
            raise ValueError(f"completions should be (n, S, C, H, W) with (n, C, H, W) = "
                             f"{tuple(x.shape)}, got {tuple(completions.shape)}")
        images = torch.cat([x[:, None], completions.to(x.device)], 1)  # (n, 1 + S, C, H, W)
        components = images.shape[1]
        mixture = model.proposal(encoder_input(model, images.flatten(0, 1)))
    chunk = max(1, min(k, vae.IMAGES_PER_CHUNK // (len(x) * (1 + (mixture is not None)))))
    log_p_full = torch.full((len(x),), -math.inf, device=x.device)
    log_p_observed = log_p_full.clone()
    for start in range(0, k, chunk):
        count = min(chunk, k - start)
        z, log_proposal = defensive_codes(q, prior, count, prior_share)
        pixel_log_probs = model.decode(z).base_dist.log_prob(x)  # (s, n, C, H, W)
        log_w_full = pixel_log_probs.flatten(2).sum(2) + prior.log_prob(z) - log_proposal
        if mixture is not None:
            z, log_proposal = defensive_codes(mixture, prior, count, prior_share, components)
            pixel_log_probs = model.decode(z).base_dist.log_prob(x)
        log_w_observed = torch.where(mask.bool(), pixel_log_probs, 0.0).flatten(2).sum(2) \
            + prior.log_prob(z) - log_proposal  # the missing pixels marginalised out
        log_p_full = torch.logaddexp(log_p_full, torch.logsumexp(log_w_full, dim=0))
        log_p_observed = torch.logaddexp(log_p_observed, torch.logsumexp(log_w_observed, dim=0))
    return log_p_observed - log_p_full  # the 1/k of both estimates cancel
