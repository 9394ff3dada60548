"""Image classifiers for C×H×W inputs of any size. Both expose ``features(x)``, the penultimate
layer, which serves as a fixed feature space of the metrics (FID on classifier features)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from genmodels.nets.mlp import mlp

# Images an inference copy takes at once on a CPU: the MNIST CNN's activations of 128 images
# (13 MB) stay in cache, where 2,000 at once run at half the speed
# (benchmarks/classifier_inference.py).
INFERENCE_BATCH = 128


class MLPNet(nn.Module):
    """Flatten -> hidden layers ([BatchNorm] ReLU [Dropout]) -> linear logits."""

    def __init__(self, in_shape: Sequence[int], hidden: Sequence[int] = (512, 256),
                 num_classes: int = 10, dropout: float = 0.0, batch_norm: bool = False) -> None:
        super().__init__()
        n_in = 1
        for s in in_shape:
            n_in *= s
        self.net = mlp([n_in, *hidden, num_classes], dropout=dropout, batch_norm=batch_norm)

    def features(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, hidden[-1]): the last hidden layer, after its activation."""
        return self.net[:-1](x.flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))

    def inference_copy(self) -> MLPNet:
        """A frozen eval-mode copy: each batch norm folded into the linear layer before it,
        dropout removed. Same outputs up to float32 rounding."""
        net = copy.deepcopy(self).eval().requires_grad_(False)
        net.net = nn.Sequential(*_folded(list(net.net)))
        return net


class ConvNet(nn.Module):
    """VGG-style CNN: per stage two 3×3 convs and a 2×2 max-pool (28 -> 14 -> 7 for MNIST),
    then a fully connected feature layer and the logits."""

    def __init__(self, in_shape: Sequence[int], channels: Sequence[int] = (32, 64),
                 feature_dim: int = 128, num_classes: int = 10, dropout: float = 0.0,
                 batch_norm: bool = True) -> None:
        super().__init__()
        c_in, height, width = in_shape
        if min(height, width) < 2 ** len(channels):
            raise ValueError(f"a CNN with {len(channels)} pooling stages needs image sides of at "
                             f"least {2 ** len(channels)}, got {height}×{width}; use fewer "
                             "model.channels or resize with data.size=[H, W]")
        layers: list[nn.Module] = []
        for c in channels:
            layers += [*_conv_block(c_in, c, batch_norm), *_conv_block(c, c, batch_norm),
                       nn.MaxPool2d(2)]
            c_in, height, width = c, height // 2, width // 2
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * height * width, feature_dim),
            *([nn.BatchNorm1d(feature_dim)] if batch_norm else []), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
        self.channels_last = False  # set by inference_copy: convolve in NHWC

    def features(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, feature_dim)."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.fc(self.conv(x))

    def inference_copy(self) -> ConvNet:
        """A frozen eval-mode copy for feature extraction: each batch norm folded into the
        convolution or linear layer before it (its running statistics become weights and
        biases), dropout removed, and the convolutions run channels-last (NHWC), which oneDNN
        computes about twice as fast on a CPU (benchmarks/metrics_speed.py). Same outputs up
        to float32 rounding (about 1e-6 on the MNIST CNN's features, tests/test_features.py)."""
        net = copy.deepcopy(self).eval().requires_grad_(False)
        net.conv = nn.Sequential(*_folded(list(net.conv)))
        net.fc = nn.Sequential(*_folded(list(net.fc)))
        net.head = nn.Sequential(*_folded(list(net.head)))
        net.channels_last = True
        return net.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _folded(layers: list[nn.Module]) -> list[nn.Module]:
    """``layers`` (eval mode) with each Conv2d/Linear + BatchNorm pair fused into one layer and
    dropout left out."""
    out: list[nn.Module] = []
    for layer in layers:
        if isinstance(layer, nn.BatchNorm2d) and out and isinstance(out[-1], nn.Conv2d):
            out[-1] = fuse_conv_bn_eval(out[-1], layer)
        elif isinstance(layer, nn.BatchNorm1d) and out and isinstance(out[-1], nn.Linear):
            out[-1] = fuse_linear_bn_eval(out[-1], layer)
        elif not isinstance(layer, nn.Dropout):
            out.append(layer)
    return out


def _conv_block(c_in: int, c_out: int, batch_norm: bool) -> list[nn.Module]:
    """3×3 convolution (bias dropped before batch norm), [BatchNorm], ReLU."""
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm),
            *([nn.BatchNorm2d(c_out)] if batch_norm else []), nn.ReLU()]
