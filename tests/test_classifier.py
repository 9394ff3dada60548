"""Classifier nets and the shipped MNIST CNN (the metrics' feature extractor)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import genmodels
from genmodels import io
from genmodels.config import config_from_dict
from genmodels.data import load_images, to_unit
from genmodels.models import Classifier
from genmodels.portable import read_checksum
from genmodels.summary import count_parameters
from genmodels.train import CheckpointError
from genmodels.utils import sha256


def make(**model) -> Classifier:
    return Classifier(config_from_dict({"model": {"kind": "classifier", **model}}).model)


@pytest.mark.parametrize("net", ["cnn", "mlp"])
def test_shapes_features_and_regularisers(net):
    model = make(net=net, dropout=0.5, batch_norm=True)
    x = torch.rand(6, 1, 28, 28)
    assert model(x).shape == (6, 10)
    width = 128 if net == "cnn" else 256
    assert model.features(x).shape == (6, width)
    assert any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())
    model.train()
    assert not torch.equal(model(x), model(x))  # dropout is active in training mode
    model.eval()
    assert torch.equal(model(x), model(x))
    plain = make(net=net)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout)) and
                   getattr(m, "p", 1) > 0 for m in plain.modules())


def test_bad_inputs_are_clear_errors():
    model = make(net="mlp")
    with pytest.raises(ValueError, match=r"shape \(N, 1, 28, 28\), got \(2, 3, 28, 28\)"):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"lie in \[0.0, 1.0\]"):
        model(torch.rand(2, 1, 28, 28) * 255)
    with pytest.raises(ValueError, match="float tensor.*to_unit"):
        model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="choose one of: cnn, mlp"):
        make(net="resnet")


@pytest.mark.parametrize("dataset, on_3000, target", [("mnist", 0.99, 0.993),
                                                     ("fashion", 0.92, 0.93)])
def test_shipped_classifier(data_root, dataset, on_3000, target):
    card = json.loads((io.WEIGHTS / f"{dataset}_cnn.json").read_text())
    folder = io.WEIGHTS / f"{dataset}_cnn"  # an export folder of genmodels export
    assert sorted(path.name for path in folder.iterdir()) == [
        "README.md", "config.toml", "model.safetensors", "model.sha256"]
    assert sum(path.stat().st_size for path in folder.iterdir()) <= 2_000_000
    weights = folder / "model.safetensors"
    assert card["file"] == f"{dataset}_cnn/model.safetensors"
    assert card["bytes"] == weights.stat().st_size
    assert card["sha256"] == sha256(weights) == read_checksum(folder)
    model = genmodels.classifier(dataset)
    assert model.run_config.data.name == dataset
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the inference copy
    test = load_images(dataset, "test", data_root)
    x, y = to_unit(test.images[:3000]), test.labels[:3000]
    logits = model(x)
    assert logits.shape == (3000, 10)
    accuracy = float((logits.argmax(1) == y).float().mean())
    assert accuracy >= on_3000 and card["test_accuracy"] >= target
    features = model.features(x[:100])
    assert features.shape == (100, 128) and features.min() >= 0  # after a ReLU
    assert count_parameters(model) < 500_000


def test_tampered_weights_are_refused(tampered_weights, monkeypatch):
    monkeypatch.setattr(io, "WEIGHTS", tampered_weights)
    with pytest.raises(CheckpointError, match="sha256"):
        genmodels.classifier()
    with pytest.raises(CheckpointError, match="ships one for mnist, fashion"):
        genmodels.classifier("cifar10")


@pytest.mark.parametrize("net", ["cnn", "mlp"])
def test_the_inference_copy_predicts_and_evaluates_as_the_eval_mode_model(net):
    """``Classifier.inference_copy`` (issue 27: ``genmodels.classifier()``, ``genmodels
    accuracy`` and ``evaluate`` run it): batch norm folded into the layers, dropout removed, a
    CNN channels-last, frozen; the model in eval mode is the reference, and stays as it was."""
    torch.manual_seed(0)
    model = make(net=net, dropout=0.3, batch_norm=True, channels=[8, 16], feature_dim=32,
                 hidden=[64, 32])
    model.train()
    with torch.no_grad():
        for _ in range(3):  # running statistics away from their initial 0 and 1
            model.net(torch.rand(64, 1, 28, 28) * 2)
    model.eval()
    fast = model.inference_copy()
    regularisers = (nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout)
    assert not any(isinstance(m, regularisers) for m in fast.modules())
    assert not fast.training and not any(p.requires_grad for p in fast.parameters())
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.modules())  # the model is untouched
    assert all(p.requires_grad for p in model.parameters())
    x, y = torch.rand(300, 1, 28, 28), torch.randint(10, (300,))
    with torch.no_grad():
        logits = model(x)
        torch.testing.assert_close(fast(x), logits, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(fast.features(x), model.features(x), rtol=1e-4, atol=1e-5)
    numbers = model.evaluate([(x, y)])  # in chunks of INFERENCE_BATCH through the copy
    assert numbers["accuracy"] == int((logits.argmax(1) == y).sum()) / len(y)
    assert numbers["loss"] == pytest.approx(float(nn.functional.cross_entropy(logits, y)),
                                            rel=1e-5)
