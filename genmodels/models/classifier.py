"""Image classifiers (MLP or CNN) as a model kind of the common Trainer."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from genmodels.checks import ConfigError, check_choice, check_ranges, check_widths
from genmodels.models.base import Batch, Losses, Model, register
from genmodels.nets import ConvNet, MLPNet
from genmodels.nets.classifier import INFERENCE_BATCH
from genmodels.utils import check_images

if TYPE_CHECKING:
    from genmodels.data.build import RunData


@dataclass
class ClassifierConfig:
    net: str = "cnn"  # cnn | mlp
    num_classes: int = 10
    hidden: list[int] = field(default_factory=lambda: [512, 256])  # mlp hidden widths
    channels: list[int] = field(default_factory=lambda: [32, 64])  # cnn stage widths
    feature_dim: int = 128  # cnn penultimate width
    dropout: float = 0.0
    batch_norm: bool = False
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        check_choice(self, "model", "net", ("cnn", "mlp"))
        check_ranges(self, "model", positive=("feature_dim",),
                     below_one=("dropout", "label_smoothing"))
        if self.num_classes < 2:
            raise ConfigError(f"model.num_classes = {self.num_classes} should be >= 2")
        check_widths(self, "model", "hidden", "channels")


@register
class Classifier(Model):
    """Softmax classifier of (N, C, H, W) images in [0, 1]; ``forward`` returns logits."""

    kind = "classifier"
    Config = ClassifierConfig
    metric_units = {"loss": "cross-entropy, nats per image"}

    def __init__(self, config: ClassifierConfig, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(config, input_shape)
        c = config
        try:
            if c.net == "cnn":
                self.net = ConvNet(self.input_shape, c.channels, c.feature_dim, c.num_classes,
                                   c.dropout, c.batch_norm)
            else:  # mlp (ClassifierConfig has checked the net)
                self.net = MLPNet(self.input_shape, c.hidden, c.num_classes, c.dropout,
                                  c.batch_norm)
        except ValueError as err:  # a size the CNN cannot take
            raise ConfigError(str(err)) from None

    def prepare(self, data: RunData) -> None:
        """The training data must have labels in 0 .. num_classes - 1."""
        if len(data.train.tensors) < 2:
            raise ConfigError("a classifier trains on labelled images, and this data has no "
                              "labels: use a folder with one subfolder per class, or an array "
                              "file with a 'labels' key")
        top = int(data.train.tensors[1].max())
        if top >= self.config.num_classes:
            raise ConfigError(f"the data has labels up to {top}, more classes than "
                              f"model.num_classes = {self.config.num_classes}; set "
                              f"model.num_classes={top + 1}")

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) in [0, 1] -> logits (N, num_classes)."""
        check_images(x, shape=self.input_shape)
        return self.net(x)

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features, the fixed embedding used by the metrics."""
        check_images(x, shape=self.input_shape)
        return self.net.features(x)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Predicted labels (N,)."""
        return self(x).argmax(1)

    def inference_copy(self) -> Classifier:
        """A frozen eval-mode copy for prediction and features: its net's
        ``inference_copy`` (batch norm folded, dropout removed, a CNN channels-last). Same
        outputs up to float32 rounding; cannot be trained."""
        frozen = copy.deepcopy(self)
        frozen.net = self.net.inference_copy()
        return frozen.eval().requires_grad_(False)

    def loss(self, batch: Batch) -> Losses:
        x, y = batch[0], batch[1]
        logits = self.net(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.config.label_smoothing)
        return {"loss": loss, "accuracy": (logits.detach().argmax(1) == y).float().mean()}

    @torch.no_grad()
    def evaluate(self, batches: Iterable[Batch]) -> dict[str, float]:
        correct = total = 0
        nll = 0.0
        net = self.net.inference_copy()
        for x, y, *_ in batches:
            logits = torch.cat([net(chunk) for chunk in x.split(INFERENCE_BATCH)])  # (N, K)
            nll += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
        return {"loss": nll / total, "accuracy": correct / total}

    def figures(self, folder: Path, step: int, batch: Batch) -> list[Path]:
        from genmodels.plots import prediction_grid

        x, y = batch[0][:64], batch[1][:64]
        with torch.no_grad():
            pred = self.net(x).argmax(1)
        return [prediction_grid(x, y, pred, folder / f"predictions_{step:07d}.png",
                                title=f"Predictions of the {self.kind} at step {step} on "
                                      f"{len(x)} images: predicted class, in red "
                                      "'predicted (true)' where wrong")]
