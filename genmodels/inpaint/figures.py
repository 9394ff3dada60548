"""The inpainting figure: one row per image (15 digits by default) with the input, its S
completions and the truth, drawn on one canvas."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

MISSING_GREY = 0.5  # how erased pixels are drawn in the input column
PADDING = 2  # pixels between tiles (white)


def inpainting_canvas(inputs: Tensor, mask: Tensor, completions: Tensor,
                      truth: Tensor) -> Tensor:
    """RGB canvas (3, H', W') in [0, 1]: row i holds ``inputs[i]`` with its missing pixels
    (``mask`` 0) grey, the completions ``completions[i]`` (S, C, H, W), then ``truth[i]``.
    Images in [-1, 1] (told by the truth having negative values) are mapped to [0, 1]."""
    from torchvision.utils import make_grid

    n, samples = completions.shape[:2]
    tiles = torch.cat([inputs[:, None], completions, truth[:, None]], dim=1)
    tiles = tiles.detach().float().cpu()
    if truth.min() < 0:
        tiles = (tiles + 1) / 2
    tiles = tiles.clamp(0, 1).expand(-1, -1, 3, -1, -1).clone()  # (n, S + 2, 3, H, W)
    missing = (mask.detach().cpu() == 0).expand(-1, 3, -1, -1)
    tiles[:, 0][missing] = MISSING_GREY
    return make_grid(tiles.flatten(0, 1), nrow=samples + 2, padding=PADDING, pad_value=1.0)


def fifteen_digits_figure(inputs: Tensor, mask: Tensor, completions: Tensor, truth: Tensor,
                          out_path: str | Path, labels: Tensor | None = None) -> Path:
    """Write the inpainting figure (see :func:`inpainting_canvas`) to ``out_path``; columns
    are headed input, 1..S, truth, and rows by ``labels`` (n,) (or digit tuples (n, 3) of
    Stacked MNIST) when given."""
    canvas = inpainting_canvas(inputs, mask, completions, truth).permute(1, 2, 0).numpy()
    n, columns, size = len(completions), completions.shape[1] + 2, truth.shape[-1]
    step = size + PADDING
    centres = [PADDING + step * i + (size - 1) / 2 for i in range(max(n, columns))]
    width = 0.45 * columns + 0.5  # inches
    fig, ax = plt.subplots(figsize=(width, width * canvas.shape[0] / canvas.shape[1]))
    ax.imshow(canvas, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(centres[:columns],
                  ["input", *(str(s) for s in range(1, columns - 1)), "truth"], fontsize=7)
    ax.xaxis.tick_top()
    if labels is None:
        ax.set_yticks([])
    else:
        texts = ["".join(str(v) for v in y.flatten().tolist()) for y in labels]  # 7, or 372
        ax.set_yticks(centres[:n], texts, fontsize=7)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return Path(out_path)
