"""The demo's report pipeline on a tiny VAE."""

from __future__ import annotations

import json

import torch
from conftest import tiny_config

from genmodels.metrics import mnist_features
from genmodels.pipelines.report import N_SAMPLES, write_report
from genmodels.train import Trainer


def test_report_links_every_figure(tmp_path, data_root):
    config = tiny_config(model={"kind": "vae", "latent_dim": 4, "hidden": [32]},
                         data={"view": "dynamic_binary"}, train={"max_steps": 5})
    Trainer(config, tmp_path, data_root=data_root).fit()
    report = write_report(tmp_path, data_root, repeats=2, quantize_steps=5).read_text()
    for name in ("samples.png", "interpolation.png", "inpainting.png", "metrics.png"):
        assert (tmp_path / name).exists() and (name in report or name == "metrics.png")
    numbers = json.loads((tmp_path / "diversity.json").read_text())
    assert numbers["fid_mnist"] > 0 and 1 <= numbers["classes_covered_by_samples"] <= 10
    # cosine-kernel Vendi is at most the rank of the features: min(n, feature dimension)
    rank = min(N_SAMPLES, mnist_features(torch.zeros(1, 1, 28, 28)).shape[1])
    assert 1 <= numbers["vendi"] <= rank
    for key in ("classes_covered_10_iid", "classes_covered_10_quantized"):
        assert 1 <= numbers[key] <= 10 and (numbers[key] * 2).is_integer()  # mean of 2 repeats
    for key in ("fid_mnist", "vendi", "classes_covered_10_iid", "classes_covered_10_quantized"):
        assert f"{numbers[key]:.2f}" in report  # the report shows what was measured
