"""The mode-collapse monitor: collapsed and perfect samplers on 2-D mixtures, MNIST and Stacked
MNIST; logging through a run; training unchanged by it, resume bit-identical with it."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from conftest import InterruptAt, assert_identical, metric_lines, tiny_config, weights

from genmodels.config import ConfigError
from genmodels.data import GaussianMixture2D, load_images, stacked_mnist, to_unit
from genmodels.train import Trainer
from genmodels.train.monitor import ModeCollapseWarning, ModeMonitor, perfect_coverage


class Mixture:
    """Samples a Gaussian mixture, or only its first ``modes`` components."""

    def __init__(self, mixture: GaussianMixture2D, modes: int | None = None) -> None:
        self.mixture = mixture
        if modes is not None:
            self.mixture = GaussianMixture2D(mixture.means[:modes], mixture.std)

    def sample(self, n, generator=None):
        return self.mixture.sample(n, generator)[0]


class Images:
    """Draws images (uint8) at random from a fixed set, as a generator would."""

    def __init__(self, images):
        self.images = images

    def sample(self, n, generator=None):
        index = torch.randint(len(self.images), (n,), generator=generator)
        return to_unit(self.images[index])


@pytest.fixture(scope="module")
def mnist_test(data_root):
    return load_images("mnist", "test", data_root)


def test_perfect_coverage_is_the_occupancy_law():
    assert perfect_coverage(8, 2500) == pytest.approx((8.0, 0.0), abs=1e-9)
    mean, std = perfect_coverage(1000, 2500)
    assert mean == pytest.approx(1000 * (1 - math.exp(-2.5)), rel=1e-3) and 7 < std < 8.5
    draws = torch.randint(1000, (200, 2500), generator=torch.Generator().manual_seed(0))
    covered = torch.tensor([float(len(row.unique())) for row in draws])
    assert abs(covered.mean() - mean) < 3 * std / math.sqrt(200)


def test_collapsed_ring_generator_is_detected(tmp_path):
    ring = GaussianMixture2D.ring()
    held_out = ring.sample(2500, torch.Generator().manual_seed(1))[0]
    monitor = ModeMonitor("ring", held_out, folder=tmp_path)
    with pytest.warns(ModeCollapseWarning, match=r"mode collapse: 2/8 modes at step 4000"):
        values = monitor.measure(Mixture(ring, modes=2), step=4000)
    assert values["modes"] == 2 and values["high_quality"] > 0.95
    assert values["kl"] == pytest.approx(math.log(4), abs=0.01)  # even over 2 of 8 modes
    assert (tmp_path / "monitor_0004000.png").is_file()


@pytest.mark.parametrize("name, modes", [("ring", 8), ("grid", 25)])
def test_perfect_sampler_passes(name, modes):
    mixture = getattr(GaussianMixture2D, name)()
    monitor = ModeMonitor(name, mixture.sample(2500, torch.Generator().manual_seed(1))[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModeCollapseWarning)
        values = monitor.measure(Mixture(mixture), step=10)
    assert values["modes"] == modes and values["high_quality"] >= 0.95 and values["kl"] < 0.01


def test_best_so_far_is_named_after_a_drop():
    ring = GaussianMixture2D.ring()
    monitor = ModeMonitor("ring", ring.sample(100)[0], samples=500)
    monitor.measure(Mixture(ring), step=1000)
    with pytest.warns(ModeCollapseWarning, match=r"3/8 modes at step 2000.*best so far 8 at "
                                                  r"step 1000"):
        monitor.measure(Mixture(ring, modes=3), step=2000)


def test_mnist_classes_all_or_one(mnist_test, tmp_path):
    # even and odd test images: the first and last 5,000 differ (NIST training vs test writers)
    images, labels = mnist_test.images[::2], mnist_test.labels[::2]
    monitor = ModeMonitor("mnist", mnist_test.images[1::2], samples=300, folder=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModeCollapseWarning)
        perfect = monitor.measure(Images(images), step=1)
    assert perfect["modes"] == 10 and perfect["kl"] < 0.05
    assert min(perfect[k] for k in ("precision", "recall", "coverage")) > 0.8
    assert 0.7 < perfect["density"] < 1.3
    with pytest.warns(ModeCollapseWarning, match=r"mode collapse: [12]/10 modes at step 2"):
        ones = monitor.measure(Images(images[labels == 1]), step=2)
    assert ones["modes"] <= 2 and ones["kl"] > 2.0  # log 10 = 2.30 for a single class
    assert ones["recall"] < 0.3 and ones["coverage"] < 0.3 and ones["vendi"] < perfect["vendi"]
    assert (tmp_path / "monitor_0000002.png").is_file()


def test_stacked_mnist_triples(mnist_test):
    images, labels = stacked_mnist(mnist_test.images, mnist_test.labels, 6000, seed=0)
    monitor = ModeMonitor("stacked_mnist", images[5000:], samples=200)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModeCollapseWarning)
        perfect = monitor.measure(Images(images[:5000]), step=1)
    expected, std = perfect_coverage(1000, 200)
    assert abs(perfect["modes"] - expected) < 4 * std
    # each channel's digits: 10 cells, sampling noise 9 / (2 · 200) = 0.02 a channel
    assert perfect["channel_kl"] < 0.2
    few = images[:5000][(labels[:5000] < 2).all(1)]  # the 8 triples of digits 0 and 1
    with pytest.warns(ModeCollapseWarning, match=r"mode collapse: \d/1000 modes"):
        collapsed = monitor.measure(Images(few), step=2)
    assert collapsed["modes"] <= 9
    assert collapsed["channel_kl"] == pytest.approx(3 * math.log(5), abs=0.3)  # 2 of 10 digits


RING_GAN = {"model": {"kind": "gan", "net": "mlp", "hidden": [16], "latent_dim": 4,
                      "n_critic": 2},
            "data": {"name": "ring", "toy_size": 1024},
            "train": {"epochs": 2, "ema": 0.9, "monitor_every": 16, "monitor_samples": 200,
                      "eval_every": 10**6}}


def test_a_run_logs_and_draws_the_monitor(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModeCollapseWarning)  # an untrained GAN collapses
        Trainer(tiny_config(**RING_GAN), tmp_path).fit()
    records = [r for r in metric_lines(tmp_path) if "monitor/modes" in r]
    assert [r["step"] for r in records] == [16, 32, 48, 64]
    assert {"monitor/high_quality", "monitor/modes"} <= set(records[0])
    assert (tmp_path / "figures" / "monitor_0000064.png").is_file()
    assert (tmp_path / "metrics.png").is_file()


def test_monitoring_does_not_change_training(tmp_path):
    config = tiny_config(**RING_GAN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModeCollapseWarning)
        Trainer(config, tmp_path / "on").fit()
    config.train.monitor_every = 0
    Trainer(config, tmp_path / "off").fit()
    for key in ("model", "ema"):
        assert_identical(weights(tmp_path / "on" / "final.pt", key),
                         weights(tmp_path / "off" / "final.pt", key))


def test_resume_with_the_monitor_is_bit_identical(tmp_path):
    config = tiny_config(**RING_GAN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModeCollapseWarning)
        Trainer(config, tmp_path / "full").fit()
        part = Trainer(config, tmp_path / "part", callbacks=[InterruptAt(37)])
        part.fit()
        assert part.interrupted and part.step == 37
        Trainer(config, tmp_path / "part", resume=True).fit()
    for key in ("model", "ema"):
        assert_identical(weights(tmp_path / "full" / "final.pt", key),
                         weights(tmp_path / "part" / "final.pt", key))
    assert metric_lines(tmp_path / "full") == metric_lines(tmp_path / "part")


def test_image_monitor_in_a_run(tmp_path, data_root):
    config = tiny_config(model={"kind": "gan", "net": "dcgan", "channels": [8, 16],
                                "latent_dim": 8},
                         data={"view": "symmetric", "subset": 256},
                         train={"max_steps": 4, "monitor_every": 2, "monitor_samples": 100})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModeCollapseWarning)
        Trainer(config, tmp_path, data_root=data_root).fit()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in lines if "monitor/modes" in r]
    assert [r["step"] for r in records] == [2, 4]
    assert {"monitor/kl", "monitor/precision", "monitor/recall", "monitor/density",
            "monitor/coverage", "monitor/vendi"} <= set(records[0])
    assert (tmp_path / "figures" / "monitor_0000004.png").is_file()


@pytest.mark.parametrize("sections, message", [
    ({"train": {"monitor_every": 10}}, "needs a model with sample"),
    ({"model": {"kind": "gan", "net": "dcgan", "channels": [8, 16]},
      "data": {"name": "fashion"}, "train": {"monitor_every": 10}}, "not 'fashion'"),
])
def test_monitor_config_errors(tmp_path, data_root, sections, message):
    with pytest.raises(ConfigError, match=message):
        Trainer(tiny_config(**sections), tmp_path, data_root=data_root)
