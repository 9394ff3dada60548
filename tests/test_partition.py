"""k-means (genmodels.metrics.kmeans) against SciPy and the defining fixed point, its cells
(genmodels.models.partition) and the cluster-conditioned GAN built on them
(genmodels.models.cells): sampling at the cells' shares, the critic's cell input, training,
resume and loading, checkpoints from before the cells had a module of their own."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ROOT, InterruptAt, assert_identical, tiny_config, weights
from scipy.cluster.vq import kmeans2
from scipy.special import logsumexp

from genmodels import load
from genmodels.config import ConfigError
from genmodels.metrics import kmeans
from genmodels.models import MODELS
from genmodels.models.partition import ChannelPartition, Partition
from genmodels.train import Trainer, load_checkpoint, save_checkpoint


def blobs(n_per: int, centres: torch.Tensor, scale: float, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.cat([c + scale * torch.randn(n_per, len(c), generator=gen) for c in centres])


def test_kmeans_finds_separated_blobs():
    centres = 10 * torch.eye(5)
    x = blobs(200, centres, 0.5)
    centroids, labels = kmeans(x, 5, seed=torch.Generator().manual_seed(1))
    truth = torch.arange(5).repeat_interleave(200)
    for k in range(5):  # each found cell is exactly one blob
        assert len(set(truth[labels == k].tolist())) == 1
    assert torch.cdist(centroids, centres).min(1).values.max() < 0.2


def test_kmeans_is_a_lloyd_fixed_point_no_worse_than_scipy():
    centres = 4 * torch.randn(20, 6, generator=torch.Generator().manual_seed(0))
    x = blobs(150, centres, 1.0)
    centroids, labels = kmeans(x, 12, max_iter=100, seed=torch.Generator().manual_seed(0),
                               chunk=700)
    assert torch.equal(labels, torch.cdist(x, centroids).argmin(1))  # nearest centroid
    for k in range(12):  # each centroid is the mean of its cell
        torch.testing.assert_close(centroids[k], x[labels == k].mean(0), atol=1e-5, rtol=1e-5)
    ours = float((x - centroids[labels]).pow(2).sum())
    theirs = []
    for seed in range(5):
        c, lab = kmeans2(x.double().numpy(), 12, iter=100, minit="++", seed=seed)
        theirs.append(float(((x.double().numpy() - c[lab]) ** 2).sum()))
    assert ours <= 1.02 * float(np.median(theirs))


def test_kmeans_rejects_more_cells_than_points():
    with pytest.raises(ValueError, match="1 <= k <= n"):
        kmeans(torch.randn(3, 2), 4)


def test_kmeans_on_fewer_distinct_points_than_cells():
    """Once every point sits on a centre, k-means++ takes uniformly random rows: the centres
    stay finite, every point lands on one (zero inertia), and a seed repeats the result."""
    x = torch.tensor([[0.0, 0.0], [5.0, 1.0], [-3.0, 2.0]]).repeat(4, 1)
    centres, labels = kmeans(x, 5, seed=3)
    assert torch.isfinite(centres).all()
    assert torch.equal(centres[labels], x)
    assert torch.equal(kmeans(x, 5, seed=3)[1], labels)
    assert torch.equal(kmeans(x, 5, seed=torch.Generator().manual_seed(3))[1], labels)


def test_partition_projects_on_the_principal_components_and_counts_shares():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 1, 4, 4, generator=gen) * torch.linspace(0.1, 3, 16).view(1, 1, 4, 4)
    partition = Partition(16, cells=7, components=5)
    labels = partition.fit(x, torch.Generator().manual_seed(0))
    flat = x.flatten(1).double().numpy()
    _, _, vt = np.linalg.svd(flat - flat.mean(0), full_matrices=False)
    overlap = np.abs(vt[:5] @ partition.projection.double().numpy())
    np.testing.assert_allclose(overlap, np.eye(5), atol=1e-4)  # the top 5 components, in order
    np.testing.assert_allclose(partition.share.numpy(),
                               np.bincount(labels.numpy(), minlength=7) / 2000, atol=1e-7)
    assert torch.equal(partition.assign(x), labels)


def test_partition_assigns_in_float32_under_autocast():
    """bfloat16 codes would move points near a boundary into the next cell."""
    x = blobs(400, 3 * torch.randn(30, 20, generator=torch.Generator().manual_seed(0)), 2.0)
    partition = Partition(20, cells=30, components=20)
    labels = partition.fit(x, torch.Generator().manual_seed(0))
    logits = partition.logits(x, 0.1)
    with torch.autocast("cpu", torch.bfloat16):
        assert torch.equal(partition.assign(x), labels)
        torch.testing.assert_close(partition.logits(x, 0.1), logits, rtol=0, atol=0)


def test_partition_draws_cells_at_their_shares():
    partition = Partition(4, cells=3)
    partition.share.copy_(torch.tensor([0.7, 0.2, 0.1]))
    cells = partition.draw(100_000, torch.Generator().manual_seed(0))
    freq = torch.bincount(cells, minlength=3).double() / 100_000
    sd = (partition.share.double() * (1 - partition.share.double()) / 100_000).sqrt()
    assert ((freq - partition.share.double()).abs() < 5 * sd).all()


def test_channel_partition_is_one_partition_of_the_channel_images():
    """Each channel of (n, 3, 4, 4) images gets the cell its single-channel image gets from a
    Partition fitted, with the same seed, on all the channel images (3n, 4, 4)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(600, 3, 4, 4, generator=gen) * torch.linspace(0.1, 3, 16).view(1, 1, 4, 4)
    x[:, 1] += 5  # the channels differ: the shared cells must still serve every one
    by_channel = ChannelPartition(3, 16, cells=6, components=5)
    labels = by_channel.fit(x, torch.Generator().manual_seed(0))
    single = Partition(16, cells=6, components=5)
    flat_labels = single.fit(x.flatten(0, 1), torch.Generator().manual_seed(0))
    assert labels.shape == (600, 3) and torch.equal(labels.flatten(), flat_labels)
    assert torch.equal(by_channel.assign(x), labels)
    torch.testing.assert_close(by_channel.logits(x, 0.1), single.logits(x.flatten(0, 1), 0.1))
    assert len(set(labels[:, 1].tolist()) & set(labels[:, 0].tolist())) == 0  # x[:, 1] apart
    by_channel.share.copy_(torch.tensor([0.5, 0.5, 0, 0, 0, 0]))
    drawn = by_channel.draw(20_000, torch.Generator().manual_seed(1))
    assert drawn.shape == (20_000, 3) and drawn.max() == 1
    joint = torch.bincount(drawn[:, 0] * 2 + drawn[:, 2], minlength=4).double() / 20_000
    assert (joint - 0.25).abs().max() < 0.02  # channels drawn independently


CONDITIONED = {"kind": "gan", "net": "dcgan", "channels": [8, 16], "latent_dim": 8,
               "clusters": 4, "pack": 2}


def test_conditioned_gan_samples_in_the_drawn_cells():
    model = MODELS["gan"](MODELS["gan"].Config(**{k: v for k, v in CONDITIONED.items()
                                                   if k != "kind"})).eval()
    model.cells.partition.share.copy_(torch.tensor([0.0, 0.0, 1.0, 0.0]))  # every draw: cell 2
    drawn = model.generate(6, torch.Generator().manual_seed(3))
    given = model.generate(6, torch.Generator().manual_seed(3), cells=torch.full((6,), 2))
    other = model.generate(6, torch.Generator().manual_seed(3), cells=torch.full((6,), 1))
    torch.testing.assert_close(drawn, given, rtol=0, atol=0)
    assert not torch.allclose(drawn, other)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    cells = torch.tensor([0, 1, 2, 3])  # the critic starts unconditioned, then sees each
    torch.testing.assert_close(model.judge(x, cells), model.judge(x))  # sample's cell and slot
    torch.nn.init.normal_(model.cells.critic_embedding.weight)
    a = model.judge(x, cells)
    assert not torch.allclose(a, model.judge(x, torch.tensor([1, 0, 2, 3])))
    assert a.shape == (2,)


def test_channel_cells_condition_on_one_cell_a_channel():
    """The critic's cell input is the sum of one embedding per (cell, place in the pack,
    channel), added to its first layer's output."""
    config = {k: v for k, v in CONDITIONED.items() if k != "kind"}
    model = MODELS["gan"](MODELS["gan"].Config(**config, channel_cells=True), (3, 28, 28))
    model.eval()
    assert model.cells.partition.groups == 3
    cells = torch.tensor([[0, 1, 2], [3, 3, 0], [1, 1, 1], [2, 0, 3]])
    x = model.generate(4, torch.Generator().manual_seed(0), cells=cells)
    assert x.shape == (4, 3, 28, 28)
    assert not torch.allclose(x, model.generate(4, torch.Generator().manual_seed(0),
                                                cells=cells[:, [1, 2, 0]]))
    torch.nn.init.normal_(model.cells.critic_embedding.weight)
    table = model.cells.critic_embedding.weight
    bias = torch.stack([sum(table[(int(cells[2 * p + place, c]) * 2 + place) * 3 + c]
                            for place in range(2) for c in range(3)) for p in range(2)])
    layers = model.critic.net
    packed = model.pack(x)
    by_hand = layers[1:](layers[0](packed) + bias.view(2, -1, 1, 1)).squeeze(1)
    torch.testing.assert_close(model.judge(x, cells), by_hand)
    model.cells.assign = lambda real: torch.tensor([[1, 2, 0], [1, 0, 3], [0, 3, 3], [1, 0, 1]])
    real, ordered = model.by_cell(torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 28, 28))
    assert real[:, 0, 0, 0].tolist() == [2, 3, 1, 0]  # lexicographic, the first channel leading
    assert ordered.tolist() == [[0, 3, 3], [1, 0, 1], [1, 0, 3], [1, 2, 0]]


def test_channel_cells_train_and_load_on_stacked_mnist(tmp_path, data_root):
    """The cell cross-entropy is over every channel image: its value matches the mean of the
    shared partition's cross-entropies of the three channels."""
    config = tiny_config(model={**CONDITIONED, "channel_cells": True,
                                "cell_weight": 1.0},
                         data={"name": "stacked_mnist", "view": "symmetric", "subset": 256},
                         train={"epochs": 1, "lr": 1e-3})
    trainer = Trainer(config, tmp_path, data_root=data_root)
    trainer.fit()
    model = load(tmp_path / "final.pt")
    partition = model.cells.partition
    assert partition.share.sum() == pytest.approx(1) and partition.groups == 3
    cells = torch.tensor([[0, 1, 2], [3, 2, 1]]).repeat(3, 1)
    with torch.no_grad():
        z = torch.randn(6, model.latent_dim, generator=torch.Generator().manual_seed(0))
        fake = model.generate(6, cells=cells, z=z)
        logits = partition.logits(fake, 0.1).view(6, 3, -1)
        per_channel = [torch.nn.functional.cross_entropy(logits[:, c], cells[:, c])
                       for c in range(3)]
        # the critic update's codes and fakes, reused by the generator's
        model._codes, model._fakes = (z, cells), fake
        losses = model.generator_loss((torch.zeros(6, 3, 28, 28),))
    assert float(losses["cell_cross_entropy"]) == pytest.approx(
        float(sum(per_channel) / 3), rel=1e-5)
    assert model.sample(4).shape == (4, 3, 28, 28)


@pytest.mark.parametrize("config", [{"channel_cells": True},
                                    {"channel_cells": True, "clusters": 3, "net": "mlp"}])
def test_channel_cells_need_clusters_and_images(config):
    with pytest.raises(ValueError, match="model.channel_cells = true needs model.clusters > 0"):
        MODELS["gan"](MODELS["gan"].Config(**config))


def test_cell_weight_needs_clusters():
    with pytest.raises(ValueError, match="model.cell_weight = 1.0 needs model.clusters > 0"):
        MODELS["gan"](MODELS["gan"].Config(net="mlp", hidden=[8], cell_weight=1.0))


def test_more_cells_than_training_examples_is_a_config_error(tmp_path, data_root):
    config = tiny_config(model={**CONDITIONED, "clusters": 100}, data={"subset": 64})
    with pytest.raises(ConfigError, match="model.clusters = 100 exceeds the 64 training"):
        Trainer(config, tmp_path, data_root=data_root)


def test_conditioned_gan_trains_resumes_and_loads(tmp_path, data_root):
    config = tiny_config(model=CONDITIONED, data={"view": "symmetric", "subset": 512},
                         train={"epochs": 2, "ema": 0.9, "lr": 1e-3})
    full = Trainer(config, tmp_path / "full", data_root=data_root)
    untrained = {k: v.clone() for k, v in full.model.state_dict().items()}
    full.fit()
    partition = full.model.cells.partition
    assert partition.share.sum() == pytest.approx(1) and (partition.share > 0).all()
    images = full.data.train.tensors[0][:512].float() / 127.5 - 1
    assert torch.equal(torch.bincount(partition.assign(images), minlength=4).float() / 512,
                       partition.share)  # the cells of the training images, at their shares
    for name in ("cells.generator_embedding.weight", "cells.critic_embedding.weight"):
        assert not torch.equal(untrained[name], full.model.state_dict()[name]), name
    part = Trainer(config, tmp_path / "part", data_root=data_root, callbacks=[InterruptAt(11)])
    part.fit()
    Trainer(config, tmp_path / "part", data_root=data_root, resume=True).fit()
    for key in ("model", "ema"):
        assert_identical(weights(tmp_path / "full" / "final.pt", key),
                         weights(tmp_path / "part" / "final.pt", key))
    loaded = load(tmp_path / "full" / "final.pt")
    torch.testing.assert_close(loaded.cells.partition.share, partition.share)
    images = loaded.sample(8, torch.Generator().manual_seed(0))
    assert images.shape == (8, 1, 28, 28) and 0 <= images.min() and images.max() <= 1


OLD_KEYS = {"partition.": "cells.partition.", "cell_embedding.": "cells.generator_embedding.",
            "critic_cell_embedding.": "cells.critic_embedding."}


def old_key(key: str) -> str:
    """The name of a cell key in checkpoints from before the cells had a module."""
    for old, new in OLD_KEYS.items():
        if key.startswith(new):
            return old + key[len(new):]
    return key


def test_checkpoints_with_the_old_cell_keys_load(tmp_path):
    """A conditioned checkpoint written before CellConditioning (keys ``partition.*``,
    ``cell_embedding.weight``, ``critic_cell_embedding.weight``, in the weights and in the EMA)
    loads with genmodels.load. The shipped MNIST GAN, written by that code, was exported
    (samples/checkpoints/gan_mnist/) after loading: it holds the keys of today."""
    config = tiny_config(model={"kind": "gan", "net": "mlp", "hidden": [8], "clusters": 3,
                                "pack": 2, "cell_weight": 0.5},
                         data={"name": "ring", "toy_size": 256},
                         train={"max_steps": 3, "ema": 0.5, "batch_size": 32})
    Trainer(config, tmp_path / "run").fit()
    state = load_checkpoint(tmp_path / "run" / "final.pt")
    assert {"cells.partition.share", "cells.generator_embedding.weight",
            "cells.critic_embedding.weight"} <= set(state["model"])
    for key in ("model", "ema"):
        state[key] = {old_key(k): v for k, v in state[key].items()}
    assert {"partition.share", "cell_embedding.weight", "critic_cell_embedding.weight"} <= \
        set(state["ema"])
    save_checkpoint(state, tmp_path / "old.pt")
    for ema in (True, False):
        assert_identical(load(tmp_path / "old.pt", ema=ema).state_dict(),
                         load(tmp_path / "run" / "final.pt", ema=ema).state_dict())
    resumable = load_checkpoint(tmp_path / "run" / "checkpoint.pt")  # a run of that code
    for key in ("model", "ema"):
        resumable[key] = {old_key(k): v for k, v in resumable[key].items()}
    save_checkpoint(resumable, tmp_path / "run" / "checkpoint.pt")
    config.train.max_steps = 5
    resumed = Trainer(config, tmp_path / "run", resume=True)
    resumed.fit()
    assert resumed.step == 5 and "cells.critic_embedding.weight" in resumed.ema.state_dict()

    from safetensors.torch import load_file

    shipped = ROOT / "samples" / "checkpoints" / "gan_mnist"
    saved = load_file(shipped / "model.safetensors")
    assert "cells.generator_embedding.weight" in saved
    model = load(shipped)
    assert model.cells is not None
    assert_identical(model.state_dict(), saved)
    assert model.sample(2).shape == (2, 1, 28, 28)


def test_cell_weight_adds_the_cell_cross_entropy_by_hand():
    """G's loss = adversarial + λ × cross-entropy of softmax(-|P(x - μ) - c_k|² / (0.1 s))."""
    config = MODELS["gan"].Config(net="mlp", hidden=[8], clusters=3, cell_weight=0.5)
    model = MODELS["gan"](config)
    points = blobs(50, torch.tensor([[0.0, 4.0], [4.0, 0.0], [-4.0, -4.0]]), 1.0)
    model.cells.partition.fit(points, torch.Generator().manual_seed(0))
    real = points[torch.randperm(150, generator=torch.Generator().manual_seed(1))[:16]]
    torch.manual_seed(0)
    model.critic_loss((real,))  # keeps its fakes and their cells for the generator update
    losses = {k: float(v.detach()) for k, v in model.generator_loss((real,)).items()}

    cells = model.cells.assign(real).sort().values.numpy()  # packs hold one cell first
    torch.manual_seed(0)
    with torch.no_grad():
        fake = model.generate(16, cells=torch.from_numpy(cells))
        adversarial = float(torch.nn.functional.softplus(-model.judge(fake,
                                                                     torch.from_numpy(cells))).mean())
    p = model.cells.partition
    codes = (fake.double() - p.mean.double()).numpy() @ p.projection.double().numpy()
    squared = ((codes[:, None] - p.centroids.double().numpy()[None]) ** 2).sum(-1)
    logits = -squared / (0.1 * float(p.spread))
    cross_entropy = np.mean(logsumexp(logits, axis=1) - logits[np.arange(16), cells])
    assert losses["cell_cross_entropy"] == pytest.approx(cross_entropy, rel=1e-4)
    assert losses["loss"] == pytest.approx(adversarial + 0.5 * cross_entropy, rel=1e-4)
