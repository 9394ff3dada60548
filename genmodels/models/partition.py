"""A fixed partition of the data into k-means cells, for cluster-conditioned GANs.

The cells are found once, before training, by k-means (:func:`genmodels.metrics.kmeans`:
k-means++ seeding, Lloyd iterations) on the data's leading principal components. A conditioned
GAN draws a cell at the cell's share of the training data, then a sample inside it, so the
frequencies of the regions the cells pick out are matched by construction (Liu et al. 2020,
"Diverse image generation via self-conditioned GANs"; Armandpour et al. 2021, "Partition-guided
GANs", who partition a fixed feature space). :mod:`genmodels.models.cells` conditions a GAN on
them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genmodels.metrics.diversity import kmeans, nearest_centres
from genmodels.metrics.kernels import squared_distances

ITERATIONS = 30  # Lloyd iterations at most: those the published conditioned runs' cells had


class Partition(nn.Module):
    """``cells`` k-means cells of data points (n, *shape) on their ``components`` leading
    principal components. Buffers only (saved with the model): the data mean (D,), the
    projection (D, components), the centroids (cells, components), each cell's share of the
    training data (cells,) and its mean squared distance to its own centroid (the spread).
    A point has one cell (``groups`` = 1); :class:`ChannelPartition` gives one a channel."""

    groups = 1  # cells per data point

    def __init__(self, data_dim: int, cells: int, components: int = 64) -> None:
        super().__init__()
        self.cells = cells
        components = min(components, data_dim)
        self.register_buffer("mean", torch.zeros(data_dim))
        self.register_buffer("projection", torch.eye(data_dim, components))
        self.register_buffer("centroids", torch.zeros(cells, components))
        self.register_buffer("share", torch.full((cells,), 1.0 / cells))
        self.register_buffer("spread", torch.ones(()))  # mean squared distance to the centroid

    @torch.no_grad()
    def fit(self, x: Tensor, seed: int | torch.Generator = 0) -> Tensor:
        """Find the cells of the training data x (n, ...): k-means of its codes, seeded by
        ``seed`` (an int or a CPU ``torch.Generator``), with at most ``ITERATIONS`` Lloyd
        iterations. Returns their labels (n,), those :meth:`assign` gives."""
        x = x.flatten(1).float()
        self.mean.copy_(x.mean(0))
        centred = x - self.mean
        covariance = centred.T @ centred / len(x)
        _, vectors = torch.linalg.eigh(covariance.double())  # ascending eigenvalues
        self.projection.copy_(vectors[:, -self.projection.shape[1]:].flip(1).float())
        codes = self.codes(x)
        self.centroids.copy_(kmeans(codes, self.cells, seed, ITERATIONS)[0])
        squared, labels = nearest_centres(codes, self.centroids)
        self.share.copy_(torch.bincount(labels, minlength=self.cells).float() / len(x))
        self.spread.copy_(squared.mean())
        return labels

    def codes(self, x: Tensor) -> Tensor:
        """x (n, ...) on the principal components (n, components), in float32 even under
        autocast (bfloat16 would move points near a cell boundary to the next cell)."""
        with torch.autocast(x.device.type, enabled=False):
            return (x.flatten(1).float() - self.mean) @ self.projection

    @torch.no_grad()
    def assign(self, x: Tensor) -> Tensor:
        """The cell (n,) int64 of each point of x (n, ...)."""
        with torch.autocast(x.device.type, enabled=False):
            return nearest_centres(self.codes(x), self.centroids)[1]

    def logits(self, x: Tensor, temperature: float = 1.0) -> Tensor:
        """Soft cell scores (n, cells) of x (n, ...), differentiable: minus the squared
        distance of its projection to each centroid, over ``temperature`` × the training
        data's mean squared distance to its own centroid."""
        with torch.autocast(x.device.type, enabled=False):
            squared = squared_distances(self.codes(x), self.centroids)
            return -squared / (temperature * self.spread)

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n cells (n,) int64, each with probability its share of the training data."""
        return torch.multinomial(self.share, n, replacement=True, generator=generator)


class ChannelPartition(Partition):
    """Cells of each channel of images (n, C, H, W): one partition of the single-channel images
    (n·C, H, W), shared by the channels, so an image has C cells (n, C), drawn independently at
    their shares. For data whose channels are independent images, as Stacked MNIST's digits:
    the cells of a whole image say little about each channel's digit. :meth:`logits` gives the
    soft cells of every channel image (n·C, cells), in the order of ``cells.flatten()``."""

    def __init__(self, channels: int, pixels: int, cells: int, components: int = 64) -> None:
        super().__init__(pixels, cells, components)
        self.groups = channels

    def fit(self, x: Tensor, seed: int | torch.Generator = 0) -> Tensor:
        return super().fit(x.flatten(0, 1), seed).view(-1, self.groups)

    def assign(self, x: Tensor) -> Tensor:
        return super().assign(x.flatten(0, 1)).view(-1, self.groups)

    def logits(self, x: Tensor, temperature: float = 1.0) -> Tensor:
        return super().logits(x.flatten(0, 1), temperature)

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return super().draw(n * self.groups, generator).view(n, self.groups)
