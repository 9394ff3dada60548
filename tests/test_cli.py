"""The ``genmodels`` command line."""

from __future__ import annotations

import json
import re

import pytest
import torch

import genmodels
from genmodels.cli import main
from genmodels.config import load_config
from genmodels.data import load_images, to_unit
from genmodels.io import WEIGHTS
from genmodels.models import MODELS
from genmodels.summary import count_parameters


@pytest.mark.parametrize("dataset, target", [("mnist", 0.993), ("fashion", 0.93)])
def test_accuracy_of_the_shipped_classifier(capsys, data_root, dataset, target):
    assert main(["accuracy", "--dataset", dataset, "--data-root", data_root]) == 0
    line = capsys.readouterr().out.strip()
    match = re.fullmatch(r"accuracy (\d\.\d{4})", line)
    card = json.loads((WEIGHTS / f"{dataset}_cnn.json").read_text())
    assert match and float(match.group(1)) == card["test_accuracy"] >= target


def test_train_then_accuracy_of_a_run(tmp_path, capsys, data_root):
    out = tmp_path / "run"
    assert main(["train", "configs/mnist_mlp.toml", "train.epochs=1", "data.subset=2048",
                 "--out", str(out), "model.hidden=[64]", "train.progress=false",  # after --out
                 "--data-root", data_root]) == 0
    assert genmodels.load(out).config.hidden == [64]
    capsys.readouterr()
    assert main(["accuracy", str(out), "--data-root", data_root]) == 0
    printed = float(capsys.readouterr().out.split()[1])
    test = load_images("mnist", "test", data_root)
    model = genmodels.load(out)
    with torch.no_grad():
        expected = float((model(to_unit(test.images)).argmax(1) == test.labels).float().mean())
    assert printed == round(expected, 4) and printed > 0.5
    # --resume of a finished run changes nothing and exits cleanly
    assert main(["train", "--resume", str(out), "--data-root", data_root]) == 0


@pytest.mark.parametrize("path, shapes", [
    ("configs/mnist_cnn.toml", ["[-1, 64, 7, 7]", "[-1, 10]"]),
    ("configs/iwae_mnist_nll.toml", ["[-1, 100]", "[-1, 784]"]),  # encoder (mean, log var), decoder
    ("configs/gan_mnist.toml", ["[-1, 1, 28, 28]", "[-1, 1]"]),  # generator (x pack), critic
])
def test_summary_matches_the_model(capsys, path, shapes):
    assert main(["summary", path]) == 0
    text = capsys.readouterr().out
    config = load_config(path)
    total = count_parameters(MODELS[config.kind](config.model))
    assert f"Total params: {total:,}" in text
    assert all(shape in text for shape in shapes), text


def test_clear_errors(tmp_path, capsys):
    # argparse errors too are one line and status 2 (no usage block, no SystemExit)
    assert main(["train", "configs/mnist_mlp.toml", "--out", str(tmp_path), "--epochz", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "genmodels train: error: unrecognized arguments: --epochz 1" \
        in err
    assert main(["train", "configs/mnist_mlp.toml", "train.epochz=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown key epochz in [train]" in err and "checkpoint_every" in err
    assert main(["train", "configs/mnist_mlp.toml", "--data-root", str(tmp_path),
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "MNIST" / "raw") in err
    for name in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert name in err
