"""MNIST and Fashion-MNIST held in memory as uint8 tensors, plus the float views models train on.

A whole split is read once through ``torchvision.datasets`` (``.data`` and ``.targets`` only,
never per-sample PIL images), kept as a ``(N, 1, 28, 28)`` uint8 tensor and cached per process.
Models see it through cheap views: :func:`to_unit`, :func:`to_symmetric`, :func:`binarize`
(dynamic binarisation) and :func:`static_binarize`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torchvision import datasets

DEFAULT_DATA_ROOT = Path("~/.cache/genmodels/data").expanduser()
DATA_ENV = "GENMODELS_DATA"
DATASETS: dict[str, type[datasets.MNIST]] = {
    "mnist": datasets.MNIST,
    "fashion": datasets.FashionMNIST,
}
SPLITS = ("train", "test")
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def resolve_data_root(root: str | Path | None = None) -> Path:
    """The data root: ``root`` if given and non-empty, else ``$GENMODELS_DATA``, else the default
    ``~/.cache/genmodels/data``."""
    for candidate in (root, os.environ.get(DATA_ENV)):
        if candidate is not None and str(candidate) != "":
            return Path(candidate).expanduser()
    return DEFAULT_DATA_ROOT


class DataNotFoundError(FileNotFoundError):
    """The raw IDX files of a dataset are missing (or could not be downloaded)."""

    def __init__(self, folder: str | Path, detail: str = "") -> None:
        self.folder = Path(folder)
        msg = (
            f"dataset files not found in {self.folder}: expected {', '.join(RAW_FILES)} "
            "(uncompressed: torchvision does not read the .gz archives). "
            f"Fix: pass --data-root <folder holding {self.folder.parent.name}/raw>, "
            f"set {DATA_ENV}, or allow download (download=True)."
        )
        if detail:
            msg += f" Download failed: {detail}"
        super().__init__(msg)


@dataclass(frozen=True, eq=False)
class ImageSet:
    """One split: ``images`` uint8 (N, 1, 28, 28) in 0..255, ``labels`` int64 (N,) in 0..9."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)


_CACHE: dict[tuple[str, str, Path], ImageSet] = {}


def load_images(
    name: str, split: str = "train", root: str | Path | None = None, download: bool = False
) -> ImageSet:
    """Load ``name`` in {"mnist", "fashion"}, ``split`` in {"train", "test"} from the data root
    (see :func:`resolve_data_root`), in torchvision's layout ``<root>/MNIST/raw/...``.

    Results are cached per (name, split, root) and shared between callers: treat the tensors as
    read-only (use ``.clone()`` before any in-place change). Raises :class:`DataNotFoundError`
    when the files are missing and ``download`` is False, or when the download fails.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown image dataset {name!r}; valid names are: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are: {', '.join(SPLITS)}")
    data_root = resolve_data_root(root)
    key = (name, split, data_root.resolve())
    if key in _CACHE:
        return _CACHE[key]
    cls = DATASETS[name]
    folder = data_root / cls.__name__ / "raw"
    if not download and not all((folder / f).is_file() for f in RAW_FILES):
        raise DataNotFoundError(folder)
    try:
        ds = cls(data_root, train=split == "train", download=download)
    except (RuntimeError, OSError) as e:
        if download:
            raise DataNotFoundError(folder, detail=f"{type(e).__name__}: {e}") from e
        raise
    images = ds.data.to(torch.uint8).unsqueeze(1).contiguous()
    labels = ds.targets.to(torch.int64)
    _CACHE[key] = ImageSet(images, labels)
    return _CACHE[key]


def to_unit(x: Tensor) -> Tensor:
    """float32 in [0, 1]: uint8 pixels / 255; float input is taken as already in [0, 1]."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def to_symmetric(x: Tensor) -> Tensor:
    """float32 in [-1, 1] (``2 * unit - 1``), the usual range of GANs with a tanh output."""
    return to_unit(x) * 2.0 - 1.0


def binarize(x_unit: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Dynamic binarisation: pixel ~ Bernoulli(intensity), a fresh draw on every call. uint8
    input goes through :func:`to_unit` first. The generator, if given, must live on ``x_unit``'s
    device."""
    return torch.bernoulli(to_unit(x_unit), generator=generator)


def static_binarize(images: Tensor, seed: int) -> Tensor:
    """One fixed Bernoulli draw of uint8 ``images`` (float32 {0, 1}, same shape), as in
    Salakhutdinov & Murray (2008): the same ``seed`` always gives the same result, whatever the
    global RNG state."""
    generator = torch.Generator(device=images.device).manual_seed(seed)
    return torch.bernoulli(to_unit(images), generator=generator)


def train_val_split(n: int, n_val: int = 5000, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Sorted, disjoint int64 index tensors ``(train, val)`` of sizes ``n - n_val`` and ``n_val``
    covering 0..n-1, from a seeded permutation (MNIST: 55k / 5k); ignores the global RNG."""
    if not 0 <= n_val < n:
        raise ValueError(f"n_val must be in [0, n) = [0, {n}), got {n_val}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values
