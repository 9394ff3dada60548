"""Any image size, end to end: nets of every kind at sizes other than 28×28, checkpoints that
store their shape, and your own images (a folder of 48×48 RGB PNGs in class subfolders, an .npy
of 32×32 grey images) through `genmodels train`, `sample`, `evaluate` and `inpaint`."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels import load
from genmodels.checks import ConfigError
from genmodels.cli import main
from genmodels.config import config_from_dict
from genmodels.models import MODELS

GENMODELS = Path(__file__).resolve().parents[1] / "genmodels"
NETS = {  # kind -> model options of a tiny net of each family
    "vae_mlp": ("vae", {"net": "mlp", "hidden": [16], "latent_dim": 3}),
    "vae_conv": ("vae", {"net": "conv", "channels": [4, 8], "hidden": [16], "latent_dim": 3}),
    "vamp_vae": ("vamp_vae", {"net": "mlp", "hidden": [16], "latent_dim": 3,
                              "pseudo_inputs": 4}),
    "gan_dcgan": ("gan", {"net": "dcgan", "channels": [4, 8], "latent_dim": 3}),
    "classifier_cnn": ("classifier", {"net": "cnn", "channels": [4, 8], "feature_dim": 8,
                                      "num_classes": 3}),
    "classifier_mlp": ("classifier", {"net": "mlp", "hidden": [16], "num_classes": 3}),
}


def build(name: str, shape: tuple[int, ...]):
    kind, options = NETS[name]
    return MODELS[kind](config_from_dict({"model": {"kind": kind, **options}}).model, shape)


@pytest.mark.parametrize("shape", [(3, 48, 48), (1, 32, 32), (1, 24, 40)])
@pytest.mark.parametrize("name", sorted(NETS))
def test_every_net_takes_the_shape_of_its_data(name, shape):
    model = build(name, shape).eval()
    x = torch.rand(4, *shape)
    if name.startswith("classifier"):
        assert model(x).shape == (4, 3)
        assert model.features(x).shape[0] == 4
    elif name.startswith("gan"):
        assert model.sample(4).shape == (4, *shape)
        assert model.judge(x * 2 - 1).shape == (4,)
    else:
        assert model.sample(4).shape == (4, *shape)
        assert model.reconstruct(x).shape == (4, *shape)
        assert model.log_likelihood(x.round(), 3).shape == (4,)
    assert model.input_shape == shape


def test_a_size_the_conv_stack_cannot_take_names_the_sizes_it_can():
    with pytest.raises(ConfigError, match=r"multiples of 4 .*30×30.*data.size"):
        build("vae_conv", (1, 30, 30))
    with pytest.raises(ConfigError, match=r"multiples of 4 .*30×30"):
        build("gan_dcgan", (1, 30, 30))
    with pytest.raises(ConfigError, match="takes images"):
        build("vae_mlp", (2,))


def test_28_appears_only_in_mnist_specific_code():
    """The number 28 is not hard-coded in nets, models, pipelines or the trainer."""
    allowed = {"data/images.py", "data/stacked.py", "data/build.py", "metrics/modes.py", "io.py",
               "metrics/features.py", "models/base.py", "models/gan.py",  # MNIST defaults
               "models/denoising.py",  # MNIST defaults
               "utils.py"}  # checkpoint_input_shape: checkpoints of before were all 28×28
    for path in GENMODELS.rglob("*.py"):
        relative = path.relative_to(GENMODELS).as_posix()
        if relative in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in (28, 784):
                raise AssertionError(f"{relative}:{node.lineno} hard-codes {node.value}")


def test_config_is_a_leaf_that_imports_no_model():
    for name in ("config.py", "checks.py", "errors.py"):
        tree = ast.parse((GENMODELS / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("genmodels.models", "genmodels.train",
                                                   "genmodels.data")), (name, node.module)


def test_old_in_channels_key_says_what_replaced_it():
    with pytest.raises(ConfigError, match="in_channels is no longer a setting.*data.channels"):
        config_from_dict({"model": {"kind": "vae", "in_channels": 1}})


# --- your own images, end to end ------------------------------------------------------------

def _folder_of_pngs(root: Path, n: int = 48) -> Path:
    """48×48 RGB PNGs in two class folders: class 0 dark with a red bar, class 1 bright."""
    rng = np.random.default_rng(0)
    for i in range(n):
        label = i % 2
        pixels = rng.integers(0, 80, (48, 48, 3)) + 150 * label
        pixels[10:20, :, 0] = 255 * (1 - label)
        folder = root / "train" / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8), "RGB").save(folder / f"{i:03d}.png")
    for i in range(8):
        label = i % 2
        folder = root / "test" / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 80, (48, 48, 3)) + 150 * label
        Image.fromarray(pixels.astype(np.uint8), "RGB").save(folder / f"t{i:03d}.png")
    return root


def _npy_of_grey(path: Path, n: int = 64) -> Path:
    """(n, 32, 32) uint8 grey images: blobs at one of two places."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 40, (n, 32, 32)).astype(np.uint8)
    for i in range(n):
        top = 4 if i % 2 else 18
        images[i, top:top + 10, 8:24] = 230
    np.save(path, images)
    return path


def _train(tmp_path: Path, name: str, kind: str, data: list[str], model: list[str],
           view: str) -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text(f'[model]\nkind = "{kind}"\n')
    out = tmp_path / name
    overrides = [*data, *model, f"data.view={view}", "train.max_steps=3", "train.batch_size=8",
                 "train.progress=false", "data.eval_batch_size=16"]
    assert main(["train", str(config), "--out", str(out), *overrides]) == 0
    return out


@pytest.fixture(scope="module")
def own_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    grey = np.load(_npy_of_grey(root / "grey.npy"))  # an .npy has no labels: the classifier
    np.savez(root / "grey_labelled.npz", images=grey,  # trains on the same images with theirs
             labels=np.arange(len(grey)) % 2)
    folder = ["data.name=folder", f"data.path={_folder_of_pngs(root / 'pngs')}"]
    return {"folder": (folder, folder, (3, 48, 48)),
            "array": (["data.name=array", f"data.path={root / 'grey.npy'}"],
                      ["data.name=array", f"data.path={root / 'grey_labelled.npz'}"],
                      (1, 32, 32))}


@pytest.mark.parametrize("source", ["folder", "array"])
def test_own_images_through_train_sample_and_inpaint(tmp_path, own_data, source, capsys):
    data, labelled, shape = own_data[source]
    vae = _train(tmp_path, "vae", "vae", data, ["model.net=conv", "model.channels=[4,8]",
                                                "model.latent_dim=4", "model.hidden=[16]"],
                 "unit")
    gan = _train(tmp_path, "gan", "gan", data, ["model.channels=[4,8]", "model.latent_dim=4"],
                 "symmetric")
    assert load(vae).input_shape == shape and load(gan).input_shape == shape
    classifier = _train(tmp_path, "cnn", "classifier", labelled,
                        ["model.channels=[4,8]", "model.num_classes=2"], "unit")
    assert load(classifier).input_shape == shape
    for run in (vae, gan):
        out = tmp_path / f"{run.name}_samples.npy"
        assert main(["sample", str(run), "--n", "6", "--out", str(out)]) == 0
        assert np.load(out).shape == (6, *shape)
        assert main(["sample", str(run), "--n", "4", "--out", str(out.with_suffix(".png"))]) == 0
    for feature in ("pixels", f"classifier:{classifier}"):
        report = tmp_path / f"eval_{feature.split(':')[0]}.json"
        assert main(["evaluate", str(vae), "--features", feature, "--n", "40",
                     "--importance-samples", "5", "--out", str(report)]) == 0
        numbers = json.loads(report.read_text())
        assert numbers["image_size"] == list(shape[1:]) and np.isfinite(numbers["fid"]["value"])
        assert ("modes" in numbers) == (feature != "pixels")  # class metrics need a head
    samples = tmp_path / "vae_samples.npy"
    assert main(["evaluate", str(samples), "--reference", str(samples), "--features", "pixels",
                 "--metrics", "fid", "--out", str(tmp_path / "files.json")]) == 0
    mask = np.full(shape[1:], 255, np.uint8)
    mask[: shape[1] // 2] = 0
    Image.fromarray(mask).save(tmp_path / "mask.png")
    report = tmp_path / "inpaint.json"
    assert main(["inpaint", str(vae), "--mask", f"png:{tmp_path / 'mask.png'}", "--n", "3",
                 "--samples", "2", "--steps", "2", "--nll", "10", "--out",
                 str(tmp_path / "inpaint.png"), "--json", str(report)]) == 0
    assert json.loads(report.read_text())["masked_mse"] >= 0
    assert Image.open(tmp_path / "inpaint.png").size[0] > shape[2]
    capsys.readouterr()
