"""Loading trained models: ``genmodels.load`` and the shipped MNIST and Fashion-MNIST CNNs."""

from __future__ import annotations

from pathlib import Path

import torch

from genmodels.config import config_from_dict
from genmodels.metrics.features import SHIPPED_CNNS, WEIGHTS, WeightsError, verified_weights
from genmodels.models import MODELS, Classifier, Model
from genmodels.train.checkpoint import CheckpointError, load_checkpoint
from genmodels.utils import checkpoint_input_shape


def load(path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> Model:
    """Any model saved by the Trainer, in eval mode.

    ``path``: a ``final.pt`` or ``checkpoint.pt`` file, or a run directory (its ``final.pt``).
    ``ema``: use the exponential moving average of the weights when the run kept one.
    The run's config is attached as ``model.run_config``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "final.pt"
    state = load_checkpoint(path, map_location=device)
    if state.get("kind") not in MODELS:
        raise CheckpointError(f"{path} holds a model of kind {state.get('kind')!r}, which this "
                              f"version does not know; known kinds: {', '.join(sorted(MODELS))}")
    missing = [key for key in ("config", "model") if not isinstance(state.get(key), dict)]
    if missing:
        raise CheckpointError(f"{path} is not a saved model: it has no {' or '.join(missing)} "
                              "entry (write one with genmodels train)")
    model_section = {key: value for key, value in state["config"]["model"].items()
                     if key not in ("in_channels", "data_dim")}  # older checkpoints' keys
    config = config_from_dict({**state["config"], "model": model_section})
    model = MODELS[state["kind"]](config.model, checkpoint_input_shape(state))
    weights = state["ema"] if ema and state.get("ema") is not None else state["model"]
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
    return model.to(device).eval()


SHIPPED_CLASSIFIERS = tuple(SHIPPED_CNNS.values())  # genmodels/weights/{dataset}_cnn.pt, .json


def classifier(dataset: str = "mnist", device: str | torch.device = "cpu") -> Classifier:
    """The shipped CNN of ``dataset`` (mnist or fashion; see ``genmodels/weights/*_cnn.json``),
    frozen, in eval mode, its sha256 checked against its card (``verified_weights``, as the
    ``mnist-cnn`` and ``fashion-cnn`` features of the metrics).

    Takes (N, 1, 28, 28) images in [0, 1] and returns logits (N, 10); ``.features(x)`` gives
    the 128-d penultimate layer used by the metrics (FID on classifier features, mode counts).
    """
    if dataset not in SHIPPED_CLASSIFIERS:
        raise CheckpointError(f"no shipped classifier for {dataset!r}; genmodels ships one for "
                              f"{', '.join(SHIPPED_CLASSIFIERS)}")
    try:
        path = verified_weights(WEIGHTS / f"{dataset}_cnn.pt")
    except WeightsError as err:  # the checkpoint error that callers of load() expect
        raise CheckpointError(str(err)) from None
    model = load(path, device)
    model.requires_grad_(False)
    return model
