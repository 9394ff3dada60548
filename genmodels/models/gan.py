"""Generative adversarial networks on the common loop.

One model kind, ``gan``, with the loss chosen in the config: minimax, non-saturating, hinge,
least squares, Wasserstein (see :mod:`genmodels.models.gan_losses`), or a critic-free
generator trained on a kernel distance to the data (``energy``, ``mmd``; the dual-metric-flow
view of Turinici 2020, arXiv 2012.10410). A critic's loss can add a gradient penalty
(``penalty``: ``gp``, Gulrajani et al. 2017, so WGAN-GP is wasserstein + gp; ``r1``, Mescheder
et al. 2018). Options: spectral norm (Miyato et al. 2018), PacGAN packing (Lin et al. 2018),
separate learning rates, ``n_critic``, ``energy_weight``, which adds that kernel distance of
the whole batch to a critic's generator loss (the critic judges samples one pack at a time;
the batch term sees mode frequencies), and conditioning on k-means cells of the data
(``clusters``, :mod:`genmodels.models.cells`). EMA and Adam betas come from ``[train]``.

Networks: ``mlp`` for points (the 2-D mixtures), ``dcgan`` for C×H×W images (data in [-1, 1], the
``symmetric`` view). :meth:`GAN.sample` returns points, or images in [0, 1] like the VAEs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from genmodels.checks import ConfigError, check_choice, check_ranges, check_widths
from genmodels.models.base import Batch, Losses, Model, Phase, Sampler, register
from genmodels.models.cells import CellConditioning
from genmodels.models.gan_losses import CRITIC_LOSSES, GENERATOR_LOSSES, PENALTIES
from genmodels.nets import ConvDecoder, ConvEncoder, mlp

if TYPE_CHECKING:
    from genmodels.config import Config
    from genmodels.data.build import RunData

KERNEL_LOSSES = ("energy", "mmd")
LOSSES = (*CRITIC_LOSSES, *KERNEL_LOSSES)
PENALTY_CHOICES = ("none", *PENALTIES)
# state-dict keys of checkpoints from before the cells had a module of their own -> now
OLD_CELL_KEYS = {"partition.": "cells.partition.",
                 "cell_embedding.": "cells.generator_embedding.",
                 "critic_cell_embedding.": "cells.critic_embedding."}


@dataclass
class GANConfig:
    net: str = "dcgan"  # mlp (points) | dcgan (images, sides multiples of 2^len(channels))
    latent_dim: int = 64
    hidden: list[int] = field(default_factory=lambda: [256, 256])  # mlp widths of G and D
    channels: list[int] = field(default_factory=lambda: [64, 128])  # dcgan critic widths
    loss: str = "non_saturating"  # minimax | non_saturating | hinge | least_squares |
    #                               wasserstein | energy | mmd (critic-free); the old spelling
    #                               wgan_gp is read as wasserstein with penalty = gp
    penalty: str = "none"  # none | gp (Gulrajani et al. 2017) | r1 (Mescheder et al. 2018):
    #                        a gradient penalty in the critic's loss
    n_critic: int = 1  # critic updates per generator update (micro-batches of the step batch)
    gp_weight: float = 10.0  # λ of the penalty (R1's γ); named for WGAN-GP, its first user
    spectral_norm: bool = False  # on every critic layer
    pack: int = 1  # PacGAN: the critic judges packs of this many samples
    lr_generator: float = 0.0  # 0 = train.lr
    lr_critic: float = 0.0  # 0 = train.lr
    energy_weight: float = 0.0  # λ: the generator loss adds λ × the energy distance (data
    #                             units) between its batch and the data batch; 0 = off
    clusters: int = 0  # condition G and the critic on this many k-means cells of the data,
    #                    drawn at their shares of the training set (models/cells.py); 0 = off
    cell_weight: float = 0.0  # with clusters: G's loss adds this × the cross-entropy of its
    #                           samples' soft cells against the cells they were drawn in
    channel_cells: bool = False  # with clusters (dcgan): cells of each channel's image, one
    #                              per channel, drawn independently (Stacked MNIST's digits)
    conditional: bool = False  # class-conditional on the data's labels (docs/conditional.md): a
    #                            label embedding next to z in G, a projection discriminator
    num_classes: int = 10  # with conditional: the data's labels are 0 .. num_classes - 1

    def __post_init__(self) -> None:
        if self.net not in ("mlp", "dcgan"):
            raise ConfigError(f"model.net = {self.net!r}; choose 'mlp' or 'dcgan'")
        if self.loss == "wgan_gp":  # the spelling of configs and checkpoints before `penalty`
            if self.penalty not in ("none", "gp"):
                raise ConfigError(f"model.loss = 'wgan_gp' is loss = 'wasserstein' with penalty "
                                  f"= 'gp'; for penalty = {self.penalty!r} write model.loss = "
                                  "'wasserstein'")
            self.loss, self.penalty = "wasserstein", "gp"
        check_choice(self, "model", "loss", LOSSES)
        check_choice(self, "model", "penalty", PENALTY_CHOICES)
        if self.penalty != "none" and self.loss in KERNEL_LOSSES:
            raise ConfigError(f"model.penalty = {self.penalty!r} regularises a critic, and "
                              f"model.loss = {self.loss!r} trains without one; set "
                              "model.penalty = 'none' (or choose a critic loss)")
        check_ranges(self, "model", positive=("latent_dim", "n_critic", "pack"),
                     non_negative=("gp_weight", "lr_generator", "lr_critic", "energy_weight",
                                   "clusters", "cell_weight"))
        check_ranges(self, "model", positive=("num_classes",))
        check_widths(self, "model", "hidden", "channels")
        if self.net == "mlp" and not self.hidden:
            raise ConfigError("model.hidden = []: an mlp GAN needs at least one hidden width")
        if self.net == "dcgan" and not self.channels:
            raise ConfigError("model.channels = []: a dcgan net needs at least one stage")
        if self.cell_weight and not self.clusters:
            raise ConfigError(f"model.cell_weight = {self.cell_weight} needs model.clusters > 0")
        if self.channel_cells and not (self.clusters and self.net == "dcgan"):
            raise ConfigError("model.channel_cells = true needs model.clusters > 0 and "
                              f"model.net = 'dcgan' (got clusters = {self.clusters}, "
                              f"net = {self.net!r})")
        if self.conditional:
            unsupported = [(self.clusters, f"model.clusters = {self.clusters} (k-means cells: "
                            "condition on the labels or on cells, not both; set it to 0)"),
                           (self.pack > 1, f"model.pack = {self.pack} (the projection "
                            "discriminator judges one labelled sample at a time; set it to 1)"),
                           (self.loss in KERNEL_LOSSES, f"model.loss = {self.loss!r} (no critic "
                            "to project the labels on; choose a critic loss)")]
            for bad, what in unsupported:
                if bad:
                    raise ConfigError(f"model.conditional = true does not support {what}")


def kernel_distance(kind: str, fake: Tensor, real: Tensor) -> Tensor:
    """``energy`` (squared energy distance) or ``mmd`` (MMD², RBF, median bandwidth) between
    two batches (n, ...), flattened; in float32 even under autocast (the metrics see to it)."""
    from genmodels.metrics import energy_distance, mmd

    distance = energy_distance if kind == "energy" else mmd
    return distance(fake.flatten(1), real.flatten(1))


@register
class GAN(Model, Sampler):
    kind = "gan"
    Config = GANConfig
    point_nets = ("mlp",)

    def __new__(cls, config: GANConfig | None = None, *args: object, **kwargs: object):
        """``GAN(config)`` with ``model.conditional = true`` builds a
        :class:`~genmodels.models.conditional.ConditionalGAN` (a GAN subclass)."""
        if cls is GAN and config is not None and config.conditional:
            from genmodels.models.conditional import ConditionalGAN

            return super().__new__(ConditionalGAN)
        return super().__new__(cls)

    def __init__(self, config: GANConfig, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(config, input_shape)
        c, shape = config, self.input_shape  # GANConfig has checked the net, loss and widths
        self.latent_dim = c.latent_dim
        code_dim = c.latent_dim + self.condition_dim()
        leaky = functools.partial(nn.LeakyReLU, 0.2)
        if c.net == "mlp":
            self.generator = mlp([code_dim, *c.hidden, shape[0]])
            critic = mlp([shape[0] * c.pack, *c.hidden, 1], activation=leaky)
            first_width = c.hidden[0]
        else:  # dcgan
            packed = (shape[0] * c.pack, *shape[1:])
            try:
                self.generator = nn.Sequential(
                    ConvDecoder(code_dim, list(reversed(c.channels)), shape, batch_norm=True),
                    nn.Tanh())
                # no batch norm under a gradient penalty: it couples the examples whose
                # gradients the penalty takes one at a time (Gulrajani et al. 2017)
                critic = ConvEncoder(packed, c.channels, 1, activation=leaky,
                                     batch_norm=not c.spectral_norm and c.penalty == "none")
            except ValueError as err:  # a size the conv stacks cannot take
                raise ConfigError(str(err)) from None
            first_width = c.channels[0]
            self.sample_batch_size = 128  # 1.5x the images/s of batch 1000 on 2 CPU cores
        if c.spectral_norm:
            for module in critic.modules():
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    nn.utils.parametrizations.spectral_norm(module)
        self.critic = None if c.loss in KERNEL_LOSSES else critic
        # cluster-conditioned: cell embeddings at G's input and at the critic's first layer;
        # made after the nets, so that initial weights and parameter order are unchanged
        self.cells = (CellConditioning(shape, c.clusters, c.channel_cells, c.pack,
                                       None if self.critic is None else first_width)
                      if c.clusters else None)
        self.register_load_state_dict_pre_hook(_rename_old_cell_keys)
        # the critic update's codes z and cells, and its fakes with their graph: the generator
        # update of the same step reuses them (every evaluation of its loss sees the same z)
        self._codes: tuple[Tensor, Tensor | None] | None = None
        self._fakes: Tensor | None = None

    def condition_dim(self) -> int:
        """Width the conditioning adds to z at G's input: the cells' embeddings (0 without
        ``clusters``)."""
        c = self.config
        return CellConditioning.code_dim(self.input_shape, c.channel_cells) if c.clusters else 0

    def validate(self, config: Config) -> None:
        """Packing must divide the critic's micro-batches."""
        micro = config.train.batch_size // self.config.n_critic
        if micro % self.config.pack:
            raise ConfigError(f"train.batch_size / model.n_critic = {micro} is not divisible by "
                              f"model.pack = {self.config.pack}")

    def prepare(self, data: RunData) -> None:
        """Cluster-conditioned: find the k-means cells of the training data (seeded from the
        global RNG, so by train.seed)."""
        if self.cells is None:
            return
        images, view = data.train.tensors[0], data.train.transform
        generator = torch.Generator(images.device).manual_seed(0)
        x = view(images, generator) if view is not None else images
        self.cells.fit(x, int(torch.randint(2**62, ())))

    # --- sampling ---------------------------------------------------------------------------
    def generate(self, n: int, generator: torch.Generator | None = None,
                 cells: Tensor | None = None, z: Tensor | None = None) -> Tensor:
        """n raw generator outputs in data space ([-1, 1] images or points) of codes ``z``
        (n, latent_dim), drawn unless given. A cluster-conditioned GAN draws ``cells`` (n,) at
        their training shares unless given ((n, C) with ``channel_cells``)."""
        device = next(self.parameters()).device
        if z is None:
            z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        if self.cells is not None:
            z = self.cells.condition(z, self.cells.draw(n, generator) if cells is None else cells)
        return self.generator(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, d) points, or (n, C, H, W) images in [0, 1]."""
        x = self.generate(n, generator)
        return (x + 1) / 2 if self.config.net == "dcgan" else x

    def summary_pass(self, x: Tensor) -> Tensor | None:
        """The generator on len(x)·pack codes, then the critic on its packed samples."""
        cells = self.cells_of(x.repeat_interleave(self.config.pack, 0))
        fake = self.generate(len(x) * self.config.pack, cells=cells)
        return None if self.critic is None else self.judge(fake, cells)

    # --- objectives -------------------------------------------------------------------------
    def parameter_groups(self) -> dict:
        c = self.config
        groups = {"generator": {"params": self.parameters_of(critic=False),
                                **({"lr": c.lr_generator} if c.lr_generator else {})}}
        if self.critic is not None:
            groups["critic"] = {"params": self.parameters_of(critic=True),
                                **({"lr": c.lr_critic} if c.lr_critic else {})}
        return groups

    def parameters_of(self, critic: bool) -> list[nn.Parameter]:
        """The critic's parameters (and its cell embedding's), or the generator's (the rest),
        in the order of ``parameters()``."""
        owned = {id(p) for module in self.critic_modules() for p in module.parameters()}
        return [p for p in self.parameters() if (id(p) in owned) == critic]

    def critic_modules(self) -> list[nn.Module]:
        """The modules whose parameters the critic's optimiser trains: the critic and its cell
        embedding."""
        judges = (self.critic, self.cells.critic_embedding if self.cells is not None else None)
        return [module for module in judges if module is not None]

    def phases(self) -> list[Phase]:
        if self.critic is None:
            return [Phase("generator", self.kernel_generator_loss)]
        return [Phase("critic", self.critic_loss, repeats=self.config.n_critic),
                Phase("generator", self.generator_loss)]

    def cells_of(self, x: Tensor) -> Tensor | None:
        """The cells of examples x (:meth:`CellConditioning.assign`), or None unconditioned."""
        return None if self.cells is None else self.cells.assign(x)

    def conditions(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """A real batch and the conditions of its examples, which G's samples are drawn in and
        the critic judges under: :meth:`by_cell` here (cells, or None unconditioned)."""
        return self.by_cell(batch[0])

    def by_cell(self, real: Tensor) -> tuple[Tensor, Tensor | None]:
        """A real batch ordered by cell and its cells (:meth:`CellConditioning.by_cell`);
        unconditioned, the batch as it is and None."""
        return (real, None) if self.cells is None else self.cells.by_cell(real)

    def pack(self, x: Tensor) -> Tensor:
        """(n, ...) -> (n / m, m·...) along the channel or feature axis (PacGAN)."""
        m = self.config.pack
        if len(x) % m:
            raise ConfigError(f"a batch of {len(x)} cannot be packed by model.pack = {m}")
        return x.reshape(len(x) // m, m * x.shape[1], *x.shape[2:])

    def judge(self, x: Tensor, cells: Tensor | None = None) -> Tensor:
        """Critic outputs (n / pack,) for samples x (n, ...), in ``cells`` (n,) when
        cluster-conditioned."""
        return self.critique(self.pack(x), cells)

    def critique(self, packed: Tensor, cells: Tensor | None = None) -> Tensor:
        """Critic outputs (n / pack,) for packed samples (n / pack, pack·...), conditioned on
        their cells (n,) or (n, groups) when given (:meth:`CellConditioning.critique`)."""
        if cells is None:
            return self.critic(packed).squeeze(1)
        layers = self.critic.net if isinstance(self.critic, ConvEncoder) else self.critic
        return self.cells.critique(layers, packed, cells)

    def critic_loss(self, batch: Batch) -> Losses:
        """The critic's loss on real and generated samples (the fakes in the real batch's
        cells when cluster-conditioned). With one critic update per step the fakes keep their
        graph and the generator update reuses them (one generator forward per step, as in
        pytorch/examples dcgan; the critic update leaves G as is)."""
        real, cells = self.conditions(batch)
        reuse = self.config.n_critic == 1 and torch.is_grad_enabled()
        z = torch.randn(len(real), self.latent_dim, device=real.device)
        with torch.set_grad_enabled(reuse):
            fake = self.generate(len(real), cells=cells, z=z)
        self._codes, self._fakes = ((z, cells), fake) if reuse else (None, None)
        fake = fake.detach()
        d_real, d_fake = self.judge(real, cells), self.judge(fake, cells)
        loss = CRITIC_LOSSES[self.config.loss](d_real, d_fake)
        out = {"d_real": d_real.mean(), "d_fake": d_fake.mean()}
        if self.config.penalty != "none":
            name, penalty_of = PENALTIES[self.config.penalty]
            penalty = penalty_of(lambda x: self.critique(x, cells), self.pack(real),
                                 self.pack(fake))
            loss = loss + self.config.gp_weight * penalty
            out[name] = penalty
        return {"loss": loss, **out}

    def generator_loss(self, batch: Batch) -> Losses:
        """The generator's loss through the critic, whose weights get no gradient (it is
        frozen for this forward: the backward computes gradients for G only). After a single
        critic update it uses that update's z and cells: its fakes (graph included) the first
        time, the same codes through G again at later evaluations of the step (SGD-G2)."""
        fake, self._fakes = self._fakes, None
        if self._codes is not None and len(self._codes[0]) == len(batch[0]):
            z, cells = self._codes
            if fake is None:
                fake = self.generate(len(z), cells=cells, z=z)
        else:
            cells = self.conditions(batch)[1]
            fake = self.generate(len(batch[0]), cells=cells)
        critic = self.parameters_of(critic=True)
        for p in critic:
            p.requires_grad_(False)
        try:
            d_fake = self.judge(fake, cells)
        finally:
            for p in critic:
                p.requires_grad_(True)
        loss = GENERATOR_LOSSES[self.config.loss](d_fake)
        terms = {}
        if self.config.energy_weight:
            terms["energy_distance"] = (self.config.energy_weight,
                                        kernel_distance("energy", fake, batch[0]))
        if self.config.cell_weight and cells is not None:
            terms["cell_cross_entropy"] = (self.config.cell_weight,
                                           self.cells.cross_entropy(fake, cells))
        if not terms:
            return {"loss": loss}
        total = loss + sum(weight * value for weight, value in terms.values())
        return {"loss": total, "adversarial": loss, **{k: v for k, (_, v) in terms.items()}}

    def kernel_generator_loss(self, batch: Batch) -> Losses:
        fake = self.generate(len(batch[0]), cells=self.cells_of(batch[0]))
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
        title = f"{len(samples)} samples of {self.kind} at step {step}"
        if self.config.net == "mlp":
            return [scatter_points(samples, folder / f"samples_{step:07d}.png", batch[0],
                                   title=f"{title} over held-out data")]
        return [save_image_grid(samples, folder / f"samples_{step:07d}.png", title=title)]


def _rename_old_cell_keys(module: nn.Module, state_dict: dict, prefix: str, *_: object) -> None:
    """Load-state-dict pre-hook: move the cell keys of older checkpoints (``partition.*``,
    ``cell_embedding.weight``, ``critic_cell_embedding.weight``) to ``cells.*``."""
    for key in list(state_dict):
        for old, new in OLD_CELL_KEYS.items():
            if key.startswith(prefix + old):
                state_dict[prefix + new + key[len(prefix + old):]] = state_dict.pop(key)
                break


__all__ = ["GAN", "GANConfig"]
