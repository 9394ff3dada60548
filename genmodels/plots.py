"""Figures written by runs: metric curves and image grids (matplotlib, Agg backend)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_metrics(metrics_path: str | Path, out_path: str | Path) -> Path:
    """One panel per metric against the step; ``train/x`` and ``eval/x`` share panel ``x``."""
    panels: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for record in read_metrics(metrics_path):
        for key, value in record.items():
            if "/" in key and isinstance(value, (int, float)):
                split, name = key.split("/", 1)
                steps, values = panels.setdefault(name, {}).setdefault(split, ([], []))
                steps.append(record["step"])
                values.append(value)
    names = sorted(panels)
    cols = min(3, max(len(names), 1))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        for split, (steps, values) in sorted(panels[name].items()):
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, ms=3, label=split)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.92, wspace=0.3, hspace=0.5)
    fig.savefig(out_path, dpi=90)
    plt.close(fig)
    return Path(out_path)


def _to_display(images: Tensor) -> Tensor:
    """(N, C, H, W) floats -> (N, H, W, C) in [0, 1]; [-1, 1] data is mapped back."""
    x = images.detach().float().cpu()
    if x.min() < 0:
        x = (x + 1) / 2
    return x.clamp(0, 1).permute(0, 2, 3, 1)


def prediction_grid(images: Tensor, labels: Tensor, predictions: Tensor,
                    out_path: str | Path, cols: int = 8) -> Path:
    """Images tiled on one canvas, each captioned with its predicted label; mistakes in red
    as ``pred (true)``. One axes keeps it fast enough to write during training."""
    from torchvision.utils import make_grid

    pad, size = 2, images.shape[-1]
    grid = make_grid(_to_display(images).permute(0, 3, 1, 2), nrow=cols, padding=pad,
                     pad_value=1.0).permute(1, 2, 0).numpy()
    width = cols * 0.9  # inches; the height keeps the grid's aspect ratio
    fig, ax = plt.subplots(figsize=(width, width * grid.shape[0] / grid.shape[1]))
    ax.imshow(grid, vmin=0, vmax=1)
    ax.axis("off")
    for i, (y, p) in enumerate(zip(labels.tolist(), predictions.tolist(), strict=True)):
        r, c = divmod(i, cols)
        wrong = y != p
        ax.text(pad + c * (size + pad), r * (size + pad) + 1, f"{p} ({y})" if wrong else str(p),
                color="red" if wrong else "yellow", fontsize=7, va="top", fontweight="bold")
    fig.subplots_adjust(0, 0, 1, 1)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return Path(out_path)


def save_image_grid(images: Tensor, out_path: str | Path, nrow: int = 8) -> Path:
    """Tile (N, C, H, W) images in [0, 1] (or [-1, 1]) into one PNG."""
    from torchvision.utils import save_image

    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    save_image(_to_display(images).permute(0, 3, 1, 2), out_path, nrow=nrow, padding=2,
               pad_value=0.5)
    return Path(out_path)


def scatter_points(points: Tensor, out_path: str | Path, reference: Tensor | None = None,
                   title: str | None = None) -> Path:
    """Scatter of 2-D samples (n, 2), over reference points (e.g. held-out data) in grey."""
    fig, ax = plt.subplots(figsize=(5, 5))
    if title:
        ax.set_title(title, fontsize=10)
    if reference is not None:
        ref = reference.detach().cpu().numpy()
        ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.75", label="data")
    xy = points.detach().cpu().numpy()
    ax.scatter(xy[:, 0], xy[:, 1], s=2, c="tab:blue", alpha=0.6, label="samples")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8, markerscale=4)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return Path(out_path)


__all__ = ["plot_metrics", "prediction_grid", "read_metrics", "save_image_grid", "scatter_points"]
