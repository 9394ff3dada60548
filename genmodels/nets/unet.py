"""Time-conditioned denoising nets for diffusion and flow matching: a U-Net for C×H×W images of
any size whose sides halve evenly (Ronneberger et al. 2015, in the residual form of Ho et al.
2020) and an MLP for points. Both map a noisy input x_t and its time t in [0, 1] to a tensor
of x_t's shape (an ε, v or velocity prediction), ``forward(x, t)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TIME_SCALE = 1000  # t in [0, 1] -> the integer timesteps 0..999 of DDPM's embedding


class SinusoidalEmbedding(nn.Module):
    """The Transformer's position encoding (Vaswani et al. 2017) of ``1000 t`` as in DDPM (Ho et
    al. 2020): ``[sin(1000 t ω_k), cos(1000 t ω_k)]`` with ``ω_k = 10000^(-k / (dim/2 - 1))``,
    k = 0..dim/2 - 1. (N,) -> (N, dim)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError(f"model.time_dim = {dim}: a sinusoidal embedding takes an even "
                             "width of at least 4")
        half = dim // 2
        frequencies = torch.exp(-math.log(10000) * torch.arange(half) / (half - 1))  # (dim/2,)
        self.register_buffer("frequencies", frequencies, persistent=False)

    def forward(self, t: Tensor) -> Tensor:
        angles = TIME_SCALE * t[:, None] * self.frequencies  # (N, dim/2)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (N, dim)


class ResBlock(nn.Module):
    """GroupNorm, SiLU, 3×3 conv, + a linear map of the time embedding, GroupNorm, SiLU,
    dropout, 3×3 conv, plus the (1×1-projected) input: the block of Ho et al. 2020.
    (N, c_in, H, W), (N, time_dim) -> (N, c_out, H, W)."""

    def __init__(self, c_in: int, c_out: int, time_dim: int, dropout: float, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(time_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (N, c_out, H, W)
        h = h + self.time(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the H·W positions, added to its input (Ho et al. 2020,
    after Wang et al. 2018's non-local block). (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        n, c, height, width = x.shape
        qkv = self.qkv(self.norm(x)).flatten(2).transpose(1, 2)  # (N, H·W, 3C)
        q, k, v = qkv.chunk(3, dim=2)  # each (N, H·W, C)
        h = F.scaled_dot_product_attention(q, k, v)  # (N, H·W, C)
        return x + self.out(h.transpose(1, 2).reshape(n, c, height, width))


class UNet(nn.Module):
    """A U-Net (Ronneberger et al. 2015) in the form of DDPM (Ho et al. 2020): one residual
    block per resolution, a stride-2 conv halving H and W between stages (28 -> 14 -> 7 for
    MNIST with three ``channels``), residual blocks around [self-attention] at the lowest
    resolution, then nearest up-sampling + a 3×3 conv, each stage concatenating the skip of its
    down-going twin. The time embedding enters every block. The output layer is a zero-
    initialised 3×3 conv, linear: ``forward(x (N, C, H, W), t (N,)) -> (N, C, H, W)``."""

    def __init__(self, in_shape: Sequence[int], channels: Sequence[int] = (32, 64, 64),
                 time_dim: int = 128, attention: bool = True, dropout: float = 0.0,
                 groups: int = 8) -> None:
        super().__init__()
        c_img, height, width = in_shape
        _check_unet(channels, height, width, groups)

        def block(c_in: int, c_out: int) -> ResBlock:
            return ResBlock(c_in, c_out, time_dim, dropout, groups)

        top, bottom = channels[0], channels[-1]
        self.time = nn.Sequential(SinusoidalEmbedding(time_dim), nn.Linear(time_dim, time_dim),
                                  nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.stem = nn.Conv2d(c_img, top, 3, padding=1)
        self.down = nn.ModuleList(block(c_in, c)
                                  for c_in, c in zip([top, *channels[:-1]], channels, strict=True))
        self.downsample = nn.ModuleList(nn.Conv2d(c, c, 3, stride=2, padding=1)
                                        for c in channels[:-1])
        self.middle = nn.ModuleList([block(bottom, bottom), block(bottom, bottom)])
        self.attention = SelfAttention(bottom, groups) if attention else nn.Identity()
        self.up = nn.ModuleList(block(2 * c, c) for c in channels)  # input: [h, skip]
        self.upsample = nn.ModuleList(  # stage i + 1 -> stage i, at twice the size
            nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                          nn.Conv2d(c_low, c, 3, padding=1))
            for c, c_low in zip(channels[:-1], channels[1:], strict=True))
        self.out = nn.Sequential(nn.GroupNorm(groups, top), nn.SiLU(),
                                 nn.Conv2d(top, c_img, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        emb = self.time(t)  # (N, time_dim)
        h = self.stem(x)  # (N, channels[0], H, W)
        skips: list[Tensor] = []  # each block's output, read by its up-going twin
        for i, block in enumerate(self.down):
            if i > 0:
                h = self.downsample[i - 1](h)  # (N, channels[i - 1], H / 2^i, W / 2^i)
            h = block(h, emb)  # (N, channels[i], H / 2^i, W / 2^i)
            skips.append(h)
        h = self.middle[1](self.attention(self.middle[0](h, emb)), emb)
        for i in reversed(range(len(self.up))):
            h = self.up[i](torch.cat([h, skips[i]], dim=1), emb)  # (N, channels[i], ...)
            if i > 0:
                h = self.upsample[i - 1](h)  # (N, channels[i - 1], H / 2^(i-1), W / 2^(i-1))
        return self.out(h)  # (N, C, H, W)


def _check_unet(channels: Sequence[int], height: int, width: int, groups: int) -> None:
    """ValueError unless the widths suit GroupNorm and H, W halve evenly at every stage; the
    size message names the nearest sides that fit."""
    if not channels:
        raise ValueError("a U-Net needs at least one resolution (an entry of model.channels)")
    if any(c % groups for c in channels):
        raise ValueError(f"model.channels = {list(channels)}: a U-Net's widths must be "
                         f"multiples of its {groups} GroupNorm groups")
    halvings = len(channels) - 1
    factor = 2**halvings
    if height % factor or width % factor:
        def fits(side: int) -> str:
            below, above = side // factor * factor, -(-side // factor) * factor
            return " or ".join(str(s) for s in dict.fromkeys((below, above)) if s > 0)

        raise ValueError(
            f"a U-Net with model.channels = {list(channels)} halves the image {halvings} "
            f"time{'s' * (halvings > 1)}, so it takes sides that are multiples of {factor}; got "
            f"{height}×{width} (H = {fits(height)} and W = {fits(width)} fit); resize with "
            "data.size=[H, W] or use fewer model.channels")


class TimeMLP(nn.Module):
    """An MLP for points in R^d whose every hidden layer also reads the sinusoidal embedding
    of t (concatenated to its input), SiLU activations, a zero-initialised linear output.
    ``forward(x (N, d), t (N,)) -> (N, d)``."""

    def __init__(self, dim: int, hidden: Sequence[int] = (256, 256), time_dim: int = 64) -> None:
        super().__init__()
        self.embedding = SinusoidalEmbedding(time_dim)
        widths = [dim, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(n_in + time_dim, n_out)
                                    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True))
        self.out = nn.Linear(widths[-1], dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        emb = self.embedding(t)  # (N, time_dim)
        h = x  # (N, d)
        for layer in self.hidden:
            h = F.silu(layer(torch.cat([h, emb], dim=1)))  # (N, hidden[i])
        return self.out(h)  # (N, d)


NETS = {"unet": (3, "images (C, H, W)"), "mlp": (1, "points (d,)")}  # the data each takes


def denoiser(net: str, shape: Sequence[int], channels: Sequence[int], hidden: Sequence[int],
             attention: bool, time_dim: int) -> nn.Module:
    """``net = "unet"`` for images ``shape = (C, H, W)`` uses ``channels`` and ``attention``;
    ``"mlp"`` for points ``shape = (d,)`` uses ``hidden``."""
    if net not in NETS:
        raise ValueError(f"model.net = {net!r}; choose {' or '.join(map(repr, NETS))}")
    rank, data = NETS[net]
    if len(shape) != rank:
        fits = [name for name, (r, _) in NETS.items() if r == len(shape)]
        hint = f"; use model.net={fits[0]}" if fits else ""
        raise ValueError(f"model.net = {net!r} takes {data}, got data of shape "
                         f"{tuple(shape)}{hint}")
    if net == "unet":
        return UNet(shape, channels, time_dim, attention)
    return TimeMLP(shape[0], hidden, time_dim)
