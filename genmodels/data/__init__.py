"""Data layer: in-memory uint8 image sets and their views, seeded batches, toy 2-D mixtures and
Stacked MNIST. See docs/data.md."""

from genmodels.data.batches import TensorBatches
from genmodels.data.images import (
    DEFAULT_DATA_ROOT,
    HELD_OUT_SEED,
    DataCorruptError,
    DataNotFoundError,
    ImageSet,
    binarize,
    cache_dir,
    held_out_binarize,
    load_images,
    resolve_data_root,
    static_binarize,
    to_symmetric,
    to_unit,
    train_val_split,
)
from genmodels.data.stacked import mode_index, stacked_mnist
from genmodels.data.toy import GaussianMixture2D, grid_means, ring_means

__all__ = [
    "DEFAULT_DATA_ROOT",
    "HELD_OUT_SEED",
    "DataCorruptError",
    "DataNotFoundError",
    "GaussianMixture2D",
    "ImageSet",
    "TensorBatches",
    "binarize",
    "cache_dir",
    "grid_means",
    "held_out_binarize",
    "load_images",
    "mode_index",
    "resolve_data_root",
    "ring_means",
    "stacked_mnist",
    "static_binarize",
    "to_symmetric",
    "to_unit",
    "train_val_split",
]
