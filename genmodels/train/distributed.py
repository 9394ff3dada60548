"""Multi-process data parallelism under ``torchrun``.

Every process builds the same model from the same seed, reads its slice of each global batch
(:class:`~genmodels.data.TensorBatches` with ``rank``/``world_size``) and, after each backward
pass, gradients are averaged with one flat all-reduce per optimiser. This is what
``DistributedDataParallel`` does, without wrapping the model, so models with several networks
and optimisers (GANs) need no special code. Backend: gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group set up by ``torchrun``; returns ``(rank, world_size)``."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def local_device(device: torch.device) -> torch.device:
    """On CUDA each process takes the GPU ``LOCAL_RANK``."""
    if device.type == "cuda" and device.index is None and launched_by_torchrun():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def broadcast_parameters(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every process."""
    if is_distributed():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """Replace each gradient by its mean over processes (one flat all-reduce)."""
    if not is_distributed():
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def average_scalars(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Mean of each logged scalar over processes."""
    if not is_distributed() or not values:
        return values
    flat = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    return dict(zip(values, flat.tolist(), strict=True))


def gather_objects(value: Any) -> list[Any] | None:
    """Every process's ``value`` as a list indexed by rank on rank 0, None on the others (one
    process: ``[value]``). Values travel pickled between this run's own processes."""
    if not is_distributed():
        return [value]
    values = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(value, values, dst=0)
    return values


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
