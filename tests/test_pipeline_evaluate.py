"""The evaluation pipeline: loading samples, reference sets, the report of real and collapsed
MNIST samples, and the files it writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import genmodels
from genmodels.cli import main
from genmodels.config import config_from_dict
from genmodels.data import GaussianMixture2D, load_images, to_unit
from genmodels.metrics import (
    fid,
    frechet_distance,
    image_features,
    mnist_features,
    mnist_features_and_labels,
    module_features,
    pixel_features,
)
from genmodels.models import MODELS
from genmodels.pipelines import (
    METRICS,
    as_images,
    evaluate_samples,
    load_samples,
    reference_images,
    samples_from_checkpoint,
    write_report,
)
from genmodels.train.checkpoint import save_checkpoint
from genmodels.train.trainer import MODEL_FORMAT

SMALL = {"n": 400, "ndb_bins": 20, "kid_subsets": 20, "kid_subset_size": 200}


@pytest.fixture(scope="module")
def mnist_test_images(data_root):
    return load_images("mnist", "test", data_root).images


@pytest.fixture(scope="module")
def reference(data_root):
    return reference_images("mnist-train", data_root, n=400)


@pytest.fixture(scope="module")
def real_report(data_root, reference):
    return evaluate_samples(reference_images("mnist-test", data_root, n=400, seed=1), reference,
                            **SMALL)


@pytest.fixture(scope="module")
def collapsed_report(data_root, reference):
    test = load_images("mnist", "test", data_root)
    return evaluate_samples(test.images[test.labels == 1][:400], reference, **SMALL)


def test_load_samples_from_pt_npy_and_png(tmp_path):
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    torch.save(to_unit(images), tmp_path / "samples.pt")
    np.save(tmp_path / "samples.npy", images[:, 0].numpy())  # (N, 28, 28) uint8
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(images[:, 0].numpy()):
        Image.fromarray(image).convert("RGB").save(folder / f"{i:03d}.png")  # gray as RGB
    for source in ("samples.pt", "samples.npy", "pngs"):
        loaded = load_samples(tmp_path / source)
        assert loaded.shape == (5, 1, 28, 28) and loaded.dtype == torch.float32
        torch.testing.assert_close(loaded, to_unit(images), rtol=0, atol=1e-7)
    rgb = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 3), dtype=np.uint8)
    np.save(tmp_path / "rgb.npy", rgb)  # channels last
    torch.testing.assert_close(load_samples(tmp_path / "rgb.npy"),
                               to_unit(torch.tensor(rgb).permute(0, 3, 1, 2)))


def test_feature_maps(mnist_test_images):
    images = mnist_test_images[:6]  # uint8
    pixels = pixel_features(images)
    assert pixels.shape == (6, 784) and pixels.dtype == torch.float32
    torch.testing.assert_close(module_features(images, torch.nn.Flatten(), batch_size=4), pixels)
    assert fid(images, mnist_test_images[6:12], "pixels").value == pytest.approx(
        frechet_distance(pixels, pixel_features(mnist_test_images[6:12])).value, rel=1e-12)
    # three channels: each one through the CNN on its own, features side by side
    stacked = torch.cat([images[:3], images[3:]], dim=1)[:, [0, 1, 1]]  # (3, 3, 28, 28)
    features, digits = mnist_features_and_labels(stacked, batch_size=2)
    single, single_digits = mnist_features_and_labels(stacked[:, 1:2])
    assert features.shape == (3, 384) and digits.shape == (3, 3)
    torch.testing.assert_close(features[:, 128:256], single)
    torch.testing.assert_close(digits[:, 1], single_digits[:, 0])
    torch.testing.assert_close(image_features(images), mnist_features(to_unit(images)))
    with pytest.raises(ValueError, match="features must be one of"):
        image_features(images, "inception")
    with pytest.raises(ValueError, match=r"images should be 28x28"):
        mnist_features(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))


def save_untrained(kind: str, path, data: dict | None = None, **model) -> None:
    """A model checkpoint as the Trainer writes it, with freshly initialised weights."""
    config = config_from_dict({"model": {"kind": kind, **model}, "data": data or {}})
    torch.manual_seed(0)
    network = MODELS[kind](config.model)
    save_checkpoint({"format": MODEL_FORMAT, "kind": kind, "config": config.to_dict(), "step": 0,
                     "model": network.state_dict(), "ema": None}, path)


def test_samples_from_checkpoint(tmp_path):
    save_untrained("vae", tmp_path / "vae.pt", latent_dim=3, hidden=[16])
    images = samples_from_checkpoint(tmp_path / "vae.pt", n=7, seed=1, batch_size=3)
    assert images.shape == (7, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    again = samples_from_checkpoint(tmp_path / "vae.pt", n=7, seed=1, batch_size=3)
    torch.testing.assert_close(images, again)
    assert not torch.equal(images, samples_from_checkpoint(tmp_path / "vae.pt", n=7, seed=2))
    save_untrained("classifier", tmp_path / "classifier.pt", net="mlp", hidden=[8])
    with pytest.raises(ValueError, match="holds a classifier, which cannot sample"):
        samples_from_checkpoint(tmp_path / "classifier.pt", n=2)


def test_bad_samples_raise(tmp_path):
    with pytest.raises(ValueError, match=r"float samples must lie in \[0, 1\]"):
        as_images(torch.full((2, 1, 28, 28), -0.5))
    with pytest.raises(ValueError, match="samples must be images"):
        as_images(torch.zeros(2, 32, 32))
    with pytest.raises(ValueError, match="NaN or Inf"):
        as_images(torch.full((2, 784), float("nan")))
    torch.save({"kind": "vae", "model": {}}, tmp_path / "final.pt")
    with pytest.raises(ValueError, match="is a model checkpoint"):
        load_samples(tmp_path / "final.pt")
    with pytest.raises(FileNotFoundError):
        load_samples(tmp_path / "missing.npy")
    with pytest.raises(ValueError, match="unknown reference"):
        reference_images("cifar-test")
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate_samples(torch.zeros(2, 1, 28, 28), torch.zeros(2, 1, 28, 28), ["is"])


def test_reference_images_are_seeded_subsets(data_root):
    first = reference_images("mnist-test", data_root, n=50, seed=3)
    assert first.shape == (50, 1, 28, 28) and 0 <= first.min() and first.max() <= 1
    torch.testing.assert_close(first, reference_images("mnist-test", data_root, n=50, seed=3))
    stacked = reference_images("stacked-mnist-test", data_root, n=20)
    assert stacked.shape == (20, 3, 28, 28)


def test_real_samples_score_like_real_data(real_report, data_root, reference):
    assert set(METRICS) <= set(real_report) and real_report["n_samples"] == 400
    samples = reference_images("mnist-test", data_root, n=400, seed=1)
    direct = frechet_distance(mnist_features(reference), mnist_features(samples)).value
    assert real_report["fid"]["value"] == pytest.approx(direct, rel=1e-9)
    assert real_report["prdc"]["precision"] > 0.85 and real_report["prdc"]["coverage"] > 0.85
    assert real_report["modes"]["modes_covered"] == 10
    assert real_report["ndb"]["different_bins"] <= 3
    json.dumps(real_report)  # JSON-able as it is


def test_collapsed_samples_score_badly(real_report, collapsed_report):
    real, collapsed = real_report, collapsed_report
    assert collapsed["fid"]["value"] > 20 * real["fid"]["value"]
    assert collapsed["kid"]["mean"] > 20 * abs(real["kid"]["mean"])
    assert collapsed["prdc"]["recall"] < 0.3 and collapsed["prdc"]["coverage"] < 0.3
    assert collapsed["vendi"]["samples"] < 0.3 * real["vendi"]["samples"]
    assert collapsed["ndb"]["different_bins"] > 10
    assert collapsed["modes"]["modes_covered"] <= 2
    assert collapsed["modes"]["kl_to_uniform"] > 2.0 > 0.1 > real["modes"]["kl_to_uniform"]


def test_write_report(collapsed_report, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    paths = write_report(collapsed_report, out / "report.json", out / "report.md",
                         out / "classes.png")
    assert [p.name for p in paths] == ["report.json", "classes.png", "report.md"]
    assert json.loads((out / "report.json").read_text()) == collapsed_report
    markdown = (out / "report.md").read_text()
    assert "| FID (FID-MNIST features, squared) |" in markdown
    assert "![class histogram](classes.png)" in markdown
    with Image.open(out / "classes.png") as image:
        assert image.size[0] > 100
    without_modes = {k: v for k, v in collapsed_report.items() if k != "modes"}
    with pytest.raises(ValueError, match="needs the 'modes' metric"):
        write_report(without_modes, out / "r.json", histogram_png=out / "h.png")


def test_evaluate_command_on_a_vae_checkpoint(tmp_path, data_root, capsys):
    save_untrained("vae", tmp_path / "vae.pt", latent_dim=3, hidden=[16])
    out = tmp_path / "eval" / "report.json"
    assert main(["evaluate", str(tmp_path / "vae.pt"), "--metrics", "held_out,fid,modes",
                 "--n", "300", "--importance-samples", "8", "--out", str(out),
                 "--data-root", data_root]) == 0
    report = json.loads(out.read_text())
    # held-out numbers: the single-sample -ELBO on the first --n test images, recomputed here
    # from the model's encode/decode distributions with another seed (Monte Carlo error << 1)
    model = genmodels.load(tmp_path / "vae.pt")
    x = to_unit(load_images("mnist", "test", data_root).images[:300])
    torch.manual_seed(123)
    with torch.no_grad():
        posterior = model.encode(x)
        z = posterior.rsample()
        prior = torch.distributions.Normal(0.0, 1.0)
        kl = (posterior.log_prob(z) - prior.log_prob(z).sum(1)).mean()
        nelbo = float(kl - model.decode(z).log_prob(x).mean())
    held_out = report["held_out"]
    assert held_out["examples"] == 300 and held_out["importance_samples"] == 8
    assert held_out["nelbo"] == pytest.approx(nelbo, abs=1.0)
    assert held_out["nll"] < held_out["nelbo"]  # the k = 8 bound is tighter
    # sample metrics: the model's samples against its dataset's test split
    samples = samples_from_checkpoint(tmp_path / "vae.pt", 300, seed=0)
    expected = evaluate_samples(samples, reference_images("mnist-test", data_root),
                                ["fid", "modes"], n=300, seed=0)
    assert report["reference"] == "mnist-test"
    assert report["fid"] == expected["fid"] and report["modes"] == expected["modes"]
    assert "ndb" not in report
    markdown = (tmp_path / "eval" / "report.md").read_text()
    assert "held-out nll (300 test examples)" in markdown and "FID" in markdown
    assert (tmp_path / "eval" / "report_classes.png").exists()


def test_evaluate_command_on_samples(tmp_path, data_root, mnist_test_images, capsys):
    np.save(tmp_path / "real.npy", mnist_test_images[:500].numpy())
    out = tmp_path / "report.json"
    assert main(["evaluate", str(tmp_path / "real.npy"), "--metrics", "modes,prdc",
                 "--out", str(out), "--data-root", data_root]) == 0
    report = json.loads(out.read_text())
    assert report["reference"] == "mnist-test" and report["n_samples"] == 500
    assert report["modes"]["modes_covered"] == 10 and report["prdc"]["precision"] > 0.9
    assert main(["evaluate", str(tmp_path / "real.npy"), "--metrics", "held_out",
                 "--out", str(out)]) == 2
    assert "holds samples, not a model" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "real.npy"), "--metrics", "fidd"]) == 2
    assert "unknown metrics ['fidd']" in capsys.readouterr().err


def test_evaluate_command_on_a_2d_mixture_model(tmp_path, data_root):
    save_untrained("gan", tmp_path / "gan.pt", data={"name": "ring"}, net="mlp", hidden=[8],
                   latent_dim=2)
    out = tmp_path / "report.json"
    assert main(["evaluate", str(tmp_path / "gan.pt"), "--metrics", "mixture",
                 "--out", str(out)]) == 0
    mixture = json.loads(out.read_text())["mixture"]
    # by hand: nearest of the 8 ring means, high quality within 3 sigma
    ring = GaussianMixture2D.ring()
    with torch.no_grad():
        points = genmodels.load(tmp_path / "gan.pt").sample(2500, torch.Generator().manual_seed(0))
    distance, nearest = torch.cdist(points, ring.means).min(1)
    good = distance < 3 * ring.std
    assert mixture["samples"] == 2500 and mixture["num_modes"] == 8
    assert mixture["high_quality"] == pytest.approx(good.float().mean().item())
    assert mixture["modes_captured"] == len(nearest[good].unique())
    assert main(["evaluate", str(tmp_path / "gan.pt"), "--metrics", "fid"]) == 2
