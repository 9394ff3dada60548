"""The feature extractors of the metrics: the registry and its contract, the shipped CNNs, pixels,
TorchScript, nn.Modules, classifiers of one's own, and genmodels.metrics as a leaf package."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT

import genmodels
from genmodels.cli import main
from genmodels.data import load_images, to_unit
from genmodels.errors import InputError
from genmodels.metrics import (
    FeatureExtractor,
    class_index,
    embed_images,
    feature_extractor,
    feature_names,
    fid,
    fitting_features,
    frechet_distance,
    image_features,
    mnist_features,
    mnist_features_and_labels,
    module_features,
    pixel_features,
    register_feature_source,
    register_features,
)
from genmodels.metrics import features as features_module

METRICS_DIR = ROOT / "genmodels" / "metrics"
FORBIDDEN = ("genmodels.models", "genmodels.train", "genmodels.io", "genmodels.pipelines")


@pytest.fixture(scope="module")
def mnist_test(data_root):
    return load_images("mnist", "test", data_root).images


def grey_32(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 32×32 grey uint8 images with labels 0..3: a bright quadrant per class, noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    images = rng.integers(0, 60, (n, 32, 32))
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        images[i, 16 * row:16 * row + 16, 16 * col:16 * col + 16] += 180
    return images.astype(np.uint8), labels.astype(np.int64)


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory) -> Path:
    """A small CNN classifier trained a few steps on 200 32×32 grey images of 4 classes."""
    folder = tmp_path_factory.mktemp("classifier32")
    images, labels = grey_32(200)
    np.savez(folder / "train.npz", images=images, labels=labels)
    config = folder / "config.toml"
    config.write_text('[model]\nkind = "classifier"\nnet = "cnn"\nchannels = [8]\n'
                      'feature_dim = 16\nnum_classes = 4\n'
                      f'[data]\nname = "array"\npath = "{folder / "train.npz"}"\n'
                      '[train]\nbatch_size = 32\nmax_steps = 20\nprogress = false\n'
                      'device = "cpu"\nlog_every = 10\ncheckpoint_every = 20\n')
    out = folder / "run"
    assert main(["train", str(config), "--out", str(out)]) == 0
    return out


# --- the registry and its contract ----------------------------------------------------------
def test_the_registry_names_its_entries_and_declares_their_input():
    assert feature_names() == ["mnist-cnn", "fashion-cnn", "pixels", "classifier:RUN",
                               "torchscript:FILE"]
    for name, dataset in (("mnist-cnn", "mnist"), ("fashion-cnn", "fashion")):
        cnn = feature_extractor(name)
        assert (cnn.input_shape, cnn.feature_dim, cnn.value_range) == ((1, 28, 28), 128, (0, 1))
        assert cnn.per_channel and cnn.has_head and cnn.num_classes == 10
        assert dataset in cnn.trained_on
    assert "stacked_mnist" in feature_extractor("mnist-cnn").trained_on
    pixels = feature_extractor("pixels")
    assert pixels.input_shape is None and pixels.feature_dim is None and not pixels.has_head
    assert feature_extractor("mnist-cnn") is feature_extractor("mnist-cnn")  # built once
    assert feature_extractor("mnist") is feature_extractor("mnist-cnn")  # the name fid knew
    with pytest.raises(InputError, match="unknown features 'inception'; choose one of mnist-cnn"):
        feature_extractor("inception")
    with pytest.raises(InputError, match="need a FILE after the colon"):
        feature_extractor("torchscript:")


@pytest.mark.parametrize("fields, message", [
    ({"name": ""}, "name must be a non-empty string"),
    ({"embed": 3}, "embed must map images to features"),
    ({"input_shape": (28, 28)}, r"input_shape must be \(C, H, W\)"),
    ({"input_shape": (3, 28, 28), "per_channel": True}, r"per_channel needs input_shape \(1"),
    ({"feature_dim": 0}, "feature_dim must be a positive int"),
    ({"value_range": (1.0, 0.0)}, "value_range must be"),
    ({"num_classes": 10}, "a head needs num_classes"),
    ({"head": torch.nn.Identity()}, "a head needs num_classes"),
    ({"head": torch.nn.Identity(), "num_classes": 1}, "num_classes >= 2"),
    ({"trained_on": "mnist"}, "trained_on must be a tuple"),
])
def test_a_bad_extractor_is_refused_at_construction(fields, message):
    with pytest.raises(InputError, match=message):
        FeatureExtractor(**{"name": "bad", "embed": torch.nn.Flatten(), **fields})


def test_registration_checks_names_and_factories(monkeypatch):
    monkeypatch.setattr(features_module, "EXTRACTORS", dict(features_module.EXTRACTORS))
    monkeypatch.setattr(features_module, "SOURCES", dict(features_module.SOURCES))
    with pytest.raises(ValueError, match="already registered"):
        register_features("pixels", lambda device: None)
    with pytest.raises(ValueError, match="without ':'"):
        register_features("my:features", lambda device: None)
    with pytest.raises(ValueError, match="must be callable"):
        register_feature_source("mine", "not a loader")
    register_features("not-an-extractor", lambda device: torch.nn.Flatten())
    with pytest.raises(TypeError, match="not a FeatureExtractor"):
        feature_extractor("not-an-extractor")
    register_feature_source("flat", lambda argument, device: FeatureExtractor(
        f"flat:{argument}", torch.nn.Flatten(), feature_dim=int(argument)))
    assert "flat:PATH" in feature_names()
    assert embed_images(torch.zeros(2, 1, 4, 4), "flat:16").features.shape == (2, 16)
    with pytest.raises(InputError, match=r"returned \(2, 16\).*must return float features "
                                         r"\(2, 15\)"):
        embed_images(torch.zeros(2, 1, 4, 4), "flat:15")  # declared 15, gives 16


def test_shipped_weights_are_checked(tampered_weights, monkeypatch):
    monkeypatch.setattr(features_module, "WEIGHTS", tampered_weights)
    features_module._named.cache_clear()
    try:
        with pytest.raises(features_module.WeightsError, match="does not match the sha256"):
            feature_extractor("mnist-cnn")
    finally:
        features_module._named.cache_clear()


def test_the_card_is_checked_against_the_folders_model_sha256_too(tmp_path):
    """The shipped CNNs are export folders: their card's sha256 must match model.safetensors
    and the sha256 that model.sha256 gives, or they are refused with one clear error."""
    import shutil

    folder = tmp_path / "mnist_cnn"
    shutil.copytree(features_module.WEIGHTS / "mnist_cnn", folder)
    shutil.copy(features_module.WEIGHTS / "mnist_cnn.json", tmp_path / "mnist_cnn.json")
    verified = features_module.verified_weights
    assert verified(folder) == folder
    (folder / "model.sha256").write_text(f"{'0' * 64}  model.safetensors\n")
    with pytest.raises(features_module.WeightsError,
                       match=r"model.sha256 gives another sha256 than mnist_cnn.json; "
                             r"reinstall genmodels"):
        verified(folder)
    (folder / "model.sha256").unlink()
    with pytest.raises(features_module.WeightsError, match="no model.sha256.*reinstall"):
        verified(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(features_module.WeightsError, match="model.safetensors is missing"):
        verified(folder)


# --- the shipped CNNs, pixels ---------------------------------------------------------------
@pytest.mark.parametrize("name, dataset", [("mnist-cnn", "mnist"), ("fashion-cnn", "fashion")])
def test_shipped_features_are_the_classifiers_features(name, dataset, data_root):
    images = load_images(dataset, "test", data_root).images[:64]  # uint8
    model = genmodels.classifier(dataset)
    embedding = embed_images(images, name, batch_size=20)
    torch.testing.assert_close(embedding.features, model.features(to_unit(images)),
                               rtol=1e-4, atol=1e-5)  # batch norm folded: float32 rounding
    assert torch.equal(embedding.labels[:, 0], model.predict(to_unit(images)))
    assert embedding.num_image_classes == 10


def test_mnist_cnn_goes_channel_by_channel(mnist_test):
    images = mnist_test[:6]
    stacked = torch.cat([images[:3], images[3:]], dim=1)[:, [0, 1, 1]]  # (3, 3, 28, 28)
    embedding = embed_images(stacked, "mnist-cnn", batch_size=2)
    single = embed_images(stacked[:, 1:2], "mnist-cnn")
    assert embedding.features.shape == (3, 384) and embedding.labels.shape == (3, 3)
    torch.testing.assert_close(embedding.features[:, 128:256], single.features)
    a, b, c = embedding.labels.T
    assert torch.equal(embedding.classes, 100 * a + 10 * b + c)  # the Stacked MNIST mode
    assert embedding.num_image_classes == 1000
    assert torch.equal(class_index(torch.tensor([[1, 2], [3, 0]]), 4), torch.tensor([6, 12]))
    features, digits = mnist_features_and_labels(stacked, batch_size=2)
    assert torch.equal(features, embedding.features) and torch.equal(digits, embedding.labels)
    torch.testing.assert_close(image_features(images), mnist_features(to_unit(images)))


def test_pixels_any_size():
    images = torch.randint(0, 256, (5, 3, 10, 6), dtype=torch.uint8)  # d = 180
    embedding = embed_images(images, "pixels", batch_size=2)
    assert embedding.labels is None and embedding.classes is None
    torch.testing.assert_close(embedding.features, to_unit(images).flatten(1), rtol=0, atol=0)
    torch.testing.assert_close(pixel_features(images), embedding.features)
    assert fid(images, images.flip(0), "pixels").value == pytest.approx(
        frechet_distance(embedding.features, embedding.features.flip(0)).value, rel=1e-12)


def test_features_that_do_not_fit_say_which_do(mnist_test):
    with pytest.raises(InputError, match=r"mnist-cnn takes 28×28 images, each channel on its "
                                         r"own, not 1×32×32; features that fit 1×32×32 "
                                         r"images: pixels, classifier:RUN, torchscript:FILE"):
        embed_images(torch.zeros(2, 1, 32, 32, dtype=torch.uint8), "mnist-cnn")
    with pytest.raises(InputError, match="mnist-cnn was trained on mnist, stacked_mnist images, "
                                         "not fashion; features that fit fashion images: "
                                         "fashion-cnn, pixels"):
        embed_images(mnist_test[:2], "mnist-cnn", dataset="fashion")
    assert fitting_features((3, 28, 28), "stacked_mnist")[:2] == ["mnist-cnn", "pixels"]


# --- modules, TorchScript, classifiers of one's own -----------------------------------------
class Pool(torch.nn.Module):
    """4×4 average pooling of 32×32 images: 64 C features."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(x, 4).flatten(1)


def test_an_nn_module_maps_images_to_features():
    images = torch.rand(7, 1, 32, 32)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1024, 5)).eval()
    embedding = embed_images(images, linear, batch_size=3)
    with torch.no_grad():
        torch.testing.assert_close(embedding.features, linear(images))
    torch.testing.assert_close(module_features(images, Pool()), Pool()(images))
    with pytest.raises(InputError, match=r"features Sequential failed on images of shape "
                                         r"\(1, 28, 28\).*give images of the size they take"):
        embed_images(torch.rand(2, 1, 28, 28), linear)
    scaled = FeatureExtractor("signed", torch.nn.Flatten(), value_range=(-1.0, 1.0))
    torch.testing.assert_close(embed_images(images, scaled).features, 2 * images.flatten(1) - 1)


def test_torchscript_round_trip(tmp_path):
    path = tmp_path / "pool.pt"
    torch.jit.save(torch.jit.script(Pool()), str(path))
    images = torch.rand(6, 3, 32, 32)
    embedding = embed_images(images, f"torchscript:{path}")
    torch.testing.assert_close(embedding.features, Pool()(images))
    assert embedding.features.shape == (6, 192) and embedding.labels is None
    flat = tmp_path / "flat.pt"
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1024, 4))
    torch.jit.save(torch.jit.script(linear), str(flat))
    with pytest.raises(InputError, match=f"features torchscript:{flat} failed on images of "
                                         r"shape \(1, 28, 28\)"):
        embed_images(torch.rand(2, 1, 28, 28), f"torchscript:{flat}")
    with pytest.raises(InputError, match="no such file"):
        feature_extractor(f"torchscript:{tmp_path / 'missing.pt'}")
    (tmp_path / "junk.pt").write_bytes(b"not a module")
    with pytest.raises(InputError, match="is not a TorchScript module"):
        feature_extractor(f"torchscript:{tmp_path / 'junk.pt'}")


def test_a_classifier_of_ones_own_gives_its_features_and_classes(classifier_run):
    images, labels = grey_32(40, seed=1)
    x = to_unit(torch.from_numpy(images)[:, None])
    extractor = feature_extractor(f"classifier:{classifier_run}")
    assert extractor.input_shape == (1, 32, 32) and extractor.feature_dim == 16
    assert extractor.num_classes == 4 and extractor.trained_on == ("array",)
    embedding = embed_images(x, extractor)
    model = genmodels.load(classifier_run)  # the model behind it, as genmodels loads it
    torch.testing.assert_close(embedding.features, model.features(x))
    assert torch.equal(embedding.classes, model.predict(x)) and embedding.num_image_classes == 4
    with pytest.raises(InputError, match="classifier features need a run of"):
        feature_extractor(f"classifier:{ROOT / 'samples' / 'checkpoints' / 'gan_ring'}")
    with pytest.raises(InputError, match="no checkpoint at"):
        feature_extractor(f"classifier:{classifier_run / 'missing.pt'}")


def test_evaluate_32x32_samples_on_a_classifier_of_their_data(classifier_run, tmp_path):
    samples, reference = (torch.from_numpy(grey_32(n, seed)[0])[:, None]
                          for n, seed in ((150, 2), (200, 3)))
    np.save(tmp_path / "samples.npy", samples.numpy())
    np.save(tmp_path / "refs.npy", reference.numpy())
    out = tmp_path / "classifier.json"
    assert main(["evaluate", str(tmp_path / "samples.npy"), "--reference",
                 str(tmp_path / "refs.npy"), "--features", f"classifier:{classifier_run}",
                 "--metrics", "fid,prdc,modes", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["features"] == f"classifier:{classifier_run}" and report["feature_dim"] == 16
    samples, reference = to_unit(samples), to_unit(reference)
    model = genmodels.load(classifier_run)
    direct = frechet_distance(model.features(reference), model.features(samples)).value
    assert report["fid"]["value"] == pytest.approx(direct, rel=1e-6)
    modes = report["modes"]
    assert modes["num_modes"] == 4 and modes["counts"] == torch.bincount(
        model.predict(samples), minlength=4).tolist()
    assert "| modes covered, samples / reference |" in out.with_suffix(".md").read_text()


# --- genmodels.metrics is a leaf ------------------------------------------------------------
def _imports(path: Path, package: str | None = None) -> list[tuple[str, int]]:
    """(module, line) of every import of a file of ``package`` (default: from its path), at
    any depth (inside functions too), relative imports resolved, ``from a import b`` as
    ``a.b``; calls of ``import_module`` and ``__import__`` as ``<dynamic>``. Imports under
    ``if TYPE_CHECKING:`` never run and are left out."""
    package = package or ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",
                                                                   "typing.TYPE_CHECKING"):
            node.body = []  # type-only imports: no run-time dependency
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", None)) in ("import_module", "__import__"):
            found.append(("<dynamic>", node.lineno))
    return found


def _module_file(name: str) -> Path | None:
    """The file of a genmodels module (or of the module holding a name imported from it)."""
    parts = name.split(".")
    while parts:
        base = ROOT.joinpath(*parts)
        for file in (base.with_suffix(".py"), base / "__init__.py"):
            if file.is_file():
                return file
        parts = parts[:-1]
    return None


def test_metrics_imports_no_model_training_io_or_pipeline_code():
    """Every module of genmodels/metrics, and every genmodels module they import, directly or
    not, at module or function level, stays clear of models, train, io and pipelines (the
    genmodels package's own __init__, the public facade run by any import, aside)."""
    files = sorted(METRICS_DIR.glob("*.py"))
    assert len(files) >= 10
    seen, queue, bad = set(), list(files), []
    while queue:
        file = queue.pop()
        if file in seen:
            continue
        seen.add(file)
        for name, line in _imports(file):
            if name == "<dynamic>" or name.startswith(FORBIDDEN) or name == "genmodels.load" \
                    or name == "genmodels.classifier":
                bad.append(f"{file.relative_to(ROOT)}:{line} imports {name}")
            elif name.startswith("genmodels."):
                target = _module_file(name)
                if target is not None and target != ROOT / "genmodels" / "__init__.py":
                    queue.append(target)
    assert not bad, "\n".join(bad)
    assert ROOT / "genmodels" / "nets" / "classifier.py" in seen  # the CNNs are read as nets


def test_the_import_check_sees_function_level_and_dynamic_imports_not_type_only_ones(tmp_path):
    module = tmp_path / "probe.py"
    module.write_text("import torch\nif TYPE_CHECKING:\n    from genmodels.config import Config\n\n"
                      "\ndef f():\n    from genmodels.io import classifier\n"
                      "    from ..models import MODELS\n    from . import kernels\n"
                      "    importlib.import_module('genmodels.train')\n")
    names = [name for name, _ in _imports(module, "genmodels.metrics")]
    assert names == ["torch", "genmodels.io.classifier", "genmodels.models.MODELS",
                     "genmodels.metrics.kernels", "<dynamic>"]


def test_the_inference_copy_of_a_cnn_computes_the_same_features_and_logits():
    """Batch norm folded into the layers and NHWC convolutions (issue 27): the CNN extractors
    run this copy (the shipped ones: test_shipped_features_are_the_classifiers_features); the
    plain net in eval mode is the reference."""
    from genmodels.nets import ConvNet

    torch.manual_seed(0)
    net = ConvNet((1, 28, 28), (8, 16), feature_dim=32, dropout=0.3)
    net.train()
    for _ in range(3):  # running statistics away from their initial 0 and 1
        net(torch.rand(64, 1, 28, 28) * 2)
    net.eval()
    fast = net.inference_copy()
    assert not any(isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d | torch.nn.Dropout)
                   for m in fast.modules())
    x = torch.rand(50, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(fast.features(x), net.features(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(fast(x), net(x), rtol=1e-4, atol=1e-5)
