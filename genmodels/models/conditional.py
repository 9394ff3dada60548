"""Class-conditional models (docs/conditional.md): the conditional VAE and the conditional GAN.

- :class:`CVAE` (Sohn et al. 2015; ``kind = "vae"``, ``conditional = true``): the encoder
  q(z | x, y) sees the image and the one-hot label, the decoder p(x | z, y) the code and the
  one-hot label; the prior is N(0, I), or with ``prior_net = true`` a learned p(z | y).
- :class:`MaskedCVAE` (``condition = "quadrants1"``, or another fixed mask): the same code with
  an image for condition, the observed pixels of the mask with -1 at the missing ones, and the
  likelihood over the missing pixels only: the CVAE of the Pyro tutorial (its prior net p(z|c),
  recognition net q(z|x,c), generation net p(x_missing|z,c); benchmarks/pyro_cvae.py).
- :class:`ConditionalGAN` (``kind = "gan"``, ``conditional = true``): a learned label
  embedding concatenated to z at G's input, and a projection discriminator (Miyato & Koyama
  2018), D(x, y) = ψ(φ(x)) + ⟨e_y, φ(x)⟩ with φ all critic layers but the last, ψ the last.

``VAE(config)`` and ``GAN(config)`` build these when ``config.conditional`` (their
``__new__``), so configs, checkpoints and ``genmodels.load`` need nothing new; unconditional
models are built exactly as before. Labels come from the batches, ``(images, labels)``.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal, kl_divergence

from genmodels.checks import ConfigError
from genmodels.models.base import (
    Batch,
    ConditionalSampler,
    Losses,
    Model,
    TemperedSampler,
    check_labels,
    check_temperature,
)
from genmodels.models.distributions import (
    BernoulliImages,
    draw,
    gaussian_images,
    standard_normal,
)
from genmodels.models.gan import GAN, GANConfig
from genmodels.models.vae import IMAGES_PER_CHUNK, VAEConfig
from genmodels.nets import ConvEncoder, MLPEncoder, decoder, mlp
from genmodels.utils import check_images

if TYPE_CHECKING:
    from genmodels.data.build import RunData

LABEL_EMBEDDING = 32  # width of the conditional generator's label embedding (next to z)
MISSING = -1.0  # the value of the missing pixels in a MaskedCVAE's condition (Pyro's)
NO_LABELS = ("model.conditional = true trains on the labels of the data, and this data has "
             "none (unlabelled images: a flat folder, or an array file without 'labels'); "
             "give labelled data, or set model.conditional = false")


# --- labels ---------------------------------------------------------------------------------
class LabelShares(nn.Module):
    """The training data's number of examples per class (an int64 buffer, kept by
    checkpoints), to draw labels at their shares; uniform before :meth:`fit`."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.register_buffer("counts", torch.zeros(num_classes, dtype=torch.int64))

    def fit(self, labels: Tensor) -> None:
        """Count the training labels (n,) in [0, num_classes)."""
        self.counts.copy_(torch.bincount(labels.long(), minlength=self.num_classes))

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n labels (n,) int64, each class with probability its share of the training data."""
        weights = self.counts.float() if bool(self.counts.any()) else \
            torch.ones(self.num_classes, device=self.counts.device)
        return torch.multinomial(weights, n, replacement=True, generator=generator)


def batch_labels(batch: Batch) -> Tensor:
    """The labels of a batch ``(images, labels, ...)``; a ConfigError for unlabelled data."""
    if len(batch) < 2:
        raise ConfigError(NO_LABELS)
    return batch[1]


def training_labels(data: RunData, num_classes: int) -> Tensor:
    """The labels of the training data, checked to be integers in [0, num_classes)
    (ConfigErrors that say which setting to change)."""
    if len(data.train.tensors) < 2:
        raise ConfigError(NO_LABELS)
    labels = data.train.tensors[1]
    if labels.is_floating_point() or labels.dim() != 1:
        raise ConfigError(f"model.conditional = true needs one integer label per example; the "
                          f"data's second tensor is {labels.dtype} {tuple(labels.shape)}")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise ConfigError(f"the training labels lie in [{low}, {high}], but model.num_classes "
                          f"= {num_classes} takes labels 0 .. {num_classes - 1}; set "
                          f"model.num_classes = {high + 1}" if low >= 0 else
                          f"the training labels lie in [{low}, {high}]: conditional models "
                          "take class indices 0, 1, ...")
    return labels


def per_class_labels(num_classes: int, per_class: int, device: torch.device | str) -> Tensor:
    """(num_classes · per_class,) labels: ``per_class`` 0s, then 1s, ...: the rows of a
    per-class grid."""
    return torch.arange(num_classes, device=device).repeat_interleave(per_class)


# --- the conditional VAEs -------------------------------------------------------------------
class ConditionalVAEBase(Model):
    """q(z | x, c), p(z | c) and p(x | z, c) for a condition c of each image (a label, or an
    image of observed pixels): subclasses say what c is (:meth:`condition_vector`,
    :meth:`condition_maps`, :meth:`inputs`). An MLP encoder takes [x, c] flattened, a conv
    encoder x with c as extra channel maps; the decoder takes [z, c] and the prior net c.
    Log-densities are in nats per image, over the pixels of :meth:`log_px`."""

    kind = "vae"
    Config = VAEConfig
    metric_units = {"loss": "nats per image", "recon": "nats per image"}

    def __init__(self, config: VAEConfig, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(config, input_shape)
        c, shape = config, self.input_shape
        self.latent_dim = c.latent_dim
        width = self.condition_width()
        try:
            if c.net == "mlp":
                self.encoder = MLPEncoder((math.prod(shape) + width,), c.hidden, 2 * c.latent_dim)
            else:
                self.encoder = ConvEncoder((shape[0] + self.condition_channels(), *shape[1:]),
                                           c.channels, 2 * c.latent_dim,
                                           c.hidden[0] if c.hidden else 0)
            self.decoder = decoder(c.net, c.latent_dim + width, shape, c.hidden, c.channels)
        except ValueError as err:  # a size the conv stack cannot take
            raise ConfigError(str(err)) from None
        self.prior_net = mlp([width, *c.hidden, 2 * c.latent_dim]) if c.prior_net else None
        if c.likelihood == "gaussian":
            self.log_sigma = nn.Parameter(torch.tensor(math.log(c.sigma)),
                                          requires_grad=c.learn_sigma)

    # --- what the condition is (subclasses) --------------------------------------------------
    @abstractmethod
    def condition_width(self) -> int:
        """Entries of the condition vector."""

    @abstractmethod
    def condition_channels(self) -> int:
        """Channel maps the condition adds to a conv encoder's input."""

    @abstractmethod
    def condition_vector(self, cond: Tensor) -> Tensor:
        """The conditions (N, ...) as vectors (N, condition_width)."""

    @abstractmethod
    def condition_maps(self, cond: Tensor) -> Tensor:
        """The conditions (N, ...) as maps (N, condition_channels, H, W)."""

    @abstractmethod
    def inputs(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """(images, their conditions) of a batch."""

    # --- the probabilistic interface ---------------------------------------------------------
    @property
    def data_range(self) -> tuple[float, float]:
        """Pixel values the likelihood takes, as :attr:`genmodels.models.VAE.data_range`."""
        c = self.config
        return (0.0 if c.likelihood == "bernoulli" or c.sigmoid_mean else -1.0), 1.0

    def check(self, x: Tensor) -> None:
        low, high = self.data_range
        check_images(x, shape=self.input_shape, low=low, high=high,
                     name=f"images for a {self.config.likelihood} likelihood")

    def encode(self, x: Tensor, cond: Tensor) -> Distribution:
        """q(z | x, c): batch shape (N,), event shape (latent_dim,)."""
        self.check(x)
        if self.config.net == "mlp":
            h = self.encoder(torch.cat([x.flatten(1), self.condition_vector(cond).to(x.dtype)], 1))
        else:
            h = self.encoder(torch.cat([x, self.condition_maps(cond).to(x.dtype)], 1))
        return _diagonal_gaussian(h)

    def decode(self, z: Tensor, cond: Tensor) -> Distribution:
        """p(x | z, c) for codes (..., N, latent_dim) of the N conditions: event shape
        (C, H, W), batch shape (..., N)."""
        v = self.condition_vector(cond).to(z.dtype).expand(*z.shape[:-1], -1)
        inputs = torch.cat([z, v], -1).reshape(-1, z.shape[-1] + v.shape[-1])
        out = self.decoder(inputs).view(*z.shape[:-1], *self.input_shape)
        if self.config.likelihood == "bernoulli":
            return BernoulliImages(out)
        mean = torch.sigmoid(out) if self.config.sigmoid_mean else out
        return gaussian_images(mean, self.log_sigma.exp())

    def prior(self, cond: Tensor) -> Distribution:
        """p(z | c): the prior net's diagonal Gaussian (batch shape (N,)), or N(0, I)."""
        if self.prior_net is None:
            return standard_normal(self.latent_dim, next(self.parameters()).device)
        return _diagonal_gaussian(self.prior_net(self.condition_vector(cond)))

    def log_px(self, likelihood: Distribution, x: Tensor) -> Tensor:
        """log p(x | z, c) (...,) over the pixels the model predicts (all of them here)."""
        return likelihood.log_prob(x)

    def elbo_terms(self, x: Tensor, cond: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(N,) single-sample ELBO E_q log p(x|z,c) - KL(q(z|x,c) || p(z|c)), its
        reconstruction term and its KL (in closed form: both are diagonal Gaussians)."""
        q = self.encode(x, cond)
        log_px = self.log_px(self.decode(q.rsample(), cond), x)
        kl = kl_divergence(q, self.prior(cond))
        return log_px - kl, log_px, kl

    def particle_elbo(self, x: Tensor, cond: Tensor, particles: int = 10) -> Tensor:
        """(N,) Monte Carlo ELBO as Pyro's ``Trace_ELBO(num_particles)`` computes it: the mean
        over ``particles`` draws z ~ q(z|x,c) of log p(x|z,c) + log p(z|c) - log q(z|x,c)."""
        q, prior = self.encode(x, cond), self.prior(cond)
        z = q.rsample((particles,))
        return (self.log_px(self.decode(z, cond), x) + prior.log_prob(z)
                - q.log_prob(z)).mean(0)

    @torch.no_grad()
    def log_likelihood_given(self, x: Tensor, cond: Tensor, k: int = 1000) -> Tensor:
        """(N,) importance-sampled log p(x | c) with k draws of q(z|x,c) (Burda et al. 2016),
        over the pixels of :meth:`log_px`; chunked, with a streaming log-sum-exp."""
        q, prior = self.encode(x, cond), self.prior(cond)
        chunk = max(1, min(k, IMAGES_PER_CHUNK // len(x)))
        total = torch.full((len(x),), -math.inf, device=x.device)
        for start in range(0, k, chunk):
            z = q.sample((min(chunk, k - start),))
            log_w = self.log_px(self.decode(z, cond), x) + prior.log_prob(z) - q.log_prob(z)
            total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
        return total - math.log(k)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, cond: Tensor) -> Tensor:
        """The likelihood's mean at the posterior mean of each image."""
        return self.decode(self.encode(x, cond).mean, cond).mean

    # --- training and evaluation ---------------------------------------------------------
    def summary_pass(self, x: Tensor) -> Distribution:
        """The prior net (if any), the encoder, then the decoder at the code's mean, for the
        conditions of x (label 0 for a CVAE)."""
        cond = self.inputs((x, torch.zeros(len(x), dtype=torch.int64, device=x.device)))[1]
        self.prior(cond)
        return self.decode(self.encode(x, cond).mean, cond)

    def loss(self, batch: Batch) -> Losses:
        x, cond = self.inputs(batch)
        elbo, log_px, kl = self.elbo_terms(x, cond)
        recon, kl = -log_px.mean(), kl.mean()
        return {"loss": recon + self.config.beta * kl, "nelbo": -elbo.mean(), "recon": recon,
                "kl": kl}

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Batch]) -> dict[str, float]:
        """Mean of the loss terms (conditional: -ELBO of x given c), the reconstruction MSE per
        predicted pixel and, with ``eval_samples = k``, ``cond_nll`` = -log p(x | c)
        importance-sampled with k draws (nats)."""
        sums: dict[str, float] = {}
        count = 0
        for batch in batches:
            x, cond = self.inputs(batch)
            values = {name: float(v) for name, v in self.loss(batch).items()}
            values["mse"] = float(self.squared_error(self.reconstruct(x, cond), x).mean())
            if self.config.eval_samples:
                values["cond_nll"] = -float(self.log_likelihood_given(
                    x, cond, self.config.eval_samples).mean())
            for name, v in values.items():
                sums[name] = sums.get(name, 0.0) + v * len(x)
            count += len(x)
        return {name: v / count for name, v in sums.items()}

    def squared_error(self, prediction: Tensor, x: Tensor) -> Tensor:
        """(N,) mean squared error per predicted pixel."""
        return (prediction - x).pow(2).flatten(1).mean(1)


def _diagonal_gaussian(h: Tensor) -> Independent:
    """N(mu, diag(exp(log_var))) of net outputs h (N, 2 D) = [mu, log_var]."""
    mu, log_var = h.chunk(2, dim=-1)
    return Independent(Normal(mu, torch.exp(0.5 * log_var), validate_args=False), 1)


class CVAE(ConditionalVAEBase, ConditionalSampler, TemperedSampler):
    """The class-conditional VAE (Sohn et al. 2015): q(z | x, y), p(x | z, y) with the label y
    one-hot, the prior N(0, I) or (``prior_net``) p(z | y). ``sample(n, labels=y)`` draws
    p(x | y)'s likelihood mean at prior codes."""

    title = "class-conditional vae"

    def __init__(self, config: VAEConfig, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(config, input_shape)
        self.num_classes = config.num_classes
        self.labels = LabelShares(config.num_classes)

    def condition_width(self) -> int:
        return self.config.num_classes

    def condition_channels(self) -> int:
        return self.config.num_classes

    def condition_vector(self, cond: Tensor) -> Tensor:
        return F.one_hot(cond.long(), self.config.num_classes).float()

    def condition_maps(self, cond: Tensor) -> Tensor:
        _, height, width = self.input_shape
        return self.condition_vector(cond)[:, :, None, None].expand(-1, -1, height, width)

    def inputs(self, batch: Batch) -> tuple[Tensor, Tensor]:
        return batch[0], batch_labels(batch)

    def prepare(self, data: RunData) -> None:
        """Count the training labels (checked to lie in [0, num_classes))."""
        self.labels.fit(training_labels(data, self.num_classes))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: Tensor | None = None, temperature: float = 1.0) -> Tensor:
        """(n, C, H, W): the likelihood's mean at codes z ~ p(z | y) of the labels y (drawn at
        the training shares when None), drawn at ``temperature`` (1: the prior itself)."""
        temperature = check_temperature(temperature)
        if labels is None:
            labels = self.labels.draw(n, generator)
        labels = check_labels(labels, n, self.num_classes)
        return self.decode(draw(self.prior(labels), n, generator, temperature), labels).mean

    def figures(self, folder: Path, step: int, batch: Batch) -> list[Path]:
        from genmodels.plots import save_image_grid

        x, y = batch[0][:32], batch_labels(batch)[:32]
        cols = min(8, len(x))
        x, y = x[:len(x) // cols * cols], y[:len(x) // cols * cols]
        rows = [x.unflatten(0, (-1, cols)), self.reconstruct(x, y).unflatten(0, (-1, cols))]
        pairs = torch.stack(rows, dim=1).flatten(0, 2)  # a row of inputs, their recons, ...
        return [per_class_grid(self, folder / f"samples_{step:07d}.png", step),
                save_image_grid(pairs, folder / f"reconstructions_{step:07d}.png", nrow=cols,
                                row_labels=["input", "reconstruction"] * (len(x) // cols),
                                title=f"conditional {self.kind} reconstructions at step {step}: "
                                      "each row of inputs above its reconstructions")]


class MaskedCVAE(ConditionalVAEBase):
    """The CVAE of image completion: the condition of an image x is x on the observed pixels
    of the fixed mask ``model.condition`` (genmodels.inpaint.masks) and -1 on the missing ones
    (the Pyro tutorial's input), and p(x | z, c) is a likelihood of the missing pixels only
    (its output). Not a sampler: it completes images (:meth:`complete`)."""

    title = "vae conditioned on observed pixels"

    def __init__(self, config: VAEConfig, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(config, input_shape)
        from genmodels.inpaint.masks import make_mask

        _, height, width = self.input_shape
        self.register_buffer("observed", make_mask(config.condition, 1, (height, width)),
                             persistent=False)  # (1, 1, H, W), 1 = observed

    def condition_width(self) -> int:
        return math.prod(self.input_shape)

    def condition_channels(self) -> int:
        return self.input_shape[0]

    def condition(self, x: Tensor) -> Tensor:
        """The condition of images x (N, C, H, W): x where observed, -1 where missing."""
        return torch.where(self.observed.bool(), x, torch.full_like(x, MISSING))

    def condition_vector(self, cond: Tensor) -> Tensor:
        return cond.flatten(1)

    def condition_maps(self, cond: Tensor) -> Tensor:
        return cond

    def inputs(self, batch: Batch) -> tuple[Tensor, Tensor]:
        return batch[0], self.condition(batch[0])

    def log_px(self, likelihood: Distribution, x: Tensor) -> Tensor:
        """log p(x_missing | z, c): the pixel log-densities summed over the missing pixels."""
        pixels = likelihood.base_dist.log_prob(x)
        return (pixels * (1 - self.observed)).sum((-3, -2, -1))

    def squared_error(self, prediction: Tensor, x: Tensor) -> Tensor:
        missing = (1 - self.observed).expand_as(x)
        return ((prediction - x).pow(2) * missing).flatten(1).sum(1) / missing.flatten(1).sum(1)

    @torch.no_grad()
    def complete(self, x: Tensor, samples: int = 1,
                 generator: torch.Generator | None = None) -> Tensor:
        """(samples, N, C, H, W) completions of images x (only their observed pixels are
        read): the likelihood's mean at codes z ~ p(z | c) on the missing pixels, x on the
        observed ones."""
        cond = self.condition(x)
        prior = self.prior(cond)
        z = torch.stack([draw(prior, len(x), generator) for _ in range(samples)])
        mean = self.decode(z, cond).mean
        return torch.where(self.observed.bool(), x, mean)

    def figures(self, folder: Path, step: int, batch: Batch) -> list[Path]:
        from genmodels.plots import save_image_grid

        x = batch[0][:8]
        shown = torch.where(self.observed.bool(), x, torch.full_like(x, 0.5))
        completions = self.complete(x, 4, torch.Generator(x.device).manual_seed(0))
        rows = torch.cat([shown[None], x[None], completions])  # (6, 8, C, H, W)
        return [save_image_grid(rows.flatten(0, 1), folder / f"completions_{step:07d}.png",
                                nrow=len(x), row_labels=["input", "truth", *["completion"] * 4],
                                title=f"completions of the {self.config.condition} mask at step "
                                      f"{step} (missing pixels grey in the input)")]


def conditional_vae(config: VAEConfig, input_shape: Sequence[int] | None = None
                    ) -> ConditionalVAEBase:
    """The conditional VAE of ``config.condition``: a :class:`CVAE` for labels, a
    :class:`MaskedCVAE` for a mask (what ``VAE(config)`` builds when ``config.conditional``)."""
    kind = CVAE if config.condition == "label" else MaskedCVAE
    return kind(config, input_shape)


# --- the conditional GAN --------------------------------------------------------------------
class ConditionalGAN(GAN, ConditionalSampler):
    """A GAN conditioned on the data's labels: G gets z next to a learned embedding of y
    (32-d), the critic is a projection discriminator D(x, y) = ψ(φ(x)) + ⟨e_y, φ(x)⟩ (Miyato &
    Koyama 2018), φ = the critic's layers but the last (the flattened features), ψ = the last
    (linear), e_y a learned embedding of y as wide as φ(x) (spectrally normalised with
    ``spectral_norm``, as in the paper's code). The fakes of a step are drawn with the labels
    of its real batch, so each critic update compares real and fake examples of the same
    classes. Everywhere the GAN passes ``cells`` (the conditions), these are the labels."""

    title = "class-conditional gan"

    def __init__(self, config: GANConfig, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(config, input_shape)
        self.num_classes = config.num_classes
        self.label_embedding = nn.Embedding(config.num_classes, LABEL_EMBEDDING)
        features = self.critic_layers()[-1].in_features
        self.projection = nn.Embedding(config.num_classes, features)
        nn.init.xavier_uniform_(self.projection.weight)
        if config.spectral_norm:
            nn.utils.parametrizations.spectral_norm(self.projection)
        self.labels = LabelShares(config.num_classes)

    def condition_dim(self) -> int:
        return LABEL_EMBEDDING

    def critic_layers(self) -> nn.Sequential:
        """The critic as one sequence of layers, whose last is the linear output ψ."""
        return self.critic.net if isinstance(self.critic, ConvEncoder) else self.critic

    def critic_modules(self) -> list[nn.Module]:
        return [self.critic, self.projection]

    def prepare(self, data: RunData) -> None:
        """Count the training labels (checked to lie in [0, num_classes))."""
        self.labels.fit(training_labels(data, self.num_classes))

    def conditions(self, batch: Batch) -> tuple[Tensor, Tensor]:
        return batch[0], batch_labels(batch)

    def generate(self, n: int, generator: torch.Generator | None = None,
                 cells: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """n raw generator outputs of codes ``z`` (drawn unless given) for the labels
        ``cells`` (n,) (drawn at the training shares unless given, after z)."""
        device = next(self.parameters()).device
        if z is None:
            z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        labels = self.labels.draw(n, generator) if cells is None else cells
        return self.generator(torch.cat([z, self.label_embedding(labels).to(z.dtype)], 1))

    def critique(self, packed: Tensor, cells: Tensor | None = None) -> Tensor:
        """D(x, y) (n,) = ψ(φ(x)) + ⟨e_y, φ(x)⟩ for samples x (n, ...) of labels ``cells``."""
        if cells is None:
            raise ValueError("a projection discriminator judges labelled samples: give their "
                             "labels")
        layers = self.critic_layers()
        h = layers[:-1](packed)
        return layers[-1](h).squeeze(1) + (self.projection(cells).to(h.dtype) * h).sum(1)

    def summary_pass(self, x: Tensor) -> Tensor:
        labels = torch.zeros(len(x), dtype=torch.int64, device=x.device)
        return self.judge(self.generate(len(x), cells=labels), labels)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: Tensor | None = None) -> Tensor:
        """(n, d) points, or (n, C, H, W) images in [0, 1], of the labels (drawn at the
        training shares when None)."""
        if labels is not None:
            labels = check_labels(labels, n, self.num_classes)
        x = self.generate(n, generator, cells=labels)
        return (x + 1) / 2 if self.config.net == "dcgan" else x

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Batch]) -> dict[str, float]:
        """The GAN's energy distance, the samples drawn with the held-out labels."""
        from genmodels.metrics import energy_distance

        batches = list(batches)
        real = torch.cat([b[0] for b in batches])[:2500]
        labels = torch.cat([batch_labels(b) for b in batches])[:2500]
        fake = self.generate(len(real), cells=labels)
        return {"energy_distance": float(energy_distance(fake.flatten(1), real.flatten(1)))}

    def figures(self, folder: Path, step: int, batch: Batch) -> list[Path]:
        if self.config.net == "mlp":
            return super().figures(folder, step, batch)
        return [per_class_grid(self, folder / f"samples_{step:07d}.png", step)]


def per_class_grid(model: CVAE | ConditionalGAN, path: Path, step: int,
                   per_class: int = 8) -> Path:
    """A grid of ``per_class`` samples of each class (seed 0), one row a class."""
    from genmodels.plots import save_image_grid

    device = next(model.parameters()).device
    labels = per_class_labels(model.num_classes, per_class, device)
    samples = model.sample(len(labels), torch.Generator(device).manual_seed(0), labels)
    return save_image_grid(samples, path, nrow=per_class,
                           row_labels=[f"class {y}" for y in range(model.num_classes)],
                           title=f"{per_class} samples of each class of the conditional "
                                 f"{model.kind} at step {step}")


__all__ = ["CVAE", "ConditionalGAN", "ConditionalVAEBase", "LabelShares", "MaskedCVAE",
           "conditional_vae", "per_class_labels"]
