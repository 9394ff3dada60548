"""MNIST and Fashion-MNIST held in memory as uint8 tensors, plus the float views models train on.

A whole split is read once through ``torchvision.datasets`` (``.data`` and ``.targets`` only,
never per-sample PIL images), kept as a ``(N, 1, 28, 28)`` uint8 tensor and cached per process.
Models see it through cheap views: :func:`to_unit`, :func:`to_symmetric`, :func:`binarize`
(dynamic binarisation), :func:`static_binarize` and :func:`held_out_binarize` (the fixed,
per-image draw of evaluation sets).

Before torchvision reads them, the split's two IDX files are checked: header and size (cheap,
every load) and, when the data root holds a ``SHA256SUMS`` file, their checksums (once: the
result is stamped in the user cache folder, :func:`cache_dir`). A bad file is one
:class:`DataCorruptError` naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from genmodels.errors import InputError, UserError
from genmodels.utils import atomic_file, sha256

DEFAULT_DATA_ROOT = Path("~/.cache/genmodels/data").expanduser()
DATA_ENV = "GENMODELS_DATA"
CACHE_ENV = "GENMODELS_CACHE"
CHECKSUMS = "SHA256SUMS"
HELD_OUT_SEED = 0  # the one binarisation of every held-out set (held_out_binarize)
DATASETS = {"mnist": "MNIST", "fashion": "FashionMNIST"}  # name: torchvision class and folder
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


class DataNotFoundError(UserError, FileNotFoundError):
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


class DataCorruptError(InputError):
    """A dataset file is there but damaged: truncated, not an IDX file of the expected kind,
    or not the bytes its data root's ``SHA256SUMS`` lists (a ``UserError`` and a ``ValueError``:
    the CLI prints it as one line). ``path``: the file."""

    def __init__(self, path: str | Path, problem: str, checksum_line: str | None = None) -> None:
        self.path = Path(path)
        msg = (f"dataset file {self.path} is corrupt: {problem}. Fix: copy the file again from "
               "the original data root (or delete it and load once with download=True)")
        if checksum_line:
            msg += (f", then check it with `sha256sum -c {CHECKSUMS}` in the data root; "
                    f"its {CHECKSUMS} line: {checksum_line}")
        super().__init__(msg + ".")


def cache_dir() -> Path:
    """The user cache folder of genmodels: ``$GENMODELS_CACHE`` if set and non-empty, else
    ``$XDG_CACHE_HOME/genmodels``, else ``~/.cache/genmodels``. Only small stamps go there."""
    for candidate, suffix in ((os.environ.get(CACHE_ENV), ""),
                              (os.environ.get("XDG_CACHE_HOME"), "genmodels")):
        if candidate:
            return Path(candidate).expanduser() / suffix
    return Path("~/.cache/genmodels").expanduser()


# IDX layout (big-endian): magic 0x0000 08 <dims>, one uint32 per dimension, then the bytes
_IDX_SHAPES = {"images": (0x00000803, (28, 28)), "labels": (0x00000801, ())}
_SPLIT_SIZES = {"train": 60_000, "test": 10_000}


def _split_files(split: str) -> dict[str, str]:
    prefix = "train" if split == "train" else "t10k"
    return {"images": f"{prefix}-images-idx3-ubyte", "labels": f"{prefix}-labels-idx1-ubyte"}


def _read_checksums(data_root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of the data root's ``SHA256SUMS`` ({} when it has none)."""
    try:
        text = (data_root / CHECKSUMS).read_text()
    except FileNotFoundError:
        return {}
    sums = {}
    for line in text.splitlines():
        digest, _, name = line.strip().partition(" ")
        if digest and name:
            sums[name.strip().lstrip("*").removeprefix("./")] = digest.lower()
    return sums


def _checksum_line(sums: dict[str, str], relative: str) -> str | None:
    return f"{sums[relative]}  {relative}" if relative in sums else None


def _check_idx(path: Path, kind: str, n: int, line: str | None) -> None:
    """Header and size of one IDX file of ``kind`` ("images" or "labels") holding ``n`` items."""
    magic, item_shape = _IDX_SHAPES[kind]
    dims = (n, *item_shape)
    header_size = 4 * (1 + len(dims))
    expected = header_size + math.prod(dims)
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(header_size)
    found = int.from_bytes(header[:4], "big") if len(header) >= 4 else None
    if len(header) < header_size and found in (magic, None):
        raise DataCorruptError(path, f"it has {size} bytes, fewer than the {header_size} of its "
                               "IDX header: truncated (an interrupted copy or download?)", line)
    if found != magic:
        hint = " (a gzip archive: unpack it, torchvision reads the raw file)" \
            if header[:2] == b"\x1f\x8b" else ""
        shown = "none" if found is None else f"0x{found:08x}"
        raise DataCorruptError(path, f"its magic number is {shown}{hint}, but an IDX file of "
                               f"{kind} starts with 0x{magic:08x} ({size} bytes)", line)
    header_dims = tuple(int.from_bytes(header[4 * (i + 1):4 * (i + 2)], "big")
                        for i in range(len(dims)))
    if header_dims != dims:
        raise DataCorruptError(path, f"its header gives the shape {header_dims}, expected "
                               f"{dims} for this split", line)
    if size != expected:
        what = "truncated" if size < expected else "longer than its header says"
        shape = " x ".join(map(str, dims))
        raise DataCorruptError(path, f"it has {size} bytes, but its header ({shape} {kind}) "
                               f"needs {expected}: {what} (an interrupted copy or download?)",
                               line)


def _stamp_path(data_root: Path) -> Path:
    key = hashlib.sha256(str(data_root).encode()).hexdigest()[:16]
    return cache_dir() / "checksums" / f"{key}.json"


def _verify_checksums(data_root: Path, relatives: list[str], sums: dict[str, str]) -> None:
    """Hash the files of ``relatives`` that ``SHA256SUMS`` lists, unless the stamp of this data
    root records the same size, mtime and digest; stamp the ones that match."""
    listed = [r for r in relatives if r in sums]
    if not listed:
        return
    stamp_path = _stamp_path(data_root)
    try:
        stamp = json.loads(stamp_path.read_text())
        verified = stamp["files"] if stamp.get("root") == str(data_root) else {}
    except (OSError, ValueError, KeyError, TypeError):
        verified = {}
    changed = False
    for relative in listed:
        path = data_root / relative
        stat = path.stat()
        entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sums[relative]}
        if verified.get(relative) == entry:
            continue
        actual = sha256(path)
        if actual != sums[relative]:
            raise DataCorruptError(path, f"its SHA-256 is {actual}, but {data_root / CHECKSUMS} "
                                   f"lists {sums[relative]}", _checksum_line(sums, relative))
        verified[relative], changed = entry, True
    if changed:  # best effort: a cache folder we cannot write only costs a rehash next time
        try:
            stamp_path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(stamp_path, "w") as f:
                json.dump({"root": str(data_root), "files": verified}, f, indent=1)
        except OSError:
            pass


def verify_split(data_root: Path, folder_name: str, split: str) -> None:
    """Check the two IDX files of ``split`` under ``<data_root>/<folder_name>/raw``: magic
    number, shape and size, then their ``SHA256SUMS`` digests (once per data root, see
    :func:`cache_dir`). Raises :class:`DataCorruptError` naming the first bad file."""
    data_root = data_root.resolve()
    sums = _read_checksums(data_root)
    relatives = []
    for kind, name in _split_files(split).items():
        relative = f"{folder_name}/raw/{name}"
        _check_idx(data_root / relative, kind, _SPLIT_SIZES[split], _checksum_line(sums, relative))
        relatives.append(relative)
    _verify_checksums(data_root, relatives, sums)


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
    when the files are missing and ``download`` is False, or when the download fails, and
    :class:`DataCorruptError` when a file of the split is damaged (:func:`verify_split`).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown image dataset {name!r}; valid names are: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are: {', '.join(SPLITS)}")
    data_root = resolve_data_root(root)
    key = (name, split, data_root.resolve())
    if key in _CACHE:
        return _CACHE[key]
    folder = data_root / DATASETS[name] / "raw"
    if not download and not all((folder / f).is_file() for f in RAW_FILES):
        raise DataNotFoundError(folder)
    if all((folder / f).is_file() for f in _split_files(split).values()):
        verify_split(data_root, DATASETS[name], split)
    from torchvision import datasets  # imported here: it takes seconds (torch._dynamo)

    try:
        ds = getattr(datasets, DATASETS[name])(data_root, train=split == "train",
                                               download=download)
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


_M32 = 0xFFFFFFFF


def _hash32_(x: Tensor) -> Tensor:
    """In place: a 32-bit integer hash of int64 ``x`` in [0, 2**32) (Wellons' hash-prospector
    ``[16 21f0aaad 15 735a2d97 15]``). Both multipliers are below 2**31, so no product
    overflows int64 and CPU and GPU give the same bits."""
    x ^= x >> 16
    x *= 0x21F0AAAD
    x &= _M32
    x ^= x >> 15
    x *= 0x735A2D97
    x &= _M32
    x ^= x >> 15
    return x


def held_out_binarize(images: Tensor, seed: int = HELD_OUT_SEED, start: int = 0) -> Tensor:
    """The fixed binarisation of a held-out set: float32 {0, 1}, the shape of uint8 ``images``.

    Counter-based, per image: pixel ``j`` of image ``i`` (its index in the whole set, ``start +``
    its row here) is 1 iff ``u * 255 < v * 2**32``, ``v`` its uint8 value and ``u`` a 32-bit hash
    of ``(seed, i, j)``, i.e. Bernoulli(v / 255) exactly. So an image gets the same draw
    whatever the batch it is in, a prefix of the set equals the first images of the whole set,
    and CPU and GPU agree (integer arithmetic only, no RNG state). ~0.1 s per 10,000 MNIST
    images on one CPU thread.
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"held_out_binarize takes uint8 images (0..255), got {images.dtype}")
    device = images.device
    flat = images.reshape(len(images), -1)
    seed_key = _hash32_(torch.tensor([(seed & _M32) ^ 0x9E3779B9]))
    seed_key = int(_hash32_(seed_key ^ ((seed >> 32) & _M32) ^ 0x85EBCA6B)[0])
    pixel_key = _hash32_(torch.arange(flat.shape[1], device=device) ^ 0x27D4EB2F)
    out = torch.empty(flat.shape, dtype=torch.bool, device=device)
    rows = max(1, 2**18 // max(1, flat.shape[1]))  # chunks that stay in cache
    for lo in range(0, len(flat), rows):
        hi = min(lo + rows, len(flat))
        key = torch.arange(start + lo, start + hi, device=device)[:, None] & _M32
        key = _hash32_(_hash32_(key ^ seed_key) ^ 0x165667B1)
        u = _hash32_(key ^ pixel_key)
        u += key
        u &= _M32
        u = _hash32_(u)
        u *= 255
        out[lo:hi] = u < flat[lo:hi].long() << 32
    return out.reshape(images.shape).float()


def train_val_split(n: int, n_val: int = 5000, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Sorted, disjoint int64 index tensors ``(train, val)`` of sizes ``n - n_val`` and ``n_val``
    covering 0..n-1, from a seeded permutation (MNIST: 55k / 5k); ignores the global RNG."""
    if not 0 <= n_val < n:
        raise ValueError(f"n_val must be in [0, n) = [0, {n}), got {n_val}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values
