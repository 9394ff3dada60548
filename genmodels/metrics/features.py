"""Feature extractors of the sample metrics: images (N, C, H, W) -> features (N, d), and class
predictions for extractors with a classifier head.

A :class:`FeatureExtractor` declares its contract (the image it takes, the value range it
expects, its feature dimension, its classifier head, the datasets it was trained on), checked
when it is built; :func:`embed_images` checks images against it before the first batch. A small
registry names them, in the manner of torch-fidelity:

- ``mnist-cnn``: the shipped MNIST CNN's 128-d penultimate layer ("FID-MNIST"), each channel on
  its own (3-channel Stacked MNIST: 384-d; classes: digit triples 100 a + 10 b + c);
- ``fashion-cnn``: the shipped Fashion-MNIST CNN, the same way;
- ``pixels``: the pixels in [0, 1], any size, no classes;
- ``classifier:PATH``: the penultimate layer and head of a classifier trained with
  ``genmodels train`` (a run directory or its final.pt) or exported by ``genmodels export``
  (the export folder);
- ``torchscript:PATH``: a TorchScript module mapping images to features;
- any ``nn.Module`` given from Python (images to features) or a ``FeatureExtractor`` of one's own.

Classifier checkpoints are read with ``torch.load(weights_only=True)``, export folders (the
shipped CNNs included) with ``genmodels.portable.read_export`` (safetensors, sha256 checked
first), into a plain :class:`~genmodels.nets.ConvNet` or :class:`~genmodels.nets.MLPNet`: this
package imports no model, training or I/O code. uint8 images are divided by 255; float images must
already lie in [0, 1]. See docs/metrics.md, "Features".
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn

from genmodels.data import to_unit
from genmodels.errors import InputError, UserError, first_sentence
from genmodels.metrics._checks import check_positive_int
from genmodels.nets import ConvNet, MLPNet
from genmodels.nets.classifier import INFERENCE_BATCH
from genmodels.portable import (
    EXPORT_CHECKSUM,
    EXPORT_WEIGHTS,
    ExportError,
    export_folder,
    read_checksum,
    read_export,
)
from genmodels.utils import check_images, checkpoint_input_shape, sha256

T = TypeVar("T")
WEIGHTS = Path(__file__).resolve().parents[1] / "weights"  # the shipped CNNs (export folders)
#                                                           and their cards (NAME.json)
SHIPPED_CNNS = {"mnist-cnn": "mnist", "fashion-cnn": "fashion"}  # name -> its dataset
LEGACY_NAMES = {"mnist": "mnist-cnn"}  # the name before the registry (fid's default)


class WeightsError(UserError, RuntimeError):
    """Shipped weights that are missing or do not match the sha256 of their card."""


@dataclass(frozen=True, eq=False)
class FeatureExtractor:
    """A feature map of the sample metrics and what it takes.

    ``embed`` maps a batch (B, C, H, W) with values in ``value_range`` to features (B, d) (or
    (B, d, 1, 1): flattened). ``input_shape`` is the one image (C, H, W) it takes, None for
    any; with ``per_channel`` it takes (1, H, W) and an image of C channels goes through it
    one channel at a time, features side by side (d = C ``feature_dim``). ``feature_dim`` is d
    for one input, None where it depends on the input (pixels) or is unknown until the first
    call. ``head`` maps features to class logits over ``num_classes`` classes (None: no
    classifier head, ``num_classes`` 0). ``trained_on`` names the datasets (as
    ``data.name``) whose images it was made for; () for unknown. ``device``: where ``embed``
    runs, None for the images' device. The contract is checked here, at construction.
    """

    name: str
    embed: Callable[[Tensor], Tensor]
    input_shape: tuple[int, int, int] | None = None
    feature_dim: int | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    head: Callable[[Tensor], Tensor] | None = None
    num_classes: int = 0
    per_channel: bool = False
    trained_on: tuple[str, ...] = ()
    device: torch.device | None = None

    def __post_init__(self) -> None:
        problem = _contract_problem(self)
        if problem:
            raise InputError(f"feature extractor {self.name!r}: {problem}")

    @property
    def has_head(self) -> bool:
        """Whether it predicts classes (a declared ``head``)."""
        return self.head is not None


def _takes(e: FeatureExtractor) -> str:
    """The images ``e`` takes, in words."""
    if e.input_shape is None:
        return "images of any size"
    c, h, w = e.input_shape
    return f"{h}×{w} images, each channel on its own" if e.per_channel else f"{c}×{h}×{w} images"


def _contract_problem(e: FeatureExtractor) -> str | None:
    """What breaks the contract of :class:`FeatureExtractor`, None if nothing."""
    if not isinstance(e.name, str) or not e.name:
        return "name must be a non-empty string"
    if not callable(e.embed):
        return f"embed must map images to features, got a {type(e.embed).__name__}"
    if e.input_shape is not None and (
            len(e.input_shape) != 3 or not all(isinstance(s, int) and s > 0
                                               for s in e.input_shape)):
        return f"input_shape must be (C, H, W) of positive ints or None, got {e.input_shape!r}"
    if e.per_channel and (e.input_shape is None or e.input_shape[0] != 1):
        return f"per_channel needs input_shape (1, H, W), got {e.input_shape!r}"
    if e.feature_dim is not None and (not isinstance(e.feature_dim, int) or e.feature_dim < 1):
        return f"feature_dim must be a positive int or None, got {e.feature_dim!r}"
    if len(e.value_range) != 2 or not float(e.value_range[0]) < float(e.value_range[1]):
        return f"value_range must be (low, high) with low < high, got {e.value_range!r}"
    if (e.head is None) != (e.num_classes == 0):
        return (f"a head needs num_classes >= 2 and num_classes a head; got head "
                f"{'None' if e.head is None else 'given'}, num_classes {e.num_classes}")
    if e.head is not None and (not callable(e.head) or e.num_classes < 2):
        return f"head must be callable with num_classes >= 2, got num_classes {e.num_classes}"
    if not isinstance(e.trained_on, tuple) or not all(isinstance(d, str) for d in e.trained_on):
        return f"trained_on must be a tuple of dataset names, got {e.trained_on!r}"
    return None


# --- registry -------------------------------------------------------------------------------
EXTRACTORS: dict[str, Callable[[torch.device], FeatureExtractor]] = {}  # name -> factory
SOURCES: dict[str, tuple[Callable[[str, torch.device], FeatureExtractor], str]] = {}
#         prefix -> (loader of "prefix:ARGUMENT", the argument's metavar)


def _check_new_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name or ":" in name or name != name.strip():
        raise ValueError(f"a {what} name must be a non-empty string without ':' or spaces "
                         f"around it, got {name!r}")
    if name in EXTRACTORS or name in SOURCES:
        raise ValueError(f"features {name!r} are already registered; pick another name")


def register_features(name: str, factory: Callable[[torch.device], FeatureExtractor]) -> None:
    """Name a feature extractor: ``factory(device)`` builds it, at its first use and once per
    device. Raises ValueError for a name taken or holding ':'."""
    _check_new_name(name, "feature")
    if not callable(factory):
        raise ValueError(f"the factory of {name!r} must be callable, got "
                         f"{type(factory).__name__}")
    EXTRACTORS[name] = factory


def register_feature_source(prefix: str, loader: Callable[[str, torch.device], FeatureExtractor],
                            argument: str = "PATH") -> None:
    """Name a family of extractors: ``"prefix:ARGUMENT"`` is ``loader(ARGUMENT, device)``
    (``argument`` names ARGUMENT in help and errors). Raises ValueError for a name taken."""
    _check_new_name(prefix, "feature source")
    if not callable(loader):
        raise ValueError(f"the loader of {prefix!r} must be callable, got "
                         f"{type(loader).__name__}")
    SOURCES[prefix] = (loader, argument)


def feature_names() -> list[str]:
    """The names :func:`feature_extractor` takes: the registered extractors, then the sources
    as ``prefix:ARGUMENT``."""
    return [*EXTRACTORS, *(f"{prefix}:{argument}" for prefix, (_, argument) in SOURCES.items())]


@functools.cache
def _named(name: str, device: torch.device) -> FeatureExtractor:
    return _checked(EXTRACTORS[name](device), name)


def _checked(extractor: object, name: str) -> FeatureExtractor:
    if not isinstance(extractor, FeatureExtractor):
        raise TypeError(f"the features {name!r} were built as a {type(extractor).__name__}, "
                        "not a FeatureExtractor")
    return extractor


def feature_extractor(features: str | nn.Module | FeatureExtractor,
                      device: str | torch.device = "cpu") -> FeatureExtractor:
    """The :class:`FeatureExtractor` of a registered name (:func:`feature_names`; the
    shipped CNNs are built once per device), of ``"prefix:ARGUMENT"``, of an ``nn.Module``
    (:func:`module_extractor`), or ``features`` itself. Raises InputError for an unknown
    name."""
    if isinstance(features, FeatureExtractor):
        return features
    if isinstance(features, nn.Module):
        return module_extractor(features)
    device = torch.device(device)
    if isinstance(features, str):
        name = LEGACY_NAMES.get(features, features)
        if name in EXTRACTORS:
            return _named(name, device)
        prefix, colon, argument = name.partition(":")
        if colon and prefix in SOURCES:
            if not argument:
                raise InputError(f"features {name!r} need a {SOURCES[prefix][1]} after the "
                                 f"colon: {prefix}:{SOURCES[prefix][1]}")
            return _checked(SOURCES[prefix][0](argument, device), name)
    raise InputError(f"unknown features {features!r}; choose one of "
                     f"{', '.join(feature_names())}, or pass an nn.Module")


def module_extractor(module: nn.Module, name: str | None = None) -> FeatureExtractor:
    """Any ``nn.Module`` mapping images (B, C, H, W) in [0, 1] to features, run in its
    current mode (call ``.eval()`` first) on its device (the images' device if it has no
    parameters). Its input is unknown: :func:`embed_images` checks it at the first call."""
    return FeatureExtractor(name or type(module).__name__, module,
                            device=module_device(module, None))


# --- embedding ------------------------------------------------------------------------------
def check_image_batch(images: Tensor) -> None:
    """Raise ValueError unless ``images`` is a non-empty (N, C, H, W) tensor, uint8 or float in
    [0, 1]."""
    if not torch.is_tensor(images):
        raise ValueError(f"images must be a tensor (N, C, H, W), got {type(images).__name__}")
    if images.dim() != 4 or len(images) == 0:
        raise ValueError(f"images must have shape (N, C, H, W) with N > 0, got "
                         f"{tuple(images.shape)}")
    if images.dtype != torch.uint8:
        check_images(images)


def module_device(module: nn.Module, default: torch.device | None) -> torch.device | None:
    """The device of ``module``'s first parameter, ``default`` if it has none."""
    parameter = next(module.parameters(), None)
    return default if parameter is None else parameter.device


def apply_in_batches(fn: Callable[[Tensor], T], images: Tensor, batch_size: int,
                     device: torch.device) -> list[T]:
    """[fn(batch)] over batches of ``batch_size`` images, each made float32 in [0, 1]
    (``to_unit``: uint8 / 255) on ``device`` only when its turn comes; under no_grad."""
    check_positive_int(batch_size, "batch_size")
    with torch.no_grad():
        return [fn(to_unit(images[i:i + batch_size].to(device)))
                for i in range(0, len(images), batch_size)]


def fit_problem(extractor: FeatureExtractor, image_shape: Sequence[int],
                dataset: str | None = None) -> str | None:
    """Why ``extractor`` does not fit images of ``image_shape`` (C, H, W) from ``dataset`` (a
    ``data.name``; None: unknown, not checked), or None when it fits: its declared input, and
    its ``trained_on`` datasets when it declares some."""
    c, h, w = image_shape
    if extractor.input_shape is not None:
        ec, eh, ew = extractor.input_shape
        if (h, w) != (eh, ew) or not (extractor.per_channel or c == ec):
            return f"{extractor.name} takes {_takes(extractor)}, not {c}×{h}×{w}"
    if dataset is not None and extractor.trained_on and dataset not in extractor.trained_on:
        return (f"{extractor.name} was trained on {', '.join(extractor.trained_on)} images, "
                f"not {dataset}")
    return None


def fitting_features(image_shape: Sequence[int], dataset: str | None = None,
                     device: str | torch.device = "cpu") -> list[str]:
    """The registered names whose extractors fit images of ``image_shape`` from ``dataset``
    (:func:`fit_problem`), then every source (``classifier:RUN``, ...), which may."""
    device = torch.device(device)
    fitting = [name for name in EXTRACTORS
               if fit_problem(_named(name, device), image_shape, dataset) is None]
    return fitting + [f"{prefix}:{argument}" for prefix, (_, argument) in SOURCES.items()]


def check_fit(extractor: FeatureExtractor, image_shape: Sequence[int],
              dataset: str | None = None) -> None:
    """Raise InputError, naming the features that fit, unless ``extractor`` fits images of
    ``image_shape`` (C, H, W) from ``dataset`` (:func:`fit_problem`)."""
    problem = fit_problem(extractor, image_shape, dataset)
    if problem:
        c, h, w = image_shape
        data = f"{dataset} images" if dataset else f"{c}×{h}×{w} images"
        raise InputError(f"the features do not fit the data: {problem}; features that fit "
                         f"{data}: {', '.join(fitting_features(image_shape, dataset))}")


@dataclass(frozen=True)
class Embedding:
    """Features (N, d) of N images and, with a classifier head, ``labels`` (N, L): the class
    predicted for each channel (L = C for a per-channel extractor, else 1), ``num_classes``
    per label (0 without a head)."""

    features: Tensor
    labels: Tensor | None
    num_classes: int

    @property
    def classes(self) -> Tensor | None:
        """One class per image, the labels read as digits in base ``num_classes``:
        :func:`class_index`."""
        return None if self.labels is None else class_index(self.labels, self.num_classes)

    @property
    def num_image_classes(self) -> int:
        """The number of classes of :attr:`classes`: num_classes ** L (1000 for Stacked
        MNIST), 0 without a head."""
        return 0 if self.labels is None else self.num_classes ** self.labels.shape[1]


def class_index(labels: Tensor, num_classes: int) -> Tensor:
    """Σ_c labels[:, c] K^(L-1-c) of labels (n, L) in [0, K): one class of K^L per row, e.g.
    the Stacked MNIST mode 100 a + 10 b + c of the digits (a, b, c) of channels 0, 1, 2."""
    index = torch.zeros(len(labels), dtype=torch.int64, device=labels.device)
    for column in labels.T:
        index = index * num_classes + column
    return index


def embed_images(images: Tensor, features: str | nn.Module | FeatureExtractor = "mnist-cnn",
                 batch_size: int = INFERENCE_BATCH, dataset: str | None = None) -> Embedding:
    """Features (and classes, with a head) of images (N, C, H, W), uint8 or float in [0, 1].

    ``features``: a name, ``nn.Module`` or :class:`FeatureExtractor`
    (:func:`feature_extractor`). Checked first against the extractor's declared input and, for
    a known ``dataset``, its ``trained_on`` (:func:`check_fit`); an extractor of unknown input
    is checked at its first call (a clear InputError when it fails or does not return (B, d)).
    Batches of ``batch_size`` images (channels, per channel) are mapped to the extractor's
    ``value_range`` (low + (high − low) x) on its device, under ``no_grad``; the features come
    back float32 on the images' device.
    """
    check_image_batch(images)
    extractor = feature_extractor(features, images.device)
    check_fit(extractor, images.shape[1:], dataset)
    inputs = images.flatten(0, 1).unsqueeze(1) if extractor.per_channel else images
    low, high = extractor.value_range
    first = True

    def embed(batch: Tensor) -> tuple[Tensor, Tensor | None]:
        nonlocal first
        batch = batch if (low, high) == (0.0, 1.0) else low + (high - low) * batch
        out = (_first_call(extractor, batch) if first else extractor.embed(batch)).flatten(1)
        first = False
        labels = None if extractor.head is None else extractor.head(out).argmax(1)
        return out.float(), labels

    pieces = apply_in_batches(embed, inputs, batch_size, extractor.device or images.device)
    n = len(images)
    features = torch.cat([f for f, _ in pieces]).to(images.device).reshape(n, -1)
    labels = None if extractor.head is None else \
        torch.cat([label for _, label in pieces]).to(images.device).reshape(n, -1)
    return Embedding(features, labels, extractor.num_classes)


def _first_call(extractor: FeatureExtractor, batch: Tensor) -> Tensor:
    """``extractor.embed(batch)``, checked: a failure of an extractor of unknown input, or an
    output other than (B, d) (d = ``feature_dim`` if declared), is one InputError."""
    try:
        out = extractor.embed(batch)
    except RuntimeError as err:  # shape errors of torch and TorchScript (torch.jit.Error)
        if extractor.input_shape is not None:
            raise
        raise InputError(f"features {extractor.name} failed on images of shape "
                         f"{tuple(batch.shape[1:])} ({first_sentence(err)}); they must map "
                         "images (N, C, H, W) to features (N, d): give images of the size they "
                         "take, or other features") from None
    expected = f"({len(batch)}, {extractor.feature_dim or 'd'})"
    if not torch.is_tensor(out) or out.dim() < 2 or len(out) != len(batch) \
            or not out.is_floating_point() or out[0].numel() == 0 \
            or (extractor.feature_dim and out[0].numel() != extractor.feature_dim):
        got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise InputError(f"features {extractor.name} returned {got} for {len(batch)} images; "
                         f"they must return float features {expected}")
    return out


# --- the named extractors -------------------------------------------------------------------
def verified_weights(folder: Path) -> Path:
    """``folder`` (a shipped export folder, ``genmodels/weights/NAME``) after checking the
    sha256 of its ``model.safetensors``, and the one its ``model.sha256`` gives, against the
    card beside it (``NAME.json``); raises :class:`WeightsError` when either does not match."""
    card_file = folder.with_name(f"{folder.name}.json")
    card = json.loads(card_file.read_text())
    fix = f"reinstall genmodels or rebuild it with: {card['command']}"
    file = folder / EXPORT_WEIGHTS
    if not file.is_file():
        raise WeightsError(f"{file} is missing; {fix}")
    if sha256(file) != card["sha256"]:
        raise WeightsError(f"{file} does not match the sha256 in {card_file.name}; {fix}")
    try:
        listed = read_checksum(folder, fix)
    except ExportError as err:
        raise WeightsError(str(err)) from None
    if listed != card["sha256"]:
        raise WeightsError(f"{folder / EXPORT_CHECKSUM} gives another sha256 than "
                           f"{card_file.name}; {fix}")
    return folder


def read_checkpoint(path: str | Path) -> dict:
    """The dict of a checkpoint saved by ``genmodels train`` (a run directory: its final.pt),
    read with ``torch.load(weights_only=True)`` on the CPU, or of an export folder of
    ``genmodels export`` (``genmodels.portable.read_export``: its sha256 checked, no pickle;
    its one set of weights as ``"model"``); InputError when it cannot be."""
    path = Path(path)
    folder = export_folder(path)
    if folder is not None:
        try:
            return read_export(folder).state()
        except ExportError as err:
            raise InputError(str(err)) from None
    file = path / "final.pt" if path.is_dir() else path
    if not file.is_file():
        raise InputError(f"no checkpoint at {file}; give a run directory or a final.pt of "
                         "genmodels train, or an export folder of genmodels export")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # whatever torch.load raises on a bad file
        raise InputError(f"{file} is corrupt or not a torch file ({type(err).__name__}: "
                         f"{first_sentence(err)})") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) \
            or not isinstance(state.get("config"), dict):
        raise InputError(f"{file} is not a checkpoint of genmodels train (no config or model)")
    return state


def classifier_extractor(path: str | Path, device: str | torch.device = "cpu",
                         name: str | None = None, per_channel: bool = False,
                         trained_on: tuple[str, ...] | None = None) -> FeatureExtractor:
    """The penultimate layer (``features``, after its activation) and the logits (``head``) of
    a classifier saved by ``genmodels train`` (``[model] kind = "classifier"``) or exported by
    ``genmodels export`` (:func:`read_checkpoint`), read as a plain ``ConvNet`` or ``MLPNet``
    on ``device``, frozen, in eval mode (its EMA weights if it kept them); a ``ConvNet`` runs
    as its :meth:`~genmodels.nets.ConvNet.inference_copy` (batch norm folded, channels-last:
    twice as fast, equal to float32 rounding). Its input is the
    checkpoint's image shape (``checkpoint_input_shape``); ``trained_on`` defaults to its
    ``data.name``."""
    state = read_checkpoint(path)
    if state.get("kind") != "classifier":
        raise InputError(f"{path} holds a {state.get('kind')}; classifier features need a run "
                         "of [model] kind = \"classifier\" (genmodels train)")
    config = state["config"]["model"]
    shape = checkpoint_input_shape(state)
    if config["net"] == "cnn":
        net = ConvNet(shape, config["channels"], config["feature_dim"], config["num_classes"],
                      config["dropout"], config["batch_norm"])
    elif config["net"] == "mlp":
        net = MLPNet(shape, config["hidden"], config["num_classes"], config["dropout"],
                     config["batch_norm"])
    else:
        raise InputError(f"{path} is a classifier with model.net = {config['net']!r}; "
                         "classifier features read cnn and mlp nets")
    weights = state["ema"] if state.get("ema") is not None else state["model"]
    net.load_state_dict({key.removeprefix("net."): value for key, value in weights.items()})
    net.to(device).eval().requires_grad_(False)
    if isinstance(net, ConvNet):  # batch norm folded, channels-last: twice as fast
        net = net.inference_copy()
        head, dim = net.head, config["feature_dim"]
    else:
        head, dim = net.net[-1], config["hidden"][-1]
    return FeatureExtractor(name or f"classifier:{path}", net.features, shape, dim,
                            head=head, num_classes=config["num_classes"],
                            per_channel=per_channel,
                            trained_on=trained_on or (state["config"]["data"]["name"],),
                            device=torch.device(device))


def shipped_extractor(name: str, device: torch.device) -> FeatureExtractor:
    """``mnist-cnn`` or ``fashion-cnn``: the shipped CNN of that dataset (the export folder
    ``genmodels/weights/*_cnn``, sha256-checked against its card), 128-d, applied to each
    channel on its own; ``mnist-cnn`` is also made for Stacked MNIST (digits in each
    channel)."""
    dataset = SHIPPED_CNNS[name]
    trained_on = (dataset, "stacked_mnist") if dataset == "mnist" else (dataset,)
    return classifier_extractor(verified_weights(WEIGHTS / f"{dataset}_cnn"), device, name,
                                per_channel=True, trained_on=trained_on)


def shipped_cnn(device: torch.device) -> nn.Module:
    """The shipped MNIST CNN as a bare ``ConvNet`` on ``device`` (``forward``: logits): the
    network behind the ``mnist-cnn`` extractor, whose ``embed`` is its bound ``features``."""
    return feature_extractor("mnist-cnn", device).embed.__self__


def torchscript_extractor(path: str | Path, device: str | torch.device = "cpu") -> FeatureExtractor:
    """A TorchScript module (``torch.jit.save``) mapping images (B, C, H, W) in [0, 1] to
    features, loaded on ``device`` in eval mode. Its input is unknown: checked at the first
    call."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"torchscript:{path}: no such file; give a module saved with "
                         "torch.jit.save")
    try:
        module = torch.jit.load(str(file), map_location=device)
    except Exception as err:  # whatever torch.jit.load raises on a file it cannot read
        raise InputError(f"torchscript:{path} is not a TorchScript module ({type(err).__name__}:"
                         f" {first_sentence(err)}); save one with "
                         "torch.jit.save(torch.jit.script(module), path)") from None
    return FeatureExtractor(f"torchscript:{path}", module.eval(), device=torch.device(device))


register_features("mnist-cnn", functools.partial(shipped_extractor, "mnist-cnn"))
register_features("fashion-cnn", functools.partial(shipped_extractor, "fashion-cnn"))
register_features("pixels", lambda device: FeatureExtractor("pixels", lambda x: x.flatten(1)))
register_feature_source("classifier", classifier_extractor, "RUN")
register_feature_source("torchscript", torchscript_extractor, "FILE")


# --- the functions of the metrics -----------------------------------------------------------
def mnist_features_and_labels(images: Tensor, batch_size: int = INFERENCE_BATCH
                              ) -> tuple[Tensor, Tensor]:
    """FID-MNIST features (N, 128 C) and predicted digits (N, C) of images (N, C, 28, 28):
    ``embed_images(images, "mnist-cnn")``, each channel through the shipped MNIST CNN (99.63%
    test accuracy) on its own, in one forward pass."""
    embedding = embed_images(images, "mnist-cnn", batch_size)
    return embedding.features, embedding.labels


def mnist_features(images: Tensor, batch_size: int = INFERENCE_BATCH) -> Tensor:
    """FID-MNIST features (N, 128 C) of images (N, C, 28, 28) (``mnist_features_and_labels``)."""
    return embed_images(images, "mnist-cnn", batch_size).features


def pixel_features(images: Tensor) -> Tensor:
    """Raw pixels (N, C H W), float32 in [0, 1], of images (N, C, H, W)."""
    check_image_batch(images)
    return to_unit(images).flatten(1)


def module_features(images: Tensor, module: nn.Module, batch_size: int = INFERENCE_BATCH) -> Tensor:
    """``module(batch).flatten(1)`` over batches of images (N, C, H, W) in [0, 1], (N, d)
    (:func:`module_extractor`)."""
    return embed_images(images, module, batch_size).features


def image_features(images: Tensor, features: str | nn.Module | FeatureExtractor = "mnist-cnn",
                   batch_size: int = INFERENCE_BATCH) -> Tensor:
    """Features (N, d) of images (N, C, H, W) by name (:func:`feature_names`), ``nn.Module``
    or :class:`FeatureExtractor`: ``embed_images(images, features, batch_size).features``."""
    return embed_images(images, features, batch_size).features
