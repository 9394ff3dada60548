"""Mode-collapse monitor: a Trainer callback that measures, every ``train.monitor_every`` steps,
how many modes of the data a generative model covers.

    genmodels train configs/gan_ring.toml train.monitor_every=500

Any model with ``sample(n, generator)`` on one of these datasets:

- ``ring``, ``grid`` (2-D mixtures): the PacGAN protocol (``metrics.mixture_modes``): modes
  captured, share of high-quality samples (within 3σ of a mode), reverse KL of the histogram
  of high-quality samples to the uniform law (nats);
- ``mnist``: the shipped CNN's class histogram (modes of 10, KL to uniform), precision, recall,
  density and coverage (k = 5) of FID-MNIST features against as many held-out images, and the
  Vendi score (cosine kernel) of the sample features;
- ``stacked_mnist``: the same with the 1000 digit triples as modes, classified channel by
  channel as ``metrics.stacked_mnist_modes``, and ``channel_kl``: the sum of the three
  channels' digit KLs (``metrics.stacked_mnist_channel_kl``; 10 cells each, so far less noisy
  than the triple KL at 2,500 samples).

Each measurement draws ``train.monitor_samples`` samples (2,500 by default, the 2-D protocol;
the Stacked MNIST benchmark uses 26,000) in the Trainer's evaluation mode (eval mode, EMA
weights if any, forked RNG) from a generator seeded with ``seed``: the same latent codes every
time, and the course of training is unchanged (a resumed run stays bit-identical). The values
go to ``metrics.jsonl`` (and the other ``train.loggers``) as ``monitor/modes``, ``monitor/kl``,
``monitor/high_quality`` (2-D) or ``monitor/precision``, ``recall``, ``density``, ``coverage``,
``vendi`` (images; Stacked MNIST also ``channel_kl``), so ``metrics.png`` draws them against the
step (redrawn at each evaluation, figure point and at the end); a scatter (2-D) or a grid of 64
samples goes to ``figures/monitor_<step>.png`` (and to TensorBoard as ``figures/monitor``).

Warning: with n samples, a perfect sampler (uniform over the K modes) covers on average
E = K (1 - (1 - 1/K)^n) modes, with standard deviation s (occupancy law). A measurement with
fewer than ceil(E - 3 s) modes emits a :class:`ModeCollapseWarning`, e.g. ``mode collapse: 3/8
modes at step 4000 (...)``, naming the best count so far. The threshold is the full count K on
the ring, the grid and MNIST at 2,500 samples; on Stacked MNIST it is 896 of 1000 at 2,500
samples and 1000 at 26,000.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from genmodels.checks import ConfigError
from genmodels.data import mode_index, to_unit
from genmodels.data.build import TOY_DATASETS
from genmodels.metrics import (
    label_histogram,
    mixture_modes,
    mnist_features_and_labels,
    prdc,
    stacked_mnist_channel_kl,
    vendi_score,
)
from genmodels.metrics.modes import STACKED_MNIST_MODES
from genmodels.models.base import Sampler
from genmodels.train.trainer import Callback

if TYPE_CHECKING:
    from genmodels.train.trainer import Trainer

IMAGE_MODES = {"mnist": 10, "stacked_mnist": STACKED_MNIST_MODES}
MONITORED = (*TOY_DATASETS, *IMAGE_MODES)
GRID_SIZE = 64  # images in a monitor figure
SAMPLE_BATCH = 1000


class ModeCollapseWarning(UserWarning):
    """Fewer modes than a perfect sampler would cover with as many samples."""


def perfect_coverage(num_modes: int, n: int) -> tuple[float, float]:
    """Mean and standard deviation of the number of modes that n uniform draws over
    ``num_modes`` modes reach (the occupancy law): K (1 - q1) and
    sqrt(K q1 + K (K - 1) q2 - K² q1²), with q_j = (1 - j / K)^n."""
    k = num_modes
    q1, q2 = ((1 - j / k) ** n for j in (1, 2))
    variance = k * q1 + k * (k - 1) * q2 - (k * q1) ** 2
    return k * (1 - q1), math.sqrt(max(variance, 0.0))


class ModeMonitor(Callback):
    """Measures mode coverage of ``samples`` samples against ``held_out`` data of ``dataset``
    (module docstring). ``held_out``: points (N, 2) of a mixture, or images (N, C, 28, 28),
    uint8 or float in [0, 1]; its first ``samples`` rows are the reference. ``folder``: where
    the figures go (None: none). The Trainer builds one with :meth:`for_run`."""

    def __init__(self, dataset: str, held_out: Tensor, every: int = 0, samples: int = 2500,
                 folder: Path | None = None, seed: int = 0) -> None:
        if dataset not in MONITORED:
            raise ConfigError(f"the mode-collapse monitor measures data.name in "
                              f"{', '.join(MONITORED)}, not {dataset!r}")
        if samples < 10:
            raise ConfigError(f"train.monitor_samples = {samples}; use at least 10")
        self.dataset, self.every, self.samples = dataset, every, samples
        self.folder, self.seed = folder, seed
        self.reference = held_out[:samples]
        if dataset in TOY_DATASETS:
            self.mixture = TOY_DATASETS[dataset]()
            self.num_modes = self.mixture.n_modes
        else:
            self.num_modes = IMAGE_MODES[dataset]
        self.real_features: Tensor | None = None  # computed at the first measurement
        expected, std = perfect_coverage(self.num_modes, samples)
        self.threshold = math.ceil(expected - 3 * std - 1e-6)
        self.best: tuple[int, int] | None = None  # (modes, step)

    @classmethod
    def for_run(cls, trainer: Trainer) -> ModeMonitor:
        """The monitor of a run: ``train.monitor_every``, ``train.monitor_samples``, the run's
        held-out data and ``figures/``; after a resume, the best count so far comes back from
        ``metrics.jsonl``."""
        from genmodels.plots import read_metrics

        config = trainer.config
        if not isinstance(trainer.model, Sampler):
            raise ConfigError(f"train.monitor_every needs a model with sample(n); a "
                              f"{config.kind} has none")
        monitor = cls(config.data.name, trainer.data.eval.tensors[0], config.train.monitor_every,
                      config.train.monitor_samples, trainer.out / "figures")
        metrics = trainer.out / "metrics.jsonl"
        for record in read_metrics(metrics) if metrics.exists() else []:
            if "monitor/modes" in record:
                monitor._note_best(record["monitor/modes"], record["step"])
        return monitor

    # --- the callback ---------------------------------------------------------------------
    def on_step(self, trainer: Trainer, losses: dict[str, Tensor]) -> None:
        """Every ``every`` steps and at the last one: measure and log, the figure too
        (``metrics.png`` is redrawn at each evaluation, figure point and at the end)."""
        if not trainer.is_main or (trainer.step % self.every
                                   and trainer.step != trainer.total_steps):
            return
        with trainer.evaluation_mode() as model:
            values = self.measure(model, trainer.step)
        trainer.record({f"monitor/{name}": value for name, value in values.items()})
        if self.folder is not None:
            trainer.loggers.figures([self.figure_path(trainer.step)], trainer.step)

    # --- measurements ---------------------------------------------------------------------
    def measure(self, model: Sampler, step: int) -> dict[str, float]:
        """Draw the samples, compute the statistics, write the figure and warn on collapse."""
        samples = self.draw(model)
        if self.dataset in TOY_DATASETS:
            values = self.mixture_statistics(samples)
        else:
            values = self.image_statistics(samples)
        if self.folder is not None:
            self.figure(samples, step, values)
        self.check(int(values["modes"]), step)
        return values

    def draw(self, model: Sampler) -> Tensor:
        """``samples`` samples from a fixed generator on the held-out data's device; images
        clamped to [0, 1]."""
        generator = torch.Generator(self.reference.device).manual_seed(self.seed)
        with torch.no_grad():
            x = torch.cat([model.sample(min(SAMPLE_BATCH, self.samples - start), generator)
                           for start in range(0, self.samples, SAMPLE_BATCH)])
        return x if self.dataset in TOY_DATASETS else x.clamp(0, 1)

    def mixture_statistics(self, points: Tensor) -> dict[str, float]:
        """``modes``, ``high_quality`` (share within 3σ) and ``kl`` (reverse KL, nats; left
        out while no sample is of high quality) of points (n, 2)."""
        result = mixture_modes(points, self.mixture.means.to(points.device), self.mixture.std)
        values = {"modes": result.modes_captured, "high_quality": result.high_quality_fraction}
        if math.isfinite(result.reverse_kl):
            values["kl"] = result.reverse_kl
        return values

    def image_statistics(self, images: Tensor) -> dict[str, float]:
        """``modes`` and ``kl`` (to uniform, nats) of the CNN's classes (digit triples for 3
        channels, then also ``channel_kl``, the sum of the channels' digit KLs), ``precision``,
        ``recall``, ``density``, ``coverage`` and ``vendi`` of the FID-MNIST features of images
        (n, C, 28, 28) in [0, 1]."""
        if self.real_features is None:
            self.real_features = mnist_features_and_labels(to_unit(self.reference))[0]
        features, digits = mnist_features_and_labels(images)
        labels = digits[:, 0] if digits.shape[1] == 1 else mode_index(digits)
        histogram = label_histogram(labels, self.num_modes)
        values = {"modes": histogram.modes_covered, "kl": histogram.kl_to_uniform}
        if self.num_modes == STACKED_MNIST_MODES:
            values["channel_kl"] = sum(stacked_mnist_channel_kl(histogram))
        return {**values, **prdc(self.real_features, features), "vendi": vendi_score(features)}

    def figure(self, samples: Tensor, step: int, values: dict[str, float]) -> Path:
        """``figures/monitor_<step>.png``: a scatter over the held-out points, or a grid."""
        from genmodels.plots import save_image_grid, scatter_points

        path = self.figure_path(step)
        if self.dataset not in TOY_DATASETS:
            return save_image_grid(samples[:GRID_SIZE], path, title=(
                f"Mode monitor, step {step}: {min(GRID_SIZE, len(samples))} of {len(samples)} "
                f"samples; {values['modes']}/{self.num_modes} modes, KL to uniform "
                f"{values['kl']:.3f} nats"))
        title = (f"Mode monitor, step {step}: {len(samples)} samples over held-out data; "
                 f"{values['modes']}/{self.num_modes} modes, {values['high_quality']:.1%} "
                 "high quality")
        return scatter_points(samples, path, self.reference, title=title)

    def figure_path(self, step: int) -> Path:
        return self.folder / f"monitor_{step:07d}.png"

    def check(self, modes: int, step: int) -> None:
        """Warn if ``modes`` is below the threshold (module docstring); track the best."""
        best = self.best
        self._note_best(modes, step)
        if modes < self.threshold:
            so_far = f"; best so far {best[0]} at step {best[1]}" if best else ""
            warnings.warn(f"mode collapse: {modes}/{self.num_modes} modes at step {step} "
                          f"(a perfect sampler covers at least {self.threshold} with "
                          f"{self.samples} samples{so_far})", ModeCollapseWarning, stacklevel=2)

    def _note_best(self, modes: int, step: int) -> None:
        if self.best is None or modes > self.best[0]:
            self.best = (int(modes), int(step))


__all__ = ["ModeCollapseWarning", "ModeMonitor", "perfect_coverage"]
