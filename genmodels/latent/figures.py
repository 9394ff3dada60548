"""PNG figures of the latent tools: image tables and a scatter of codes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from genmodels.latent.tools import principal_directions
from genmodels.plots import plt, save_figure, save_image_grid


def image_table(images: Tensor, out_path: str | Path, *, title: str | None = None,
                row_labels: Sequence[str] | None = None,
                col_labels: Sequence[str] | None = None, xlabel: str | None = None,
                ylabel: str | None = None) -> Path:
    """Save (rows, cols, C, H, W) or (cols, C, H, W) images as one grid, row by row; with a
    title or labels, a figure around it (:func:`genmodels.plots.save_image_grid`)."""
    if images.dim() == 4:
        images = images[None]
    return save_image_grid(images.flatten(0, 1), out_path, nrow=images.shape[1], title=title,
                           row_labels=row_labels, col_labels=col_labels, xlabel=xlabel,
                           ylabel=ylabel)


def scatter_codes(codes: Tensor, labels: Tensor, out_path: str | Path,
                  title: str | None = None) -> Path:
    """Scatter of codes (N, D) coloured by class: the coordinates themselves for D = 2, else
    the projection on the two leading principal directions; ``title`` above (by default how
    many codes)."""
    codes = codes.detach().cpu().float()
    if codes.shape[1] == 2:
        xy, axes = codes, ("z[0]", "z[1]")
    else:
        mean, directions, _ = principal_directions(codes)
        xy, axes = (codes - mean) @ directions.T, ("PC 1", "PC 2")
    axes = tuple(f"{name} (latent units)" for name in axes)
    fig, ax = plt.subplots(figsize=(6, 5.4))
    points = ax.scatter(xy[:, 0], xy[:, 1], c=labels.cpu(), cmap="tab10", s=3, alpha=0.6,
                        vmin=-0.5, vmax=9.5)
    fig.colorbar(points, ax=ax, ticks=range(10), label="class")
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title or f"{len(codes)} codes, coloured by class", fontsize=10)
    return save_figure(fig, out_path, bbox_inches="tight")


__all__ = ["image_table", "scatter_codes"]
