"""Sample metrics of an image set: generated images against reference images, one table entry
per metric (:data:`METRICS`), as a JSON-able report.

Images of any size (N, C, H, W), C in {1, 3}, go through one feature extractor
(``genmodels.metrics.features``: ``mnist-cnn``, ``fashion-cnn``, ``pixels``,
``classifier:RUN``, ``torchscript:FILE`` or an ``nn.Module``), once per set. FID, KID, PRDC
and Vendi read its features, ``modes`` the classes of its classifier head (left out, with a
note, for features without one), NDB the pixels, as Richardson & Weiss (2018). A metric that
cannot run at the sample size is left out and one that is unreliable at it runs, each with a
warning in the report. See docs/metrics.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from genmodels.data import load_files, load_images, stacked_mnist, to_unit
from genmodels.data.files import ARRAY_SUFFIXES, images_from_array
from genmodels.errors import InputError, first_sentence
from genmodels.metrics import (
    FeatureExtractor,
    check_fit,
    embed_images,
    feature_extractor,
    fitting_features,
    frechet_distance,
    kid,
    label_histogram,
    ndb,
    pixel_features,
    prdc,
    vendi_score,
)
from genmodels.metrics.features import check_image_batch
from genmodels.metrics.modes import STACKED_MNIST_SAMPLES
from genmodels.nets.classifier import INFERENCE_BATCH
from genmodels.portable import export_folder
from genmodels.progress import progress

REFERENCES = {  # name -> (data.name of the dataset, split)
    "mnist-train": ("mnist", "train"),
    "mnist-test": ("mnist", "test"),
    "fashion-train": ("fashion", "train"),
    "fashion-test": ("fashion", "test"),
    "stacked-mnist-train": ("stacked_mnist", "train"),
    "stacked-mnist-test": ("stacked_mnist", "test"),
}
TEST_REFERENCES = {dataset: name for name, (dataset, split) in REFERENCES.items()
                   if split == "test"}  # data.name -> its test split, the default reference
DEFAULT_FEATURES = {"mnist": "mnist-cnn", "fashion": "fashion-cnn", "stacked_mnist": "mnist-cnn"}
NEEDS = ("features", "classes", "pixels", "points", "model")  # what a metric is computed from
MIN_PER_CELL = 10  # samples per NDB bin or per class below which those counts are noise


# --- the metric table ------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageSet:
    """One side of the comparison, the samples or the reference: ``n`` images, their
    ``features`` (n, d) and ``classes`` (n,) from the extractor and their ``pixels``
    (n, C H W) in [0, 1], each None when no chosen metric needs it."""

    n: int
    features: Tensor | None = None
    classes: Tensor | None = None
    pixels: Tensor | None = None


@dataclass(frozen=True)
class Settings:
    """The metrics' parameters: ``k`` neighbours of PRDC, ``kid_subsets`` of ``kid_subset_size``
    points, ``ndb_bins``, ``seed`` of KID's subsets and NDB's k-means, and ``num_classes`` of
    the classes (0: none)."""

    k: int = 5
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    ndb_bins: int = 100
    seed: int = 0
    num_classes: int = 0


@dataclass(frozen=True)
class Metric:
    """One metric of ``genmodels evaluate``.

    ``needs`` (one of :data:`NEEDS`): what it is computed from. ``compute`` returns its report
    entry: image metrics take (samples, reference, settings), :class:`ImageSet`\\ s and
    :class:`Settings`; the metrics of a model (``genmodels.pipelines.run_evaluation``) take
    the model and their settings. ``rows(entry, report)`` gives its (name, value) rows of the
    summary table. ``unusable`` says why it cannot run at the sample size (it is left out),
    ``unreliable`` why its value is not to be trusted there (it runs); both take what
    ``compute`` takes and return None when all is well.
    """

    name: str
    needs: str
    compute: Callable[..., dict]
    rows: Callable[[dict, dict], list[tuple[str, str]]]
    unusable: Callable[..., str | None] | None = None
    unreliable: Callable[..., str | None] | None = None

    def __post_init__(self) -> None:
        if self.needs not in NEEDS:
            raise ValueError(f"metric {self.name!r} needs {self.needs!r}; choose from {NEEDS}")


def _smaller(s: ImageSet, r: ImageSet) -> int:
    return min(s.n, r.n)


def _two_of_each(name: str) -> Callable[[ImageSet, ImageSet, Settings], str | None]:
    def unusable(s: ImageSet, r: ImageSet, o: Settings) -> str | None:
        if _smaller(s, r) < 2:
            return (f"{name} left out: it needs at least 2 images of each set, got {s.n} samples "
                    f"and {r.n} reference images")
        return None
    return unusable


def _fid(s: ImageSet, r: ImageSet, o: Settings) -> dict:
    result = frechet_distance(r.features, s.features)
    return {"value": result.value, "n_reference": result.n_x, "n_samples": result.n_y}


def _fid_unreliable(s: ImageSet, r: ImageSet, o: Settings) -> str | None:
    n, d = _smaller(s, r), s.features.shape[1]
    if n <= d:
        return (f"fid: {n} images for {d}-d features: the covariances are singular (rank "
                f"n - 1 < d), so FID is biased upwards and comparable only at equal n; use more "
                f"than {d} images of each set (--n)")
    return None


def _kid_plan(s: ImageSet, r: ImageSet, o: Settings) -> tuple[int, int]:
    """(subsets, subset size): one subset when the size is the whole smaller set (every
    subset would be the same)."""
    size = min(o.kid_subset_size, s.n, r.n)
    return (1 if size == _smaller(s, r) else o.kid_subsets), size


def _kid(s: ImageSet, r: ImageSet, o: Settings) -> dict:
    subsets, size = _kid_plan(s, r, o)
    result = kid(r.features, s.features, subsets, size, seed=o.seed)
    return {"mean": result.mean, "std": result.std, "subsets": result.subsets,
            "subset_size": result.subset_size}


def _kid_unreliable(s: ImageSet, r: ImageSet, o: Settings) -> str | None:
    if _kid_plan(s, r, o)[0] == 1 < o.kid_subsets:
        return (f"kid: {_smaller(s, r)} images are no more than the subset size "
                f"{o.kid_subset_size}: one subset of all of them, so its std is 0 and says "
                f"nothing; use more than {o.kid_subset_size} images of each set (--n)")
    return None


def _prdc_unusable(s: ImageSet, r: ImageSet, o: Settings) -> str | None:
    if o.k >= _smaller(s, r):
        return (f"prdc left out: k = {o.k} nearest neighbours need more than {o.k} images of "
                f"each set, got {s.n} samples and {r.n} reference images")
    return None


def _ndb_bins(r: ImageSet, o: Settings) -> int:
    return min(o.ndb_bins, r.n)


def _ndb(s: ImageSet, r: ImageSet, o: Settings) -> dict:
    result = ndb(r.pixels, s.pixels, bins=_ndb_bins(r, o), seed=o.seed)
    return {"different_bins": result.different_bins, "bins": result.bins, "alpha": result.alpha,
            "js_divergence": result.js_divergence}


def _ndb_unreliable(s: ImageSet, r: ImageSet, o: Settings) -> str | None:
    n, bins = _smaller(s, r), _ndb_bins(r, o)
    if n < MIN_PER_CELL * bins:
        return (f"ndb: {n} images over {bins} bins are {n / bins:.1f} a bin, fewer than "
                f"{MIN_PER_CELL}: its per-bin z-tests are unreliable; use at least "
                f"{MIN_PER_CELL * bins} images of each set (--n)")
    return None


def _modes(s: ImageSet, r: ImageSet, o: Settings) -> dict:
    histogram = label_histogram(s.classes, o.num_classes)
    reference = label_histogram(r.classes, o.num_classes)
    return {"num_modes": o.num_classes, "modes_covered": histogram.modes_covered,
            "kl_to_uniform": histogram.kl_to_uniform, "counts": list(histogram.counts),
            "reference_modes_covered": reference.modes_covered,
            "reference_kl_to_uniform": reference.kl_to_uniform,
            "reference_counts": list(reference.counts)}


def _modes_unreliable(s: ImageSet, r: ImageSet, o: Settings) -> str | None:
    n, classes = _smaller(s, r), o.num_classes
    if n < MIN_PER_CELL * classes:
        return (f"modes: {n} images for {classes} classes are {n / classes:.1f} a class, fewer "
                f"than {MIN_PER_CELL}: classes go uncovered by chance; use at least "
                f"{MIN_PER_CELL * classes} images of each set (--n)")
    return None


def _features_label(report: dict) -> str:
    return f"{report.get('features', 'the')} features"


METRICS: dict[str, Metric] = {metric.name: metric for metric in (
    Metric("fid", "features", _fid,
           lambda e, report: [(f"FID ({_features_label(report)}, squared)", f"{e['value']:.4g}")],
           _two_of_each("fid"), _fid_unreliable),
    Metric("kid", "features", _kid,
           lambda e, report: [(f"KID ({_features_label(report)}, unbiased, {e['subsets']} "
                               f"subsets of {e['subset_size']})",
                               f"{e['mean']:.4g} ± {e['std']:.2g}")],
           _two_of_each("kid"), _kid_unreliable),
    Metric("prdc", "features",
           lambda s, r, o: {**prdc(r.features, s.features, o.k), "k": o.k},
           lambda e, report: [(f"{name} (k = {e['k']})", f"{e[name]:.4f}")
                              for name in ("precision", "recall", "density", "coverage")],
           _prdc_unusable),
    Metric("vendi", "features",
           lambda s, r, o: {"samples": vendi_score(s.features),
                            "reference": vendi_score(r.features), "kernel": "cosine", "q": 1.0},
           lambda e, report: [("Vendi score, samples / reference",
                               f"{e['samples']:.3f} / {e['reference']:.3f}")]),
    Metric("ndb", "pixels", _ndb,
           lambda e, report: [(f"NDB (pixels, alpha = {e['alpha']})",
                               f"{e['different_bins']} of {e['bins']} bins, "
                               f"JS {e['js_divergence']:.4g}")],
           _two_of_each("ndb"), _ndb_unreliable),
    Metric("modes", "classes", _modes,
           lambda e, report: [
               ("modes covered, samples / reference",
                f"{e['modes_covered']} / {e['reference_modes_covered']} of {e['num_modes']}"),
               ("KL(modes ‖ uniform), samples / reference",
                f"{e['kl_to_uniform']:.4f} / {e['reference_kl_to_uniform']:.4f}")],
           unreliable=_modes_unreliable),
)}


def choose_metrics(names: Sequence[str], table: dict[str, Metric]) -> list[Metric]:
    """The entries of ``table`` named in ``names``, in that order; InputError for unknown
    names."""
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise InputError(f"unknown metrics {unknown}; choose from {', '.join(table)}")
    return [table[name] for name in names]


# --- images: files, references, checks ------------------------------------------------------
def is_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a model (a run directory with final.pt, a checkpoint .pt, or an
    export folder of ``genmodels export`` or its model.safetensors) rather than samples. A
    ``.pt`` file that torch cannot read raises InputError."""
    path = Path(path)
    if export_folder(path) is not None:
        return True
    if path.is_dir():
        return (path / "final.pt").is_file()
    if path.suffix != ".pt" or not path.is_file():
        return False
    content = read_torch_file(path)
    return isinstance(content, dict) and "kind" in content


def read_torch_file(path: str | Path):
    """``torch.load(path, weights_only=True)`` on the CPU; a file it cannot read (truncated,
    not a torch file, pickled code) raises :class:`~genmodels.errors.InputError`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # whatever torch.load raises on a bad file, as load_checkpoint
        raise InputError(f"{path} is corrupt or not a torch file ({type(err).__name__}: "
                         f"{first_sentence(err)})") from None


def read_image_files(path: str | Path, held_out: bool = False) -> Tensor:
    """uint8 (N, C, H, W) images of a folder of PNG/JPEG files or a .npy/.npz/.pt array,
    read by the loaders of ``data.name = "folder" | "array"``
    (``genmodels.data.load_files``: any size, C in {1, 3}; float arrays in [0, 1] are stored
    as round(255 x)). With ``held_out``, the stored test images when there are some (a
    ``test/`` folder, a ``test_images`` key), else all."""
    path = Path(path)
    if not path.is_dir() and path.suffix.lower() not in ARRAY_SUFFIXES:
        raise InputError(f"cannot read images from {path}: give a folder of PNG/JPEG files or a "
                         f"{'/'.join(ARRAY_SUFFIXES)} file")
    stored = load_files("folder" if path.is_dir() else "array", path)
    return stored.test_images if held_out and stored.test_images is not None else stored.images


def as_8bit(images: Tensor) -> Tensor:
    """Float images (N, C, H, W) in [0, 1] as the file loaders read them: round(255 x) / 255,
    float32, so that a model's samples and a file of them score the same."""
    return to_unit(images_from_array(images))


def load_samples(path: str | Path) -> Tensor:
    """Generated images from files (:func:`read_image_files`) as float32 (N, C, H, W) in
    [0, 1]. For a model checkpoint use ``samples_from_checkpoint``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if is_checkpoint(path):
        raise InputError(f"{path} is a model checkpoint; draw images from it with "
                         "samples_from_checkpoint(path, n)")
    if path.is_dir():
        if (path / "checkpoint.pt").is_file():
            raise InputError(f"{path} looks like a run directory without final.pt: evaluate "
                             f"{path / 'checkpoint.pt'}")
        runs = sorted(sub.name for sub in path.iterdir() if (sub / "final.pt").is_file()
                      or (sub / "checkpoint.pt").is_file() or export_folder(sub) is not None)
        if runs:  # not class folders of images: their figures would be read as samples
            raise InputError(f"{path} holds run directories or exports ({', '.join(runs[:3])}), "
                             f"not images; evaluate one of them: genmodels evaluate "
                             f"{path / runs[0]}")
    return to_unit(read_image_files(path))


@dataclass(frozen=True)
class Reference:
    """Real images float32 (N, C, H, W) in [0, 1], their ``name`` in the report and their
    ``dataset`` (a ``data.name`` of a built-in dataset, None for images of one's own)."""

    images: Tensor
    name: str
    dataset: str | None


def check_reference(spec: str) -> None:
    """Raise InputError unless ``spec`` is a name of :data:`REFERENCES` or an existing folder
    or file."""
    if spec not in REFERENCES and not Path(spec).exists():
        raise InputError(f"unknown reference {spec!r}: give one of {', '.join(REFERENCES)}, a "
                         "folder of PNG/JPEG images or a .npy/.npz/.pt file of images")


def reference_set(spec: str = "mnist-test", root: str | Path | None = None,
                  n: int | None = None, seed: int = 0) -> Reference:
    """The reference images of ``spec``: a name of :data:`REFERENCES` or a folder or array
    file (:func:`read_image_files` with ``held_out``: its test images when it stores some).

    ``mnist-*``, ``fashion-*``: the split (``genmodels.data.load_images``), or ``n`` images
    of it drawn without replacement with ``seed``; ``stacked-mnist-*``: ``n`` (default 26,000)
    Stacked MNIST images built from the split (``genmodels.data.stacked_mnist``).
    """
    check_reference(spec)
    if spec not in REFERENCES:
        images = to_unit(read_image_files(spec, held_out=True))
        return Reference(_subsample(images, n, torch.Generator().manual_seed(seed)), spec, None)
    dataset, split = REFERENCES[spec]
    data = load_images("mnist" if dataset == "stacked_mnist" else dataset, split, root)
    if dataset == "stacked_mnist":
        images, _ = stacked_mnist(data.images, data.labels, n or STACKED_MNIST_SAMPLES, seed)
    else:
        images = _subsample(data.images, n, torch.Generator().manual_seed(seed))
    return Reference(to_unit(images), spec, dataset)


def reference_images(name: str = "mnist-test", root: str | Path | None = None,
                     n: int | None = None, seed: int = 0) -> Tensor:
    """The images of :func:`reference_set`."""
    return reference_set(name, root, n, seed).images


def default_features(dataset: str | None) -> tuple[str, str | None]:
    """(features, note) for reference images of ``dataset``: the shipped CNN of MNIST, Fashion
    and Stacked MNIST (:data:`DEFAULT_FEATURES`), else ``pixels`` with a note saying so."""
    if dataset in DEFAULT_FEATURES:
        return DEFAULT_FEATURES[dataset], None
    return "pixels", ("features: pixels, as genmodels ships no feature network for this data; "
                      "pass --features classifier:RUN (a classifier trained on it) or "
                      "torchscript:FILE for features that know it")


def _subsample(images: Tensor, n: int | None, generator: torch.Generator) -> Tensor:
    if n is None or len(images) <= n:
        return images
    return images[torch.randperm(len(images), generator=generator)[:n].sort().values]


def _grey_like(images: Tensor, channels: int) -> Tensor:
    """``images`` with one channel when they have three that agree everywhere (grey images
    saved as RGB) and ``channels`` is 1; else as they are."""
    if channels == 1 and images.shape[1] == 3 and bool((images[:, 1:] == images[:, :1]).all()):
        return images[:, :1]
    return images


def _shape(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape))


def check_inputs(sample_shape: Sequence[int], reference: Tensor, metrics: Sequence[Metric],
                 features: str | torch.nn.Module | FeatureExtractor,
                 dataset: str | None = None) -> FeatureExtractor | None:
    """Raise InputError unless samples of ``sample_shape`` (C, H, W) can be scored against
    ``reference`` by ``metrics`` with ``features``: the same image shape (a reference of grey
    images saved as RGB counts as grey), and features that fit them and ``dataset``
    (``genmodels.metrics.check_fit``). Returns the extractor, None when no metric needs it."""
    reference_shape = tuple(_grey_like(reference, sample_shape[0]).shape[1:])
    if tuple(sample_shape) != reference_shape:
        raise InputError(f"the samples are {_shape(sample_shape)} images (C×H×W) but the "
                         f"reference images are {_shape(reference_shape)}; give a reference of "
                         "the samples' size and channels (--reference FOLDER or an "
                         ".npy/.npz/.pt file)")
    if not {metric.needs for metric in metrics} & {"features", "classes"}:
        return None
    extractor = feature_extractor(features)
    check_fit(extractor, sample_shape, dataset)
    return extractor


def _checked_images(images: Tensor, name: str) -> Tensor:
    try:
        check_image_batch(images)
    except ValueError as err:
        raise InputError(f"{name}: {err}") from None
    return images


def _headless_note(left_out: list[Metric], extractor: FeatureExtractor,
                   shape: Sequence[int], dataset: str | None) -> str:
    with_head = [name for name in fitting_features(shape, dataset)
                 if ":" not in name and feature_extractor(name).has_head]
    return (f"{', '.join(m.name for m in left_out)} left out: the features {extractor.name} have "
            f"no classifier head (class logits); use features with one: "
            f"{', '.join([*with_head, 'classifier:RUN'])}")


# --- evaluation -----------------------------------------------------------------------------
def evaluate_samples(samples: Tensor, reference: Tensor, metrics: Sequence[str] = tuple(METRICS),
                     n: int = 10_000, seed: int = 0, k: int = 5, kid_subsets: int = 100,
                     kid_subset_size: int = 1000, ndb_bins: int = 100,
                     batch_size: int = INFERENCE_BATCH,
                     features: str | torch.nn.Module | FeatureExtractor = "mnist-cnn",
                     dataset: str | None = None) -> dict:
    """The metrics of generated ``samples`` against ``reference`` images, a JSON-able dict.

    Both are images (N, C, H, W) of one shape, uint8 or float in [0, 1] (a set of grey images
    saved as RGB counts as grey); at most ``n`` of each are used, drawn without replacement
    with ``seed``. ``metrics``: names of :data:`METRICS`:

    - ``fid``: ``frechet_distance`` of the features (squared; unbiased covariances);
    - ``kid``: ``kid`` (mean and std over ``kid_subsets`` subsets of
      min(``kid_subset_size``, N) points; one subset when that is the whole smaller set);
    - ``prdc``: precision, recall, density, coverage (``prdc`` with ``k`` neighbours);
    - ``vendi``: ``vendi_score`` (cosine kernel, q = 1) of the samples and of the reference;
    - ``ndb``: ``ndb`` on pixels, k-means with min(``ndb_bins``, N_reference) bins;
    - ``modes``: ``label_histogram`` of the classes of the extractor's head (per-channel
      extractors: one class of K^C per image, 1000 digit triples for Stacked MNIST), for the
      samples and the reference; left out, with a note, for features without a head.

    ``features``: a name, ``nn.Module`` or ``FeatureExtractor``
    (``genmodels.metrics.feature_extractor``); ``dataset``: the reference's ``data.name`` when
    it is a built-in dataset, for the check of the extractor's ``trained_on``. Each metric's
    entry holds its numbers; ``seconds`` the time each took; ``warnings`` the metrics left out
    or unreliable at this sample size, ``notes`` the ones left out for want of classes.
    """
    chosen = choose_metrics(metrics, METRICS)
    generator = torch.Generator().manual_seed(seed)  # draw first: convert only what is used
    samples = _checked_images(_subsample(torch.as_tensor(samples), n, generator), "samples")
    reference = _checked_images(_subsample(torch.as_tensor(reference), n, generator),
                                "reference images")
    extractor = check_inputs(samples.shape[1:], reference, chosen, features, dataset)
    samples = _grey_like(samples, reference.shape[1])
    reference = _grey_like(reference, samples.shape[1])
    report: dict = {"n_samples": len(samples), "n_reference": len(reference),
                    "channels": samples.shape[1], "image_size": list(samples.shape[2:]),
                    "seed": seed}
    notes: list[str] = []
    if extractor is not None:
        report["features"] = extractor.name
        left_out = [metric for metric in chosen if metric.needs == "classes"]
        if left_out and not extractor.has_head:
            notes.append(_headless_note(left_out, extractor, samples.shape[1:], dataset))
            chosen = [metric for metric in chosen if metric not in left_out]
    needs = {metric.needs for metric in chosen}
    seconds: dict[str, float] = {}
    with progress(total=len(chosen) + 1, desc="metrics", unit="stage") as bar:
        bar.set_postfix_str("features", refresh=False)
        start = time.perf_counter()
        sets, num_classes = [], 0
        for images in (samples, reference):
            embedding = embed_images(images, extractor, batch_size, dataset) \
                if needs & {"features", "classes"} else None
            pixels = pixel_features(images) if "pixels" in needs else None
            if embedding is None:
                sets.append(ImageSet(len(images), pixels=pixels))
                continue
            sets.append(ImageSet(len(images), embedding.features, embedding.classes, pixels))
            report["feature_dim"], num_classes = (embedding.features.shape[1],
                                                  embedding.num_image_classes)
        settings = Settings(k, kid_subsets, kid_subset_size, ndb_bins, seed, num_classes)
        seconds["features"] = time.perf_counter() - start
        bar.update()
        warnings: list[str] = []
        for metric in chosen:
            bar.set_postfix_str(metric.name, refresh=False)
            start = time.perf_counter()
            problem = metric.unusable and metric.unusable(*sets, settings)
            caveat = None if problem else metric.unreliable and metric.unreliable(*sets, settings)
            warnings += [text for text in (problem, caveat) if text]
            if not problem:
                report[metric.name] = metric.compute(*sets, settings)
                seconds[metric.name] = time.perf_counter() - start
            bar.update()
    report["seconds"] = {name: round(value, 3) for name, value in seconds.items()}
    report["warnings"], report["notes"] = warnings, notes
    return report
