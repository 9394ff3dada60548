"""PNG figures of the latent tools: image tables and a scatter of codes."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from genmodels.latent.tools import principal_directions
from genmodels.plots import plt, save_image_grid


def image_table(images: Tensor, out_path: str | Path) -> Path:
    """Save (rows, cols, C, H, W) or (cols, C, H, W) images as one grid, row by row."""
    if images.dim() == 4:
        images = images[None]
    return save_image_grid(images.flatten(0, 1), out_path, nrow=images.shape[1])


def scatter_codes(codes: Tensor, labels: Tensor, out_path: str | Path) -> Path:
    """Scatter of codes (N, D) coloured by class: the coordinates themselves for D = 2, else
    the projection on the two leading principal directions."""
    codes = codes.detach().cpu().float()
    if codes.shape[1] == 2:
        xy, axes = codes, ("z1", "z2")
    else:
        mean, directions, _ = principal_directions(codes)
        xy, axes = (codes - mean) @ directions.T, ("PC 1", "PC 2")
    fig, ax = plt.subplots(figsize=(6, 5.4))
    points = ax.scatter(xy[:, 0], xy[:, 1], c=labels.cpu(), cmap="tab10", s=3, alpha=0.6,
                        vmin=-0.5, vmax=9.5)
    fig.colorbar(points, ax=ax, ticks=range(10), label="class")
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(f"{len(codes)} test codes")
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return Path(out_path)


__all__ = ["image_table", "scatter_codes"]
