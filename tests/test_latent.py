"""Latent tools: interpolation geometry, traversals, maps, arithmetic and quantization."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from genmodels.config import config_from_dict
from genmodels.latent import (
    class_arithmetic,
    class_means,
    diverse_samples,
    encode_dataset,
    huber_energy_to_target,
    image_table,
    interpolate,
    latent_map,
    law_sampler,
    lerp,
    quantize,
    scatter_codes,
    slerp,
    traverse,
)
from genmodels.metrics import energy_distance
from genmodels.models import MODELS
from genmodels.models.distributions import DiagonalGaussianMixture, standard_normal


class Echo(nn.Module):
    """A stand-in model whose 'images' are the codes themselves: decode(z).mean = z."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.anchor = nn.Parameter(torch.zeros(()))

    def encode(self, x):
        return SimpleNamespace(mean=x.flatten(1), variance=torch.zeros_like(x.flatten(1)))

    def decode(self, z):
        return SimpleNamespace(mean=z)


def test_lerp_and_slerp_geometry():
    z0, z1 = torch.tensor([2.0, 0.0, 0.0]), torch.tensor([0.0, 4.0, 0.0])
    path = slerp(z0, z1, 5)
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    torch.testing.assert_close(path.norm(dim=1), torch.linspace(2, 4, 5))  # norm interpolated
    angles = torch.atan2(path[:, 1] / 4, path[:, 0] / 2)  # on the great circle, equal steps
    unit = path / path.norm(dim=1, keepdim=True)
    steps = torch.arccos((unit[1:] * unit[:-1]).sum(1).clamp(-1, 1))
    torch.testing.assert_close(steps, torch.full((4,), math.pi / 8))
    assert angles.shape == (5,) and torch.all(path[:, 2] == 0)
    torch.testing.assert_close(lerp(z0, z1, 3)[1], (z0 + z1) / 2)
    torch.testing.assert_close(slerp(z0, 2 * z0, 3), lerp(z0, 2 * z0, 3))  # parallel fallback


def test_traverse_changes_one_coordinate_per_row():
    z = torch.tensor([0.5, -1.0, 2.0])
    table = traverse(Echo(3), z, dims=[0, 2], span=3.0, steps=7)
    assert table.shape == (2, 7, 3)
    torch.testing.assert_close(table[0, :, 0], torch.linspace(-3, 3, 7))
    assert torch.all(table[0, :, 1:] == z[1:]) and torch.all(table[1, :, :2] == z[:2])


def test_latent_map_in_2d_and_on_the_principal_plane():
    grid = latent_map(Echo(2), grid=5, span=2.0)
    assert grid.shape == (5, 5, 2)
    torch.testing.assert_close(grid[0, 0], torch.tensor([-2.0, 2.0]))
    torch.testing.assert_close(grid[-1, -1], torch.tensor([2.0, -2.0]))
    gen = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(6, 2, generator=gen))[0].T  # a plane in R^6
    codes = torch.randn(500, 2, generator=gen) * torch.tensor([3.0, 1.0]) @ basis + 1.0
    mapped = latent_map(Echo(6), codes, grid=4).reshape(-1, 6) - codes.mean(0)
    residual = mapped - (mapped @ basis.T) @ basis  # the map stays in the codes' plane
    assert residual.abs().max() < 1e-4
    with pytest.raises(ValueError, match="needs codes"):
        latent_map(Echo(6))


def test_class_means_and_arithmetic():
    codes = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 1, 2])
    means = class_means(codes, labels, num_classes=3)
    torch.testing.assert_close(means, torch.tensor([[1.0, 0.0], [0.0, 4.0], [1.0, 1.0]]))
    moved = class_arithmetic(Echo(2), codes[:1], means, source=0, target=1)
    torch.testing.assert_close(moved, torch.tensor([[-1.0, 4.0]]))
    with pytest.raises(ValueError, match="every class"):
        class_means(codes, labels, num_classes=4)


def test_huber_energy_matches_a_direct_sum():
    gen = torch.Generator().manual_seed(1)
    y, x = torch.randn(4, 3, generator=gen), torch.randn(9, 3, generator=gen)
    h = lambda a, b: ((a[:, None] - b[None]).pow(2).sum(-1) + 1e-3).sqrt()  # noqa: E731
    expected = 2 * h(y, x).mean() - h(y, y).mean()
    torch.testing.assert_close(huber_energy_to_target(y, x, eps=1e-3), expected)


def test_quantizing_four_separated_codes_puts_one_point_on_each():
    """The law of four equally likely codes at (±5, ±5): its best 4-point quantization is the
    four codes themselves, whereas 4 i.i.d. draws miss one of them with probability 29/32."""
    corners = torch.tensor([[5.0, 5.0], [5.0, -5.0], [-5.0, 5.0], [-5.0, -5.0]])
    means = corners.repeat_interleave(250, 0)
    sampler = law_sampler(DiagonalGaussianMixture(means, torch.zeros_like(means)))
    torch.testing.assert_close(sampler(8, torch.Generator().manual_seed(0)).abs(),
                               torch.full((8, 2), 5.0))  # no encoder noise: exactly the codes
    points = quantize(sampler, 4, 2, steps=300, batch=400, lr=0.2, seed=0)
    nearest = torch.cdist(points, corners).argmin(1)
    assert sorted(nearest.tolist()) == [0, 1, 2, 3]
    assert torch.cdist(points, corners).min(1).values.max() < 0.5


def test_quantization_beats_iid_draws_in_energy_distance():
    dim, k = 2, 10
    quantized, iid = [], []
    reference = torch.randn(20_000, dim, generator=torch.Generator().manual_seed(99))
    for seed in range(3):
        points = quantize(law_sampler(standard_normal(dim)), k, dim, steps=150, batch=300,
                          lr=0.1, seed=seed)
        draws = torch.randn(k, dim, generator=torch.Generator().manual_seed(100 + seed))
        quantized.append(float(energy_distance(points, reference[:4000])))
        iid.append(float(energy_distance(draws, reference[:4000])))
    assert sum(quantized) < 0.5 * sum(iid), (quantized, iid)


def test_with_a_real_vae(tmp_path):
    model = MODELS["vae"](config_from_dict(
        {"model": {"kind": "vae", "latent_dim": 3, "hidden": [16]}}).model)
    x = torch.rand(20, 1, 28, 28)
    codes = encode_dataset(model, x, batch_size=7)
    assert codes.shape == (20, 3)
    torch.testing.assert_close(codes, model.encode(x).mean)
    assert encode_dataset(model, x, sample=True).shape == (20, 3)
    assert interpolate(model, x[0], x[1], steps=6).shape == (6, 1, 28, 28)
    assert latent_map(model, codes, grid=3).shape == (3, 3, 1, 28, 28)
    samples = diverse_samples(model, 5, steps=5)
    assert samples.shape == (5, 1, 28, 28)
    assert diverse_samples(model, 4, target="posterior", images=x, steps=5).shape[0] == 4
    assert diverse_samples(model, 4, target="posterior_means", images=x, steps=5).shape[0] == 4
    with pytest.raises(ValueError, match="prior, posterior, posterior_means"):
        diverse_samples(model, 4, target="likelihood")
    assert image_table(traverse(model, codes[0], steps=4), tmp_path / "t.png").exists()
    assert scatter_codes(codes, torch.arange(20) % 10, tmp_path / "s.png").exists()
    with pytest.raises(ValueError, match="lerp or slerp"):
        interpolate(model, x[0], x[1], method="cubic")


def test_cli_writes_every_figure(tmp_path, data_root, capsys):
    from conftest import tiny_config

    from genmodels.cli import main
    from genmodels.train import Trainer

    config = tiny_config(model={"kind": "vae", "latent_dim": 4, "hidden": [32]},
                         train={"max_steps": 5})
    Trainer(config, tmp_path / "run", data_root=data_root).fit()
    for tool in ("interpolate", "traverse", "map", "scatter", "arithmetic", "quantize"):
        out = tmp_path / f"{tool}.png"
        assert main(["latent", tool, str(tmp_path / "run"), "--n", "300", "--out", str(out),
                     "--data-root", data_root]) == 0
        assert out.stat().st_size > 0
    assert "quantized samples cover" in capsys.readouterr().out
    assert main(["latent", "map", "genmodels/weights/mnist_cnn", "--data-root",
                 data_root]) == 2
    assert "latent tools need a VAE" in capsys.readouterr().err
