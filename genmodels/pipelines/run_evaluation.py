"""Evaluating a model or a file of samples, the engine of ``genmodels evaluate``.

    genmodels evaluate (CHECKPOINT | RUN_DIR | SAMPLES.npy|.npz|.pt | IMAGE_FOLDER)
        [--reference NAME | FOLDER | ARRAY] [--features NAME] [--metrics ...] [--n 2000]
        [--importance-samples 100] [--full] [--out report.json]

A checkpoint gets its own held-out numbers first (``held_out``: ``Model.evaluate`` on its
held-out split, or its first ``held_out_examples`` images, e.g. a VAE's -ELBO,
importance-sampled NLL with ``k`` samples and reconstruction MSE), then the sample metrics
(``genmodels.pipelines.sample_metrics``) of ``n`` images it draws, as 8-bit images
(``as_8bit``: the numbers of a file of them), against its own held-out data by default. A model
of a 2-D mixture (ring, grid) gets the PacGAN protocol instead (``mixture``: 2,500 samples,
modes, high-quality share, reverse KL). Samples get the sample metrics only. The metrics of a
model are table entries like the sample metrics (:data:`RUN_METRICS`), and the report's summary
is read off both tables.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genmodels.config import Config
from genmodels.data import to_unit
from genmodels.data.build import TOY_DATASETS, build_data, dataset_tensors
from genmodels.errors import InputError
from genmodels.metrics import feature_extractor, mixture_modes
from genmodels.models.base import (
    ConditionalSampler,
    IterativeSampler,
    LikelihoodModel,
    Model,
    Sampler,
    TemperedSampler,
    check_labels,
    check_temperature,
)
from genmodels.pipelines.sample_metrics import (
    METRICS,
    TEST_REFERENCES,
    Metric,
    Reference,
    as_8bit,
    check_inputs,
    check_reference,
    choose_metrics,
    default_features,
    evaluate_samples,
    is_checkpoint,
    load_samples,
    reference_set,
)
from genmodels.progress import progress

MIXTURE_SAMPLES = 2500  # PacGAN / VEEGAN protocol
IMAGE_NEEDS = ("features", "classes", "pixels")


# --- the metrics of a model -----------------------------------------------------------------
def first_examples(batches: Iterable[tuple], n: int, desc: str | None = None) -> Iterator[tuple]:
    """The batches' first ``n`` examples, as batches; with ``desc``, under a progress bar."""
    seen = 0
    with progress(total=n, desc=desc, unit="img", disable=desc is None) as bar:
        for batch in batches:
            if seen >= n:
                return
            take = min(len(batch[0]), n - seen)
            yield tuple(t[:take] for t in batch)
            seen += take
            bar.update(take)


def held_out_numbers(model: Model, n: int = 0, k: int = 5000, batch_size: int = 100,
                     data_root: str | None = None) -> dict:
    """``model.evaluate`` on the first ``n`` (0: all) held-out examples of the model's data, in
    the view it was trained on; VAEs estimate the NLL with ``k`` importance samples (0: ELBO
    only). Seeded by the caller."""
    config = model.run_config
    has_likelihood = isinstance(model, LikelihoodModel)
    if has_likelihood:
        model.config.eval_samples = k
    data = build_data(dataclasses.replace(config.data, subset=0, eval_batch_size=batch_size),
                      config.train.batch_size, root=data_root, seed=config.train.seed)
    available = len(data.eval.tensors[0])
    n = min(n or available, available)
    start = time.perf_counter()
    desc = f"held-out NLL (k = {k})" if k and has_likelihood else "held-out"
    with torch.no_grad():
        numbers = model.evaluate(first_examples(data.eval, n, desc))
    return {"dataset": config.data.name, "view": config.data.view, "examples": n,
            "importance_samples": k if has_likelihood else None,
            **numbers, "seconds": round(time.perf_counter() - start, 1)}


def mixture_numbers(model: Model, n: int = MIXTURE_SAMPLES, seed: int = 0,
                    steps: int | None = None, temperature: float | None = None) -> dict:
    """Modes captured, high-quality share and reverse KL of ``n`` samples of a model trained
    on a 2-D mixture (``genmodels.metrics.mixture_modes``, 3σ); ``steps``: sampler steps of
    an :class:`IterativeSampler`, ``temperature``: that of a :class:`TemperedSampler`."""
    with torch.no_grad():
        points = model.sample(n, torch.Generator().manual_seed(seed),
                              **_sampler_options(model, steps, temperature)).cpu()
    return mixture_counts(points, model.run_config.data.name)


def mixture_counts(points: Tensor, name: str) -> dict:
    """Modes captured, high-quality share and reverse KL of ``points`` (n, 2) against the 2-D
    mixture ``name`` of ``TOY_DATASETS`` (``genmodels.metrics.mixture_modes``, 3σ)."""
    mixture = TOY_DATASETS[name]()
    result = mixture_modes(points, mixture.means, mixture.std)
    return {"dataset": name, "samples": len(points), "modes_captured": result.modes_captured,
            "num_modes": len(result.counts), "high_quality": result.high_quality_fraction,
            "reverse_kl": result.reverse_kl, "counts": list(result.counts)}


@dataclass(frozen=True)
class RunSettings:
    """Parameters of the metrics of a model: ``held_out_examples`` (0: all), ``k`` importance
    samples, ``seed``, ``data_root``, sampler ``steps`` and ``temperature`` (None: the model's
    default)."""

    held_out_examples: int = 0
    k: int = 5000
    seed: int = 0
    data_root: str | None = None
    steps: int | None = None
    temperature: float | None = None


def _held_out_rows(entry: dict, report: dict) -> list[tuple[str, str]]:
    return [(f"held-out {name} ({entry['examples']} test examples)", f"{value:.4g}")
            for name, value in entry.items() if isinstance(value, float) and name != "seconds"]


def _mixture_rows(entry: dict, report: dict) -> list[tuple[str, str]]:
    return [(f"modes captured ({entry['samples']} samples, 3σ)",
             f"{entry['modes_captured']} of {entry['num_modes']}"),
            ("high-quality samples", f"{100 * entry['high_quality']:.1f}%"),
            ("reverse KL (nats)", f"{entry['reverse_kl']:.4f}")]


RUN_METRICS: dict[str, Metric] = {metric.name: metric for metric in (
    Metric("held_out", "model",
           lambda model, o: held_out_numbers(model, o.held_out_examples, o.k,
                                             data_root=o.data_root), _held_out_rows),
    Metric("mixture", "points", lambda model, o: mixture_numbers(
        model, seed=o.seed, steps=o.steps, temperature=o.temperature),
           _mixture_rows),
)}
ALL_METRICS: dict[str, Metric] = {**RUN_METRICS, **METRICS}  # the order of the summary


# --- samples of a model ---------------------------------------------------------------------
def samples_from_checkpoint(path: str | Path, n: int, seed: int = 0,
                            batch_size: int | None = None,
                            device: str | torch.device = "cpu", steps: int | None = None,
                            labels: Tensor | None = None,
                            temperature: float | None = None) -> Tensor:
    """``n`` images (n, C, H, W) in [0, 1] drawn from a trained generative model.

    ``path``: a checkpoint or run directory (``genmodels.load``) of a model with
    ``sample(n, generator)`` (VAE: the likelihood's mean at prior codes). Seeded with a
    ``torch.Generator``; values are clamped to [0, 1] (a Gaussian likelihood's mean may
    overshoot). ``steps``: sampler steps of a diffusion or flow model, ``labels`` (n,) the
    classes of a conditional model's samples, ``temperature`` that of a VAE's prior codes
    (``draw_samples``). Raises InputError for a model that cannot sample (or take them).
    """
    from genmodels import load

    model = load(path, device)
    if not isinstance(model, Sampler):
        raise InputError(f"{path} holds a {model.description}, which cannot sample")
    return draw_samples(model, n, seed, batch_size, steps, labels, temperature).clamp(0, 1)


def _sampler_options(model: Model, steps: int | None,
                     temperature: float | None = None) -> dict:
    """The options of ``model.sample``: ``steps`` for an :class:`IterativeSampler`,
    ``temperature`` for a :class:`TemperedSampler`, each left out when None; an InputError
    for an option the model does not take or a temperature that is not > 0."""
    options: dict = {}
    if steps is not None:
        if not isinstance(model, IterativeSampler):
            raise InputError(f"--steps {steps}: a {model.kind} samples in one pass; sampler "
                             "steps apply to diffusion and flow-matching models")
        options["steps"] = steps
    if temperature is not None:
        if not isinstance(model, TemperedSampler):
            raise InputError(f"--temperature {temperature}: a {model.description} does not "
                             "draw Gaussian prior codes; the temperature applies to VAEs")
        try:
            options["temperature"] = check_temperature(temperature)
        except ValueError as err:
            raise InputError(f"--temperature: {err}") from None
    return options


def checked_labels(model: Model, labels: Tensor, n: int) -> Tensor:
    """``labels`` (n,) of the samples of a :class:`ConditionalSampler`, as int64; an InputError
    for an unconditional model or labels out of its range."""
    if not isinstance(model, ConditionalSampler):
        raise InputError(f"labels given to a {model.kind} that is not class-conditional; they "
                         "apply to models trained with model.conditional = true")
    try:
        return check_labels(torch.as_tensor(labels), n, model.num_classes)
    except ValueError as err:
        raise InputError(str(err)) from None


def draw_samples(model: Model, n: int, seed: int = 0, batch_size: int | None = None,
                 steps: int | None = None, labels: Tensor | None = None,
                 temperature: float | None = None) -> Tensor:
    """``n`` raw samples of ``model`` on the CPU (images as ``model.sample`` returns them,
    unclamped; points (n, 2) for a 2-D mixture), drawn in batches of ``batch_size`` (None: the
    model's ``sample_batch_size``) from one ``torch.Generator`` seeded with ``seed`` on the
    model's device, with a progress bar. ``steps``: the sampler
    steps of an :class:`IterativeSampler` (None: its default); an InputError for any other
    model. ``labels`` (n,): the class of each sample of a :class:`ConditionalSampler` (None:
    drawn at the training shares); an InputError for any other model or a label out of range.
    ``temperature``: that of a :class:`TemperedSampler`'s prior codes (None: 1)."""
    options = _sampler_options(model, steps, temperature)
    batch_size = batch_size or model.sample_batch_size
    device = next(model.parameters()).device
    if labels is not None:
        labels = checked_labels(model, labels, n).to(device)
    generator = torch.Generator(device).manual_seed(seed)
    batches = []
    with torch.no_grad(), progress(total=n, desc="sampling", unit="img") as bar:
        for start in range(0, n, batch_size):
            size = min(batch_size, n - start)
            if labels is not None:
                options["labels"] = labels[start:start + size]
            batches.append(model.sample(size, generator=generator, **options).cpu())
            bar.update(len(batches[-1]))
    return torch.cat(batches)


def run_reference(config: Config, root: str | None = None) -> Reference:
    """The default reference of a run: the test split of its built-in dataset
    (``TEST_REFERENCES``), or, for images of one's own or a run that resized or converted its
    data (``data.size``, ``data.channels``), the held-out images of its data as it trained on
    them (``genmodels.data.build.dataset_tensors``)."""
    data = config.data
    if data.name in TEST_REFERENCES and not data.size and not data.channels:
        return reference_set(TEST_REFERENCES[data.name], root)
    held_out = dataset_tensors(dataclasses.replace(data, subset=0), root,
                               seed=config.train.seed)[1][0]
    where = f" {data.path}" if data.path else ""
    return Reference(to_unit(held_out), f"held-out images of the run ({data.name}{where})",
                     data.name if data.name in TEST_REFERENCES else None)


# --- evaluation -----------------------------------------------------------------------------
def evaluate_source(source: str | Path, reference: str | None = None,
                    metrics: Sequence[str] | None = None, n: int = 10_000, k: int = 5000,
                    seed: int = 0, data_root: str | None = None, held_out_examples: int = 0,
                    features: str | None = None, steps: int | None = None,
                    temperature: float | None = None) -> dict:
    """The report of ``genmodels evaluate`` (see the module docstring), a JSON-able dict.

    ``metrics``: names of :data:`ALL_METRICS`; ``None`` picks all that apply to the source.
    ``reference``: a name of ``REFERENCES``, a folder of images or an array file; ``None`` is
    the model's own held-out data (:func:`run_reference`), ``mnist-test`` for samples.
    ``features``: a name of ``genmodels.metrics.feature_names``; ``None`` follows the
    reference (``default_features``: a shipped CNN for MNIST, Fashion and Stacked MNIST, else
    pixels, with a note). ``held_out_examples``: the held-out numbers use the first that many
    examples (0: all). ``steps`` and ``temperature``: the sampler's (:func:`draw_samples`).
    ``notes`` and ``warnings`` list what was left out or is unreliable.
    """
    chosen = None if metrics is None else choose_metrics(metrics, ALL_METRICS)
    if reference is not None:  # before any long computation
        check_reference(reference)
    if features is not None:
        feature_extractor(features)
    if not is_checkpoint(source):
        chosen = chosen or list(METRICS.values())
        model_metrics = [metric.name for metric in chosen if metric.needs not in IMAGE_NEEDS]
        if model_metrics:
            raise InputError(f"{source} holds samples, not a model: the metrics "
                             f"{', '.join(model_metrics)} need a checkpoint")
        given = [flag for flag, value in (("--steps", steps), ("--temperature", temperature))
                 if value is not None]
        if given:
            raise InputError(f"{source} holds samples, not a model: {' and '.join(given)} "
                             "apply to a checkpoint's sampler; drop them")
        samples = load_samples(source)
        ref = reference_set(reference or "mnist-test", data_root)
        return {"source": str(source), **_image_report(samples, ref, chosen, features, n, seed)}

    from genmodels import load

    model = load(source)
    dataset = model.run_config.data.name
    applies = {"model": True, "points": dataset in TOY_DATASETS and isinstance(model, Sampler),
               **dict.fromkeys(IMAGE_NEEDS, dataset not in TOY_DATASETS
                               and isinstance(model, Sampler))}
    chosen = chosen or [metric for metric in ALL_METRICS.values() if applies[metric.needs]]
    _check_applies(chosen, applies, source, model)
    _sampler_options(model, steps, temperature)  # before any long computation
    image_metrics = [metric for metric in chosen if metric.name in METRICS]
    if image_metrics:  # the data and features are checked before any long computation
        ref = reference_set(reference, data_root) if reference else \
            run_reference(model.run_config, data_root)
        check_inputs(model.input_shape, ref.images, image_metrics,
                     features or default_features(ref.dataset)[0], ref.dataset)
    report: dict = {"source": str(source), "kind": model.kind, "dataset": dataset}
    torch.manual_seed(seed)
    settings = RunSettings(held_out_examples, k, seed, data_root, steps, temperature)
    for metric in chosen:
        if metric.name in RUN_METRICS:
            report[metric.name] = metric.compute(model, settings)
    if image_metrics:
        samples = as_8bit(samples_from_checkpoint(source, n, seed, steps=steps,
                                                  temperature=temperature))
        report.update(_image_report(samples, ref, image_metrics, features, n, seed))
    return {"warnings": [], "notes": [], **report}


def _check_applies(chosen: list[Metric], applies: dict[str, bool], source: str | Path,
                   model: Model) -> None:
    """InputError for a chosen metric that does not apply to ``model``."""
    dataset = model.run_config.data.name
    names = {metric.name for metric in chosen if not applies[metric.needs]}
    if not names:
        return
    if not isinstance(model, Sampler):
        raise InputError(f"{source} holds a {model.description}, which cannot sample; only "
                         f"{', '.join(m for m, e in ALL_METRICS.items() if e.needs == 'model')} "
                         "applies")
    if dataset in TOY_DATASETS:
        raise InputError(f"{source} models the 2-D {dataset} mixture: use --metrics "
                         "held_out,mixture (image metrics need images)")
    raise InputError(f"{', '.join(sorted(names))} needs a model of a 2-D mixture "
                     f"({', '.join(TOY_DATASETS)}); {source} models {dataset}")


def _image_report(samples: Tensor, ref: Reference, metrics: list[Metric], features: str | None,
                  n: int, seed: int) -> dict:
    """``reference`` and the sample metrics of ``samples`` against ``ref``, with ``features``
    (None: :func:`default_features` of the reference, with its note)."""
    features, note = (features, None) if features else default_features(ref.dataset)
    report = evaluate_samples(samples, ref.images, [metric.name for metric in metrics], n=n,
                              seed=seed, features=features, dataset=ref.dataset)
    report["notes"] = [note, *report["notes"]] if note else report["notes"]
    return {"reference": ref.name, **report}


# --- the files ------------------------------------------------------------------------------
def summary_rows(report: dict) -> list[tuple[str, str]]:
    """(metric, value) rows of the Markdown summary, one table entry after the other
    (:data:`ALL_METRICS`), for the metrics present in ``report``."""
    return [row for name, metric in ALL_METRICS.items() if name in report
            for row in metric.rows(report[name], report)]


def _plot_histogram(modes: dict, path: Path, title: str | None = None) -> None:
    """Bar chart of the share of samples and of reference images per mode."""
    from genmodels.plots import plt, save_figure

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
        ax.set_xlabel("mode (classes of the channels, in base K)")
    ax.axhline(1 / len(counts), color="gray", ls="--", lw=1, label="uniform")
    ax.set_ylabel("share of images (fraction)")
    ax.set_title(title or "Share of the samples and of the reference images per mode (classes "
                          "told by the classifier)", fontsize=10, wrap=True)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def write_report(report: dict, out_json: str | Path, out_markdown: str | Path | None = None,
                 histogram_png: str | Path | None = None) -> list[Path]:
    """Write ``report`` (``evaluate_samples``, ``evaluate_source``) as JSON, and optionally a
    Markdown summary (:func:`summary_rows`, then the notes and warnings) and a class-histogram
    plot (needs the ``modes`` metric); returns the paths written. The Markdown links the plot
    by a path relative to itself."""
    written = [Path(out_json)]
    written[0].write_text(json.dumps(report, indent=2) + "\n")
    if histogram_png is not None:
        if "modes" not in report:
            raise ValueError("a class histogram needs the 'modes' metric in the report")
        source = f" of {report['source']}" if "source" in report else ""
        reference = f" ({report['reference']})" if "reference" in report else ""
        _plot_histogram(report["modes"], Path(histogram_png),
                        f"Share of the samples{source} and of the reference images{reference} "
                        "per mode (classes told by the classifier)")
        written.append(Path(histogram_png))
    if out_markdown is not None:
        markdown = Path(out_markdown)
        lines = ["# Evaluation", ""]
        if "source" in report:
            lines += [f"Source: `{report['source']}`.", ""]
        if "n_samples" in report:
            features = f"; features: {report['features']}" if "features" in report else ""
            lines += [f"{report['n_samples']} samples against {report['n_reference']} "
                      f"reference images ({report.get('reference', 'given')}){features}.", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in summary_rows(report)]
        for title in ("notes", "warnings"):
            if report.get(title):
                lines += ["", f"{title.capitalize()}:", ""]
                lines += [f"- {text}" for text in report[title]]
        if histogram_png is not None:
            relative = os.path.relpath(Path(histogram_png).resolve(), markdown.resolve().parent)
            lines += ["", f"![class histogram]({Path(relative).as_posix()})"]
        markdown.write_text("\n".join(lines) + "\n")
        written.append(markdown)
    return written


def write_evaluation(report: dict, out: str | Path) -> list[Path]:
    """Write ``report`` as ``out`` (JSON), a Markdown summary beside it (``.md``) and, with
    mode counts, a class histogram (``_classes.png``); returns the paths written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    histogram = out.with_name(out.stem + "_classes.png") if "modes" in report else None
    return write_report(report, out, out.with_suffix(".md"), histogram)
