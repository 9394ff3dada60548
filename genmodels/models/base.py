"""The one interface every trainable model implements, and the registry of model kinds.

A model owns its networks and its objective. The :class:`~genmodels.train.Trainer` only asks it
for its parameter groups (one optimiser each) and its training *phases*; evaluation and figures
are optional hooks. Adding a model kind never means touching the loop.

What a model can do beyond training is declared by the capability classes it inherits
(:class:`Sampler`, :class:`IterativeSampler`, :class:`ConditionalSampler`,
:class:`TemperedSampler`, :class:`LatentVariableModel`, :class:`LikelihoodModel`), and the
command line, pipelines and tools ask ``isinstance(model, Sampler)``, never ``hasattr``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from genmodels.checks import ConfigError
from genmodels.config import MODEL_CONFIGS

Batch = tuple[Tensor, ...]
Losses = dict[str, Tensor]


@dataclass
class Phase:
    """One optimiser update inside a training step.

    ``loss(batch)`` returns a dict of scalar tensors whose ``"loss"`` entry is minimised by the
    optimiser named ``optimizer``; every entry is logged. With ``repeats = r`` the step's batch is
    split into r equal micro-batches and the phase runs r updates (e.g. ``n_critic`` critic
    updates per generator update).
    """

    optimizer: str
    loss: Callable[[Batch], Losses]
    repeats: int = 1


class Model(nn.Module):
    """Base class of every model kind (classifiers, VAEs, GANs).

    Subclasses set ``kind`` (the name in configs), ``Config`` (a dataclass of hyper-parameters),
    build their nets in ``__init__(config, input_shape)`` and implement :meth:`loss` (single
    optimiser) or :meth:`phases` (several). ``input_shape`` is one example of the data without
    the batch dim: ``(C, H, W)`` for images of any size, ``(d,)`` for points; the Trainer takes
    it from the data and checkpoints store it. Left out, it is :meth:`default_input_shape`.
    """

    kind: ClassVar[str]
    Config: ClassVar[type]
    title: ClassVar[str | None] = None  # how messages name it, when its kind alone is vague
    # metric name -> its unit, for the y labels of metrics.png (over genmodels.plots.UNITS)
    metric_units: ClassVar[dict[str, str]] = {}
    point_nets: ClassVar[tuple[str, ...]] = ()  # config.net values that model points (d,)
    input_shape: tuple[int, ...]  # one input of forward(), without the batch dim

    def __init__(self, config: Any, input_shape: Sequence[int] | None = None) -> None:
        super().__init__()
        self.config = config
        self.input_shape = tuple(int(n) for n in input_shape) if input_shape is not None \
            else self.default_input_shape(config)
        if len(self.input_shape) != self.input_rank(config):
            what = "images (C, H, W)" if self.input_rank(config) == 3 else "points (d,)"
            raise ConfigError(f"model kind {self.kind!r} takes {what}, but the data gives "
                              f"examples of shape {self.input_shape}; choose data that fits "
                              "(see data.name)")

    @property
    def description(self) -> str:
        """What error messages call the model: "vae", or "class-conditional vae (CVAE)"."""
        return f"{self.title} ({type(self).__name__})" if self.title else self.kind

    @classmethod
    def default_input_shape(cls, config: Any) -> tuple[int, ...]:
        """The shape a model is built for when none is given: a 2-D point for a net of
        ``point_nets``, else one MNIST image."""
        return (2,) if cls.input_rank(config) == 1 else (1, 28, 28)

    @classmethod
    def input_rank(cls, config: Any) -> int:
        """Dimensions of one example: 1 for points (d,) (``config.net`` in ``point_nets``),
        else 3 for images (C, H, W)."""
        return 1 if cls.point_nets and config.net in cls.point_nets else 3

    # --- training -------------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Parameter] | dict[str, Any]]:
        """Optimiser name -> parameters (or a torch param-group dict with its own lr/betas)."""
        return {"model": [p for p in self.parameters() if p.requires_grad]}

    def phases(self) -> list[Phase]:
        return [Phase("model", self.loss)]

    def loss(self, batch: Batch) -> Losses:
        raise TypeError(f"{type(self).__name__} must define loss() or phases()")

    # --- optional hooks -------------------------------------------------------------------
    def summary_pass(self, x: Tensor) -> Any:
        """One pass through every net for ``genmodels summary`` (x: (N, *input_shape))."""
        return self(x)

    def validate(self, config: Any) -> None:
        """Raise ConfigError if the run's config (a :class:`genmodels.config.Config`) does not
        suit the model, e.g. a batch size that packing does not divide."""

    def prepare(self, data: Any) -> None:
        """Set-up that needs the training data (a :class:`genmodels.data.build.RunData`), run
        once at the start of a fresh run; a resumed run restores it from the checkpoint."""

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Batch]) -> dict[str, float]:
        """Held-out metrics; the default averages :meth:`loss` over the batches (none for a
        model with several phases and no single loss)."""
        if type(self).loss is Model.loss:
            return {}
        totals: dict[str, float] = {}
        count = 0
        for batch in batches:
            n = len(batch[0])
            for name, value in self.loss(batch).items():
                totals[name] = totals.get(name, 0.0) + float(value) * n
            count += n
        return {name: total / max(count, 1) for name, total in totals.items()}

    def figures(self, folder: Path, step: int, batch: Batch) -> list[Path]:
        """Write sample or prediction figures for ``step`` into ``folder``; return the paths."""
        return []


class Sampler(ABC):
    """A generative model: :meth:`sample` draws from it."""

    # samples per sample() call when many are drawn (draw_samples): the CPU's throughput optimum
    # of the model's nets; conv generators are faster in small batches that stay in cache
    # (docs/performance.md, Sampling)
    sample_batch_size: int = 1000

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n samples: images (n, C, H, W) in [0, 1], or points (n, d) in data units."""


class IterativeSampler(Sampler):
    """A sampler that integrates from noise in a chosen number of steps (diffusion, flow
    matching): ``genmodels sample --steps N`` and ``evaluate --steps N`` apply to it only."""

    default_steps: int  # the steps sample() takes when given none (the config's sample_steps)

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None,
               steps: int | None = None) -> Tensor:
        """n samples after ``steps`` sampler steps (``default_steps`` if None)."""

    def sampler_label(self, steps: int | None = None) -> str:
        """How :meth:`sample` draws with ``steps``, for figure titles: ``25 steps``."""
        return f"{self.default_steps if steps is None else steps} steps"


class ConditionalSampler(Sampler):
    """A class-conditional generative model p(x | y) of labelled data, y in [0,
    ``num_classes``): ``genmodels sample --label Y`` and ``--per-class K`` apply to it only.
    Without labels, :meth:`sample` draws them at their shares of the training data, so it
    samples p(x) = Σ_y p(y) p(x | y) like any :class:`Sampler`."""

    num_classes: int

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: Tensor | None = None) -> Tensor:
        """n samples, the i-th of class ``labels[i]`` (int64 (n,) in [0, num_classes), on the
        model's device); None draws the labels first, from ``generator``."""


class TemperedSampler(Sampler):
    """A sampler that decodes codes of a Gaussian prior and can draw them at a temperature τ:
    z = μ + τ σ ε (reduced-temperature sampling, Kingma & Dhariwal 2018; the VAE's analogue of
    the GAN truncation trick). τ < 1 trades diversity for typical samples; τ = 1 samples the
    model. ``genmodels sample --temperature`` and ``evaluate --temperature`` apply to it only."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """n samples decoded from prior codes drawn at ``temperature`` (> 0)."""


def check_temperature(temperature: float) -> float:
    """``temperature`` as a float, or a ValueError unless it is a finite number > 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature should be a finite number > 0 (1 samples the model, "
                         f"below 1 draws more typical samples), got {temperature!r}")
    return float(temperature)


def check_labels(labels: Tensor, n: int, num_classes: int) -> Tensor:
    """``labels`` as int64 (n,), or a ValueError naming what is wrong: their shape, their
    type, or a label outside [0, num_classes)."""
    if not torch.is_tensor(labels) or labels.shape != (n,) or labels.is_floating_point() \
            or labels.is_complex() or labels.dtype == torch.bool:
        got = f"{tuple(labels.shape)} {labels.dtype}" if torch.is_tensor(labels) \
            else type(labels).__name__
        raise ValueError(f"labels should be an integer tensor of shape ({n},), got {got}")
    if n and not (0 <= int(labels.min()) and int(labels.max()) < num_classes):
        raise ValueError(f"labels should lie in [0, {num_classes}) (the model's "
                         f"{num_classes} classes), got [{int(labels.min())}, "
                         f"{int(labels.max())}]")
    return labels.long()


class LatentVariableModel(Sampler):
    """A model p(x) = ∫ p(x|z) p(z) dz with an encoder: the latent tools, quantization,
    inpainting and the report work through these four members."""

    latent_dim: int

    @abstractmethod
    def encode(self, x: Tensor) -> Distribution:
        """q(z|x) for images x (N, C, H, W): batch shape (N,), event shape (latent_dim,)."""

    @abstractmethod
    def decode(self, z: Tensor) -> Distribution:
        """p(x|z) for codes (..., latent_dim): event shape (C, H, W)."""

    @abstractmethod
    def prior(self) -> Distribution:
        """p(z), event shape (latent_dim,)."""


class LikelihoodModel(ABC):
    """A model with an importance-sampled log-likelihood; its config's ``eval_samples`` is the k
    that :meth:`Model.evaluate` uses for the held-out NLL (0: off)."""

    @abstractmethod
    def log_likelihood(self, x: Tensor, k: int = 5000) -> Tensor:
        """(N,) estimate of log p(x) in nats per image with k importance samples."""


MODELS: dict[str, type[Model]] = {}


def register(cls: type[Model]) -> type[Model]:
    """Class decorator adding a model kind to :data:`MODELS` and its config section to
    :data:`genmodels.config.MODEL_CONFIGS`."""
    if cls.kind in MODELS and MODELS[cls.kind] is not cls:
        raise ValueError(f"model kind {cls.kind!r} is registered twice")
    MODELS[cls.kind] = cls
    MODEL_CONFIGS[cls.kind] = cls.Config
    return cls
