"""From a :class:`~genmodels.config.DataConfig` to the batches a run trains and evaluates on."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from genmodels.config import ConfigError, DataConfig
from genmodels.data.batches import TensorBatches
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

IMAGE_DATASETS = ("mnist", "fashion")
TOY_DATASETS = {"ring": GaussianMixture2D.ring, "grid": GaussianMixture2D.grid}
DATASETS = (*IMAGE_DATASETS, "stacked_mnist", *TOY_DATASETS)
VIEWS = ("unit", "symmetric", "dynamic_binary", "static_binary")


@dataclass
class RunData:
    """Training batches, held-out batches (or None) and a fixed batch for figures."""

    train: TensorBatches
    eval: TensorBatches | None
    figure_batch: tuple[Tensor, ...]

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


def dataset_tensors(config: DataConfig, root: str | None = None,
                    seed: int = 0) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """(train tensors, held-out tensors) before any view; images stay uint8."""
    name = config.name
    if name in TOY_DATASETS:
        mixture = TOY_DATASETS[name]()
        train = mixture.sample(config.toy_size, torch.Generator().manual_seed(seed))
        held_out = mixture.sample(10_000, torch.Generator().manual_seed(seed + 1))
        return _subset(train, config.subset), held_out
    if name not in DATASETS:
        raise ConfigError(f"data.name = {name!r}; choose one of: {', '.join(DATASETS)}")
    source = "mnist" if name == "stacked_mnist" else name
    train_set = load_images(source, "train", config.root or root, download=config.download)
    if config.validation:
        train_idx, val_idx = train_val_split(len(train_set), 5000, seed=0)
        train = (train_set.images[train_idx], train_set.labels[train_idx])
        held_out = (train_set.images[val_idx], train_set.labels[val_idx])
    else:
        test_set = load_images(source, "test", config.root or root, download=config.download)
        train = (train_set.images, train_set.labels)
        held_out = (test_set.images, test_set.labels)
    if name == "stacked_mnist":
        train = stacked_mnist(*train, config.stacked_size, seed=seed)
        held_out = stacked_mnist(*held_out, 10_000, seed=seed + 1)
    train = _subset(train, config.subset)
    if config.view == "static_binary":
        train = (static_binarize(train[0], seed=seed) * 255).to(torch.uint8), *train[1:]
        held_out = (static_binarize(held_out[0], seed=seed + 1) * 255).to(torch.uint8), \
            *held_out[1:]
    return train, held_out


def _subset(tensors: tuple[Tensor, ...], n: int) -> tuple[Tensor, ...]:
    if n < 0:
        raise ConfigError(f"data.subset = {n}; use a positive count, or 0 for all")
    return tuple(t[:n] for t in tensors) if n else tuple(tensors)


def eval_binary_images(images: Tensor) -> Tensor:
    """The held-out set of a ``dynamic_binary`` run as uint8 {0, 255}: the one binarisation
    (:func:`~genmodels.data.held_out_binarize`, seed ``HELD_OUT_SEED``, per image) that the
    Trainer's evaluations and ``genmodels evaluate`` score, whatever their batch size or prefix."""
    return (held_out_binarize(images) * 255).to(torch.uint8)


def build_data(config: DataConfig, batch_size: int, root: str | None = None, seed: int = 0,
               rank: int = 0, world_size: int = 1) -> RunData:
    """Shuffled training batches (global ``batch_size``, sliced per rank) and ordered eval
    batches, each yielding float views of the images and their labels. With ``dynamic_binary``
    the training batches get a fresh draw per batch, the eval batches the fixed per-image draw
    of :func:`eval_binary_images`."""
    train, held_out = dataset_tensors(config, root, seed)
    is_image = config.name not in TOY_DATASETS
    view = _view(config.view) if is_image else None
    if batch_size > len(train[0]):
        raise ConfigError(f"train.batch_size = {batch_size} exceeds the {len(train[0])} "
                          "training examples; lower it or raise data.subset")
    train_batches = TensorBatches(train, batch_size, shuffle=True, drop_last=True, seed=seed,
                                  transform=view, rank=rank, world_size=world_size)
    eval_tensors, eval_view = held_out, view
    if config.view == "dynamic_binary":  # one fixed draw per image, whatever the batching
        eval_tensors = (eval_binary_images(held_out[0]), *held_out[1:])
        eval_view = _view("unit")
    eval_batches = TensorBatches(eval_tensors, config.eval_batch_size, shuffle=False,
                                 drop_last=False, transform=eval_view)
    figure = tuple(t[:64] for t in held_out)
    if view is not None:
        figure = (view(figure[0], torch.Generator().manual_seed(seed)), *figure[1:])
    return RunData(train_batches, eval_batches, figure)
