"""The inpainting figure: one row per image (15 digits by default) with the input, its S
completions and the truth, drawn on one canvas."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

MISSING_GREY = 0.5  # how erased pixels are drawn in the input column
PADDING = 2  # pixels between tiles (white)


def inpainting_canvas(inputs: Tensor, mask: Tensor, completions: Tensor,
                      truth: Tensor) -> Tensor:
    """RGB canvas (3, H', W') in [0, 1]: row i holds ``inputs[i]`` with its missing pixels
    (``mask`` 0) grey, the completions ``completions[i]`` (S, C, H, W), then ``truth[i]``.
    Images in [-1, 1] (told by the truth having negative values) are mapped to [0, 1]."""
    from genmodels.plots import tile_images

    n, samples = completions.shape[:2]
    tiles = torch.cat([inputs[:, None], completions, truth[:, None]], dim=1)
    tiles = tiles.detach().float().cpu()
    if truth.min() < 0:
        tiles = (tiles + 1) / 2
    tiles = tiles.clamp(0, 1).expand(-1, -1, 3, -1, -1).clone()  # (n, S + 2, 3, H, W)
    missing = (mask.detach().cpu() == 0).expand(-1, 3, -1, -1)
    tiles[:, 0][missing] = MISSING_GREY
    return tile_images(tiles.flatten(0, 1), nrow=samples + 2, padding=PADDING, pad_value=1.0)


def fifteen_digits_figure(inputs: Tensor, mask: Tensor, completions: Tensor, truth: Tensor,
                          out_path: str | Path, labels: Tensor | None = None,
                          title: str | None = None) -> Path:
    """Write the inpainting figure (see :func:`inpainting_canvas`) to ``out_path``; columns
    are headed input, 1..S, truth, and rows by ``labels`` (n,) (or digit tuples (n, 3) of
    Stacked MNIST) when given; ``title`` (say the model, the method and the mask) above, by
    default what the rows and columns hold."""
    from genmodels.plots import canvas_figure, save_figure

    canvas = inpainting_canvas(inputs, mask, completions, truth).permute(1, 2, 0).numpy()
    n, samples = completions.shape[:2]
    rows = None if labels is None else \
        ["".join(str(v) for v in y.flatten().tolist()) for y in labels]  # 7, or 372
    fig, _ = canvas_figure(
        canvas, truth.shape[-2:], PADDING, row_labels=rows,
        col_labels=["input", *(str(s) for s in range(1, samples + 1)), "truth"],
        title=title or f"Inpainting of {n} images: the input (missing pixels grey), "
                       f"{samples} completions, the truth")
    return save_figure(fig, out_path, bbox_inches="tight", pad_inches=0.05)
