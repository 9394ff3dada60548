"""From a :class:`~genmodels.config.DataConfig` (or tensors of your own, :func:`from_tensors`)
to the batches a run trains and evaluates on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from genmodels.checks import ConfigError
from genmodels.data.batches import TensorBatches
from genmodels.data.files import FileImages, convert_images, images_from_arrays, load_files
from genmodels.data.images import (
    binarize,
    held_out_binarize,
    load_images,
    static_binarize,
    to_symmetric,
    to_unit,
    train_val_split,
)
from genmodels.data.stacked import stacked_mnist
from genmodels.data.toy import GaussianMixture2D

if TYPE_CHECKING:  # a type only: data sits below the config layer, which imports models
    from genmodels.config import DataConfig

IMAGE_DATASETS = ("mnist", "fashion")
FILE_DATASETS = ("folder", "array")  # your own images at data.path (genmodels.data.files)
TOY_DATASETS = {"ring": GaussianMixture2D.ring, "grid": GaussianMixture2D.grid}
DATASETS = (*IMAGE_DATASETS, "stacked_mnist", *TOY_DATASETS, *FILE_DATASETS)
BUILTIN_SHAPES = {"mnist": (1, 28, 28), "fashion": (1, 28, 28), "stacked_mnist": (3, 28, 28)}
VIEWS = ("unit", "symmetric", "dynamic_binary", "static_binary")
VALIDATION_SIZE = 5000  # the validation split of the built-in datasets (data.validation)


@dataclass
class RunData:
    """Training batches, held-out batches (or None) and a fixed batch for figures. The
    tensors are ``(images, labels)``, ``(images,)`` for unlabelled images, ``(points,
    modes)`` for the 2-D mixtures."""

    train: TensorBatches
    eval: TensorBatches | None
    figure_batch: tuple[Tensor, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        """One training example without the batch dim: (C, H, W) for images, (2,) for the
        2-D points."""
        return tuple(self.train.tensors[0].shape[1:])

    def to(self, device: torch.device) -> RunData:
        self.train.to(device)
        if self.eval is not None:
            self.eval.to(device)
        self.figure_batch = tuple(t.to(device) for t in self.figure_batch)
        return self


def _view(name: str):
    """The float view of uint8 images, applied per batch as ``transform(x, generator)``."""
    if name == "unit" or name == "static_binary":  # static draws are made once, up front
        return lambda x, generator: to_unit(x)
    if name == "symmetric":
        return lambda x, generator: to_symmetric(x)
    if name == "dynamic_binary":
        return lambda x, generator: binarize(to_unit(x), generator)
    raise ConfigError(f"data.view = {name!r}; choose one of: {', '.join(VIEWS)}")


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ConfigError(f"data.name = {name!r}; choose one of: {', '.join(DATASETS)}")


def data_shape(config: DataConfig, root: str | None = None) -> tuple[int, ...]:
    """The shape of one training example of ``config`` without the batch dim, after
    ``data.size`` and ``data.channels``, without building batches: (C, H, W) for images, (2,)
    for the 2-D mixtures. Folder and array data are loaded (once: they are cached); the
    built-in datasets are constants, so ``root`` (their data root) is not read."""
    _check_name(config.name)
    if config.name in TOY_DATASETS:
        return (2,)
    if config.name in FILE_DATASETS:
        return tuple(load_files(config.name, config.path, config.size,
                                config.channels).images.shape[1:])
    channels, height, width = BUILTIN_SHAPES[config.name]
    return (config.channels or channels, *(config.size or (height, width)))


def _validation_split(tensors: tuple[Tensor, ...],
                      n_val: int) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """(training part, held-out part) of aligned tensors: :func:`train_val_split`, seed 0."""
    n = len(tensors[0])
    if not 0 < n_val < n:
        raise ConfigError(f"holding out {n_val} of the {n} training images leaves none to train "
                          "on; lower data.validation_size (0 = the default) or add held-out "
                          "images (a test/ folder, or test_images)")
    train_idx, val_idx = train_val_split(n, n_val, seed=0)
    return tuple(t[train_idx] for t in tensors), tuple(t[val_idx] for t in tensors)


def split_held_out(stored: FileImages, validation: bool = False, validation_size: int = 0
                   ) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """(train tensors, held-out tensors) of images read from files or given as tensors:
    ``(images, labels)``, or ``(images,)`` when unlabelled. The held-out set is the stored
    test set unless ``validation`` or there is none; then it is a seeded split of
    ``validation_size`` training images (0: 10 %, at least 1)."""
    train = tuple(t for t in (stored.images, stored.labels) if t is not None)
    if stored.test_images is not None and not validation:
        if validation_size:
            raise ConfigError(f"validation_size = {validation_size} is not used: the held-out "
                              "set is the stored test images; set data.validation=true to hold "
                              "out training images instead, or drop validation_size")
        return train, tuple(t for t in (stored.test_images, stored.test_labels) if t is not None)
    return _validation_split(train, validation_size or max(1, len(stored.images) // 10))


def _static_binary(train: tuple[Tensor, ...], held_out: tuple[Tensor, ...], view: str,
                   seed: int) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """With ``view = "static_binary"``, the images drawn once (as uint8 {0, 255})."""
    if view != "static_binary":
        return train, held_out
    train = (static_binarize(train[0], seed=seed) * 255).to(torch.uint8), *train[1:]
    held_out = (static_binarize(held_out[0], seed=seed + 1) * 255).to(torch.uint8), *held_out[1:]
    return train, held_out


def dataset_tensors(config: DataConfig, root: str | None = None,
                    seed: int = 0) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """(train tensors, held-out tensors) before any view; images stay uint8, converted by
    ``data.size`` and ``data.channels``."""
    name = config.name
    _check_name(name)
    if name in TOY_DATASETS:
        mixture = TOY_DATASETS[name]()
        train = mixture.sample(config.toy_size, torch.Generator().manual_seed(seed))
        held_out = mixture.sample(10_000, torch.Generator().manual_seed(seed + 1))
        return _subset(train, config.subset), held_out
    if name in FILE_DATASETS:  # converted as they are loaded (and cached so)
        stored = load_files(name, config.path, config.size, config.channels)
        train, held_out = split_held_out(stored, config.validation, config.validation_size)
        return _static_binary(_subset(train, config.subset), held_out, config.view, seed)
    source = "mnist" if name == "stacked_mnist" else name
    train_set = load_images(source, "train", config.root or root, download=config.download)
    train = (train_set.images, train_set.labels)
    if config.validation:
        train, held_out = _validation_split(train, config.validation_size or VALIDATION_SIZE)
    else:
        test_set = load_images(source, "test", config.root or root, download=config.download)
        held_out = (test_set.images, test_set.labels)
    if name == "stacked_mnist":
        train = stacked_mnist(*train, config.stacked_size, seed=seed)
        held_out = stacked_mnist(*held_out, 10_000, seed=seed + 1)
    train, held_out = ((convert_images(t[0], config.size, config.channels), *t[1:])
                       for t in (_subset(train, config.subset), held_out))
    return _static_binary(train, held_out, config.view, seed)


def _subset(tensors: tuple[Tensor, ...], n: int) -> tuple[Tensor, ...]:
    if n < 0:
        raise ConfigError(f"data.subset = {n}; use a positive count, or 0 for all")
    return tuple(t[:n] for t in tensors) if n else tuple(tensors)


def eval_binary_images(images: Tensor) -> Tensor:
    """The held-out set of a ``dynamic_binary`` run as uint8 {0, 255}: the one binarisation
    (:func:`~genmodels.data.held_out_binarize`, seed ``HELD_OUT_SEED``, per image) that the
    Trainer's evaluations and ``genmodels evaluate`` score, whatever their batch size or prefix."""
    return (held_out_binarize(images) * 255).to(torch.uint8)


def run_data(train: tuple[Tensor, ...], held_out: tuple[Tensor, ...], batch_size: int, *,
             view: str | None = "unit", seed: int = 0, eval_batch_size: int = 1000,
             rank: int = 0, world_size: int = 1) -> RunData:
    """Shuffled training batches (global ``batch_size``, sliced per rank) and ordered eval
    batches of ``eval_batch_size`` over (train, held-out) tensors, each yielding the float
    ``view`` of the uint8 images (None: the tensors as they are, e.g. 2-D points) and the
    other tensors. With ``dynamic_binary`` the training batches get a fresh draw per batch,
    the eval batches the fixed per-image draw of :func:`eval_binary_images`."""
    transform = None if view is None else _view(view)
    if batch_size > len(train[0]):
        raise ConfigError(f"train.batch_size = {batch_size} exceeds the {len(train[0])} "
                          "training examples; lower it or raise data.subset")
    train_batches = TensorBatches(train, batch_size, shuffle=True, drop_last=True, seed=seed,
                                  transform=transform, rank=rank, world_size=world_size)
    eval_tensors, eval_view = held_out, transform
    if view == "dynamic_binary":  # one fixed draw per image, whatever the batching
        eval_tensors = (eval_binary_images(held_out[0]), *held_out[1:])
        eval_view = _view("unit")
    eval_batches = TensorBatches(eval_tensors, eval_batch_size, shuffle=False,
                                 drop_last=False, transform=eval_view)
    figure = tuple(t[:64] for t in held_out)
    if transform is not None:
        figure = (transform(figure[0], torch.Generator().manual_seed(seed)), *figure[1:])
    return RunData(train_batches, eval_batches, figure)


def build_data(config: DataConfig, batch_size: int, root: str | None = None, seed: int = 0,
               rank: int = 0, world_size: int = 1) -> RunData:
    """:func:`run_data` over the tensors of ``config`` (:func:`dataset_tensors`), in the view
    ``data.view`` (none for the 2-D mixtures)."""
    train, held_out = dataset_tensors(config, root, seed)
    return run_data(train, held_out, batch_size,
                    view=None if config.name in TOY_DATASETS else config.view, seed=seed,
                    eval_batch_size=config.eval_batch_size, rank=rank, world_size=world_size)


def from_tensors(images: Any, labels: Any = None, *, held_out: Any = None,
                 held_out_labels: Any = None, batch_size: int = 128, view: str = "unit",
                 validation_size: int = 0, size: Sequence[int] | None = None,
                 channels: int | None = None, seed: int = 0,
                 eval_batch_size: int = 1000) -> RunData:
    """A :class:`RunData` of your own images, for ``Trainer(config, out, data=...)``.

    ``images``: a tensor or numpy array in a layout of
    :func:`~genmodels.data.files.images_from_array` ((N, H, W), (N, H, W, C), (N, C, H, W),
    C = 1 or 3; uint8 or floats in [0, 1]); ``labels`` int (N,) or None. The held-out set is
    ``held_out`` (and ``held_out_labels``), else a seeded split of ``validation_size`` images
    (0: 10 %). ``size`` = [H, W] and ``channels`` (1 or 3) convert the images, ``view`` as
    ``data.view``; the rest as in :func:`build_data`. Give ``train.batch_size`` and
    ``train.seed`` of the run's config to train as ``build_data`` would. uint8 (N, C, H, W)
    input may be used without a copy: do not change it in place afterwards."""
    stored = images_from_arrays(images, labels, held_out, held_out_labels, size=size,
                                channels=channels,
                                names=("images", "labels", "held_out", "held_out_labels"))
    train, held = _static_binary(*split_held_out(stored, False, validation_size), view, seed)
    return run_data(train, held, batch_size, view=view, seed=seed,
                    eval_batch_size=eval_batch_size)
