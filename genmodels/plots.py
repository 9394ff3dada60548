"""Figures written by runs: metric curves and image grids (matplotlib, Agg backend).

Every figure says what it shows: image grids can carry a title and row and column labels
(:func:`save_image_grid`, drawn by :func:`canvas_figure`), curves have axis labels with their
units where known (:data:`UNITS`) and a legend."""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

GRID_FONT = 8  # points: titles and labels of image grids
TILE_PIXELS = 64  # an image grid is drawn at the integer scale bringing tiles near this side
MAX_PIXELS = 2000  # ... unless the canvas would then be wider or taller than this
UNITS = {  # metric (panel) name -> its unit, for the y labels of metrics.png
    "nelbo": "nats per image", "nll": "nats per image", "kl": "nats", "channel_kl": "nats",
    "mse": "squared error per pixel", "accuracy": "fraction", "energy_distance": "D², data units",
    "modes": "count", "high_quality": "fraction of samples", "precision": "fraction",
    "recall": "fraction", "coverage": "fraction", "density": "ratio",
    "vendi": "effective number of samples",
}


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


Curves = dict[str, dict[str, tuple[list[int], list[float]]]]  # panel -> label -> (steps, values)


def run_name(checkpoint: str | Path) -> str:
    """The run a checkpoint path names, for figure titles: the folder of ``final.pt`` or of
    ``checkpoints/step_*.pt``, or the run (or export) directory itself."""
    path = Path(checkpoint).resolve()
    if path.suffix:
        path = path.parent
    return path.parent.name if path.name == "checkpoints" else path.name


def save_figure(fig, out_path: str | Path, **options) -> Path:
    """Write ``fig`` to ``out_path`` (its folder made; ``dpi`` 100 unless given) and close it."""
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, **{"dpi": 100, **options})
    plt.close(fig)
    return Path(out_path)


def plot_metrics(metrics_path: str | Path, out_path: str | Path, title: str | None = None,
                 units: Mapping[str, str] | None = None) -> Path:
    """One panel per metric against the step; ``train/x`` and ``eval/x`` share panel ``x``.
    ``units``: metric name -> unit, over :data:`UNITS`, for the y labels."""
    panels: Curves = {}
    for record in read_metrics(metrics_path):
        for key, value in record.items():
            if "/" in key and isinstance(value, (int, float)):
                split, name = key.split("/", 1)
                steps, values = panels.setdefault(name, {}).setdefault(split, ([], []))
                steps.append(record["step"])
                values.append(value)
    return plot_curves({name: dict(sorted(panels[name].items())) for name in sorted(panels)},
                       out_path, title, units=units)


def plot_curves(panels: Curves, out_path: str | Path, title: str | None = None,
                units: Mapping[str, str] | None = None) -> Path:
    """One panel per key of ``panels``, one curve per label in it (with a legend), against the
    step (in the order given); each y axis is labelled with the panel's name and its unit
    (``units`` over :data:`UNITS`, looked up by the name or by what follows its last ``/``)."""
    units = {**UNITS, **(units or {})}
    names = list(panels)
    cols = min(3, max(len(names), 1))
    rows = max(1, math.ceil(len(names) / cols))
    height = 3.2 * rows
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, height), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        for label, (steps, values) in panels[name].items():
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, ms=3, label=label)
        unit = units.get(name) or units.get(name.rsplit("/", 1)[-1])
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_ylabel(f"{name} ({unit})" if unit else name, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    top = 0.26  # inches above the panels: their titles, and the figure's title if any
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.1 / height, va="top")
        top += 0.3
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.48 / height, top=1 - top / height,
                        wspace=0.35, hspace=0.5)
    return save_figure(fig, out_path, dpi=90)


def _to_display(images: Tensor) -> Tensor:
    """(N, C, H, W) floats -> (N, H, W, C) in [0, 1]; [-1, 1] data is mapped back."""
    x = images.detach().float().cpu()
    if x.min() < 0:
        x = (x + 1) / 2
    return x.clamp(0, 1).permute(0, 2, 3, 1)


def tile_images(images: Tensor, nrow: int = 8, padding: int = 2,
                pad_value: float = 0.0) -> Tensor:
    """(3, H', W') canvas of images (N, C, H, W), C = 1 or 3, tiled ``nrow`` per row with
    ``padding`` pixels of ``pad_value`` around each tile: the layout of
    ``torchvision.utils.make_grid`` (tests/test_figures.py checks it), without importing
    torchvision, which takes seconds (it loads torch._dynamo)."""
    n, channels, height, width = images.shape
    images = images.expand(-1, 3, -1, -1) if channels == 1 else images
    cols = min(nrow, n)
    rows = -(-n // cols)
    step_y, step_x = height + padding, width + padding
    canvas = torch.full((3, rows * step_y + padding, cols * step_x + padding), pad_value,
                        dtype=images.dtype)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas[:, r * step_y + padding:(r + 1) * step_y,
               c * step_x + padding:(c + 1) * step_x] = image
    return canvas


def _grid(images: Tensor, nrow: int, pad: int, pad_value: float) -> np.ndarray:
    """(H', W', 3) canvas in [0, 1] of images (N, C, H, W) tiled ``nrow`` per row."""
    return tile_images(_to_display(images).permute(0, 3, 1, 2), nrow, pad,
                       pad_value).permute(1, 2, 0).numpy()


def canvas_figure(canvas: np.ndarray, tile: Sequence[int], pad: int, *, title: str | None = None,
                  row_labels: Sequence[str] | None = None,
                  col_labels: Sequence[str] | None = None, xlabel: str | None = None,
                  ylabel: str | None = None, scale: int | None = None):
    """(figure, axes) showing ``canvas`` (H, W, 3) in [0, 1], tiles of ``tile`` (h, w) pixels
    ``pad`` apart (as :func:`torchvision.utils.make_grid` lays them), nearest-neighbour at an
    integer ``scale`` (default: tiles near :data:`TILE_PIXELS` on a side). No ticks: the
    column labels head the columns (with ``xlabel`` above them), the row labels stand left of
    the rows (``ylabel`` beside them), the title (wrapped) above all. Save it with
    ``save_figure(fig, path, bbox_inches="tight")``: the labels lie outside the canvas."""
    height, width = canvas.shape[:2]
    if scale is None:
        scale = max(1, min(4, TILE_PIXELS // max(tile)))
        while scale > 1 and max(height, width) * scale > MAX_PIXELS:
            scale -= 1
    dpi = 100
    fig = plt.figure(figsize=(width * scale / dpi, height * scale / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(canvas, vmin=0, vmax=1, interpolation="nearest", aspect="auto")

    def centres(count: int, side: int) -> list[float]:
        return [pad + (side + pad) * i + (side - 1) / 2 for i in range(count)]

    ax.set_xticks(centres(len(col_labels or []), tile[1]), list(col_labels or []),
                  fontsize=GRID_FONT)
    ax.set_yticks(centres(len(row_labels or []), tile[0]), list(row_labels or []),
                  fontsize=GRID_FONT)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.tick_params(length=0, pad=2)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=GRID_FONT)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=GRID_FONT)
    if title:
        ax.set_title(textwrap.fill(title, max(40, width * scale // 7)), fontsize=GRID_FONT + 1)
    return fig, ax


def prediction_grid(images: Tensor, labels: Tensor, predictions: Tensor,
                    out_path: str | Path, cols: int = 8, title: str | None = None) -> Path:
    """Images tiled on one canvas, each captioned with its predicted label; mistakes in red
    as ``pred (true)``. One axes keeps it fast enough to write during training."""
    pad, size = 2, images.shape[-2:]
    fig, ax = canvas_figure(_grid(images, cols, pad, 1.0), size, pad, scale=3,
                            title=title or f"{len(images)} predictions: predicted class, "
                                           "in red 'predicted (true)' where wrong")
    for i, (y, p) in enumerate(zip(labels.tolist(), predictions.tolist(), strict=True)):
        r, c = divmod(i, cols)
        wrong = y != p
        ax.text(pad + c * (size[1] + pad), r * (size[0] + pad) + 1,
                f"{p} ({y})" if wrong else str(p), color="red" if wrong else "yellow",
                fontsize=7, va="top", fontweight="bold")
    return save_figure(fig, out_path, bbox_inches="tight", pad_inches=0.05)


def save_image_grid(images: Tensor, out_path: str | Path, nrow: int = 8, *,
                    title: str | None = None, row_labels: Sequence[str] | None = None,
                    col_labels: Sequence[str] | None = None, xlabel: str | None = None,
                    ylabel: str | None = None) -> Path:
    """Tile (N, C, H, W) images in [0, 1] (or [-1, 1]) ``nrow`` per row into one PNG. With a
    title or labels (see :func:`canvas_figure`) it is a figure around the grid; without, the
    raw grid, one pixel per pixel."""
    if title is None and row_labels is None and col_labels is None and xlabel is None \
            and ylabel is None:
        from PIL import Image

        canvas = _grid(images, nrow, 2, 0.5)  # (H', W', 3) in [0, 1], rounded as save_image
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((canvas * 255 + 0.5).clip(0, 255).astype(np.uint8)).save(out_path)
        return Path(out_path)
    fig, _ = canvas_figure(_grid(images, nrow, 2, 0.5), images.shape[-2:], 2, title=title,
                           row_labels=row_labels, col_labels=col_labels, xlabel=xlabel,
                           ylabel=ylabel)
    return save_figure(fig, out_path, bbox_inches="tight", pad_inches=0.05)


def scatter_points(points: Tensor, out_path: str | Path, reference: Tensor | None = None,
                   title: str | None = None) -> Path:
    """Scatter of 2-D samples (n, 2), over reference points (e.g. held-out data) in grey."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.set_title(title or f"{len(points)} samples", fontsize=10)
    if reference is not None:
        ref = reference.detach().cpu().numpy()
        ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.75", label="data")
    xy = points.detach().cpu().numpy()
    ax.scatter(xy[:, 0], xy[:, 1], s=2, c="tab:blue", alpha=0.6, label="samples")
    ax.set_aspect("equal")
    ax.set_xlabel("x₁ (data units)")
    ax.set_ylabel("x₂ (data units)")
    ax.legend(loc="upper right", fontsize=8, markerscale=4)
    return save_figure(fig, out_path, dpi=90, bbox_inches="tight")


__all__ = ["UNITS", "canvas_figure", "plot_curves", "plot_metrics", "prediction_grid",
           "read_metrics", "run_name", "save_figure", "save_image_grid", "scatter_points"]
