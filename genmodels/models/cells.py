"""Conditioning a GAN on fixed k-means cells of its training data (``model.clusters``).

The cells (:class:`~genmodels.models.partition.Partition`; one per channel image with
:class:`~genmodels.models.partition.ChannelPartition`) are found once, before training. The
generator gets a learned embedding of the cell (of each channel's cell) next to z; the critic
adds a learned bias per (cell, place in the pack, channel) to its first layer's output, which
equals appending constant cell maps to its input (Mirza & Osindero 2014). Sampling draws the
cells at their shares of the training data, so their frequencies are right by construction
(Liu et al. 2020; Armandpour et al. 2021). See docs/gan.md, "Cluster-conditioned GANs".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genmodels.checks import ConfigError
from genmodels.models.partition import ChannelPartition, Partition

EMBEDDING = 16  # width of the generator's embedding of a cell (concatenated to z)
TEMPERATURE = 0.1  # of the cell cross-entropy: real images get 0.84 on their own cell


class CellConditioning(nn.Module):
    """``cells`` k-means cells of examples of ``input_shape`` ((C, H, W) or (d,)): one cell an
    example, cells (n,) int64, or with ``per_channel`` one a channel, cells (n, C); ``groups``
    is the number of cells an example has (1 or C).

    Holds the partition (buffers), the generator's embedding (cells, 16) and, for a critic
    whose first layer is ``critic_width`` wide, the critic's (cells · pack · groups,
    critic_width), zero at the start so that the critic starts unconditioned."""

    def __init__(self, input_shape: Sequence[int], cells: int, per_channel: bool = False,
                 pack: int = 1, critic_width: int | None = None) -> None:
        super().__init__()
        self.partition = (ChannelPartition(input_shape[0], math.prod(input_shape[1:]), cells)
                          if per_channel else Partition(math.prod(input_shape), cells))
        self.groups, self.pack = self.partition.groups, pack
        self.generator_embedding = nn.Embedding(cells, EMBEDDING)
        self.critic_embedding: nn.Embedding | None = None
        if critic_width is not None:
            self.critic_embedding = nn.Embedding(cells * pack * self.groups, critic_width)
            nn.init.zeros_(self.critic_embedding.weight)

    @staticmethod
    def code_dim(input_shape: Sequence[int], per_channel: bool = False) -> int:
        """Width the cells add to the generator's input: 16 per cell of an example."""
        return EMBEDDING * (input_shape[0] if per_channel else 1)

    def fit(self, x: Tensor, seed: int) -> None:
        """Find the cells of the training examples x (n, *input_shape), k-means seeded by
        ``seed``."""
        if self.partition.cells > len(x):
            raise ConfigError(f"model.clusters = {self.partition.cells} exceeds the {len(x)} "
                              "training examples; lower it (or raise data.subset)")
        self.partition.fit(x, seed)

    def assign(self, x: Tensor) -> Tensor:
        """The cells of examples x (n, ...): (n,), or (n, C) per channel."""
        return self.partition.assign(x)

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Cells of n examples, each drawn at its share of the training data."""
        return self.partition.draw(n, generator)

    def condition(self, z: Tensor, cells: Tensor) -> Tensor:
        """The generator's input (n, latent_dim + code_dim): codes z (n, latent_dim) and the
        embeddings of their ``cells`` side by side."""
        return torch.cat([z, self.generator_embedding(cells).flatten(1).to(z.dtype)], 1)

    def by_cell(self, real: Tensor) -> tuple[Tensor, Tensor]:
        """A real batch (n, ...) ordered by cell, and its cells: packs then hold examples of
        one cell where the batch has several, so the critic compares samples within a cell
        (the fakes are drawn in the same cells). Channel cells go in lexicographic order, the
        first channel leading."""
        cells = self.assign(real)
        order = torch.arange(len(cells), device=cells.device)
        for column in reversed(cells.view(len(cells), -1).unbind(1)):  # last channel first
            order = order[column[order].argsort(stable=True)]
        return real[order], cells[order]

    def critique(self, layers: nn.Sequential, packed: Tensor, cells: Tensor) -> Tensor:
        """Critic outputs (n / pack,) of the critic ``layers`` for packed examples
        (n / pack, pack·...) in ``cells`` (n,) or (n, groups): the first layer's output gets
        the sum of one embedding per (cell, place in the pack, group)."""
        m, groups = self.pack, self.groups
        place = torch.arange(m, device=cells.device).view(m, 1)
        group = torch.arange(groups, device=cells.device)
        slots = (cells.view(-1, m, groups) * m + place) * groups + group
        bias = self.critic_embedding(slots).sum((1, 2))  # (n / m, first layer's width)
        h = layers[0](packed)
        h = h + bias.to(h.dtype).view(*bias.shape, *(1,) * (h.dim() - 2))
        return layers[1:](h).squeeze(1)

    def cross_entropy(self, x: Tensor, cells: Tensor) -> Tensor:
        """Mean cross-entropy of the soft cells of examples x (n, ...) (every channel image's,
        per channel) against ``cells``, at temperature 0.1 (:meth:`Partition.logits`): the
        auxiliary-classifier loss of AC-GAN (Odena et al. 2017) with a fixed nearest-centroid
        classifier."""
        return F.cross_entropy(self.partition.logits(x, TEMPERATURE), cells.flatten())


__all__ = ["CellConditioning"]
