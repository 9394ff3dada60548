"""Feature maps for the sample metrics: images (N, C, H, W) -> features (N, d).

- ``mnist_features``: the shipped MNIST CNN's 128-d penultimate layer ("FID-MNIST"), per
  channel, so that 3-channel Stacked MNIST images give 384-d features;
- ``pixel_features``: raw pixels in [0, 1];
- ``module_features``: any user ``nn.Module``.

uint8 images are divided by 255; float images must already lie in [0, 1].
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn

from genmodels.data import to_unit
from genmodels.metrics._checks import check_positive_int
from genmodels.utils import check_images

FEATURES = ("mnist", "pixels")
T = TypeVar("T")


def check_image_batch(images: Tensor, size: tuple[int, int] | None = None) -> None:
    """Raise ValueError unless ``images`` is a non-empty (N, C, H, W) tensor, uint8 or float in
    [0, 1], with (H, W) = ``size`` if given."""
    if not torch.is_tensor(images):
        raise ValueError(f"images must be a tensor (N, C, H, W), got {type(images).__name__}")
    if images.dim() != 4 or len(images) == 0:
        raise ValueError(f"images must have shape (N, C, H, W) with N > 0, got "
                         f"{tuple(images.shape)}")
    if images.dtype != torch.uint8:
        check_images(images, size=size or tuple(images.shape[2:]))
    elif size is not None and tuple(images.shape[2:]) != tuple(size):
        raise ValueError(f"images should be {size[0]}x{size[1]}, got {tuple(images.shape)}")


def module_device(module: nn.Module, default: torch.device) -> torch.device:
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


@functools.cache
def shipped_cnn(device: torch.device) -> nn.Module:
    """The shipped MNIST CNN (``genmodels.classifier()``) as its bare ``ConvNet`` on ``device``:
    ``forward`` gives logits, ``features`` the 128-d penultimate layer, ``head`` the logits from
    it. Loaded, and its sha256 checked, once per device and process; frozen, in eval mode."""
    from genmodels.io import classifier

    return classifier(device=device).net


def mnist_features_and_labels(images: Tensor, batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """FID-MNIST features (N, 128 C) and predicted digits (N, C) of images (N, C, 28, 28).

    Each channel goes separately through the shipped MNIST CNN (``genmodels.classifier()``,
    99.63% test accuracy, on the images' device): its penultimate layer (after the ReLU) gives
    the features, concatenated channel by channel, and the logits computed from them the
    argmax digit of each channel, in one forward pass. ``batch_size`` images at a time.
    """
    check_image_batch(images, size=(28, 28))
    net = shipped_cnn(images.device)
    channels = images.shape[1]
    single = images.flatten(0, 1).unsqueeze(1)  # (N * C, 1, H, W), channels of an image adjacent

    def embed(batch: Tensor) -> tuple[Tensor, Tensor]:
        features = net.features(batch)
        return features, net.head(features).argmax(1)

    pieces = apply_in_batches(embed, single, batch_size, images.device)
    features = torch.cat([f for f, _ in pieces]).reshape(len(images), -1)
    labels = torch.cat([label for _, label in pieces]).reshape(len(images), channels)
    return features, labels


def mnist_features(images: Tensor, batch_size: int = 1000) -> Tensor:
    """FID-MNIST features (N, 128 C) of images (N, C, 28, 28): the shipped MNIST CNN's 128-d
    penultimate layer, channel by channel (``mnist_features_and_labels``)."""
    return mnist_features_and_labels(images, batch_size)[0]


def pixel_features(images: Tensor) -> Tensor:
    """Raw pixels (N, C H W), float32 in [0, 1], of images (N, C, H, W)."""
    check_image_batch(images)
    return to_unit(images).flatten(1)


def module_features(images: Tensor, module: nn.Module, batch_size: int = 1000) -> Tensor:
    """``module(batch).flatten(1)`` over batches of images (N, C, H, W) in [0, 1], (N, d).

    Run under ``torch.no_grad`` on the module's device (the images' device if it has no
    parameters), in the module's current mode: call ``module.eval()`` first for dropout or
    batch norm.
    """
    check_image_batch(images)
    device = module_device(module, images.device)
    pieces = apply_in_batches(lambda batch: module(batch).flatten(1), images, batch_size, device)
    return torch.cat(pieces)


def image_features(images: Tensor, features: str | nn.Module = "mnist",
                   batch_size: int = 1000) -> Tensor:
    """Features (N, d) of images (N, C, H, W) by name (``"mnist"``: ``mnist_features``,
    ``"pixels"``: ``pixel_features``) or by an ``nn.Module`` (``module_features``)."""
    if isinstance(features, nn.Module):
        return module_features(images, features, batch_size)
    if features == "mnist":
        return mnist_features(images, batch_size)
    if features == "pixels":
        return pixel_features(images)
    raise ValueError(f"features must be one of {FEATURES} or an nn.Module, got {features!r}")
