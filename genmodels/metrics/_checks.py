"""Input checks shared by the metrics: samples are (n, d) tensors of finite values."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import ExitStack
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

F = TypeVar("F", bound=Callable)


def outside_autocast(metric: F) -> F:
    """Run ``metric`` in its inputs' precision even when called under autocast (``train.amp``:
    a distance used as a training loss). Low-precision matmuls would cancel catastrophically in
    |x|^2 + |y|^2 - 2 x.y and round the projections of the sliced distances."""
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]

    @functools.wraps(metric)
    def wrapper(*args, **kwargs):
        with ExitStack() as stack:
            for device in devices:
                stack.enter_context(torch.autocast(device, enabled=False))
            return metric(*args, **kwargs)

    return wrapper


def _as_samples(x: Tensor | np.ndarray, name: str) -> Tensor:
    """``x`` as a tensor after checking it is a non-empty (n, d) array of finite values."""
    x = x if torch.is_tensor(x) else torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (n, d), got {tuple(x.shape)}; "
                         f"reshape images to (n, d) with {name}.flatten(1)")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty: got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return x


def check_samples(x: Tensor | np.ndarray, y: Tensor | np.ndarray | None = None,
                  name_x: str = "x", name_y: str = "y") -> tuple[Tensor, Tensor | None]:
    """Validate samples x (n, d) and optionally y (m, d); return them as float tensors.

    numpy arrays are converted with ``torch.as_tensor``. Both come back with one float dtype
    (float64 if either is float64, else float32) on x's device. Raises ValueError for a shape
    other than 2-D, an empty array, NaN or Inf, or a different number of features d.
    """
    x = _as_samples(x, name_x)
    if y is None:
        return x.to(torch.float64 if x.dtype == torch.float64 else torch.float32), None
    y = _as_samples(y, name_y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{name_x} has d={x.shape[1]} features but {name_y} has "
                         f"d={y.shape[1]}")
    dtype = torch.float64 if torch.float64 in (x.dtype, y.dtype) else torch.float32
    return x.to(dtype), y.to(device=x.device, dtype=dtype)


def check_neighbours(k: int, n: int, name: str) -> None:
    """Raise ValueError unless 1 <= k < n: the k nearest neighbours of each of the n points of
    ``name``, the point itself left out, must exist."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if k >= n:
        raise ValueError(f"k={k} nearest neighbours need k < n, but {name} has n={n} points "
                         f"(each point's neighbours exclude itself)")


def check_positive_int(value: int, name: str) -> None:
    """Raise ValueError unless ``value`` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
