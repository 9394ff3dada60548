"""Seeded, resumable, DDP-aware mini-batches over tensors that already sit in (device) memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

Transform = Callable[[Tensor, torch.Generator], Tensor]

_EPOCH_STRIDE = 1_000_003
_BATCH_STRIDE = 100_003


class TensorBatches:
    """Iterate over aligned tensors in mini-batches, like a DataLoader without workers.

    Seeding ignores the global RNG. Epoch ``e`` is ordered by ``randperm`` from a fresh generator
    seeded ``s_e = seed * 1_000_003 + e``; batch ``i`` of that epoch gets its own transform
    generator seeded ``s_e * 100_003 + i`` on the data's device, so any batch can be rebuilt
    without replaying the ones before it (exact mid-epoch resume via :meth:`state_dict`).

    ``batch_size`` is the global batch. With ``world_size > 1`` rank ``r`` yields the contiguous
    slice ``[r * b / ws, (r + 1) * b / ws)`` of each global batch, so the ranks' slices
    concatenated equal the single-process batch. ``transform(x, generator)`` (e.g. dynamic
    binarisation) runs on the first tensor of the whole global batch before slicing, so every
    rank sees the same draws; the other tensors are only indexed for the rank's slice.

    One live iterator at a time: iterating advances :attr:`epoch` and the position in it.
    """

    def __init__(
        self,
        tensors: Sequence[Tensor],
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
        transform: Transform | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.tensors = tuple(tensors)
        if not self.tensors:
            raise ValueError("TensorBatches needs at least one tensor")
        sizes = [len(t) for t in self.tensors]
        if len(set(sizes)) != 1:
            raise ValueError(f"all tensors must share their first dimension, got sizes {sizes}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, "
                             f"world_size={world_size}")
        if batch_size % world_size:
            raise ValueError(f"the global batch_size ({batch_size}) must be divisible by "
                             f"world_size ({world_size})")
        self.n = sizes[0]
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.transform = transform
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.position = 0  # batches of the current epoch already yielded

    def __len__(self) -> int:
        """Batches per epoch (global batches; each rank yields one slice of each)."""
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    @property
    def device(self) -> torch.device:
        return self.tensors[0].device

    def to(self, device: torch.device | str) -> TensorBatches:
        """Move the tensors to ``device`` (batches are then indexed there); returns self."""
        self.tensors = tuple(t.to(device) for t in self.tensors)
        return self

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its first batch on the next iteration."""
        self.epoch, self.position = epoch, 0

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "position"}`` of the next batch to yield; a finished epoch maps to the
        start of the next one."""
        if self.position and self.position >= len(self):
            return {"epoch": self.epoch + 1, "position": 0}
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume exactly: the next batch is the one that followed when ``state`` was saved."""
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def _epoch_seed(self) -> int:
        return (self.seed * _EPOCH_STRIDE + self.epoch) % 2**64

    def _order(self) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.n, device=self.device)
        generator = torch.Generator().manual_seed(self._epoch_seed())
        return torch.randperm(self.n, generator=generator).to(self.device)

    def _batch(self, order: Tensor, i: int) -> tuple[Tensor, ...]:
        idx = order[i * self.batch_size:(i + 1) * self.batch_size]
        m = len(idx)
        lo, hi = self.rank * m // self.world_size, (self.rank + 1) * m // self.world_size
        first = self.tensors[0]
        if self.transform is None:
            first = first[idx[lo:hi]]
        else:
            seed = (self._epoch_seed() * _BATCH_STRIDE + i) % 2**64
            generator = torch.Generator(device=self.device).manual_seed(seed)
            first = self.transform(first[idx], generator)[lo:hi]
        return (first, *(t[idx[lo:hi]] for t in self.tensors[1:]))

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        """Yield the rest of the current epoch as tuples of tensors, then advance the epoch."""
        if self.position and self.position >= len(self):
            self.set_epoch(self.epoch + 1)
        order = self._order()
        for i in range(self.position, len(self)):
            self.position = i + 1
            yield self._batch(order, i)
        self.set_epoch(self.epoch + 1)
