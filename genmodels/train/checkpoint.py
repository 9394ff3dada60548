"""Atomic checkpoint files and the RNG state they carry.

Files are written to a temporary name in the same folder and renamed over the target, so a run
killed mid-write (even with SIGKILL) leaves the previous checkpoint intact. They are read with
``torch.load(..., weights_only=True)``: only tensors and plain containers, never pickled code.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genmodels.errors import UserError, first_sentence
from genmodels.utils import atomic_file


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, truncated or not a genmodels checkpoint."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        torch.save(state, f)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated zip, foreign pickle, ...
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a genmodels checkpoint ({type(err).__name__}: "
            f"{first_sentence(err)})"
            + ("; delete it, or resume from an earlier copy" if path.name == "checkpoint.pt"
               else "")) from None
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{path} is a torch file but not a genmodels checkpoint "
                              "(no 'format' entry)")
    return state


def rng_state() -> dict[str, Any]:
    """Every RNG the training loop can touch, as tensors and plain values."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gauss": float(np_state[4])},
        "python": _python_state_to_tensor(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the RNGs saved by :func:`rng_state`, from tensors on any device (a checkpoint
    loaded onto the GPU holds them there; the generators take CPU tensors)."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gauss"]))
    version, internal, gauss = random.getstate()
    random.setstate((version, tuple(state["python"].cpu().tolist()), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _python_state_to_tensor(state: tuple) -> torch.Tensor:
    return torch.tensor(state[1], dtype=torch.int64)
