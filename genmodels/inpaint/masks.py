"""Inpainting masks: float tensors (N, 1, H, W) in {0, 1} where 1 marks an observed pixel.

Kinds (``make_mask``):

- ``top``, ``bottom``, ``left``, ``right``: that half of the image is missing;
- ``quadrants1``, ``quadrants2``, ``quadrants3``: one, two or three quadrants observed, as in
  the Pyro CVAE tutorial (only bottom-left; the left half; all but bottom-right);
- ``center``: a centred square of side H/2 is missing (14×14 on MNIST);
- ``random:P``: each pixel missing independently with probability P;
- ``rectangles``: three random rectangles missing per image;
- ``png:PATH``: a grey-level picture, white = observed and black = missing, resized to H×W.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

HALVES = ("top", "bottom", "left", "right")
QUADRANTS = ("quadrants1", "quadrants2", "quadrants3")
MASK_KINDS = (*HALVES, *QUADRANTS, "center", "random:P", "rectangles", "png:PATH")
RECTANGLES_PER_IMAGE = 3


def check_mask(mask: Tensor, x: Tensor | None = None) -> None:
    """Raise ValueError unless ``mask`` is a float (N, 1, H, W) (or (N, C, H, W)) tensor in
    {0, 1} matching the images ``x`` (N, C, H, W), with at least one observed and one missing
    pixel per image."""
    if not torch.is_tensor(mask) or mask.dim() != 4 or not mask.is_floating_point():
        got = f"{tuple(mask.shape)} {mask.dtype}" if torch.is_tensor(mask) else type(mask).__name__
        raise ValueError(f"a mask should be a float tensor (N, 1, H, W), got {got}")
    if x is not None and (mask.shape[0] != x.shape[0] or mask.shape[1] not in (1, x.shape[1])
                          or mask.shape[2:] != x.shape[2:]):
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not fit images of shape "
                         f"{tuple(x.shape)}: expected ({x.shape[0]}, 1, "
                         f"{x.shape[2]}, {x.shape[3]})")
    if not ((mask == 0) | (mask == 1)).all():
        raise ValueError("a mask should hold only 0 (missing) and 1 (observed)")
    observed = mask.flatten(1).sum(1)
    for count, problem in ((mask[0].numel(), "all observed"), (0, "all missing")):
        bad = (observed == count).nonzero().flatten().tolist()
        if bad:
            raise ValueError(f"the mask of image(s) {bad[:10]} is {problem}: nothing to inpaint "
                             "or nothing to condition on")


def make_mask(kind: str, n: int, size: int = 28, seed: int = 0) -> Tensor:
    """(n, 1, size, size) float mask of ``kind`` (see the module docstring); 1 = observed.
    Random kinds draw a different mask per image from a generator seeded with ``seed``."""
    if n < 1:
        raise ValueError(f"the number of masks should be positive, got {n}")
    if kind.startswith("random:"):
        mask = _random_pixels(_probability(kind), n, size, seed)
    elif kind == "rectangles":
        mask = _rectangles(n, size, seed)
    elif kind.startswith("png:"):
        mask = png_mask(kind[len("png:"):], size).expand(n, 1, size, size).clone()
    elif kind in (*HALVES, *QUADRANTS, "center"):
        mask = _fixed(kind, size).expand(n, 1, size, size).clone()
    else:
        raise ValueError(f"unknown mask kind {kind!r}; valid kinds are: {', '.join(MASK_KINDS)}")
    check_mask(mask)
    return mask


def _fixed(kind: str, size: int) -> Tensor:
    """(1, 1, size, size) mask of a geometric kind."""
    half = size // 2
    missing = torch.zeros(size, size, dtype=torch.bool)
    if kind == "top":
        missing[:half] = True
    elif kind == "bottom":
        missing[half:] = True
    elif kind == "left":
        missing[:, :half] = True
    elif kind == "right":
        missing[:, half:] = True
    elif kind == "center":
        start = (size - half) // 2
        missing[start:start + half, start:start + half] = True
    else:  # quadrants k: Pyro's k observed quadrants, in the order bottom-left, top-left, top-right
        observed_quadrants = int(kind[-1])
        missing[:] = True
        missing[half:, :half] = False
        if observed_quadrants >= 2:
            missing[:, :half] = False
        if observed_quadrants == 3:
            missing[:half, :] = False
    return (~missing).float()[None, None]


def _probability(kind: str) -> float:
    text = kind[len("random:"):]
    try:
        p = float(text)
    except ValueError:
        raise ValueError(f"mask {kind!r}: P in random:P should be a number, got {text!r}") from None
    if not 0 < p < 1:
        raise ValueError(f"mask {kind!r}: P in random:P, the missing share, should be in (0, 1)")
    return p


def _random_pixels(p: float, n: int, size: int, seed: int) -> Tensor:
    """Each pixel missing with probability p; a draw that leaves an image all observed or all
    missing (likely only for tiny images) is drawn again."""
    generator = torch.Generator().manual_seed(seed)
    mask = (torch.rand(n, 1, size, size, generator=generator) >= p).float()
    per_image = size * size
    while True:
        observed = mask.flatten(1).sum(1)
        redo = (observed == 0) | (observed == per_image)
        if not redo.any():
            return mask
        mask[redo] = (torch.rand(int(redo.sum()), 1, size, size, generator=generator) >= p).float()


def _rectangles(n: int, size: int, seed: int) -> Tensor:
    """Three rectangles missing per image, each side uniform in [size/7, size/2]."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.ones(n, 1, size, size)
    low, high = max(1, size // 7), max(2, size // 2)
    for image in mask:
        height, width = torch.randint(low, high + 1, (2, RECTANGLES_PER_IMAGE),
                                      generator=generator).tolist()
        for h, w in zip(height, width, strict=True):
            top = int(torch.randint(0, size - h + 1, (), generator=generator))
            left = int(torch.randint(0, size - w + 1, (), generator=generator))
            image[0, top:top + h, left:left + w] = 0
    return mask


def png_mask(path: str | Path, size: int = 28) -> Tensor:
    """(1, 1, size, size) mask from a square picture: grey level >= 128 (white) = observed.
    Other square sizes are resized (nearest neighbour)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"mask picture {path} not found")
    with Image.open(path) as picture:
        grey = picture.convert("L")
    if grey.width != grey.height:
        raise ValueError(f"mask picture {path} is {grey.width}×{grey.height}; it should be "
                         f"square ({size}×{size}, or any square size, which is resized)")
    if grey.width != size:
        grey = grey.resize((size, size), Image.Resampling.NEAREST)
    return torch.from_numpy(np.asarray(grey) >= 128).float()[None, None]
