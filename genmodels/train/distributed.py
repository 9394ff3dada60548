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
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


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


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes; the gradient of every input is the sum of the output gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation over the global batch: the statistics of each channel are those of
    every process's slice together (Ioffe & Szegedy 2015 on the union, as
    ``torch.nn.SyncBatchNorm``, which runs on GPUs only; this one runs on any device and
    backend, gloo included). The sums travel through a differentiable all-reduce (its gradient
    is the all-reduced gradient), so the backward pass is exact too. Outside training mode, or
    in a single process, it is ``F.batch_norm``. Its state is a BatchNorm's, key for key."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"SyncBatchNorm expects (N, C, ...) input, got shape "
                             f"{tuple(input.shape)}")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        if not (self.training and is_distributed()):
            return super().forward(input)
        dims = [0, *range(2, input.dim())]  # all but the channels
        # the global batch: equal slices on every rank, as the Trainer splits it
        count = input.numel() // input.shape[1] * dist.get_world_size()
        mean = _AllReduceSum.apply(input.sum(dims)) / count  # (C,)
        shape = [1, -1] + [1] * (input.dim() - 2)
        centred = input - mean.view(shape)
        var = _AllReduceSum.apply(centred.square().sum(dims)) / count  # biased (as BatchNorm)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = (1 / float(self.num_batches_tracked) if self.momentum is None
                            else self.momentum)
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(var * count / max(count - 1, 1), momentum)
        return out


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm layer replaced, in place, by a :class:`SyncBatchNorm`
    holding the same parameters and statistics (``train.sync_batchnorm``)."""
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm) and not isinstance(child, SyncBatchNorm):
            sync = SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                 child.track_running_stats, device=child.running_mean.device
                                 if child.running_mean is not None else None)
            sync.load_state_dict(child.state_dict())
            sync.train(child.training)
            setattr(module, name, sync)
        else:
            convert_sync_batchnorm(child)
    return module


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
