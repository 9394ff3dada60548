"""A fixed partition of the data into k-means cells, for cluster-conditioned GANs.

The cells are found once, before training, by k-means (k-means++ seeding, Lloyd iterations) on
the data's leading principal components. A conditioned GAN draws a cell at the cell's share of
the training data, then a sample inside it, so the frequencies of the regions the cells pick out
are matched by construction (Liu et al. 2020, "Diverse image generation via self-conditioned
GANs"; Armandpour et al. 2021, "Partition-guided GANs", who partition a fixed feature space).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genmodels.metrics.kernels import squared_distances


def kmeans(x: Tensor, k: int, iterations: int = 30, generator: torch.Generator | None = None,
           chunk: int = 8192) -> tuple[Tensor, Tensor]:
    """k-means of the rows of ``x`` (n, d): (centroids (k, d), labels (n,) int64).

    k-means++ seeding (Arthur & Vassilvitskii 2007) drawn with ``generator``, then ``iterations``
    Lloyd steps; an emptied cell is reseeded at the point farthest from its centroid. Squared
    distances are computed ``chunk`` rows at a time, so memory is O(chunk · k).
    """
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= n, got k = {k} for {n} points")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    centroids = x.new_empty(k, x.shape[1])
    centroids[0] = x[torch.randint(n, (1,), generator=gen)]
    nearest = (x - centroids[0]).pow(2).sum(1)
    for i in range(1, k):
        pick = torch.multinomial(nearest.cpu().double() + 1e-30, 1, generator=gen)
        centroids[i] = x[pick.to(x.device)]
        nearest = torch.minimum(nearest, (x - centroids[i]).pow(2).sum(1))
    for _ in range(iterations):
        distances, labels = _nearest(x, centroids, chunk)
        sums = x.new_zeros(k, x.shape[1]).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k)
        for empty in torch.nonzero(counts == 0).flatten().tolist():
            far = int(distances.argmax())
            sums[empty], counts[empty], distances[far] = x[far], 1, 0
        centroids = sums / counts.unsqueeze(1)
    return centroids, _nearest(x, centroids, chunk)[1]


def _nearest(x: Tensor, centroids: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    """(squared distance to the nearest centroid (n,), its index (n,))."""
    parts = [squared_distances(block, centroids).min(1) for block in x.split(chunk)]
    return torch.cat([p.values for p in parts]), torch.cat([p.indices for p in parts])


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
    def fit(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Find the cells of the training data x (n, ...); returns their labels (n,)."""
        x = x.flatten(1).float()
        self.mean.copy_(x.mean(0))
        centred = x - self.mean
        covariance = centred.T @ centred / len(x)
        _, vectors = torch.linalg.eigh(covariance.double())  # ascending eigenvalues
        self.projection.copy_(vectors[:, -self.projection.shape[1]:].flip(1).float())
        codes = centred @ self.projection
        centroids, labels = kmeans(codes, self.cells, generator=generator)
        self.centroids.copy_(centroids)
        self.share.copy_(torch.bincount(labels, minlength=self.cells).float() / len(x))
        self.spread.copy_((codes - centroids[labels]).pow(2).sum(1).mean())
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
            return _nearest(self.codes(x), self.centroids, 8192)[1]

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

    def fit(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return super().fit(x.flatten(0, 1), generator).view(-1, self.groups)

    def assign(self, x: Tensor) -> Tensor:
        return super().assign(x.flatten(0, 1)).view(-1, self.groups)

    def logits(self, x: Tensor, temperature: float = 1.0) -> Tensor:
        return super().logits(x.flatten(0, 1), temperature)

    def draw(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return super().draw(n * self.groups, generator).view(n, self.groups)
