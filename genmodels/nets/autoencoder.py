"""Encoders (images -> vectors) and decoders (vectors -> image-shaped outputs) for C×28×28
images. They know nothing about probabilities: a VAE reads an encoder's 2·D outputs as a mean
and log-variance, a GAN uses a decoder as its generator, a critic is an encoder with one output.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from genmodels.nets.mlp import mlp

IMAGE_SIZE = 28


class MLPEncoder(nn.Module):
    """Flatten -> ``hidden`` ReLU layers -> ``out_dim`` outputs. (N, C, 28, 28) -> (N, out)."""

    def __init__(self, in_channels: int, hidden: Sequence[int], out_dim: int,
                 activation: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.net = mlp([in_channels * IMAGE_SIZE**2, *hidden, out_dim], activation=activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


class MLPDecoder(nn.Module):
    """``latent_dim`` -> ``hidden`` ReLU layers -> C·28·28 linear outputs, shaped (N, C, 28, 28)."""

    def __init__(self, latent_dim: int, hidden: Sequence[int], out_channels: int,
                 activation: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.net = mlp([latent_dim, *hidden, out_channels * IMAGE_SIZE**2], activation=activation)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, self.out_channels, IMAGE_SIZE, IMAGE_SIZE)


class ConvEncoder(nn.Module):
    """DCGAN-style: 4×4 stride-2 convolutions 28 -> 14 -> 7 (one per entry of ``channels``, at
    most two), then a linear map to ``out_dim``. (N, C, 28, 28) -> (N, out_dim). With
    ``batch_norm``, every convolution but the first is batch-normalised (Radford et al. 2016)."""

    def __init__(self, in_channels: int, channels: Sequence[int], out_dim: int,
                 hidden: int = 0, activation: type[nn.Module] = nn.ReLU,
                 batch_norm: bool = False) -> None:
        super().__init__()
        if not 1 <= len(channels) <= 2:
            raise ValueError(f"conv nets take 1 or 2 stages (28 -> 14 -> 7), got {channels}")
        layers: list[nn.Module] = []
        c_in, size = in_channels, IMAGE_SIZE
        for i, c in enumerate(channels):
            norm = batch_norm and i > 0
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1, bias=not norm),
                       *([nn.BatchNorm2d(c)] if norm else []), activation()]
            c_in, size = c, size // 2
        layers.append(nn.Flatten())
        if hidden:
            layers += [nn.Linear(c_in * size * size, hidden), activation()]
        layers.append(nn.Linear(hidden or c_in * size * size, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: linear -> (channels[0], 7, 7) -> 4×4 stride-2 transposed
    convolutions up to (out_channels, 28, 28). (N, latent_dim) -> (N, C, 28, 28). With
    ``batch_norm``, every hidden layer is batch-normalised (the DCGAN generator)."""

    def __init__(self, latent_dim: int, channels: Sequence[int], out_channels: int,
                 hidden: int = 0, activation: type[nn.Module] = nn.ReLU,
                 batch_norm: bool = False) -> None:
        super().__init__()
        if not 1 <= len(channels) <= 2:
            raise ValueError(f"conv nets take 1 or 2 stages (7 -> 14 -> 28), got {channels}")
        size = IMAGE_SIZE // 2 ** len(channels)

        def norm(kind: type[nn.Module], width: int) -> list[nn.Module]:
            return [kind(width)] if batch_norm else []

        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.Linear(latent_dim, hidden), *norm(nn.BatchNorm1d, hidden), activation()]
        layers += [nn.Linear(hidden or latent_dim, channels[0] * size * size),
                   *norm(nn.BatchNorm1d, channels[0] * size * size), activation(),
                   nn.Unflatten(1, (channels[0], size, size))]
        outs = [*channels[1:], out_channels]
        for i, (c_in, c_out) in enumerate(zip(channels, outs, strict=True)):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(outs) - 1:
                layers += [*norm(nn.BatchNorm2d, c_out), activation()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def encoder(net: str, in_channels: int, out_dim: int, hidden: Sequence[int],
            channels: Sequence[int]) -> nn.Module:
    """``net = "mlp"`` uses ``hidden``; ``"conv"`` uses ``channels`` (and ``hidden[0]`` if any,
    as a fully connected layer after the convolutions)."""
    if net == "mlp":
        return MLPEncoder(in_channels, hidden, out_dim)
    if net == "conv":
        return ConvEncoder(in_channels, channels, out_dim, hidden[0] if hidden else 0)
    raise ValueError(f"model.net = {net!r}; choose 'mlp' or 'conv'")


def decoder(net: str, latent_dim: int, out_channels: int, hidden: Sequence[int],
            channels: Sequence[int]) -> nn.Module:
    """The mirror of :func:`encoder`: MLP widths reversed, conv channels reversed."""
    if net == "mlp":
        return MLPDecoder(latent_dim, list(reversed(hidden)), out_channels)
    if net == "conv":
        return ConvDecoder(latent_dim, list(reversed(channels)), out_channels,
                           hidden[0] if hidden else 0)
    raise ValueError(f"model.net = {net!r}; choose 'mlp' or 'conv'")
