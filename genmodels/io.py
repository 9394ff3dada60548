"""Loading trained models: ``genmodels.load`` and the shipped MNIST and Fashion-MNIST CNNs.

``load`` reads two formats: the ``final.pt``/``checkpoint.pt`` files of ``genmodels train``
(``torch.load(weights_only=True)``) and the folders of ``genmodels export`` (``config.toml``,
``model.safetensors``, ``model.sha256``: no pickle at all). Both go through
:func:`build_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genmodels.config import Config, ConfigError, config_from_dict
from genmodels.metrics.features import SHIPPED_CNNS, WEIGHTS, WeightsError, verified_weights
from genmodels.models import MODELS, Classifier, Model
from genmodels.portable import (
    EXPORT_CONFIG,
    EXPORT_WEIGHTS,
    ExportError,
    export_folder,
    read_export,
)
from genmodels.train.checkpoint import CheckpointError, load_checkpoint
from genmodels.utils import checkpoint_input_shape


def load(path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> Model:
    """Any model saved by the Trainer or by ``genmodels export``, in eval mode.

    ``path``: a ``final.pt`` or ``checkpoint.pt`` file, a run directory (its ``final.pt``), or
    an export folder (``model.safetensors``, its sha256 checked first; no pickle is read).
    ``ema``: use the exponential moving average of the weights when the run kept one (an
    export holds one set of weights only: the EMA ones when the run kept them).
    The run's config is attached as ``model.run_config``.
    """
    path = Path(path)
    folder = export_folder(path)
    if folder is not None:
        return _load_export(folder, device, ema)
    if path.is_dir():
        path = path / "final.pt"
    state = read_saved_model(path, device)
    weights = state["ema"] if ema and state.get("ema") is not None else state["model"]
    return build_model(state["kind"], state["config"], checkpoint_input_shape(state), weights,
                       path).to(device).eval()


def read_saved_model(path: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The dict of a ``final.pt`` or ``checkpoint.pt`` (``load_checkpoint``), checked to hold a
    model of a known kind with its config and weights."""
    state = load_checkpoint(path, map_location=device)
    check_kind(state.get("kind"), path)
    missing = [key for key in ("config", "model") if not isinstance(state.get(key), dict)]
    if missing:
        raise CheckpointError(f"{path} is not a saved model: it has no {' or '.join(missing)} "
                              "entry (write one with genmodels train)")
    return state


def check_kind(kind: Any, path: Path) -> None:
    if kind not in MODELS:
        raise CheckpointError(f"{path} holds a model of kind {kind!r}, which this "
                              f"version does not know; known kinds: {', '.join(sorted(MODELS))}")


def saved_config(raw: dict[str, Any]) -> Config:
    """The :class:`Config` of a saved config dict, without the keys of older checkpoints."""
    model_section = {key: value for key, value in raw["model"].items()
                     if key not in ("in_channels", "data_dim")}  # older checkpoints' keys
    return config_from_dict({**raw, "model": model_section})


def build_model(kind: str, config: dict[str, Any], input_shape: tuple[int, ...],
                weights: dict[str, torch.Tensor], path: Path) -> Model:
    """The model of ``kind`` built from a saved ``config`` dict for examples of
    ``input_shape``, holding ``weights`` (checked to fit and be finite), with its config as
    ``model.run_config``; ``path`` names the source in errors. Shared by both formats."""
    check_kind(kind, path)
    config = saved_config(config)
    model = MODELS[kind](config.model, input_shape)
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the saved config ({err})") from None
    broken = [name for name, value in weights.items()
              if value.is_floating_point() and not bool(value.isfinite().all())]
    if broken:
        raise CheckpointError(f"{path}: the weights are not finite (NaN or Inf in "
                              f"{', '.join(broken[:3])}{', ...' if len(broken) > 3 else ''}); "
                              "the run diverged: use an earlier checkpoint or retrain")
    model.run_config = config
    return model


def _load_export(folder: Path, device: str | torch.device, ema: bool) -> Model:
    """An export folder of ``genmodels export`` (``genmodels.portable.read_export``: the
    sha256 of its weights first, then the safetensors file and the TOML config; no pickle)."""
    try:
        export = read_export(folder)
    except ExportError as err:  # the checkpoint error that callers of load() expect
        raise CheckpointError(str(err)) from None
    if not ema and export.ema:
        raise CheckpointError(f"{folder} holds only the EMA weights of its run; load the run's "
                              "final.pt with ema=False for the others")
    try:
        model = build_model(export.kind, export.config, export.input_shape, export.weights,
                            folder / EXPORT_WEIGHTS)
    except ConfigError as err:
        raise CheckpointError(f"{folder / EXPORT_CONFIG}: {err}") from None
    return model.to(device).eval()


SHIPPED_CLASSIFIERS = tuple(SHIPPED_CNNS.values())  # genmodels/weights/{dataset}_cnn/, .json


def classifier(dataset: str = "mnist", device: str | torch.device = "cpu") -> Classifier:
    """The shipped CNN of ``dataset`` (mnist or fashion; see ``genmodels/weights/*_cnn.json``),
    frozen, in eval mode, its sha256 checked against its card (``verified_weights``, as the
    ``mnist-cnn`` and ``fashion-cnn`` features of the metrics); its net is the
    ``inference_copy`` (batch norm folded, channels-last), fastest in batches of
    ``genmodels.nets.classifier.INFERENCE_BATCH`` images.

    Takes (N, 1, 28, 28) images in [0, 1] and returns logits (N, 10); ``.features(x)`` gives
    the 128-d penultimate layer used by the metrics (FID on classifier features, mode counts).
    """
    if dataset not in SHIPPED_CLASSIFIERS:
        raise CheckpointError(f"no shipped classifier for {dataset!r}; genmodels ships one for "
                              f"{', '.join(SHIPPED_CLASSIFIERS)}")
    try:
        path = verified_weights(WEIGHTS / f"{dataset}_cnn")
    except WeightsError as err:  # the checkpoint error that callers of load() expect
        raise CheckpointError(str(err)) from None
    return load(path, device).inference_copy()
