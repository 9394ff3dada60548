"""Variational auto-encoders: one interface, one small subclass per objective.

``encode(x)`` returns the posterior q(z|x) as a ``torch.distributions`` object (a diagonal
Gaussian, or a :class:`PointMass` for deterministic encoders) and ``decode(z)`` the likelihood
p(x|z) over images, so any estimator can be written on top. All log-densities are in nats per
image (summed over pixels) and losses are averaged over the batch.

- :class:`VAE` (Kingma & Welling 2014) and β-VAE (Higgins et al. 2017) through ``beta``;
- :class:`IWAE` (Burda et al. 2016);
- :class:`WAE` with an MMD penalty (Tolstikhin et al. 2018);
- :class:`SlicedWAE` (Kolouri et al. 2019);
- :class:`RadonSobolevAE` (Turinici 2019, arXiv 1911.13135).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal, kl_divergence

from genmodels.checks import ConfigError, check_choice, check_ranges, check_widths
from genmodels.models.base import (
    Batch,
    LatentVariableModel,
    LikelihoodModel,
    Losses,
    Model,
    TemperedSampler,
    check_temperature,
    register,
)
from genmodels.models.distributions import (
    BernoulliImages,
    PointMass,
    draw,
    gaussian_images,
    standard_normal,
)
from genmodels.nets import decoder, encoder
from genmodels.utils import check_images

# decoded images held at once by log_likelihood: 2,000 keep a 784-pixel decoder's activations in
# the CPU's caches (50,000 were 2.3x slower: benchmarks/likelihood_speed.py, docs/performance.md)
IMAGES_PER_CHUNK = 2_000
# the fixed masks of genmodels.inpaint.masks a conditional VAE can condition on (model.condition)
MASK_CONDITIONS = ("top", "bottom", "left", "right", "quadrants1", "quadrants2", "quadrants3",
                   "center")
CONDITIONS = ("label", *MASK_CONDITIONS)


@dataclass
class VAEConfig:
    net: str = "mlp"  # mlp | conv (image sides: multiples of 2^len(channels))
    latent_dim: int = 20
    hidden: list[int] = field(default_factory=lambda: [400])  # mlp widths (conv: fc width)
    channels: list[int] = field(default_factory=lambda: [32, 64])  # conv stage widths
    likelihood: str = "bernoulli"  # bernoulli (data in [0,1]) | gaussian
    sigma: float = 0.1  # std of the gaussian likelihood (its initial value if learn_sigma)
    learn_sigma: bool = False
    sigmoid_mean: bool = True  # gaussian mean = sigmoid(decoder output), for data in [0, 1]
    beta: float = 1.0  # weight of the KL term in the training loss (beta-VAE)
    eval_samples: int = 0  # k of the importance-sampled NLL at each evaluation; 0 = off
    conditional: bool = False  # a CVAE (Sohn et al. 2015; kind = "vae" only): q(z|x,c) and
    #                            p(x|z,c) see a condition c of each image (docs/conditional.md)
    num_classes: int = 10  # with condition = "label": the data's labels are 0 .. num_classes-1
    condition: str = "label"  # label (one-hot) | a fixed mask (top, bottom, left, right,
    #                           quadrants1..3, center): c = the observed pixels, -1 at the
    #                           missing ones, and the likelihood is over the missing ones only
    prior_net: bool = False  # conditional: a learned Gaussian prior p(z|c), not N(0, I)

    def __post_init__(self) -> None:
        check_choice(self, "model", "net", ("mlp", "conv"))
        check_choice(self, "model", "likelihood", ("bernoulli", "gaussian"))
        check_ranges(self, "model", positive=("latent_dim", "sigma", "num_classes"),
                     non_negative=("beta", "eval_samples"))
        check_widths(self, "model", "hidden", "channels")
        if self.net == "conv" and not self.channels:
            raise ConfigError("model.channels = []: a conv net needs at least one stage")
        check_choice(self, "model", "condition", CONDITIONS)
        if not self.conditional and (self.condition != "label" or self.prior_net):
            raise ConfigError("model.condition and model.prior_net describe a conditional VAE; "
                              "set model.conditional = true, or drop them")
        if self.conditional and type(self) is not VAEConfig:
            raise ConfigError("model.conditional = true: only kind = 'vae' has a conditional "
                              "form (the CVAE, with model.beta for a conditional beta-VAE); "
                              "set kind = 'vae', or model.conditional = false")


@register
class VAE(Model, LatentVariableModel, TemperedSampler, LikelihoodModel):
    """Gaussian-encoder VAE; with ``beta != 1`` a β-VAE. ``loss`` is the β-weighted objective,
    ``nelbo`` the true negative ELBO (they agree at β = 1)."""

    kind = "vae"
    Config = VAEConfig
    metric_units = {"loss": "nats per image", "recon": "nats per image"}
    deterministic_encoder = False
    closed_form_kl = True  # KL(q(z|x) || prior()) in closed form; False: one-sample Monte Carlo

    def __new__(cls, config: VAEConfig | None = None, *args: object, **kwargs: object):
        """``VAE(config)`` with ``model.conditional = true`` builds the conditional VAE of
        ``model.condition`` instead (:func:`genmodels.models.conditional.conditional_vae`),
        which is no VAE subclass: without its condition it has no encoder of x and no p(x),
        so it declares other capabilities."""
        if cls is VAE and config is not None and config.conditional:
            from genmodels.models.conditional import conditional_vae

            return conditional_vae(config, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, config: VAEConfig, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(config, input_shape)
        c = config  # VAEConfig has checked the net, the likelihood and the widths
        self.latent_dim = c.latent_dim
        codes = c.latent_dim * (1 if self.deterministic_encoder else 2)
        try:
            self.encoder = encoder(c.net, self.input_shape, codes, c.hidden, c.channels)
            self.decoder = decoder(c.net, c.latent_dim, self.input_shape, c.hidden, c.channels)
        except ValueError as err:  # a size the conv stack cannot take
            raise ConfigError(str(err)) from None
        if c.likelihood == "gaussian":
            self.log_sigma = nn.Parameter(torch.tensor(math.log(c.sigma)),
                                          requires_grad=c.learn_sigma)

    # --- the probabilistic interface -------------------------------------------------------
    @property
    def data_range(self) -> tuple[float, float]:
        """Pixel values the likelihood takes: [0, 1], or [-1, 1] for a Gaussian with a linear
        mean."""
        low = 0.0 if self.config.likelihood == "bernoulli" or self.config.sigmoid_mean else -1.0
        return low, 1.0

    def check(self, x: Tensor) -> None:
        """Images must be (N, *input_shape) in :attr:`data_range`."""
        low, high = self.data_range
        check_images(x, shape=self.input_shape, low=low, high=high,
                     name=f"images for a {self.config.likelihood} likelihood")

    def prior(self) -> Distribution:
        """p(z): N(0, I). Subclasses change it here only (see VampPriorVAE): sampling, the KL,
        the likelihood, the latent tools and inpainting all read it from this method."""
        return standard_normal(self.latent_dim, next(self.parameters()).device)

    def summary_pass(self, x: Tensor) -> Distribution:
        """The encoder, then the decoder at the code's mean."""
        return self.decode(self.encode(x).mean)

    def encode(self, x: Tensor) -> Distribution:
        """q(z|x) for images (N, C, H, W): batch shape (N,), event shape (latent_dim,)."""
        self.check(x)
        h = self.encoder(x)
        if self.deterministic_encoder:
            return PointMass(h)
        mu, log_var = h.chunk(2, dim=1)
        return Independent(Normal(mu, torch.exp(0.5 * log_var), validate_args=False), 1)

    def decode(self, z: Tensor) -> Distribution:
        """p(x|z) for codes (..., latent_dim): event shape (C, H, W), batch shape (...)."""
        out = self.decoder(z.reshape(-1, self.latent_dim)).view(*z.shape[:-1], *self.input_shape)
        if self.config.likelihood == "bernoulli":
            return BernoulliImages(out)
        mean = torch.sigmoid(out) if self.config.sigmoid_mean else out
        return gaussian_images(mean, self.log_sigma.exp())

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """(n, C, H, W) images: the likelihood's mean at codes drawn from the prior at
        ``temperature`` (1: the prior itself)."""
        z = draw(self.prior(), n, generator, check_temperature(temperature))
        return self.decode(z).mean

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """The likelihood's mean at the posterior mean of each image."""
        return self.decode(self.encode(x).mean).mean

    def elbo(self, x: Tensor) -> Tensor:
        """(N,) single-sample ELBO: E_q log p(x|z) - KL(q(z|x) || p(z)), the KL in closed form
        (``closed_form_kl``) or as log q(z|x) - log p(z) at the same draw z."""
        return self._elbo_terms(x)[0]

    def _elbo_terms(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q = self.encode(x)
        if isinstance(q, PointMass):
            raise ValueError(f"{type(self).__name__} has a deterministic encoder: its ELBO is "
                             "undefined; use log_likelihood(x, k) or the reconstruction error")
        z = q.rsample()
        log_px = self.decode(z).log_prob(x)
        prior = self.prior()
        kl = kl_divergence(q, prior) if self.closed_form_kl else q.log_prob(z) - prior.log_prob(z)
        return log_px - kl, log_px, kl

    def proposal(self, x: Tensor) -> Distribution:
        """The importance distribution of :meth:`log_likelihood`: q(z|x), or for a deterministic
        encoder a Normal of std 0.5 around the code (the estimate stays a valid bound)."""
        q = self.encode(x)
        if isinstance(q, PointMass):
            return Independent(Normal(q.loc, torch.full_like(q.loc, 0.5)), 1)
        return q

    @torch.no_grad()
    def log_likelihood(self, x: Tensor, k: int = 5000) -> Tensor:
        """(N,) importance-sampled log p(x) with k samples (Burda et al. 2016, eq. 7):
        log (1/k) Σ_j p(x, z_j) / q(z_j | x). Samples are drawn in chunks and reduced with a
        streaming log-sum-exp, so memory stays bounded for k in the thousands."""
        q, prior = self.proposal(x), self.prior()
        chunk = max(1, min(k, IMAGES_PER_CHUNK // len(x)))
        total = torch.full((len(x),), -math.inf, device=x.device)
        for start in range(0, k, chunk):
            z = q.sample((min(chunk, k - start),))  # (s, N, D)
            log_w = self.decode(z).log_prob(x) + prior.log_prob(z) - q.log_prob(z)
            total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
        return total - math.log(k)

    # --- training and evaluation -----------------------------------------------------------
    def loss(self, batch: Batch) -> Losses:
        x = batch[0]
        elbo, log_px, kl = self._elbo_terms(x)
        recon, kl = -log_px.mean(), kl.mean()
        return {"loss": recon + self.config.beta * kl, "nelbo": -elbo.mean(), "recon": recon,
                "kl": kl}

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Batch]) -> dict[str, float]:
        """Mean of the loss terms, the negative ELBO (stochastic encoders), the reconstruction
        MSE per pixel and, with ``eval_samples = k``, the importance-sampled NLL (nats)."""
        sums: dict[str, float] = {}
        count = 0
        for batch in batches:
            x, n = batch[0], len(batch[0])
            values = {name: float(v) for name, v in self.loss(batch).items()}
            if "nelbo" not in values and not self.deterministic_encoder:
                values["nelbo"] = -float(self.elbo(x).mean())
            values["mse"] = float(F.mse_loss(self.reconstruct(x), x))
            if self.config.eval_samples:
                values["nll"] = -float(self.log_likelihood(x, self.config.eval_samples).mean())
            for name, v in values.items():
                sums[name] = sums.get(name, 0.0) + v * n
            count += n
        return {name: v / count for name, v in sums.items()}

    def figures(self, folder: Path, step: int, batch: Batch) -> list[Path]:
        from genmodels.plots import save_image_grid

        x = batch[0][:32]
        samples = self.sample(64, generator=torch.Generator(x.device).manual_seed(0))
        cols = min(8, len(x))
        x = x[:len(x) // cols * cols]
        rows = [x.unflatten(0, (-1, cols)), self.reconstruct(x).unflatten(0, (-1, cols))]
        pairs = torch.stack(rows, dim=1).flatten(0, 2)  # a row of inputs, their recons, ...
        return [save_image_grid(samples, folder / f"samples_{step:07d}.png",
                                title=f"64 samples of {self.kind} at step {step}"),
                save_image_grid(pairs, folder / f"reconstructions_{step:07d}.png", nrow=cols,
                                row_labels=["input", "reconstruction"] * (len(x) // cols),
                                title=f"{self.kind} reconstructions at step {step}: each row "
                                      "of inputs above its reconstructions")]


@dataclass
class IWAEConfig(VAEConfig):
    samples: int = 5  # k importance samples per image in the training bound

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges(self, "model", positive=("samples",))


@register
class IWAE(VAE):
    """Importance-weighted auto-encoder: maximises the k-sample bound
    E log (1/k) Σ_j p(x, z_j) / q(z_j|x), which tightens as k grows (k = 1 is the VAE)."""

    kind = "iwae"
    Config = IWAEConfig

    def iw_bound(self, x: Tensor, k: int) -> Tensor:
        """(N,) k-sample importance-weighted bound, reparameterised."""
        q, prior = self.encode(x), self.prior()
        z = q.rsample((k,))
        log_w = self.decode(z).log_prob(x) + prior.log_prob(z) - q.log_prob(z)
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    def loss(self, batch: Batch) -> Losses:
        bound = self.iw_bound(batch[0], self.config.samples).mean()
        return {"loss": -bound, f"iw{self.config.samples}_bound": bound}


@dataclass
class AutoEncoderConfig(VAEConfig):
    deterministic: bool = True  # deterministic encoder (a PointMass posterior)
    reconstruction: str = "sse"  # sse (squared error summed over pixels) | mse | nll
    reg_weight: float = 10.0  # λ in reconstruction + λ · latent distance

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self, "model", "reconstruction", ("sse", "mse", "nll"))
        check_ranges(self, "model", non_negative=("reg_weight",))


class LatentMatchingAE(VAE):
    """Auto-encoders regularised by a distance between the batch of codes and the prior:
    loss = reconstruction cost + λ · D(codes, N(0, I)). Subclasses define :meth:`penalty`."""

    Config = AutoEncoderConfig
    metric_units = {}  # the reconstruction cost is model.reconstruction's; a penalty is added

    def __init__(self, config: AutoEncoderConfig,
                 input_shape: Sequence[int] | None = None) -> None:
        self.deterministic_encoder = config.deterministic
        super().__init__(config, input_shape)

    def penalty(self, z: Tensor) -> Tensor:
        raise TypeError(f"{type(self).__name__} must define penalty(z)")

    def reconstruction_cost(self, x: Tensor, z: Tensor) -> Tensor:
        """(N,) cost per image between x and the decoding of z."""
        likelihood = self.decode(z)
        if self.config.reconstruction == "nll":
            return -likelihood.log_prob(x)
        squared = (likelihood.mean - x).pow(2).flatten(1)
        return squared.sum(1) if self.config.reconstruction == "sse" else squared.mean(1)

    def loss(self, batch: Batch) -> Losses:
        x = batch[0]
        z = self.encode(x).rsample()
        recon = self.reconstruction_cost(x, z).mean()
        if not bool(torch.isfinite(z).all()):  # a diverged encoder: the distances refuse such
            return {"loss": recon + z.sum(), "recon": recon}  # codes; the Trainer stops on this
        penalty = self.penalty(z)
        return {"loss": recon + self.config.reg_weight * penalty, "recon": recon,
                "penalty": penalty}


@dataclass
class WAEConfig(AutoEncoderConfig):
    kernel: str = "imq"  # imq | rbf
    bandwidths: list[float] = field(default_factory=list)  # empty: the metric's default


@register
class WAE(LatentMatchingAE):
    """WAE-MMD (Tolstikhin et al. 2018): the penalty is the unbiased MMD² between the codes and
    as many draws from the prior, with an IMQ or RBF kernel."""

    kind = "wae_mmd"
    Config = WAEConfig

    def penalty(self, z: Tensor) -> Tensor:
        from genmodels.metrics import mmd

        return mmd(z, torch.randn_like(z), kernel=self.config.kernel,
                   bandwidths=self.config.bandwidths or None)


@dataclass
class SlicedWAEConfig(AutoEncoderConfig):
    n_projections: int = 50


@register
class SlicedWAE(LatentMatchingAE):
    """Sliced-Wasserstein AE (Kolouri et al. 2019): the penalty is SW₂² between the codes and
    as many draws from the prior, over ``n_projections`` random directions."""

    kind = "sliced_wae"
    Config = SlicedWAEConfig

    def penalty(self, z: Tensor) -> Tensor:
        from genmodels.metrics import sliced_wasserstein

        return sliced_wasserstein(z, torch.randn_like(z), self.config.n_projections, p=2) ** 2


@dataclass
class RadonSobolevConfig(AutoEncoderConfig):
    xi: str = "exact"  # exact (Poisson series) | smooth (sqrt(x² + c1) + c0)


@register
class RadonSobolevAE(LatentMatchingAE):
    """Radon-Sobolev VAE (Turinici 2019): the penalty is the squared energy distance d² between
    the batch of codes and N(0, I_D), computed against the law itself, with no prior draws."""

    kind = "radon_sobolev"
    Config = RadonSobolevConfig

    def penalty(self, z: Tensor) -> Tensor:
        from genmodels.metrics import radon_sobolev_to_normal

        return radon_sobolev_to_normal(z, xi=self.config.xi)
