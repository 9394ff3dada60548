"""The evaluation pipeline: loading samples and reference sets of any size, the report of real
and collapsed MNIST samples, features chosen by the reference, metrics left out or warned about,
the files it writes, and ``genmodels evaluate`` on checkpoints and samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_features import Pool, grey_32

import genmodels
from genmodels.cli import main
from genmodels.config import config_from_dict
from genmodels.data import GaussianMixture2D, load_images, to_unit
from genmodels.errors import InputError
from genmodels.metrics import frechet_distance, mnist_features, pixel_features
from genmodels.models import MODELS
from genmodels.pipelines import (
    METRICS,
    as_8bit,
    evaluate_samples,
    load_samples,
    reference_images,
    reference_set,
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


def test_load_samples_from_files_of_any_size(tmp_path):
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    torch.save(to_unit(images), tmp_path / "samples.pt")
    np.save(tmp_path / "samples.npy", images[:, 0].numpy())  # (N, 28, 28) uint8
    np.savez(tmp_path / "samples.npz", images=images.numpy())
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(images[:, 0].numpy()):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    for source in ("samples.pt", "samples.npy", "samples.npz", "pngs"):
        loaded = load_samples(tmp_path / source)
        assert loaded.shape == (5, 1, 28, 28) and loaded.dtype == torch.float32
        torch.testing.assert_close(loaded, to_unit(images), rtol=0, atol=1e-7)
    rgb = np.random.default_rng(0).integers(0, 256, (2, 32, 24, 3), dtype=np.uint8)
    np.save(tmp_path / "rgb.npy", rgb)  # channels last, 32×24
    torch.testing.assert_close(load_samples(tmp_path / "rgb.npy"),
                               to_unit(torch.tensor(rgb).permute(0, 3, 1, 2)))


def save_untrained(kind: str, path, data: dict | None = None, input_shape=None,
                   train: dict | None = None, **model) -> None:
    """A model checkpoint as the Trainer writes it, with freshly initialised weights."""
    config = config_from_dict({"model": {"kind": kind, **model}, "data": data or {},
                               "train": train or {}})
    torch.manual_seed(0)
    network = MODELS[kind](config.model, input_shape)
    save_checkpoint({"format": MODEL_FORMAT, "kind": kind, "config": config.to_dict(), "step": 0,
                     "input_shape": list(network.input_shape), "model": network.state_dict(),
                     "ema": None}, path)


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
    np.save(tmp_path / "negative.npy", np.full((2, 28, 28), -0.5, dtype=np.float32))
    with pytest.raises(InputError, match=r"holds floats outside \[0, 1\]"):
        load_samples(tmp_path / "negative.npy")
    np.save(tmp_path / "flat.npy", np.zeros((2, 784), dtype=np.uint8))
    with pytest.raises(InputError, match="the accepted layouts are"):
        load_samples(tmp_path / "flat.npy")
    (tmp_path / "samples.txt").write_text("1 2 3")
    with pytest.raises(InputError, match="give a folder of PNG/JPEG files or a .npy/.npz/.pt"):
        load_samples(tmp_path / "samples.txt")
    torch.save({"kind": "vae", "model": {}}, tmp_path / "final.pt")
    with pytest.raises(InputError, match="is a model checkpoint"):
        load_samples(tmp_path / "final.pt")
    with pytest.raises(FileNotFoundError):
        load_samples(tmp_path / "missing.npy")
    with pytest.raises(InputError, match="unknown reference 'cifar-test': give one of mnist-"):
        reference_images("cifar-test")
    with pytest.raises(InputError, match="unknown metrics"):
        evaluate_samples(torch.zeros(2, 1, 28, 28), torch.zeros(2, 1, 28, 28), ["is"])
    with pytest.raises(InputError, match=r"samples: images should lie in \[0.0, 1.0\]"):
        evaluate_samples(torch.full((2, 1, 28, 28), float("nan")), torch.zeros(2, 1, 28, 28))
    with pytest.raises(InputError, match=r"the samples are 1×32×32 images \(C×H×W\) but the "
                                         r"reference images are 1×28×28"):
        evaluate_samples(torch.zeros(2, 1, 32, 32), torch.zeros(2, 1, 28, 28), ["ndb"])


def test_reference_images_are_seeded_subsets(data_root):
    first = reference_images("mnist-test", data_root, n=50, seed=3)
    assert first.shape == (50, 1, 28, 28) and 0 <= first.min() and first.max() <= 1
    torch.testing.assert_close(first, reference_images("mnist-test", data_root, n=50, seed=3))
    stacked = reference_set("stacked-mnist-test", data_root, n=20)
    assert stacked.images.shape == (20, 3, 28, 28) and stacked.dataset == "stacked_mnist"
    assert reference_set("fashion-test", data_root, n=5).dataset == "fashion"


def test_a_reference_of_ones_own_is_its_held_out_images(tmp_path):
    images, _ = grey_32(30)
    np.savez(tmp_path / "data.npz", images=images[:20], test_images=images[20:])
    np.save(tmp_path / "plain.npy", images)
    for split, rows in (("train", images[:20]), ("test", images[20:])):
        for i, image in enumerate(rows):
            (tmp_path / "tree" / split / "all").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(tmp_path / "tree" / split / "all" / f"{i:03d}.png")
    for source, expected in (("data.npz", images[20:]), ("plain.npy", images),
                             ("tree", images[20:])):
        ref = reference_set(str(tmp_path / source))
        assert ref.name == str(tmp_path / source) and ref.dataset is None
        torch.testing.assert_close(ref.images, to_unit(torch.from_numpy(expected)[:, None]))
    assert reference_set(str(tmp_path / "plain.npy"), n=7, seed=1).images.shape == (7, 1, 32, 32)


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
    assert "| FID (mnist-cnn features, squared) |" in markdown
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
    samples = as_8bit(samples_from_checkpoint(tmp_path / "vae.pt", 300, seed=0))
    expected = evaluate_samples(samples, reference_images("mnist-test", data_root),
                                ["fid", "modes"], n=300, seed=0)
    assert report["reference"] == "mnist-test" and report["features"] == "mnist-cnn"
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


# --- any data: features chosen by the reference, or given; what does not fit -----------------
def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genmodels evaluate: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def grey_files(tmp_path_factory) -> dict[str, Path]:
    """32×32 grey samples (150) and reference images (200) as .npy files."""
    folder = tmp_path_factory.mktemp("grey32")
    samples, _ = grey_32(150, seed=2)
    reference, _ = grey_32(200, seed=3)
    np.save(folder / "samples.npy", samples)
    np.save(folder / "refs.npy", reference)
    return {"samples": folder / "samples.npy", "refs": folder / "refs.npy"}


def grey_tensor(path: Path) -> torch.Tensor:
    return to_unit(torch.from_numpy(np.load(path))[:, None])


def test_evaluate_32x32_samples_on_pixels(grey_files, tmp_path, capsys):
    out = tmp_path / "pixels.json"
    assert main(["evaluate", str(grey_files["samples"]), "--reference", str(grey_files["refs"]),
                 "--features", "pixels", "--metrics", "fid,vendi,modes", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "genmodels evaluate: note: modes left out: the features pixels have no classifier " \
           "head (class logits); use features with one: classifier:RUN" in err
    report = json.loads(out.read_text())
    assert (report["features"], report["feature_dim"]) == ("pixels", 1024)
    assert report["image_size"] == [32, 32] and report["n_samples"] == 150
    assert "modes" not in report and "vendi" in report and report["notes"]
    samples, reference = grey_tensor(grey_files["samples"]), grey_tensor(grey_files["refs"])
    direct = frechet_distance(pixel_features(reference), pixel_features(samples)).value
    assert report["fid"]["value"] == pytest.approx(direct, rel=1e-9)
    assert any(w.startswith("fid: 150 images for 1024-d features") for w in report["warnings"])
    assert not (tmp_path / "pixels_classes.png").exists()


def test_evaluate_with_a_torchscript_module(grey_files, tmp_path):
    path = tmp_path / "pool.pt"
    torch.jit.save(torch.jit.script(Pool()), str(path))
    out = tmp_path / "script.json"
    assert main(["evaluate", str(grey_files["samples"]), "--reference", str(grey_files["refs"]),
                 "--features", f"torchscript:{path}", "--metrics", "fid,kid",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    samples, reference = grey_tensor(grey_files["samples"]), grey_tensor(grey_files["refs"])
    direct = frechet_distance(Pool()(reference), Pool()(samples)).value
    assert report["fid"]["value"] == pytest.approx(direct, rel=1e-9)
    assert report["feature_dim"] == 64 and report["kid"]["subsets"] == 1


def test_features_that_do_not_fit_are_one_error_line(grey_files, tmp_path, data_root, capsys,
                                                     mnist_test_images):
    np.save(tmp_path / "digits.npy", mnist_test_images[:50].numpy())
    out = str(tmp_path / "e.json")
    assert main(["evaluate", str(tmp_path / "digits.npy"), "--reference", "fashion-test",
                 "--features", "mnist-cnn", "--out", out, "--data-root", data_root]) == 2
    line = one_error_line(capsys)
    assert "mnist-cnn was trained on mnist, stacked_mnist images, not fashion; features that " \
           "fit fashion images: fashion-cnn, pixels, classifier:RUN, torchscript:FILE" in line
    assert main(["evaluate", str(grey_files["samples"]), "--reference", str(grey_files["refs"]),
                 "--features", "mnist-cnn", "--out", out]) == 2
    assert "mnist-cnn takes 28×28 images, each channel on its own, not 1×32×32; features " \
           "that fit 1×32×32 images: pixels, classifier:RUN" in one_error_line(capsys)
    assert main(["evaluate", str(grey_files["samples"]), "--out", out,
                 "--data-root", data_root]) == 2  # default reference: mnist-test, 28×28
    assert "the samples are 1×32×32 images (C×H×W) but the reference images are 1×28×28; " \
           "give a reference of the samples' size" in one_error_line(capsys)
    assert main(["evaluate", str(grey_files["samples"]), "--reference", "nowhere.npy",
                 "--out", out]) == 2
    assert "unknown reference 'nowhere.npy'" in one_error_line(capsys)
    assert main(["evaluate", str(grey_files["samples"]), "--features", "inception",
                 "--out", out]) == 2
    assert "unknown features 'inception'" in one_error_line(capsys)
    assert not (tmp_path / "e.json").exists()


def test_default_features_follow_the_reference(data_root, tmp_path, grey_files):
    from genmodels.pipelines import evaluate_source

    fashion = load_images("fashion", "test", data_root).images[:60]
    np.save(tmp_path / "fashion.npy", fashion.numpy())
    report = evaluate_source(tmp_path / "fashion.npy", "fashion-test", ["fid"], n=60,
                             data_root=data_root)
    assert report["features"] == "fashion-cnn" and report["notes"] == []
    stacked = reference_images("stacked-mnist-test", data_root, n=40, seed=5)
    torch.save(stacked, tmp_path / "stacked.pt")
    report = evaluate_source(tmp_path / "stacked.pt", "stacked-mnist-test", ["modes"], n=40,
                             data_root=data_root)
    assert report["features"] == "mnist-cnn" and report["modes"]["num_modes"] == 1000
    report = evaluate_source(grey_files["samples"], str(grey_files["refs"]), ["vendi"], n=60)
    assert report["features"] == "pixels"
    assert report["notes"][0].startswith("features: pixels, as genmodels ships no feature "
                                         "network for this data")


def test_small_samples_get_warnings(mnist_test_images, tmp_path, capsys, data_root):
    report = evaluate_samples(mnist_test_images[:5], mnist_test_images[5:10])
    warnings = report["warnings"]
    assert "prdc" not in report and "fid" in report and "kid" in report
    expected = ["fid: 5 images for 128-d features: the covariances are singular",
                "kid: 5 images are no more than the subset size 1000: one subset",
                "prdc left out: k = 5 nearest neighbours need more than 5 images of each set, "
                "got 5 samples and 5 reference images",
                "ndb: 5 images over 5 bins are 1.0 a bin, fewer than 10",
                "modes: 5 images for 10 classes are 0.5 a class, fewer than 10"]
    assert len(warnings) == len(expected)
    for text, start in zip(warnings, expected, strict=True):
        assert text.startswith(start), text
    assert not evaluate_samples(mnist_test_images[:400], mnist_test_images[400:800],
                                **{**SMALL, "ndb_bins": 10})["warnings"]
    np.save(tmp_path / "few.npy", mnist_test_images[:5].numpy())
    out = tmp_path / "few.json"
    assert main(["evaluate", str(tmp_path / "few.npy"), "--out", str(out),
                 "--data-root", data_root]) == 0
    assert "genmodels evaluate: warning: prdc left out" in capsys.readouterr().err
    assert json.loads(out.read_text())["warnings"][0].startswith("fid: 5 images")
    assert "Warnings:" in out.with_suffix(".md").read_text()


def test_a_run_of_ones_own_data_is_scored_against_its_held_out_images(tmp_path, capsys):
    images, _ = grey_32(80, seed=4)
    np.savez(tmp_path / "data.npz", images=images[:50], test_images=images[50:])
    save_untrained("vae", tmp_path / "vae.pt", input_shape=(1, 32, 32),
                   data={"name": "array", "path": str(tmp_path / "data.npz")},
                   train={"batch_size": 16}, latent_dim=3, hidden=[16])
    out = tmp_path / "run.json"
    assert main(["evaluate", str(tmp_path / "vae.pt"), "--metrics", "held_out,fid,ndb",
                 "--n", "30", "--importance-samples", "2", "--out", str(out)]) == 0
    assert "note: features: pixels, as genmodels ships no feature network" in \
        capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["reference"] == f"held-out images of the run (array {tmp_path / 'data.npz'})"
    assert report["held_out"]["examples"] == 30 and report["features"] == "pixels"
    samples = as_8bit(samples_from_checkpoint(tmp_path / "vae.pt", 30, seed=0))
    expected = evaluate_samples(samples, to_unit(torch.from_numpy(images[50:])[:, None]),
                                ["fid"], n=30, features="pixels")
    assert report["fid"] == expected["fid"] and report["n_reference"] == 30


def test_draw_samples_draws_in_the_models_batches(monkeypatch):
    """A conv GAN samples 128 at a time (its CPU optimum), an MLP one 1000; batch_size wins."""
    from genmodels.pipelines.run_evaluation import draw_samples

    def build(net: str, shape):
        config = config_from_dict({"model": {"kind": "gan", "net": net, "hidden": [8],
                                             "channels": [4, 8], "latent_dim": 4}})
        return MODELS["gan"](config.model, shape).eval()

    for model, expected in ((build("dcgan", (1, 8, 8)), 128), (build("mlp", (2,)), 1000)):
        assert model.sample_batch_size == expected
        sizes: list[int] = []

        def recorded(n, *, sizes=sizes, sample=model.sample, **options):
            sizes.append(n)
            return sample(n, **options)

        monkeypatch.setattr(model, "sample", recorded)
        assert len(draw_samples(model, expected + 5)) == expected + 5
        assert sizes == [expected, 5]
        sizes.clear()
        draw_samples(model, 30, batch_size=12)
        assert sizes == [12, 12, 6]
