"""Every figure says what it shows (issue 26): a title, row and column labels on image grids,
axis labels on plots and a legend where there are several series. Each figure is caught as it
is saved (``Figure.savefig``) and read back; the models are tiny and barely trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, tiny_config
from matplotlib.figure import Figure
from PIL import Image

from genmodels.config import config_from_dict
from genmodels.models import MODELS
from genmodels.plots import plot_curves, plot_metrics, prediction_grid, save_image_grid

pytestmark = pytest.mark.usefixtures("one_thread")


def catch_figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Figure]:
    """File name -> the figure saved to it, filled as each figure is written."""
    figures: dict[str, Figure] = {}
    savefig = Figure.savefig

    def spy(self, path, *args, **kwargs):
        figures[Path(path).name] = self
        return savefig(self, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return figures


@pytest.fixture
def drawn(monkeypatch) -> dict[str, Figure]:
    return catch_figures(monkeypatch)


def title(fig: Figure) -> str:
    """The figure's title, or its first axes' title."""
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    return suptitle or fig.axes[0].get_title()


def ticks(labels) -> list[str]:
    return [label.get_text() for label in labels]


def grid_labels(fig: Figure) -> tuple[list[str], list[str]]:
    """(row labels, column labels) of an image grid drawn on one axes."""
    ax = fig.axes[0]
    return ticks(ax.get_yticklabels()), ticks(ax.get_xticklabels())


def assert_plot(ax, legend: bool | None = None) -> None:
    """x and y labels; a legend when the axes draws two series or more."""
    assert ax.get_xlabel() and ax.get_ylabel()
    series = len(ax.lines) + len(ax.collections) + len(ax.containers)
    if series >= 2 or legend:
        assert ax.get_legend() is not None and len(ax.get_legend().get_texts()) >= 2


def model_of(**section):
    return MODELS[section["kind"]](config_from_dict({"model": section}).model)


# --- the helpers --------------------------------------------------------------------------
def test_a_grid_without_labels_stays_a_raw_grid(tmp_path, drawn):
    path = save_image_grid(torch.rand(6, 1, 28, 28), tmp_path / "raw.png", nrow=3)
    assert not drawn
    with Image.open(path) as picture:
        assert picture.size == (3 * 30 + 2, 2 * 30 + 2)  # one pixel per pixel, 2-pixel padding


def test_a_labelled_grid_is_drawn_at_an_integer_scale(tmp_path, drawn):
    board = torch.zeros(4, 1, 28, 28)
    board[..., ::2, ::2] = board[..., 1::2, 1::2] = 1
    path = save_image_grid(board, tmp_path / "grid.png", nrow=2, title="a checkerboard",
                           row_labels=["top", "bottom"], col_labels=["left", "right"],
                           xlabel="column", ylabel="row")
    fig = drawn["grid.png"]
    assert title(fig) == "a checkerboard"
    assert grid_labels(fig) == (["top", "bottom"], ["left", "right"])
    assert fig.axes[0].get_xlabel() == "column" and fig.axes[0].get_ylabel() == "row"
    pixels = np.asarray(Image.open(path).convert("L")).astype(int)
    rows, cols = (np.flatnonzero((pixels == 127).sum(axis) > 40) for axis in (1, 0))
    canvas = pixels[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # the padding's grey bounds it
    scale = canvas.shape[1] / (2 * 30 + 2)
    assert scale == int(scale) > 1 and canvas.shape[0] == canvas.shape[1]
    assert set(np.unique(canvas)) == {0, 127, 255}  # nearest neighbour: no blended pixel


def test_metric_curves_have_units_and_legends(tmp_path, drawn):
    records = [{"step": 1, "train/loss": 3.0, "train/kl": 1.0, "train/accuracy": 0.5},
               {"step": 2, "eval/loss": 2.5, "train/loss": 2.0, "eval/nelbo": 2.6}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    plot_metrics(tmp_path / "metrics.jsonl", tmp_path / "metrics.png", title="my-run",
                 units={"loss": "nats per image"})
    fig = drawn["metrics.png"]
    assert title(fig) == "my-run"
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert {name: ax.get_ylabel() for name, ax in panels.items()} == {
        "accuracy": "accuracy (fraction)", "kl": "kl (nats)", "loss": "loss (nats per image)",
        "nelbo": "nelbo (nats per image)"}
    for ax in panels.values():
        assert ax.get_xlabel() == "step"
        assert_plot(ax)
    assert ticks(panels["loss"].get_legend().get_texts()) == ["eval", "train"]
    plot_curves({"eval/nelbo": {"a": ([1], [2.0]), "b": ([1], [3.0])}}, tmp_path / "runs.png")
    assert drawn["runs.png"].axes[0].get_ylabel() == "eval/nelbo (nats per image)"


def test_predictions_and_inpainting_figures(tmp_path, drawn):
    from genmodels.inpaint import fifteen_digits_figure

    x = torch.rand(4, 1, 28, 28)
    prediction_grid(x, torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 3, 5]),
                    tmp_path / "p.png")
    assert "predict" in title(drawn["p.png"])
    mask = torch.ones(3, 1, 28, 28)
    mask[..., :14, :] = 0
    fifteen_digits_figure(x[:3], mask, torch.rand(3, 2, 1, 28, 28), x[:3], tmp_path / "i.png",
                          labels=torch.tensor([7, 2, 1]))
    fig = drawn["i.png"]
    assert "2 completions" in title(fig)
    assert grid_labels(fig) == (["7", "2", "1"], ["input", "1", "2", "truth"])
    fifteen_digits_figure(x[:3], mask, torch.rand(3, 2, 1, 28, 28), x[:3], tmp_path / "j.png",
                          title="vae run: mwg, top")
    assert title(drawn["j.png"]) == "vae run: mwg, top"
    assert grid_labels(drawn["j.png"])[0] == []


def test_the_class_histogram_of_evaluate(tmp_path, drawn):
    from genmodels.pipelines.run_evaluation import write_report

    report = {"source": "samples.npy", "reference": "mnist test",
              "modes": {"counts": [5] * 10, "reference_counts": list(range(1, 11))}}
    write_report(report, tmp_path / "r.json", histogram_png=tmp_path / "h.png")
    fig = drawn["h.png"]
    assert "samples.npy" in title(fig) and "mnist test" in title(fig)
    assert_plot(fig.axes[0], legend=True)


# --- the models' training figures --------------------------------------------------------
def test_gan_classifier_and_denoising_figures(tmp_path, drawn):
    points = (torch.randn(64, 2),)
    model_of(kind="gan", net="mlp", hidden=[8], latent_dim=2).figures(tmp_path, 3, points)
    fig = drawn["samples_0000003.png"]
    assert title(fig) == "2500 samples of gan at step 3 over held-out data"
    assert_plot(fig.axes[0], legend=True)
    images = (torch.rand(8, 1, 28, 28), torch.arange(8))
    model_of(kind="gan", channels=[8, 8], latent_dim=4).figures(tmp_path, 4, images)
    assert title(drawn["samples_0000004.png"]) == "64 samples of gan at step 4"
    model_of(kind="classifier", net="mlp", hidden=[8]).figures(tmp_path, 5, images)
    assert "at step 5" in title(drawn["predictions_0000005.png"])
    flow = model_of(kind="flow_matching", net="mlp", hidden=[8], time_dim=8, sample_steps=2)
    flow.figures(tmp_path, 6, points)
    fig = drawn["samples_0000006.png"]
    assert "flow_matching at step 6 (heun, 2 steps)" in title(fig)
    assert_plot(fig.axes[0], legend=True)
    model_of(kind="diffusion", channels=[8, 8], attention=False, time_dim=8,
             sample_steps=2).figures(tmp_path, 7, images)
    assert title(drawn["samples_0000007.png"]) == \
        "64 samples of diffusion at step 7 (ddim, 2 steps)"


def test_the_monitor_figures(tmp_path, drawn):
    from genmodels.data import GaussianMixture2D
    from genmodels.train.monitor import ModeMonitor

    ring = GaussianMixture2D.ring()
    monitor = ModeMonitor("ring", ring.sample(200)[0], samples=100, folder=tmp_path)
    monitor.figure(ring.sample(100)[0], 8, {"modes": 7, "high_quality": 0.5})
    fig = drawn["monitor_0000008.png"]
    assert "step 8" in title(fig) and "7/8 modes" in title(fig)
    assert_plot(fig.axes[0], legend=True)
    monitor = ModeMonitor("mnist", torch.rand(100, 1, 28, 28), samples=100, folder=tmp_path)
    monitor.figure(torch.rand(100, 1, 28, 28), 9, {"modes": 3, "kl": 1.5})
    assert "step 9" in title(drawn["monitor_0000009.png"])
    assert "3/10 modes" in title(drawn["monitor_0000009.png"])


# --- a tiny trained VAE: its run's figures, the latent tools, sample, inpaint, report ------
@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, data_root):
    """A VAE trained for 4 steps, its figures written at the end and caught as they were."""
    from genmodels.train import Trainer

    run = tmp_path_factory.mktemp("figures") / "tiny-vae"
    config = tiny_config(model={"kind": "vae", "latent_dim": 4, "hidden": [16]},
                         data={"view": "dynamic_binary"},
                         train={"max_steps": 4, "figure_every": 4, "loggers": ["jsonl"]})
    with pytest.MonkeyPatch.context() as patch:
        figures = catch_figures(patch)
        Trainer(config, run, data_root=data_root).fit()
    return run, figures


def test_a_vae_run_titles_its_figures(vae_run):
    _, figures = vae_run
    assert title(figures["samples_0000004.png"]) == "64 samples of vae at step 4"
    fig = figures["reconstructions_0000004.png"]
    assert "reconstructions at step 4" in title(fig)
    assert grid_labels(fig)[0] == ["input", "reconstruction"] * 4
    fig = figures["metrics.png"]
    assert title(fig) == "tiny-vae"
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert panels["loss"].get_ylabel() == "loss (nats per image)"
    for ax in panels.values():
        assert_plot(ax)


def test_the_latent_figures(vae_run, data_root, tmp_path, drawn):
    from genmodels.cli import main

    run = str(vae_run[0])

    def draw(tool: str, *options: str) -> Figure:
        assert main(["latent", tool, run, "--n", "300", "--steps", "3", "--out",
                     str(tmp_path / f"{tool}.png"), "--data-root", data_root, *options]) == 0
        return drawn[f"{tool}.png"]

    fig = draw("interpolate", "--pair", "2", "5")
    assert "slerp interpolation (vae tiny-vae)" in title(fig)
    assert grid_labels(fig) == ([], ["test 2", "0.5", "test 5"])
    fig = draw("traverse")
    assert grid_labels(fig) == (["z[0]", "z[1]", "z[2]", "z[3]"], ["-3", "+0", "+3"])
    assert "standard deviations" in fig.axes[0].get_xlabel()
    fig = draw("map")
    assert "3 × 3 grid" in title(fig)
    assert grid_labels(fig) == (["+2.5", "+0", "-2.5"], ["-2.5", "+0", "+2.5"])
    assert fig.axes[0].get_xlabel().startswith("PC 1")
    assert fig.axes[0].get_ylabel().startswith("PC 2")
    fig = draw("scatter")
    assert "300 test codes of vae tiny-vae" in title(fig)
    assert_plot(fig.axes[0])
    fig = draw("arithmetic")
    assert "towards the 8s" in title(fig) and grid_labels(fig)[1] == ["0", "0.5", "1"]
    fig = draw("quantize", "--points", "4")
    assert "4 quantized samples" in title(fig)
    assert all(label.isdigit() for label in grid_labels(fig)[1])


def test_sample_inpaint_and_report_figures(vae_run, data_root, tmp_path, drawn, monkeypatch):
    import genmodels.pipelines.report
    from genmodels.cli import main

    run = str(vae_run[0])
    assert main(["sample", run, "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert title(drawn["s.png"]) == "4 samples of vae tiny-vae (seed 0)"
    assert main(["inpaint", run, "--mask", "top", "--method", "mwg", "--n", "2", "--samples",
                 "2", "--nll", "0", "--out", str(tmp_path / "i.png"),
                 "--data-root", data_root]) == 0
    fig = drawn["i.png"]
    assert "vae tiny-vae: mwg inpainting, mask top" in title(fig)
    assert grid_labels(fig)[1] == ["input", "1", "2", "truth"]
    numbers = {key: 1.0 for key in ("fid_mnist", "vendi", "classes_covered_by_samples",
                                    "classes_covered_10_iid", "classes_covered_10_quantized")}
    monkeypatch.setattr(genmodels.pipelines.report, "diversity", lambda *args: numbers)
    genmodels.pipelines.report.write_report(run, data_root)
    assert title(drawn["samples.png"]) == "64 samples of vae tiny-vae (seed 0)"
    fig = drawn["interpolation.png"]
    rows, cols = grid_labels(fig)
    assert len(rows) == 4 and all(" → " in row for row in rows)
    assert cols[0] == "start" and cols[-1] == "end" and len(cols) == 10
    assert "Metropolis-within-Gibbs" in title(drawn["inpainting.png"])


@pytest.mark.parametrize("n, nrow, channels, padding", [(2, 8, 1, 2), (7, 3, 1, 2),
                                                        (16, 8, 3, 0), (5, 5, 3, 4)])
def test_tile_images_lays_out_as_torchvision_make_grid(n, nrow, channels, padding):
    """(make_grid returns a single image unpadded; tile_images keeps one layout for any N, so
    that the labels of canvas_figure land on their tiles.)"""
    from torchvision.utils import make_grid

    from genmodels.plots import tile_images

    images = torch.rand(n, channels, 6, 5)
    torch.testing.assert_close(tile_images(images, nrow, padding, 0.5),
                               make_grid(images, nrow=nrow, padding=padding, pad_value=0.5),
                               rtol=0, atol=0)


def _is_raw_grid(path: Path, tile: int = 28, pad: int = 2) -> bool:
    """A bare tiling of tile×tile images ``pad`` apart (as ``save_image_grid`` writes without a
    title), whose size is exactly k·(tile + pad) + pad on both sides; a titled figure is not."""
    width, height = Image.open(path).size
    return (width - pad) % (tile + pad) == 0 and (height - pad) % (tile + pad) == 0


def test_the_is_raw_grid_check(tmp_path):
    images = torch.rand(12, 1, 28, 28)
    assert _is_raw_grid(save_image_grid(images, tmp_path / "raw.png", nrow=4))
    assert not _is_raw_grid(save_image_grid(images, tmp_path / "titled.png", nrow=4,
                                            title="12 samples"))


def test_every_published_figure_is_titled():
    """The figures under samples/ that the docs show are figures, not bare sample grids (the
    benchmarks that draw them title them; benchmarks/shipped_figures.sh and
    benchmarks/latent_figures.sh redraw those of the shipped models)."""
    figures = sorted(p for p in (ROOT / "samples").rglob("*.png") if "checkpoints" not in p.parts)
    assert len(figures) > 50
    raw = [str(p.relative_to(ROOT)) for p in figures if _is_raw_grid(p)]
    assert not raw, f"untitled sample grids: {raw}"
