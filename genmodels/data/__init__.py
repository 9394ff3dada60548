"""Data layer: in-memory uint8 image sets and their views, seeded batches, toy 2-D mixtures,
Stacked MNIST and your own images (folders of PNG/JPEG files, array files, tensors). See
docs/data.md."""

from genmodels.data.batches import TensorBatches
from genmodels.data.build import RunData, build_data, data_shape, from_tensors
from genmodels.data.files import (
    FileImages,
    convert_channels,
    convert_images,
    load_array,
    load_files,
    load_folder,
    resize_images,
)
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
    "FileImages",
    "GaussianMixture2D",
    "ImageSet",
    "RunData",
    "TensorBatches",
    "binarize",
    "build_data",
    "cache_dir",
    "convert_channels",
    "convert_images",
    "data_shape",
    "from_tensors",
    "grid_means",
    "held_out_binarize",
    "load_array",
    "load_files",
    "load_folder",
    "load_images",
    "mode_index",
    "resize_images",
    "resolve_data_root",
    "ring_means",
    "stacked_mnist",
    "static_binarize",
    "to_symmetric",
    "to_unit",
    "train_val_split",
]
