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

from genmodels.inpaint.options import HALVES, MASK_KINDS, QUADRANTS

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


Size = int | tuple[int, int]  # (H, W) of the images, or one side of square ones


def _size(size: Size) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if height < 2 or width < 2:
        raise ValueError(f"masks need images of at least 2×2 pixels, got {height}×{width}")
    return height, width


def make_mask(kind: str, n: int, size: Size, seed: int = 0) -> Tensor:
    """(n, 1, H, W) float mask of ``kind`` (see the module docstring) for images of ``size``
    (H, W), or H = W = size; 1 = observed. Random kinds draw a different mask per image from a
    generator seeded with ``seed``."""
    if n < 1:
        raise ValueError(f"the number of masks should be positive, got {n}")
    shape = _size(size)
    if kind.startswith("random:"):
        mask = _random_pixels(_probability(kind), n, shape, seed)
    elif kind == "rectangles":
        mask = _rectangles(n, shape, seed)
    elif kind.startswith("png:"):
        mask = png_mask(kind[len("png:"):], shape).expand(n, 1, *shape).clone()
    elif kind in (*HALVES, *QUADRANTS, "center"):
        mask = _fixed(kind, shape).expand(n, 1, *shape).clone()
    else:
        raise ValueError(f"unknown mask kind {kind!r}; valid kinds are: {', '.join(MASK_KINDS)}")
    check_mask(mask)
    return mask


def _fixed(kind: str, shape: tuple[int, int]) -> Tensor:
    """(1, 1, H, W) mask of a geometric kind."""
    height, width = shape
    mid_h, mid_w = height // 2, width // 2
    missing = torch.zeros(height, width, dtype=torch.bool)
    if kind == "top":
        missing[:mid_h] = True
    elif kind == "bottom":
        missing[mid_h:] = True
    elif kind == "left":
        missing[:, :mid_w] = True
    elif kind == "right":
        missing[:, mid_w:] = True
    elif kind == "center":
        top, left = (height - mid_h) // 2, (width - mid_w) // 2
        missing[top:top + mid_h, left:left + mid_w] = True
    else:  # quadrants k: Pyro's k observed quadrants, in the order bottom-left, top-left, top-right
        observed_quadrants = int(kind[-1])
        missing[:] = True
        missing[mid_h:, :mid_w] = False
        if observed_quadrants >= 2:
            missing[:, :mid_w] = False
        if observed_quadrants == 3:
            missing[:mid_h, :] = False
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


def _random_pixels(p: float, n: int, shape: tuple[int, int], seed: int) -> Tensor:
    """Each pixel missing with probability p; a draw that leaves an image all observed or all
    missing (likely only for tiny images) is drawn again."""
    generator = torch.Generator().manual_seed(seed)
    mask = (torch.rand(n, 1, *shape, generator=generator) >= p).float()
    per_image = shape[0] * shape[1]
    while True:
        observed = mask.flatten(1).sum(1)
        redo = (observed == 0) | (observed == per_image)
        if not redo.any():
            return mask
        mask[redo] = (torch.rand(int(redo.sum()), 1, *shape, generator=generator) >= p).float()


def _rectangles(n: int, shape: tuple[int, int], seed: int) -> Tensor:
    """Three rectangles missing per image, each side uniform in [side/7, side/2]."""
    generator = torch.Generator().manual_seed(seed)
    height, width = shape
    mask = torch.ones(n, 1, height, width)
    for image in mask:
        sides = [torch.randint(max(1, side // 7), max(2, side // 2) + 1, (RECTANGLES_PER_IMAGE,),
                               generator=generator).tolist() for side in shape]
        for h, w in zip(*sides, strict=True):
            top = int(torch.randint(0, height - h + 1, (), generator=generator))
            left = int(torch.randint(0, width - w + 1, (), generator=generator))
            image[0, top:top + h, left:left + w] = 0
    return mask


def png_mask(path: str | Path, size: Size) -> Tensor:
    """(1, 1, H, W) mask from a picture: grey level >= 128 (white) = observed. A picture of
    another size with the same aspect ratio is resized (nearest neighbour)."""
    from PIL import Image

    path = Path(path)
    height, width = _size(size)
    if not path.is_file():
        raise ValueError(f"mask picture {path} not found")
    with Image.open(path) as picture:
        grey = picture.convert("L")
    if grey.width * height != grey.height * width:
        raise ValueError(f"mask picture {path} is {grey.width}×{grey.height} (W×H); the images "
                         f"are {width}×{height}: give a picture of that size or aspect ratio")
    if (grey.height, grey.width) != (height, width):
        grey = grey.resize((width, height), Image.Resampling.NEAREST)
    return torch.from_numpy(np.asarray(grey) >= 128).float()[None, None]
