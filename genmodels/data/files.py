"""Bring-your-own images: a folder of PNG/JPEG files (``data.name = "folder"``) or one array
file (``data.name = "array"``: ``.npy``, ``.npz``, ``.pt``), decoded once into uint8
``(N, C, H, W)`` tensors that stay in memory like the built-in datasets.

A folder is ImageFolder-style (one subfolder per class, class index = rank of its name in
sorted order), optionally split into ``train/`` and ``test/``, or flat (no labels). Its images
are ordered by file name across the whole tree, ties broken by class folder, so a tree
exported with zero-padded numbered names keeps the original order. Decoded folders are cached
in ``cache_dir() / "decoded"`` (never in the data folder), keyed by the resolved path, the
``size``/``channels`` conversion and each file's relative path, size and mtime, and per process.

Every bad input is one :class:`~genmodels.errors.InputError` that names the file and the fix.
See docs/data.md, "Your own images".
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from genmodels.data.images import cache_dir
from genmodels.errors import InputError, first_sentence
from genmodels.utils import atomic_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # any case
ARRAY_SUFFIXES = (".npy", ".npz", ".pt")
ARRAY_KEYS = ("images", "labels", "test_images", "test_labels")
LAYOUTS = "(N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3"
GREY_MODES = ("1", "L", "LA")  # PIL modes read as grey (an alpha channel is dropped)
RGB_MODES = ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr")  # read as RGB (alpha dropped)
DECODED_FORMAT = "genmodels/decoded/1"


@dataclass(frozen=True, eq=False)
class FileImages:
    """Images read from files: ``images`` uint8 (N, C, H, W) in 0..255, ``labels`` int64 (N,)
    or None (unlabelled), ``test_images``/``test_labels`` the stored held-out set or None, and
    ``classes`` the class folder names (label ``i`` is ``classes[i]``; () for arrays and flat
    folders). Cached and shared between callers: treat the tensors as read-only."""

    images: Tensor
    labels: Tensor | None = None
    test_images: Tensor | None = None
    test_labels: Tensor | None = None
    classes: tuple[str, ...] = ()


_CACHE: dict[tuple, tuple[str, FileImages]] = {}  # key -> (signature of the files, images)


# --- conversions ----------------------------------------------------------------------------
def convert_channels(images: Tensor, channels: int) -> Tensor:
    """uint8 (N, C, H, W) with C in {1, 3} as ``channels`` (1 or 3) channels: grey -> RGB
    repeats the plane, RGB -> grey is the ITU-R 601-2 luma 0.299 R + 0.587 G + 0.114 B in
    PIL's 16-bit fixed point, so it equals ``Image.convert("L")`` exactly."""
    c = images.shape[1]
    if c == channels:
        return images
    if (c, channels) == (1, 3):
        return images.repeat(1, 3, 1, 1)
    if (c, channels) == (3, 1):
        x = images.to(torch.int32)
        luma = x[:, 0] * 19595 + x[:, 1] * 38470 + x[:, 2] * 7471 + 0x8000
        return (luma >> 16).to(torch.uint8)[:, None]
    raise InputError(f"cannot convert images with {c} channels to {channels}; use 1 or 3")


def resize_images(images: Tensor, size: Sequence[int]) -> Tensor:
    """uint8 (N, C, H, W) resized to ``size`` = [H', W'] pixels: antialiased bilinear
    interpolation on floats (``align_corners=False``), rounded back to uint8. Images already of
    that size are returned as they are."""
    h, w = size
    if tuple(images.shape[-2:]) == (h, w):
        return images
    rows = max(1, 2**22 // images[0].numel())  # chunks of ~16 MB of floats
    return torch.cat([
        F.interpolate(chunk.float(), size=(h, w), mode="bilinear", antialias=True,
                      align_corners=False).round_().clamp_(0, 255).to(torch.uint8)
        for chunk in images.split(rows)])


def convert_images(images: Tensor, size: Sequence[int] | None = None,
                   channels: int | None = None) -> Tensor:
    """uint8 (N, C, H, W) converted to ``channels`` (0/None: as they are), then resized to
    ``size`` = [H, W] (empty/None: as they are); see :func:`convert_channels`,
    :func:`resize_images`."""
    if channels:
        images = convert_channels(images, channels)
    return resize_images(images, size) if size else images


def _tensor(x: Any, name: str, what: str) -> Tensor:
    """``x`` as a tensor; a numpy array shares its memory unless it is read-only or not in the
    native byte order (then it is copied)."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise InputError(f"{name} has the numpy dtype {x.dtype}; give {what}")
        if not (x.dtype.isnative and x.flags.writeable):
            x = x.astype(x.dtype.newbyteorder("="))
        return torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise InputError(f"{name} is a {type(x).__name__}; give a tensor or a numpy array of "
                         f"{what}")
    return x


def images_from_array(x: Any, name: str = "images") -> Tensor:
    """uint8 (N, C, H, W) from a tensor or numpy array ``x`` in one of the layouts (N, H, W),
    (N, H, W, C), (N, C, H, W) with C = 1 or 3, holding uint8 or floats in [0, 1] (converted
    to round(x * 255)). ``name`` names ``x`` in the errors."""
    t = _tensor(x, name, f"images in the layout {LAYOUTS}")
    shape = tuple(t.shape)
    channel_like = [len(shape) == 4 and shape[d] in (1, 3) for d in (1, 3)]
    if len(shape) == 3 and shape[-1] in (1, 3):
        raise InputError(f"{name} has the shape {shape}, which reads as one {shape[0]} x "
                         f"{shape[1]} image with {shape[2]} channels; give a batch of images, "
                         f"e.g. x[None], in the layout {LAYOUTS}")
    if all(channel_like):
        raise InputError(f"{name} has the shape {shape}, where both dim 1 and dim 3 could be the "
                         f"channels; the accepted layouts are {LAYOUTS}, so save grey images as "
                         "(N, H, W) and make only one of dims 1 and 3 equal 1 or 3")
    if len(shape) == 3:
        t = t[:, None]
    elif channel_like[1]:
        t = t.permute(0, 3, 1, 2)
    elif not channel_like[0]:
        raise InputError(f"{name} has the shape {shape}; the accepted layouts are {LAYOUTS} "
                         "(drop any alpha channel)")
    if len(t) == 0:
        raise InputError(f"{name} holds no images (shape {shape}); give at least one")
    if t.is_floating_point():
        t = t.float() if t.element_size() < 4 else t
        if not bool(((t >= 0) & (t <= 1)).all()):
            raise InputError(f"{name} holds floats outside [0, 1] (min {float(t.min()):g}, max "
                             f"{float(t.max()):g}); scale them to [0, 1] (e.g. x / 255 for "
                             "0..255 values) or give uint8")
        t = (t * 255).round_().to(torch.uint8)
    elif t.dtype != torch.uint8:
        raise InputError(f"{name} has the dtype {t.dtype}; give uint8 (0..255) or floats in "
                         "[0, 1]")
    return t.contiguous()


def labels_from_array(y: Any, n: int, name: str = "labels") -> Tensor:
    """int64 (n,) from a tensor or numpy array of ``n`` non-negative integer class indices."""
    t = _tensor(y, name, f"{n} integer class indices")
    if tuple(t.shape) != (n,):
        raise InputError(f"{name} has the shape {tuple(t.shape)} for {n} images; give one label "
                         f"per image, shape ({n},)")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise InputError(f"{name} has the dtype {t.dtype}; give integer class indices 0..K-1 "
                         "(e.g. y.astype(np.int64))")
    t = t.to(torch.int64)
    if n and int(t.min()) < 0:
        raise InputError(f"{name} holds negative labels (min {int(t.min())}); give class indices "
                         "0..K-1")
    return t


def images_from_arrays(images: Any, labels: Any = None, test_images: Any = None,
                       test_labels: Any = None, *, size: Sequence[int] | None = None,
                       channels: int | None = None,
                       names: Sequence[str] = ARRAY_KEYS) -> FileImages:
    """A :class:`FileImages` from arrays in any layout of :func:`images_from_array`, converted
    by :func:`convert_images`; ``names`` name the four arguments in the errors."""
    if test_labels is not None and test_images is None:
        raise InputError(f"{names[3]} are given without {names[2]}; give both or neither")
    x = convert_images(images_from_array(images, names[0]), size, channels)
    y = None if labels is None else labels_from_array(labels, len(x), names[1])
    if test_images is None:
        return FileImages(x, y)
    tx = convert_images(images_from_array(test_images, names[2]), size, channels)
    if tx.shape[1:] != x.shape[1:]:
        raise InputError(f"{names[2]} are {_shape(tx)} but {names[0]} are {_shape(x)}; give both "
                         "the same shape, or set data.size=[H,W] and data.channels=1|3")
    if (test_labels is None) != (y is None):
        given, missing = (names[1], names[3]) if y is not None else (names[3], names[1])
        raise InputError(f"{given} are given but {missing} are not; label both the training and "
                         "the held-out images, or neither")
    ty = None if test_labels is None else labels_from_array(test_labels, len(tx), names[3])
    return FileImages(x, y, tx, ty)


def _shape(x: Tensor) -> str:
    return " x ".join(map(str, x.shape[1:])) + " (C x H x W)"


# --- array files ----------------------------------------------------------------------------
def _read_array_file(path: Path) -> dict[str, Any]:
    """``{key: array}`` of a .npy (its one array is ``images``), .npz or .pt file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return {"images": np.load(path, allow_pickle=False)}
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as stored:
                return {key: stored[key] for key in stored.files}
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # whatever the reader trips over in the user's file
        saver = "torch.save (tensors only: it is read with torch.load(weights_only=True))" \
            if suffix == ".pt" else "np.save" if suffix == ".npy" else "np.savez"
        raise InputError(f"cannot read {path} ({first_sentence(err)}); save it again with "
                         f"{saver}") from None
    if isinstance(stored, Tensor):
        return {"images": stored}
    if not isinstance(stored, dict):
        raise InputError(f"{path} holds a {type(stored).__name__}; save a tensor of images or a "
                         f"dict with the keys {', '.join(ARRAY_KEYS)}")
    return stored


def load_array(path: str | Path, size: Sequence[int] | None = None,
               channels: int | None = None) -> FileImages:
    """Images (and labels) of a ``.npy``, ``.npz`` or ``.pt`` file: one array of images in a
    layout of :func:`images_from_array`, or (.npz, .pt) the keys ``images`` and optionally
    ``labels``, ``test_images``, ``test_labels``. Converted by :func:`convert_images`, cached
    per process until the file changes (size or mtime)."""
    path = _existing(path, "array")
    if path.is_dir():
        raise InputError(f"data.path = {str(path)!r} is a folder; use data.name=folder for a "
                         "folder of images, or point data.path at a .npy, .npz or .pt file")
    if path.suffix.lower() not in ARRAY_SUFFIXES:
        raise InputError(f"{path} is not a .npy, .npz or .pt file; save the images with np.save, "
                         "np.savez or torch.save (or use data.name=folder for image files)")
    stat = path.stat()
    key = ("array", path, tuple(size or ()), channels or 0)
    signature = f"{stat.st_size}:{stat.st_mtime_ns}"
    if key in _CACHE and _CACHE[key][0] == signature:
        return _CACHE[key][1]
    stored = _read_array_file(path)
    unknown = [k for k in stored if k not in ARRAY_KEYS]
    if unknown or "images" not in stored:
        found = ", ".join(map(str, stored)) or "none"
        raise InputError(f"{path} has the keys {found}; it needs 'images' and may have "
                         f"'labels', 'test_images', 'test_labels' (e.g. np.savez(path, "
                         "images=x, labels=y)), so rename or drop the others")
    names = [str(path) if path.suffix.lower() == ".npy" else f"{path} [{k!r}]"
             for k in ARRAY_KEYS]
    result = images_from_arrays(*(stored.get(k) for k in ARRAY_KEYS), size=size,
                                channels=channels, names=names)
    _CACHE[key] = (signature, result)
    return result


# --- image folders --------------------------------------------------------------------------
def _existing(path: str | Path, kind: str) -> Path:
    if not str(path):
        raise InputError(f"data.name = {kind!r} needs data.path; set it to the folder or file "
                         "of images")
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise InputError(f"data.path = {str(path)!r} does not exist; set data.path to a folder "
                         "of PNG/JPEG images (data.name=folder) or a .npy/.npz/.pt file "
                         "(data.name=array)")
    return resolved.resolve()


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)


def _scan_tree(tree: Path) -> tuple[tuple[str, ...], list[Path], list[int]]:
    """(class names, image files, their class indices) of one tree: sorted non-hidden
    subfolders are the classes (their images found at any depth), else the tree is flat
    (classes (), indices -1). Files are ordered by file name, then class, then path."""
    entries = sorted(os.scandir(tree), key=lambda e: e.name)
    classes = tuple(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    loose = [e.name for e in entries if e.is_file() and _is_image(e.name)]
    if classes and loose:
        raise InputError(f"{tree} holds both image files (e.g. {loose[0]}) and class folders "
                         f"(e.g. {classes[0]}/); put every image in a class folder, or use a "
                         "flat folder without subfolders")
    if not classes:
        return (), [tree / name for name in loose], [-1] * len(loose)
    found = []
    for index, cls in enumerate(classes):
        for folder, subfolders, names in os.walk(tree / cls):
            subfolders[:] = [s for s in subfolders if not s.startswith(".")]
            found += [(name, cls, Path(folder) / name, index) for name in names if _is_image(name)]
    found.sort(key=lambda f: (f[0], f[1], str(f[2])))
    return classes, [f[2] for f in found], [f[3] for f in found]


def _trees(root: Path) -> tuple[Path, Path | None]:
    """(training tree, test tree or None) of a data folder."""
    if (root / "train").is_dir():
        test = root / "test"
        return root / "train", test if test.is_dir() else None
    if (root / "test").is_dir():
        raise InputError(f"{root} has a test/ folder but no train/; add train/ next to it (or "
                         "rename test/ if it is a class)")
    return root, None


def _scan_folder(root: Path) -> tuple[tuple[str, ...], list[Path], list[int], int]:
    """(classes, files, labels, number of training files): the training tree's files first,
    then the test tree's, labelled by the training tree's classes."""
    train_tree, test_tree = _trees(root)
    classes, files, labels = _scan_tree(train_tree)
    if not files:
        raise InputError(f"{train_tree} holds no PNG or JPEG images ({', '.join(IMAGE_SUFFIXES)});"
                         " point data.path at a folder of images")
    n_train = len(files)
    if test_tree is not None:
        test_classes, test_files, test_labels = _scan_tree(test_tree)
        if not test_files:
            raise InputError(f"{test_tree} holds no PNG or JPEG images; add the held-out images "
                             "or remove the empty folder")
        if bool(classes) != bool(test_classes):
            raise InputError(f"{'train/' if classes else 'test/'} of {root} has class folders "
                             f"but {'test/' if classes else 'train/'} has none; give both the "
                             "same layout")
        extra = sorted(set(test_classes) - set(classes))
        if extra:
            raise InputError(f"{test_tree / extra[0]} is a class that {train_tree} does not have; "
                             "add its training images or remove it from test/")
        files += test_files
        labels += [classes.index(test_classes[i]) if i >= 0 else -1 for i in test_labels]
    return classes, files, labels, n_train


def _decode(path: Path) -> Tensor:
    """uint8 (C, H, W) of one image file, C = 1 (PIL's grey modes) or 3 (colour modes)."""
    try:
        with Image.open(path) as img:
            mode = img.mode
            target = "L" if mode in GREY_MODES else "RGB" if mode in RGB_MODES else None
            array = np.asarray(img.convert(target)) if target else None
    except Exception as err:  # whatever PIL trips over in the user's file
        raise InputError(f"cannot decode the image {path} ({first_sentence(err)}); replace or "
                         "delete the file") from None
    if array is None:
        raise InputError(f"the image {path} has the PIL mode {mode} (16-bit or float pixels?), "
                         "which is not read; save it as 8-bit grey or RGB")
    t = torch.from_numpy(array.copy())
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def _stack(images: list[Tensor], files: list[Path], size: Sequence[int] | None,
           channels: int | None) -> Tensor:
    """The decoded images as one uint8 (N, C, H, W), converted by :func:`convert_images`;
    mixed channels need ``channels``, mixed sizes ``size``."""
    first: dict[tuple[int, ...], Path] = {}
    for image, file in zip(images, files, strict=True):
        first.setdefault(tuple(image.shape), file)
    by_channels = {shape[0]: file for shape, file in first.items()}
    by_size = {shape[1:]: file for shape, file in first.items()}
    if not channels and len(by_channels) > 1:
        raise InputError(f"the images mix grey and RGB ({by_channels[1]} is grey, "
                         f"{by_channels[3]} is RGB); set data.channels=1 (grey) or "
                         "data.channels=3 (RGB) to convert them all")
    if not size and len(by_size) > 1:
        (a, file_a), (b, file_b) = list(by_size.items())[:2]
        raise InputError(f"the images differ in size ({file_a} is {a[0]} x {a[1]}, {file_b} is "
                         f"{b[0]} x {b[1]} pixels, H x W); set data.size=[H,W] to resize them all")
    if len(first) == 1:
        return convert_images(torch.stack(images), size, channels)
    return torch.cat([convert_images(image[None], size, channels) for image in images])


def _signature(root: Path, classes: tuple[str, ...], files: list[Path]) -> str:
    """A digest of the class names and each file's relative path, size and mtime."""
    entries = []
    for file in files:
        stat = file.stat()
        entries.append([str(file.relative_to(root)), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps([classes, entries]).encode()).hexdigest()


def _cache_file(key: tuple) -> Path:
    name = hashlib.sha256(json.dumps([str(k) for k in key]).encode()).hexdigest()[:24]
    return cache_dir() / "decoded" / f"{name}.pt"


def _read_cache(file: Path, key: tuple, signature: str) -> FileImages | None:
    try:
        stored = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # missing or damaged: decode again
        return None
    if not (isinstance(stored, dict) and stored.get("format") == DECODED_FORMAT
            and stored.get("key") == [str(k) for k in key]
            and stored.get("signature") == signature):
        return None
    return FileImages(stored["images"], stored["labels"], stored["test_images"],
                      stored["test_labels"], tuple(stored["classes"]))


def _write_cache(file: Path, key: tuple, signature: str, data: FileImages) -> None:
    """Atomically (temporary file + ``os.replace``); best effort: an unwritable cache folder
    only costs decoding again next time."""
    payload = {"format": DECODED_FORMAT, "key": [str(k) for k in key], "signature": signature,
               "images": data.images, "labels": data.labels, "test_images": data.test_images,
               "test_labels": data.test_labels, "classes": list(data.classes)}
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(file) as f:
            torch.save(payload, f)
    except OSError:
        pass


def load_folder(path: str | Path, size: Sequence[int] | None = None,
                channels: int | None = None) -> FileImages:
    """The PNG/JPEG images under ``path``: ``path/<class>/...`` (labels), ``path/train/...``
    and ``path/test/...`` (held-out images), or flat (no labels); ordered by file name, then
    class folder. Decoded with PIL, converted by :func:`convert_images`, cached (see the
    module docstring)."""
    root = _existing(path, "folder")
    if not root.is_dir():
        raise InputError(f"data.path = {str(path)!r} is a file; use data.name=array for a "
                         ".npy/.npz/.pt file, or point data.path at a folder of images")
    classes, files, labels, n_train = _scan_folder(root)
    key = ("folder", root, tuple(size or ()), channels or 0)
    signature = _signature(root, classes, files)
    if key in _CACHE and _CACHE[key][0] == signature:
        return _CACHE[key][1]
    cache_file = _cache_file(key)
    result = _read_cache(cache_file, key, signature)
    if result is None:
        images = _stack([_decode(file) for file in files], files, size, channels)
        y = torch.tensor(labels, dtype=torch.int64) if classes else None
        test = n_train < len(files)
        result = FileImages(images[:n_train], None if y is None else y[:n_train],
                            images[n_train:] if test else None,
                            y[n_train:] if test and y is not None else None, classes)
        _write_cache(cache_file, key, signature, result)
    _CACHE[key] = (signature, result)
    return result


def load_files(name: str, path: str | Path, size: Sequence[int] | None = None,
               channels: int | None = None) -> FileImages:
    """:func:`load_folder` (``name = "folder"``) or :func:`load_array` (``"array"``)."""
    return (load_folder if name == "folder" else load_array)(path, size, channels)


__all__ = ["FileImages", "convert_channels", "convert_images", "images_from_array",
           "images_from_arrays", "labels_from_array", "load_array", "load_files", "load_folder",
           "resize_images"]
