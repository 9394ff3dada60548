"""The denoising nets of diffusion and flow matching: shapes, time conditioning, the size
error, the sinusoidal embedding against its closed form, and a tiny U-Net overfitting."""

from __future__ import annotations

import math

import pytest
import torch

from genmodels.nets import SinusoidalEmbedding, TimeMLP, UNet, denoiser


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("shape", "channels", "attention"), [
    ((1, 28, 28), (32, 64, 64), True),  # the default MNIST net: 28 -> 14 -> 7
    ((3, 32, 32), (16, 32, 32), False),
    ((1, 24, 40), (8, 16, 16, 16), True),  # 24×40 -> 3×5 at the bottom, attention there
])
def test_unet_keeps_shape(shape, channels, attention):
    net = UNet(shape, channels, time_dim=32, attention=attention)
    x, t = randn(2, *shape), torch.rand(2)
    assert net(x, t).shape == x.shape
    assert denoiser("unet", shape, channels, [], attention, 32)(x, t).shape == x.shape


@pytest.mark.parametrize("dim", [2, 3])
def test_time_mlp_keeps_shape(dim):
    x, t = randn(5, dim), torch.rand(5)
    assert TimeMLP(dim, (32, 32), time_dim=16)(x, t).shape == (5, dim)
    assert denoiser("mlp", (dim,), [], [32, 32], False, 16)(x, t).shape == (5, dim)


def test_default_mnist_unet_fits_the_budget():
    """Under 1.5 M parameters, so that a shipped checkpoint stays small."""
    params = sum(p.numel() for p in UNet((1, 28, 28)).parameters())
    assert params < 1_500_000


@pytest.mark.parametrize("kind", ["unet", "mlp"])
def test_output_depends_on_t(kind):
    """Zero at initialisation (the output layer is zero), different for two times of the same
    input after one SGD step."""
    torch.manual_seed(0)
    if kind == "unet":
        net, x = UNet((1, 8, 8), (8, 16), time_dim=16), randn(4, 1, 8, 8)
    else:
        net, x = TimeMLP(2, (32, 32), time_dim=16), randn(4, 2)
    t0, t1 = torch.full((4,), 0.1), torch.full((4,), 0.7)
    assert not net(x, t0).any()
    loss = (net(x, t0) - randn(*x.shape, seed=1)).square().mean()
    loss.backward()
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    with torch.no_grad():
        assert (net(x, t0) - net(x, t1)).abs().max() > 1e-3


def test_bad_size_is_a_clear_error():
    with pytest.raises(ValueError, match=r"multiples of 4; got 30×28 \(H = 28 or 32 and W = 28 "
                                         r"fit\); resize with data.size=\[H, W\]"):
        UNet((1, 30, 28), (32, 64, 64))
    with pytest.raises(ValueError, match="multiples of 8; got 28×28"):
        denoiser("unet", (1, 28, 28), [32, 64, 64, 64], [], True, 128)
    with pytest.raises(ValueError, match="multiples of its 8 GroupNorm groups"):
        UNet((1, 28, 28), (12, 24))


def test_denoiser_names_the_choices():
    with pytest.raises(ValueError, match="model.net = 'conv'; choose 'unet' or 'mlp'"):
        denoiser("conv", (1, 28, 28), [32], [32], True, 16)
    with pytest.raises(ValueError, match=r"takes images \(C, H, W\), got data of shape \(2,\); "
                                         "use model.net=mlp"):
        denoiser("unet", (2,), [32], [32], True, 16)
    with pytest.raises(ValueError, match=r"takes points \(d,\), got data of shape \(1, 28, 28\); "
                                         "use model.net=unet"):
        denoiser("mlp", (1, 28, 28), [32], [32], True, 16)


def test_embedding_has_the_closed_form():
    """[sin(1000 t ω_k), cos(1000 t ω_k)], ω_k = 10000^(-k / (dim/2 - 1)): DDPM's embedding of
    the integer step 1000 t."""
    dim, ts = 8, [0.0, 0.001, 0.25, 0.5, 1.0]
    expected = torch.tensor([
        [f(1000 * t * 10000 ** (-k / (dim // 2 - 1))) for f in (math.sin, math.cos)
         for k in range(dim // 2)]
        for t in ts])  # (5, dim)
    assert torch.allclose(SinusoidalEmbedding(dim)(torch.tensor(ts)), expected, atol=1e-4)
    with pytest.raises(ValueError, match="even width"):
        SinusoidalEmbedding(7)


def test_tiny_unet_overfits_a_batch():
    """The mean squared error to fixed random targets drops 10× in 200 Adam steps."""
    torch.manual_seed(0)
    net = UNet((1, 8, 8), (8, 16), time_dim=16)
    x, target, t = randn(8, 1, 8, 8), randn(8, 1, 8, 8, seed=1), torch.full((8,), 0.5)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(200):
        loss = (net(x, t) - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, losses[::20]
