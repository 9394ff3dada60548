"""Evaluate a checkpoint or a file of samples, the engine of ``genmodels evaluate``.

    genmodels evaluate (CHECKPOINT | RUN_DIR | SAMPLES.pt | SAMPLES.npy | PNG_FOLDER)
        [--reference mnist-test] [--metrics fid,kid,prdc,vendi,ndb,modes] [--n 2000]
        [--importance-samples 100] [--full] [--out report.json]

A checkpoint gets its own held-out numbers first (``held_out``: ``Model.evaluate`` on the
test split, or its first ``held_out_examples`` images, e.g. a VAE's -ELBO, importance-sampled
NLL with ``k`` samples and reconstruction MSE), then the sample metrics of ``n`` images it
draws. A model of a 2-D mixture (ring, grid)
gets the PacGAN protocol instead (``mixture``: 2,500 samples, modes, high-quality share,
reverse KL). Raw samples get the sample metrics only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch

from genmodels.data.build import TOY_DATASETS, build_data
from genmodels.errors import InputError
from genmodels.metrics import mixture_modes
from genmodels.models.base import LikelihoodModel, Model, Sampler
from genmodels.pipelines.evaluate import (
    METRICS,
    REFERENCES,
    evaluate_samples,
    load_samples,
    read_torch_file,
    reference_images,
    samples_from_checkpoint,
    write_report,
)
from genmodels.progress import progress

MODEL_METRICS = ("held_out", "mixture")
MIXTURE_SAMPLES = 2500  # PacGAN / VEEGAN protocol
DEFAULT_REFERENCE = {"mnist": "mnist-test", "fashion": "fashion-test",
                     "stacked_mnist": "stacked-mnist-test"}


def is_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a model (a run directory or a Trainer checkpoint) rather than
    samples (a tensor file, an array or a folder of PNGs). A ``.pt`` file that torch cannot
    read raises :class:`~genmodels.errors.InputError`."""
    path = Path(path)
    if path.is_dir():
        return (path / "final.pt").is_file()
    if path.suffix != ".pt" or not path.is_file():
        return False
    content = read_torch_file(path)
    return isinstance(content, dict) and "kind" in content


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
    """``model.evaluate`` on the first ``n`` (0: all) test examples of the model's dataset, in
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


def mixture_numbers(model: Model, n: int = MIXTURE_SAMPLES, seed: int = 0) -> dict:
    """Modes captured, high-quality share and reverse KL of ``n`` samples of a model trained
    on a 2-D mixture (``genmodels.metrics.mixture_modes``, 3σ)."""
    name = model.run_config.data.name
    mixture = TOY_DATASETS[name]()
    with torch.no_grad():
        points = model.sample(n, torch.Generator().manual_seed(seed)).cpu()
    result = mixture_modes(points, mixture.means, mixture.std)
    return {"dataset": name, "samples": n, "modes_captured": result.modes_captured,
            "num_modes": len(result.counts), "high_quality": result.high_quality_fraction,
            "reverse_kl": result.reverse_kl, "counts": list(result.counts)}


def evaluate_source(source: str | Path, reference: str | None = None,
                    metrics: Sequence[str] | None = None, n: int = 10_000, k: int = 5000,
                    seed: int = 0, data_root: str | None = None,
                    held_out_examples: int = 0) -> dict:
    """The report of ``genmodels evaluate`` (see the module docstring), a JSON-able dict.

    ``metrics``: names from ``METRICS`` (sample metrics) and ``MODEL_METRICS``; ``None`` picks
    all that apply to the source. ``reference``: a name of ``REFERENCES``; ``None`` is the test
    split of the model's dataset, or ``mnist-test`` for raw samples. ``held_out_examples``:
    the held-out numbers use the first that many test examples (0: all).
    """
    known = (*METRICS, *MODEL_METRICS)
    unknown = sorted(set(metrics or ()) - set(known))
    if unknown:
        raise InputError(f"unknown metrics {unknown}; choose from {', '.join(known)}")
    if reference is not None and reference not in REFERENCES:  # before any long computation
        raise InputError(f"unknown reference {reference!r}; choose one of "
                         f"{', '.join(REFERENCES)}")
    if not is_checkpoint(source):
        chosen = list(metrics or METRICS)
        if set(chosen) & set(MODEL_METRICS):
            raise InputError(f"{source} holds samples, not a model: the metrics "
                             f"{', '.join(MODEL_METRICS)} need a checkpoint")
        samples = load_samples(source)
        reference = reference or "mnist-test"
        report = {"source": str(source), "reference": reference}
        return {**report, **evaluate_samples(samples, reference_images(reference, data_root),
                                             chosen, n=n, seed=seed)}

    from genmodels import load

    model = load(source)
    dataset = model.run_config.data.name
    is_toy = dataset in TOY_DATASETS
    can_sample = isinstance(model, Sampler)
    if metrics is None:
        metrics = ["held_out"] + (["mixture"] if is_toy else list(METRICS) if can_sample else [])
    if not can_sample and set(metrics) - {"held_out"}:
        raise InputError(f"{source} holds a {model.kind}, which cannot sample; only 'held_out' "
                         "applies")
    if is_toy and set(metrics) & set(METRICS):
        raise InputError(f"{source} models the 2-D {dataset} mixture: use --metrics "
                         "held_out,mixture (image metrics need images)")
    if "mixture" in metrics and not is_toy:
        raise InputError(f"'mixture' needs a model of a 2-D mixture ({', '.join(TOY_DATASETS)}); "
                         f"{source} models {dataset}")
    report: dict = {"source": str(source), "kind": model.kind, "dataset": dataset}
    torch.manual_seed(seed)
    if "held_out" in metrics:
        report["held_out"] = held_out_numbers(model, n=held_out_examples, k=k,
                                              data_root=data_root)
    if "mixture" in metrics:
        report["mixture"] = mixture_numbers(model, seed=seed)
    image_metrics = [name for name in metrics if name in METRICS]
    if image_metrics:
        reference = reference or DEFAULT_REFERENCE.get(dataset, "mnist-test")
        samples = samples_from_checkpoint(source, n, seed)
        report["reference"] = reference
        report.update(evaluate_samples(samples, reference_images(reference, data_root),
                                       image_metrics, n=n, seed=seed))
    return report


def write_evaluation(report: dict, out: str | Path) -> list[Path]:
    """Write ``report`` as ``out`` (JSON), a Markdown summary beside it (``.md``) and, with
    mode counts, a class histogram (``_classes.png``); returns the paths written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    histogram = out.with_name(out.stem + "_classes.png") if "modes" in report else None
    return write_report(report, out, out.with_suffix(".md"), histogram)
