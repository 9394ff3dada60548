"""Evaluate generated images against a reference set: FID, KID, precision/recall/density/coverage,
Vendi, NDB and mode counts, as a JSON-able report, a Markdown summary and a class histogram.

Feature-based metrics use the shipped MNIST CNN's penultimate layer ("FID-MNIST", 128-d per
channel); NDB uses raw pixels, as Richardson & Weiss (2018); modes are the classes predicted by
the same CNN (10 for 1-channel images, the 1000 digit triples of Stacked MNIST for 3-channel
ones). See docs/metrics.md.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genmodels.data import load_images, mode_index, stacked_mnist, to_unit
from genmodels.errors import InputError, first_sentence
from genmodels.metrics import (
    frechet_distance,
    kid,
    label_histogram,
    mnist_features_and_labels,
    ndb,
    pixel_features,
    prdc,
    vendi_score,
)
from genmodels.metrics.modes import STACKED_MNIST_MODES, STACKED_MNIST_SAMPLES
from genmodels.progress import progress

METRICS = ("fid", "kid", "prdc", "vendi", "ndb", "modes")
REFERENCES = {
    "mnist-train": ("mnist", "train"),
    "mnist-test": ("mnist", "test"),
    "fashion-train": ("fashion", "train"),
    "fashion-test": ("fashion", "test"),
    "stacked-mnist-train": ("mnist", "train"),
    "stacked-mnist-test": ("mnist", "test"),
}
IMAGE_SIZE = (28, 28)
FEATURES = "mnist-cnn penultimate layer (128-d per channel)"


def as_images(x: Tensor | np.ndarray) -> Tensor:
    """Images as float32 (N, C, 28, 28) in [0, 1] from an array of any common layout.

    Accepts (N, 784), (N, 28, 28), (N, C, 28, 28) and channels-last (N, 28, 28, C) with C in
    {1, 3}; uint8 (0..255) is divided by 255, float must already lie in [0, 1] (map tanh
    outputs with (x + 1) / 2 first). Raises ValueError otherwise.
    """
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).cpu()
    if x.dim() == 2 and x.shape[1] == IMAGE_SIZE[0] * IMAGE_SIZE[1]:
        x = x.reshape(-1, 1, *IMAGE_SIZE)
    elif x.dim() == 3:
        x = x.unsqueeze(1)
    elif x.dim() == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.dim() != 4 or tuple(x.shape[2:]) != IMAGE_SIZE or x.shape[1] not in (1, 3):
        raise InputError(f"samples must be images (N, C, 28, 28) with C in (1, 3), (N, 28, 28), "
                         f"(N, 28, 28, C) or (N, 784); got shape {tuple(x.shape)}")
    if len(x) == 0:
        raise InputError("no samples: got an empty array")
    if x.dtype == torch.uint8:
        return to_unit(x).contiguous()
    if not x.is_floating_point():
        raise InputError(f"samples must be uint8 (0..255) or float in [0, 1], got {x.dtype}")
    x = x.float().contiguous()
    if not torch.isfinite(x).all():
        raise InputError("samples contain NaN or Inf")
    low, high = x.min().item(), x.max().item()
    if low < 0 or high > 1:
        raise InputError(f"float samples must lie in [0, 1], got values in [{low:.3g}, {high:.3g}]"
                         "; map [-1, 1] (tanh) outputs with (x + 1) / 2")
    return x


def _read_png_folder(folder: Path) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, 3) from the *.png files of ``folder``, sorted by name; an
    RGB image whose three channels agree counts as grayscale."""
    from PIL import Image

    paths = sorted(folder.glob("*.png"))
    if not paths:
        hint = (f"; it looks like a run directory without final.pt: evaluate "
                f"{folder / 'checkpoint.pt'}" if (folder / "checkpoint.pt").is_file() else "")
        raise InputError(f"{folder} holds no .png files{hint}")
    arrays = []
    for path in progress(paths, desc="reading PNGs", unit="file"):
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"))
        except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for a broken file
            raise InputError(f"{path} is not a readable PNG ({type(err).__name__}: {err})") \
                from None
        gray = (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
        arrays.append(rgb[..., 0] if gray else rgb)
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise InputError(f"the PNG files of {folder} differ in shape or channels: {sorted(shapes)}")
    return np.stack(arrays)


def load_samples(path: str | Path) -> Tensor:
    """Generated images from a file, as float32 (N, C, 28, 28) in [0, 1] (``as_images``).

    ``path``: a ``.pt`` file holding a tensor (``torch.save``), a ``.npy`` array, or a folder
    of one PNG per image (8-bit grayscale or RGB). For a model checkpoint use
    ``samples_from_checkpoint``.
    """
    path = Path(path)
    if path.is_dir():
        return as_images(_read_png_folder(path))
    if not path.is_file():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:  # not an .npy file, truncated, pickled
            raise InputError(f"{path} is not a readable .npy array ({type(err).__name__}: "
                             f"{first_sentence(err)})") from None
        return as_images(array)
    if path.suffix == ".pt":
        content = read_torch_file(path)
        if isinstance(content, dict) and "kind" in content:
            raise InputError(f"{path} is a model checkpoint; draw images from it with "
                             "samples_from_checkpoint(path, n)")
        if not torch.is_tensor(content):
            raise InputError(f"{path} holds a {type(content).__name__}, not a tensor of images")
        return as_images(content)
    raise InputError(f"unsupported samples file {path}: use .pt, .npy or a folder of PNGs")


def read_torch_file(path: str | Path):
    """``torch.load(path, weights_only=True)`` on the CPU; a file it cannot read (truncated,
    not a torch file, pickled code) raises :class:`~genmodels.errors.InputError`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # whatever torch.load raises on a bad file, as load_checkpoint
        raise InputError(f"{path} is corrupt or not a torch file ({type(err).__name__}: "
                         f"{first_sentence(err)})") from None


def samples_from_checkpoint(path: str | Path, n: int, seed: int = 0, batch_size: int = 1000,
                            device: str | torch.device = "cpu") -> Tensor:
    """``n`` images (n, C, 28, 28) in [0, 1] drawn from a trained generative model.

    ``path``: a checkpoint or run directory (``genmodels.load``) of a model with
    ``sample(n, generator)`` (VAE: the likelihood's mean at prior codes). Seeded with a
    ``torch.Generator``; values are clamped to [0, 1] (a Gaussian likelihood's mean may
    overshoot). Raises ValueError for a model that cannot sample.
    """
    from genmodels import load
    from genmodels.models import Sampler

    model = load(path, device)
    if not isinstance(model, Sampler):
        raise InputError(f"{path} holds a {model.kind}, which cannot sample")
    return draw_samples(model, n, seed, batch_size).clamp(0, 1)


def draw_samples(model, n: int, seed: int = 0, batch_size: int = 1000) -> Tensor:
    """``n`` raw samples of ``model`` on the CPU (images as ``model.sample`` returns them,
    unclamped; points (n, 2) for a 2-D mixture), drawn in batches from one ``torch.Generator``
    seeded with ``seed`` on the model's device, with a progress bar."""
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    batches = []
    with torch.no_grad(), progress(total=n, desc="sampling", unit="img") as bar:
        for start in range(0, n, batch_size):
            batches.append(model.sample(min(batch_size, n - start), generator=generator).cpu())
            bar.update(len(batches[-1]))
    return torch.cat(batches)


def reference_images(name: str = "mnist-test", root: str | Path | None = None,
                     n: int | None = None, seed: int = 0) -> Tensor:
    """Real images float32 (N, C, 28, 28) in [0, 1] by name (``REFERENCES``).

    ``mnist-*`` and ``fashion-*``: the split (``genmodels.data.load_images``), or ``n`` images
    of it drawn without replacement with ``seed``. ``stacked-mnist-*``: ``n`` (default 26,000)
    Stacked MNIST images built from the split (``genmodels.data.stacked_mnist``).
    """
    if name not in REFERENCES:
        raise InputError(f"unknown reference {name!r}; choose one of {', '.join(REFERENCES)}")
    dataset, split = REFERENCES[name]
    data = load_images(dataset, split, root)
    if name.startswith("stacked-"):
        images, _ = stacked_mnist(data.images, data.labels, n or STACKED_MNIST_SAMPLES, seed)
        return to_unit(images)
    if n is None or n >= len(data):
        return to_unit(data.images)
    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
    return to_unit(data.images[index.sort().values])


def _subsample(images: Tensor, n: int, generator: torch.Generator) -> Tensor:
    if len(images) <= n:
        return images
    return images[torch.randperm(len(images), generator=generator)[:n].sort().values]


def _mode_labels(digits: Tensor) -> tuple[Tensor, int]:
    """Mode of each image from its per-channel digits (N, C): the digit (C = 1) or the Stacked
    MNIST triple 100 a + 10 b + c (C = 3); and the number of modes."""
    if digits.shape[1] == 1:
        return digits[:, 0], 10
    return mode_index(digits), STACKED_MNIST_MODES


def evaluate_samples(samples: Tensor, reference: Tensor, metrics: Sequence[str] = METRICS,
                     n: int = 10_000, seed: int = 0, k: int = 5, kid_subsets: int = 100,
                     kid_subset_size: int = 1000, ndb_bins: int = 100,
                     batch_size: int = 1000) -> dict:
    """Metrics of generated ``samples`` against ``reference`` images, a JSON-able dict.

    Both are images (N, C, 28, 28) with the same C (1 or 3), uint8 or float in [0, 1]; at most
    ``n`` of each are used, drawn without replacement with ``seed``. ``metrics`` (``METRICS``):

    - ``fid``: ``frechet_distance`` on FID-MNIST features (squared; unbiased covariances);
    - ``kid``: ``kid`` (mean and std over ``kid_subsets`` subsets of
      min(``kid_subset_size``, N) points; one subset when that is the whole smaller set);
    - ``prdc``: precision, recall, density, coverage (``prdc`` with ``k`` neighbours);
    - ``vendi``: ``vendi_score`` (cosine kernel, q = 1) of the samples and of the reference;
    - ``ndb``: ``ndb`` on pixels, k-means with min(``ndb_bins``, N_reference) bins;
    - ``modes``: ``label_histogram`` of the CNN's classes (1000 triples for 3 channels), for the
      samples and for the reference.

    Each metric's entry holds its numbers; ``"seconds"`` the time each took.
    """
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise InputError(f"unknown metrics {unknown}; choose from {', '.join(METRICS)}")
    generator = torch.Generator().manual_seed(seed)  # draw first: convert only what is used
    samples = as_images(_subsample(torch.as_tensor(samples), n, generator))
    reference = as_images(_subsample(torch.as_tensor(reference), n, generator))
    if samples.shape[1] != reference.shape[1]:
        raise InputError(f"samples have {samples.shape[1]} channels but the reference has "
                         f"{reference.shape[1]}")
    need = k + 1 if "prdc" in metrics else 2 if set(metrics) & {"fid", "kid", "ndb"} else 1
    if min(len(samples), len(reference)) < need:
        raise InputError(f"{len(samples)} samples and {len(reference)} reference images: the "
                         f"metrics {', '.join(metrics)} need at least {need} of each")
    report: dict = {"n_samples": len(samples), "n_reference": len(reference),
                    "channels": samples.shape[1], "features": FEATURES, "seed": seed}
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    stages = (["features"] if set(metrics) - {"ndb"} else []) + list(metrics)
    bar = progress(total=len(stages), desc="metrics", unit="stage")
    if set(metrics) - {"ndb"}:
        bar.set_postfix_str("features", refresh=False)
        features, digits = mnist_features_and_labels(samples, batch_size)
        reference_features, reference_digits = mnist_features_and_labels(reference, batch_size)
        seconds["features"] = time.perf_counter() - start
        bar.update()
    for metric in metrics:
        bar.set_postfix_str(metric, refresh=False)
        start = time.perf_counter()
        if metric == "fid":
            result = frechet_distance(reference_features, features)
            report["fid"] = {"value": result.value, "n_reference": result.n_x,
                             "n_samples": result.n_y}
        elif metric == "kid":
            size = min(kid_subset_size, len(samples), len(reference))
            whole = size == min(len(samples), len(reference))  # every subset would be the same
            result = kid(reference_features, features, 1 if whole else kid_subsets, size,
                         seed=seed)
            report["kid"] = {"mean": result.mean, "std": result.std, "subsets": result.subsets,
                             "subset_size": result.subset_size}
        elif metric == "prdc":
            report["prdc"] = {**prdc(reference_features, features, k), "k": k}
        elif metric == "vendi":
            report["vendi"] = {"samples": vendi_score(features),
                               "reference": vendi_score(reference_features),
                               "kernel": "cosine", "q": 1.0}
        elif metric == "ndb":
            result = ndb(pixel_features(reference), pixel_features(samples),
                         bins=min(ndb_bins, len(reference)), seed=seed)
            report["ndb"] = {"different_bins": result.different_bins, "bins": result.bins,
                             "alpha": result.alpha, "js_divergence": result.js_divergence}
        else:
            modes, num_modes = _mode_labels(digits)
            reference_modes, _ = _mode_labels(reference_digits)
            histogram = label_histogram(modes, num_modes)
            reference_histogram = label_histogram(reference_modes, num_modes)
            report["modes"] = {"num_modes": num_modes,
                               "modes_covered": histogram.modes_covered,
                               "kl_to_uniform": histogram.kl_to_uniform,
                               "counts": list(histogram.counts),
                               "reference_modes_covered": reference_histogram.modes_covered,
                               "reference_kl_to_uniform": reference_histogram.kl_to_uniform,
                               "reference_counts": list(reference_histogram.counts)}
        seconds[metric] = time.perf_counter() - start
        bar.update()
    bar.close()
    report["seconds"] = {name: round(value, 3) for name, value in seconds.items()}
    return report


def _summary_rows(report: dict) -> list[tuple[str, str]]:
    """(metric, value) rows of the Markdown summary, for the metrics present in ``report``."""
    rows = []
    for name, value in report.get("held_out", {}).items():
        if isinstance(value, float) and name != "seconds":
            rows.append((f"held-out {name} ({report['held_out']['examples']} test examples)",
                         f"{value:.4g}"))
    if "mixture" in report:
        mixture = report["mixture"]
        rows.append((f"modes captured ({mixture['samples']} samples, 3σ)",
                     f"{mixture['modes_captured']} of {mixture['num_modes']}"))
        rows.append(("high-quality samples", f"{100 * mixture['high_quality']:.1f}%"))
        rows.append(("reverse KL (nats)", f"{mixture['reverse_kl']:.4f}"))
    if "fid" in report:
        rows.append(("FID (FID-MNIST features, squared)", f"{report['fid']['value']:.4g}"))
    if "kid" in report:
        entry = report["kid"]
        rows.append((f"KID (unbiased, {entry['subsets']} subsets of {entry['subset_size']})",
                     f"{entry['mean']:.4g} ± {entry['std']:.2g}"))
    if "prdc" in report:
        for name in ("precision", "recall", "density", "coverage"):
            rows.append((f"{name} (k = {report['prdc']['k']})", f"{report['prdc'][name]:.4f}"))
    if "vendi" in report:
        rows.append(("Vendi score, samples / reference",
                     f"{report['vendi']['samples']:.3f} / {report['vendi']['reference']:.3f}"))
    if "ndb" in report:
        rows.append((f"NDB (pixels, alpha = {report['ndb']['alpha']})",
                     f"{report['ndb']['different_bins']} of {report['ndb']['bins']} bins, "
                     f"JS {report['ndb']['js_divergence']:.4g}"))
    if "modes" in report:
        modes = report["modes"]
        rows.append(("modes covered, samples / reference",
                     f"{modes['modes_covered']} / {modes['reference_modes_covered']} of "
                     f"{modes['num_modes']}"))
        rows.append(("KL(modes ‖ uniform), samples / reference",
                     f"{modes['kl_to_uniform']:.4f} / {modes['reference_kl_to_uniform']:.4f}"))
    return rows


def _plot_histogram(modes: dict, path: Path) -> None:
    """Bar chart of the share of samples and of reference images per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts, reference = np.array(modes["counts"]), np.array(modes["reference_counts"])
    positions = np.arange(len(counts))
    fig, ax = plt.subplots(figsize=(7 if len(counts) <= 10 else 12, 3.5))
    if len(counts) <= 10:
        ax.bar(positions - 0.2, reference / reference.sum(), 0.4, label="reference")
        ax.bar(positions + 0.2, counts / counts.sum(), 0.4, label="samples")
        ax.set_xticks(positions)
        ax.set_xlabel("predicted class")
    else:
        ax.plot(positions, reference / reference.sum(), lw=0.8, label="reference")
        ax.plot(positions, counts / counts.sum(), lw=0.8, label="samples")
        ax.set_xlabel("mode (100 a + 10 b + c)")
    ax.axhline(1 / len(counts), color="gray", ls="--", lw=1, label="uniform")
    ax.set_ylabel("share of images")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(report: dict, out_json: str | Path, out_markdown: str | Path | None = None,
                 histogram_png: str | Path | None = None) -> list[Path]:
    """Write ``report`` (``evaluate_samples``) as JSON, and optionally a Markdown summary and a
    class-histogram plot (needs the ``modes`` metric); returns the paths written. The Markdown
    links the plot by a path relative to itself."""
    written = [Path(out_json)]
    written[0].write_text(json.dumps(report, indent=2) + "\n")
    if histogram_png is not None:
        if "modes" not in report:
            raise ValueError("a class histogram needs the 'modes' metric in the report")
        _plot_histogram(report["modes"], Path(histogram_png))
        written.append(Path(histogram_png))
    if out_markdown is not None:
        markdown = Path(out_markdown)
        lines = ["# Evaluation", ""]
        if "source" in report:
            lines += [f"Source: `{report['source']}`.", ""]
        if "n_samples" in report:
            lines += [f"{report['n_samples']} samples against {report['n_reference']} "
                      f"reference images ({report.get('reference', 'given')}); features: "
                      f"{report['features']}.", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in _summary_rows(report)]
        if histogram_png is not None:
            relative = os.path.relpath(Path(histogram_png).resolve(), markdown.resolve().parent)
            lines += ["", f"![class histogram]({Path(relative).as_posix()})"]
        markdown.write_text("\n".join(lines) + "\n")
        written.append(markdown)
    return written
