"""Small helpers shared across layers: seeding, devices and input checks."""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import torch
from torch import Tensor


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """A file opened with ``mode`` ("wb" or "w") that replaces ``path`` only when the block
    ends without error: written to a temporary file in the same folder, flushed to disk
    (fsync), then renamed over ``path``; on any error (Ctrl-C included) the temporary file is
    removed and ``path`` is left as it was."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o644)  # mkstemp creates 0600 files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA). The one place where seeds are set."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rank_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank`` of a data-parallel run: ``seed`` itself on rank 0 (so a
    single-process run draws what it always drew), an independent 63-bit seed from NumPy's
    ``SeedSequence(seed, spawn_key=(rank,))`` on the others."""
    if rank == 0:
        return seed
    state = np.random.SeedSequence(seed, spawn_key=(rank,)).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else is passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from genmodels.checks import ConfigError

    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device = {name!r} is not a device; use auto, cpu, cuda or "
                          "cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device = {name!r} but CUDA is not available; "
                          "use train.device=cpu or auto")
    return device


def check_images(x: Tensor, *, shape: Sequence[int] | None = None, low: float = 0.0,
                 high: float = 1.0, name: str = "images") -> None:
    """Raise ValueError unless ``x`` is a float (N, C, H, W) batch, of one image ``shape``
    (C, H, W) when given, with values in [low, high]."""
    if not torch.is_tensor(x) or x.dim() != 4 or (
            shape is not None and tuple(x.shape[1:]) != tuple(shape)):
        got = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        want = "(N, {}, {}, {})".format(*shape) if shape is not None else "(N, C, H, W)"
        raise ValueError(f"{name} should have shape {want}, got {got}")
    if not x.is_floating_point():
        raise ValueError(f"{name} should be a float tensor in [{low}, {high}], got {x.dtype}; "
                         "convert uint8 images with genmodels.data.to_unit")
    if x.numel():
        lo, hi = torch.aminmax(x.detach())
        if not (low <= float(lo) and float(hi) <= high):  # also catches NaN
            raise ValueError(f"{name} should lie in [{low}, {high}], got values in "
                             f"[{float(lo):.3g}, {float(hi):.3g}]")


def checkpoint_input_shape(state: dict) -> tuple[int, ...]:
    """The shape of one example a saved model trained on (its ``"input_shape"``). Checkpoints
    from before size-generic nets store none: theirs is 28×28 with ``model.in_channels``
    channels (1 when absent), or ``(model.data_dim,)`` points for an mlp GAN."""
    if state.get("input_shape") is not None:
        return tuple(int(n) for n in state["input_shape"])
    model = state["config"]["model"]
    if state.get("kind") == "gan" and model.get("net") == "mlp":
        return (model.get("data_dim", 2),)
    return (model.get("in_channels", 1), 28, 28)
