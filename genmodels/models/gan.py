"""Generative adversarial networks on the common loop.

One model kind, ``gan``, with the loss chosen in the config: minimax, non-saturating,
WGAN-GP, hinge, least squares (see :mod:`genmodels.models.gan_losses`), or a critic-free
generator trained on a kernel distance to the data (``energy``, ``mmd``; the dual-metric-flow
view of Turinici 2020, arXiv 2012.10410). Options: spectral norm (Miyato et al. 2018),
PacGAN packing (Lin et al. 2018), separate learning rates, ``n_critic``, and ``energy_weight``,
which adds that kernel distance of the whole batch to a critic's generator loss (the critic
judges samples one pack at a time; the batch term sees mode frequencies). EMA and Adam betas
come from ``[train]``.

Networks: ``mlp`` for 2-D mixtures, ``dcgan`` for C×28×28 images (data in [-1, 1], the
``symmetric`` view). :meth:`GAN.sample` returns points, or images in [0, 1] like the VAEs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from genmodels.config import Config, ConfigError
from genmodels.models.base import Batch, Losses, Model, Phase, register
from genmodels.models.gan_losses import CRITIC_LOSSES, GENERATOR_LOSSES, gradient_penalty
from genmodels.nets import ConvDecoder, ConvEncoder, mlp

KERNEL_LOSSES = ("energy", "mmd")
LOSSES = (*CRITIC_LOSSES, *KERNEL_LOSSES)


@dataclass
class GANConfig:
    net: str = "dcgan"  # mlp (points) | dcgan (C×28×28 images)
    data_dim: int = 2  # mlp: dimension of the data points
    in_channels: int = 1  # dcgan: image channels (3 for Stacked MNIST)
    latent_dim: int = 64
    hidden: list[int] = field(default_factory=lambda: [256, 256])  # mlp widths of G and D
    channels: list[int] = field(default_factory=lambda: [64, 128])  # dcgan critic widths
    loss: str = "non_saturating"  # minimax | non_saturating | wgan_gp | hinge | least_squares
    #                               | energy | mmd (critic-free)
    n_critic: int = 1  # critic updates per generator update (micro-batches of the step batch)
    gp_weight: float = 10.0  # λ of the WGAN-GP gradient penalty
    spectral_norm: bool = False  # on every critic layer
    pack: int = 1  # PacGAN: the critic judges packs of this many samples
    lr_generator: float = 0.0  # 0 = train.lr
    lr_critic: float = 0.0  # 0 = train.lr
    energy_weight: float = 0.0  # λ: the generator loss adds λ × the energy distance (data
    #                             units) between its batch and the data batch; 0 = off


def kernel_distance(kind: str, fake: Tensor, real: Tensor) -> Tensor:
    """``energy`` (squared energy distance) or ``mmd`` (MMD², RBF, median bandwidth) between
    two batches (n, ...), flattened; in float32 even under autocast (the metrics see to it)."""
    from genmodels.metrics import energy_distance, mmd

    distance = energy_distance if kind == "energy" else mmd
    return distance(fake.flatten(1), real.flatten(1))


@register
class GAN(Model):
    kind = "gan"
    Config = GANConfig

    def __init__(self, config: GANConfig) -> None:
        super().__init__(config)
        c = config
        if c.loss not in LOSSES:
            raise ValueError(f"model.loss = {c.loss!r}; choose one of: {', '.join(LOSSES)}")
        if c.n_critic < 1 or c.pack < 1:
            raise ValueError(f"model.n_critic and model.pack must be >= 1, got "
                             f"{c.n_critic} and {c.pack}")
        self.latent_dim = c.latent_dim
        leaky = functools.partial(nn.LeakyReLU, 0.2)
        if c.net == "mlp":
            self.input_shape = (c.data_dim,)
            self.generator = mlp([c.latent_dim, *c.hidden, c.data_dim])
            critic = mlp([c.data_dim * c.pack, *c.hidden, 1], activation=leaky)
        elif c.net == "dcgan":
            self.input_shape = (c.in_channels, 28, 28)
            self.generator = nn.Sequential(
                ConvDecoder(c.latent_dim, list(reversed(c.channels)), c.in_channels,
                            batch_norm=True), nn.Tanh())
            critic = ConvEncoder(c.in_channels * c.pack, c.channels, 1, activation=leaky,
                                 batch_norm=not c.spectral_norm and c.loss != "wgan_gp")
        else:
            raise ValueError(f"model.net = {c.net!r}; choose 'mlp' or 'dcgan'")
        if c.spectral_norm:
            for module in critic.modules():
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    nn.utils.parametrizations.spectral_norm(module)
        self.critic = None if c.loss in KERNEL_LOSSES else critic
        self._fakes: Tensor | None = None  # the critic update's fakes, for the generator's

    def validate(self, config: Config) -> None:
        """Packing must divide the critic's micro-batches."""
        micro = config.train.batch_size // self.config.n_critic
        if micro % self.config.pack:
            raise ConfigError(f"train.batch_size / model.n_critic = {micro} is not divisible by "
                              f"model.pack = {self.config.pack}")

    # --- sampling ---------------------------------------------------------------------------
    def generate(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n raw generator outputs in data space ([-1, 1] images or points)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.generator(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, data_dim) points, or (n, C, 28, 28) images in [0, 1]."""
        x = self.generate(n, generator)
        return (x + 1) / 2 if self.config.net == "dcgan" else x

    def summary_pass(self, x: Tensor) -> Tensor | None:
        """The generator on len(x)·pack codes, then the critic on its packed samples."""
        fake = self.generate(len(x) * self.config.pack)
        return None if self.critic is None else self.judge(fake)

    # --- objectives -------------------------------------------------------------------------
    def parameter_groups(self) -> dict:
        c = self.config
        groups = {"generator": {"params": list(self.generator.parameters()),
                                **({"lr": c.lr_generator} if c.lr_generator else {})}}
        if self.critic is not None:
            groups["critic"] = {"params": list(self.critic.parameters()),
                                **({"lr": c.lr_critic} if c.lr_critic else {})}
        return groups

    def phases(self) -> list[Phase]:
        if self.critic is None:
            return [Phase("generator", self.kernel_generator_loss)]
        return [Phase("critic", self.critic_loss, repeats=self.config.n_critic),
                Phase("generator", self.generator_loss)]

    def pack(self, x: Tensor) -> Tensor:
        """(n, ...) -> (n / m, m·...) along the channel or feature axis (PacGAN)."""
        m = self.config.pack
        if len(x) % m:
            raise ConfigError(f"a batch of {len(x)} cannot be packed by model.pack = {m}")
        return x.reshape(len(x) // m, m * x.shape[1], *x.shape[2:])

    def judge(self, x: Tensor) -> Tensor:
        """Critic outputs (n / pack,) for samples x (n, ...)."""
        return self.critic(self.pack(x)).squeeze(1)

    def critic_loss(self, batch: Batch) -> Losses:
        """The critic's loss on real and generated samples. With one critic update per step
        the fakes keep their graph and the generator update reuses them (one generator
        forward per step, as in pytorch/examples dcgan; the critic update leaves G as is)."""
        real = batch[0]
        reuse = self.config.n_critic == 1 and torch.is_grad_enabled()
        with torch.set_grad_enabled(reuse):
            fake = self.generate(len(real))
        self._fakes = fake if reuse else None
        fake = fake.detach()
        d_real, d_fake = self.judge(real), self.judge(fake)
        loss = CRITIC_LOSSES[self.config.loss](d_real, d_fake)
        out = {"d_real": d_real.mean(), "d_fake": d_fake.mean()}
        if self.config.loss == "wgan_gp":
            penalty = gradient_penalty(lambda x: self.critic(x).squeeze(1), self.pack(real),
                                       self.pack(fake))
            loss = loss + self.config.gp_weight * penalty
            out["gradient_penalty"] = penalty
        return {"loss": loss, **out}

    def generator_loss(self, batch: Batch) -> Losses:
        """The generator's loss through the critic, whose weights get no gradient (it is
        frozen for this forward: the backward computes gradients for G only)."""
        fake, self._fakes = self._fakes, None
        if fake is None or len(fake) != len(batch[0]):
            fake = self.generate(len(batch[0]))
        self.critic.requires_grad_(False)
        try:
            d_fake = self.judge(fake)
        finally:
            self.critic.requires_grad_(True)
        loss = GENERATOR_LOSSES[self.config.loss](d_fake)
        if self.config.energy_weight == 0:
            return {"loss": loss}
        distance = kernel_distance("energy", fake, batch[0])
        return {"loss": loss + self.config.energy_weight * distance, "adversarial": loss,
                "energy_distance": distance}

    def kernel_generator_loss(self, batch: Batch) -> Losses:
        fake = self.generate(len(batch[0]))
        if not bool(torch.isfinite(fake).all()):  # diverged: the Trainer stops on this loss
            return {"loss": fake.sum()}
        return {"loss": kernel_distance(self.config.loss, fake, batch[0])}

    # --- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, batches: Iterable[Batch]) -> dict[str, float]:
        """Squared energy distance D² (V-statistic, data units) between up to 2,500 held-out
        examples and as many samples, in data space."""
        from genmodels.metrics import energy_distance

        real = torch.cat([b[0] for b in batches])[:2500].flatten(1)
        fake = self.generate(len(real)).flatten(1)
        return {"energy_distance": float(energy_distance(fake, real))}

    def figures(self, folder: Path, step: int, batch: Batch) -> list[Path]:
        from genmodels.plots import save_image_grid, scatter_points

        samples = self.sample(2500 if self.config.net == "mlp" else 64,
                              torch.Generator(next(self.parameters()).device).manual_seed(0))
        if self.config.net == "mlp":
            return [scatter_points(samples, folder / f"samples_{step:07d}.png", batch[0])]
        return [save_image_grid(samples, folder / f"samples_{step:07d}.png")]


__all__ = ["GAN", "GANConfig"]
