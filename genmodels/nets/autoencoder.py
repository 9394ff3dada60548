"""Encoders (images -> vectors) and decoders (vectors -> image-shaped outputs) for C×H×W
images of any size. They know nothing about probabilities: a VAE reads an encoder's 2·D outputs
as a mean and log-variance, a GAN uses a decoder as its generator, a critic is an encoder with
one output. Every net takes the image shape ``(C, H, W)`` of its data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from genmodels.nets.mlp import mlp

Shape = Sequence[int]  # (C, H, W) of one image


class MLPEncoder(nn.Module):
    """Flatten -> ``hidden`` ReLU layers -> ``out_dim`` outputs. (N, C, H, W) -> (N, out)."""

    def __init__(self, in_shape: Shape, hidden: Sequence[int], out_dim: int,
                 activation: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.net = mlp([math.prod(in_shape), *hidden, out_dim], activation=activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


class MLPDecoder(nn.Module):
    """``latent_dim`` -> ``hidden`` ReLU layers -> C·H·W linear outputs, shaped (N, C, H, W)."""

    def __init__(self, latent_dim: int, hidden: Sequence[int], out_shape: Shape,
                 activation: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.net = mlp([latent_dim, *hidden, math.prod(out_shape)], activation=activation)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.out_shape)


def conv_stages(shape: Shape, stages: int) -> tuple[int, int]:
    """(H, W) / 2^stages: the size after ``stages`` 4×4 stride-2 convolutions, which the
    transposed stack mirrors back exactly. Raises ValueError, naming the sizes that fit, when H
    or W is not a multiple of 2^stages."""
    if stages < 1:
        raise ValueError("conv nets need at least one stage (an entry of model.channels)")
    _, height, width = shape
    factor = 2**stages
    if height % factor or width % factor:
        fits = [n for n in range(1, max(height, width) + 1) if n % factor == 0]
        raise ValueError(
            f"a conv net with {stages} stage{'s' * (stages > 1)} takes image sides that are "
            f"multiples of {factor} (e.g. {', '.join(map(str, fits[-4:] or [factor]))}), got "
            f"{height}×{width}; resize with data.size=[H, W] or change the number of "
            "model.channels")
    return height // factor, width // factor


class ConvEncoder(nn.Module):
    """DCGAN-style: 4×4 stride-2 convolutions halving H and W once per entry of ``channels``
    (28 -> 14 -> 7 for MNIST), then a linear map to ``out_dim``. (N, C, H, W) -> (N, out_dim).
    With ``batch_norm``, every convolution but the first is batch-normalised (Radford et al.
    2016)."""

    def __init__(self, in_shape: Shape, channels: Sequence[int], out_dim: int,
                 hidden: int = 0, activation: type[nn.Module] = nn.ReLU,
                 batch_norm: bool = False) -> None:
        super().__init__()
        height, width = conv_stages(in_shape, len(channels))
        layers: list[nn.Module] = []
        c_in = in_shape[0]
        for i, c in enumerate(channels):
            norm = batch_norm and i > 0
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1, bias=not norm),
                       *([nn.BatchNorm2d(c)] if norm else []), activation()]
            c_in = c
        layers.append(nn.Flatten())
        flat = c_in * height * width
        if hidden:
            layers += [nn.Linear(flat, hidden), activation()]
        layers.append(nn.Linear(hidden or flat, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: linear -> (channels[0], H/2^s, W/2^s) -> 4×4 stride-2
    transposed convolutions up to ``out_shape``. (N, latent_dim) -> (N, C, H, W). With
    ``batch_norm``, every hidden layer is batch-normalised (the DCGAN generator)."""

    def __init__(self, latent_dim: int, channels: Sequence[int], out_shape: Shape,
                 hidden: int = 0, activation: type[nn.Module] = nn.ReLU,
                 batch_norm: bool = False) -> None:
        super().__init__()
        height, width = conv_stages(out_shape, len(channels))

        def norm(kind: type[nn.Module], width: int) -> list[nn.Module]:
            return [kind(width)] if batch_norm else []

        flat = channels[0] * height * width
        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.Linear(latent_dim, hidden), *norm(nn.BatchNorm1d, hidden), activation()]
        layers += [nn.Linear(hidden or latent_dim, flat), *norm(nn.BatchNorm1d, flat),
                   activation(), nn.Unflatten(1, (channels[0], height, width))]
        outs = [*channels[1:], out_shape[0]]
        for i, (c_in, c_out) in enumerate(zip(channels, outs, strict=True)):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(outs) - 1:
                layers += [*norm(nn.BatchNorm2d, c_out), activation()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def encoder(net: str, in_shape: Shape, out_dim: int, hidden: Sequence[int],
            channels: Sequence[int]) -> nn.Module:
    """``net = "mlp"`` uses ``hidden``; ``"conv"`` uses ``channels`` (and ``hidden[0]`` if any,
    as a fully connected layer after the convolutions)."""
    if net == "mlp":
        return MLPEncoder(in_shape, hidden, out_dim)
    if net == "conv":
        return ConvEncoder(in_shape, channels, out_dim, hidden[0] if hidden else 0)
    raise ValueError(f"model.net = {net!r}; choose 'mlp' or 'conv'")


def decoder(net: str, latent_dim: int, out_shape: Shape, hidden: Sequence[int],
            channels: Sequence[int]) -> nn.Module:
    """The mirror of :func:`encoder`: MLP widths reversed, conv channels reversed."""
    if net == "mlp":
        return MLPDecoder(latent_dim, list(reversed(hidden)), out_shape)
    if net == "conv":
        return ConvDecoder(latent_dim, list(reversed(channels)), out_shape,
                           hidden[0] if hidden else 0)
    raise ValueError(f"model.net = {net!r}; choose 'mlp' or 'conv'")
