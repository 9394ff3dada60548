"""Portable models: `genmodels export` writes config.toml, model.safetensors, model.sha256 and a
README.md; `genmodels.load(DIR)` reads them back, bit for bit, without unpickling anything."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

import genmodels
from genmodels.cli import main
from genmodels.config import config_from_dict, load_config
from genmodels.errors import InputError
from genmodels.export import export_model, portable_tensors
from genmodels.models import MODELS, Classifier, Sampler
from genmodels.train import Trainer
from genmodels.train.checkpoint import CheckpointError, save_checkpoint
from genmodels.train.trainer import MODEL_FORMAT

pytestmark = pytest.mark.usefixtures("one_thread")

IMAGE = (1, 8, 8)
KINDS = {  # name -> (kind, model options, input shape): a tiny net of each family
    "classifier_mlp": ("classifier", {"net": "mlp", "hidden": [8], "num_classes": 3,
                                      "batch_norm": True}, IMAGE),
    "classifier_cnn": ("classifier", {"net": "cnn", "channels": [4, 8], "feature_dim": 8,
                                      "num_classes": 3}, IMAGE),
    "diffusion_mlp": ("diffusion", {"net": "mlp", "hidden": [8], "time_dim": 8,
                                    "sample_steps": 3}, (2,)),
    "flow_unet": ("flow_matching", {"net": "unet", "channels": [8, 16], "time_dim": 8,
                                    "sample_steps": 2}, IMAGE),
    "gan_dcgan": ("gan", {"net": "dcgan", "channels": [4, 8], "latent_dim": 3,
                          "spectral_norm": True}, IMAGE),
    "gan_mlp_cells": ("gan", {"net": "mlp", "hidden": [8], "latent_dim": 3, "clusters": 4,
                              "cell_weight": 1.0}, (2,)),
    "iwae": ("iwae", {"hidden": [8], "latent_dim": 2}, IMAGE),
    "radon_sobolev": ("radon_sobolev", {"hidden": [8], "latent_dim": 2}, IMAGE),
    "sliced_wae": ("sliced_wae", {"hidden": [8], "latent_dim": 2}, IMAGE),
    "vae_conv": ("vae", {"net": "conv", "channels": [4, 8], "hidden": [8], "latent_dim": 2,
                         "likelihood": "gaussian", "learn_sigma": True}, IMAGE),
    "vamp_vae": ("vamp_vae", {"hidden": [8], "latent_dim": 2, "pseudo_inputs": 3}, IMAGE),
    "wae_mmd": ("wae_mmd", {"hidden": [8], "latent_dim": 2}, IMAGE),
}
AMENDMENTS = [{"step": 3, "changes": {"train.max_steps": [3, 7]}}]


def test_every_model_kind_is_exported_here():
    kinds = {kind for kind in MODELS if not kind.startswith("test_")}  # other tests' kinds
    assert kinds <= {kind for kind, _, _ in KINDS.values()}


def saved_model(folder: Path, name: str, ema: bool = True) -> Path:
    """A final.pt of the tiny model ``name`` as the Trainer writes one, with an EMA that
    differs from the weights."""
    kind, options, shape = KINDS[name]
    config = config_from_dict({"model": {"kind": kind, **options},
                               "data": {"name": "ring" if len(shape) == 1 else "mnist"},
                               "train": {"ema": 0.9 if ema else 0.0, "max_steps": 7,
                                         "lr": 3e-4}})
    torch.manual_seed(0)
    model = MODELS[kind](config.model, shape)
    weights = model.state_dict()
    average = {key: value + 0.01 * torch.randn_like(value) if value.is_floating_point()
               else value.clone() for key, value in weights.items()}
    return save_checkpoint({"format": MODEL_FORMAT, "kind": kind, "input_shape": list(shape),
                            "config": config.to_dict(), "amendments": AMENDMENTS, "step": 7,
                            "model": weights, "ema": average if ema else None},
                           folder / "run" / "final.pt")


def outputs(model) -> torch.Tensor:
    if isinstance(model, Classifier):
        return model(torch.rand(4, *model.input_shape, generator=torch.Generator().manual_seed(1)))
    assert isinstance(model, Sampler)
    return model.sample(4, generator=torch.Generator().manual_seed(1))


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("name", sorted(KINDS))
def test_an_export_loads_as_its_checkpoint_bit_for_bit(tmp_path, name):
    final = saved_model(tmp_path, name)
    state = torch.load(final, weights_only=True)
    assert all(torch.is_tensor(value) for value in state["model"].values())  # safetensors-able
    out = export_model(final, tmp_path / "export")
    assert sorted(path.name for path in out.iterdir()) == [
        "README.md", "config.toml", "model.safetensors", "model.sha256"]  # no temporary files
    original, exported = genmodels.load(final), genmodels.load(out)
    assert type(exported) is type(original) and not exported.training
    assert exported.input_shape == original.input_shape == KINDS[name][2]
    assert_same_weights(exported.state_dict(), original.state_dict())
    assert torch.equal(outputs(exported), outputs(original))
    assert exported.run_config == original.run_config
    # the EMA weights are the ones exported, as genmodels.load samples with them
    from safetensors.torch import load_file

    assert_same_weights(load_file(out / "model.safetensors"), state["ema"])
    assert load_config(out / "config.toml") == original.run_config  # re-trainable as is


def test_without_an_ema_the_weights_are_exported(tmp_path):
    final = saved_model(tmp_path, "classifier_mlp", ema=False)
    out = export_model(final, tmp_path / "export")
    assert_same_weights(genmodels.load(out).state_dict(),
                        torch.load(final, weights_only=True)["model"])
    from safetensors import safe_open

    with safe_open(out / "model.safetensors", "pt") as f:
        assert f.metadata()["ema"] == "false"
    assert "no EMA" in (out / "README.md").read_text()


def test_the_files_of_an_export(tmp_path):
    final = saved_model(tmp_path, "vae_conv")
    out = export_model(final, tmp_path / "export", numbers={"test NLL": 91.234567, "modes": 10})
    from safetensors import safe_open

    with safe_open(out / "model.safetensors", "pt") as f:
        header = f.metadata()
    assert header["format"] == "genmodels/export/1" and header["kind"] == "vae"
    assert json.loads(header["input_shape"]) == list(IMAGE)
    assert header["step"] == "7" and header["ema"] == "true"
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    assert (out / "model.sha256").read_text() == f"{digest}  model.safetensors\n"
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--check", "--quiet", "model.sha256"], cwd=out, check=True)
    config = (out / "config.toml").read_text()
    assert config.startswith("# train.max_steps = 7 from step 3 (was 3)\n[model]\nkind = \"vae\"")
    readme = (out / "README.md").read_text()
    params = sum(p.numel() for p in genmodels.load(final).parameters())
    for text in ("`vae` model (conv net)", "1×8×8 images", f"{params:,} parameters",
                 f'genmodels.load("{out}")', "| steps | 7 |", "| data | mnist, view unit |",
                 "adam, lr 0.0003", "| budget | 1 epoch (max_steps 7) |", "EMA of the weights",
                 "| test NLL | 91.2346 |", "| modes | 10 |", "genmodels train"):
        assert text in readme, text


def test_loading_an_export_unpickles_nothing(tmp_path, monkeypatch):
    final = saved_model(tmp_path, "gan_dcgan")
    out = export_model(final, tmp_path / "export")
    expected = genmodels.load(final).state_dict()

    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used")

    class Refused(pickle.Unpickler):
        def __init__(self, *args, **kwargs):
            refuse()

    for module, name in ((torch, "load"), (torch.serialization, "load"), (pickle, "load"),
                         (pickle, "loads"), (pickle, "Unpickler")):
        monkeypatch.setattr(module, name, Refused if name == "Unpickler" else refuse)
    with pytest.raises(CheckpointError, match="pickle was used"):
        genmodels.load(final)  # the guard works (load_checkpoint names the error it met)
    assert_same_weights(genmodels.load(out).state_dict(), expected)
    assert_same_weights(genmodels.load(out / "model.safetensors").state_dict(), expected)


def test_a_changed_export_is_refused_before_it_is_read(tmp_path, capsys):
    out = export_model(saved_model(tmp_path, "iwae"), tmp_path / "export")
    data = bytearray((out / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF  # one byte of the last weight
    (out / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model.safetensors does not match the sha256 in "
                       r".*model.sha256.*genmodels export") as err:
        genmodels.load(out)
    assert "\n" not in str(err.value)
    assert main(["sample", str(out), "--out", str(tmp_path / "x.png")]) == 2
    assert "sha256" in capsys.readouterr().err
    (out / "model.sha256").unlink()
    with pytest.raises(CheckpointError, match="no model.sha256"):
        genmodels.load(out)


def test_an_export_holds_the_ema_weights_only(tmp_path):
    out = export_model(saved_model(tmp_path, "classifier_mlp"), tmp_path / "export")
    with pytest.raises(CheckpointError, match="only the EMA weights"):
        genmodels.load(out, ema=False)


def test_raw_weights_leave_the_ema_out(tmp_path):
    final = saved_model(tmp_path, "classifier_mlp")
    out = export_model(final, tmp_path / "raw", ema=False)
    raw, exported = genmodels.load(final, ema=False), genmodels.load(out)
    for key, value in raw.state_dict().items():
        assert torch.equal(exported.state_dict()[key], value)
    assert not torch.equal(next(iter(genmodels.load(final).state_dict().values())),
                           next(iter(exported.state_dict().values())))
    assert "left out at export" in (out / "README.md").read_text()


def test_shared_and_strided_tensors_become_tensors_of_their_own():
    from safetensors.torch import load, save

    base = torch.arange(12.0).reshape(3, 4)
    weights = {"a": base, "tied": base, "column": base[:, 1], "transposed": base.t()}
    with pytest.raises(RuntimeError):  # what safetensors does with them as they are
        save(weights)
    copied = load(save(portable_tensors(weights)))
    for key, value in weights.items():
        assert torch.equal(copied[key], value)
    with pytest.raises(InputError, match="not a tensor"):
        portable_tensors({"a": base, "_extra_state": {"x": 1}})


# --- a run of the Trainer, and the command line ------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory, data_root):
    folder = tmp_path_factory.mktemp("export") / "run"
    config = tiny_config(train={"max_steps": 2, "ema": 0.9, "checkpoint_every": 1})
    Trainer(config, folder, data_root=data_root).fit()
    return folder


def test_a_run_exports_with_its_numbers(run, tmp_path, capsys, data_root):
    assert main(["export", str(run), "--out", str(tmp_path / "cnn")]) == 0
    assert "wrote" in capsys.readouterr().out
    out = tmp_path / "cnn"
    assert load_config(out / "config.toml") == load_config(run / "config.toml")
    assert_same_weights(genmodels.load(out).state_dict(), genmodels.load(run).state_dict())
    last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if '"eval/' in line][-1]
    readme = (out / "README.md").read_text()
    assert "| steps | 2 |" in readme and "EMA of the weights (decay 0.9)" in readme
    assert re.search(r"\| eval/accuracy \| 0\.\d+ \|", readme) and "eval/accuracy" in last
    assert main(["accuracy", str(out), "--data-root", data_root]) == 0  # any command reads it
    assert "accuracy 0." in capsys.readouterr().out
    # an unfinished run: its checkpoint.pt
    assert main(["export", str(run / "checkpoint.pt"), "--out", str(tmp_path / "ckpt")]) == 0
    assert_same_weights(genmodels.load(tmp_path / "ckpt").state_dict(),
                        genmodels.load(run / "checkpoint.pt").state_dict())


def test_bad_inputs_are_one_line_and_status_2(run, tmp_path, capsys):
    def fails(argv: list[str], message: str) -> None:
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err

    fails([str(tmp_path / "missing"), "--out", str(tmp_path / "a")], "does not exist")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    fails([str(tmp_path / "junk.pt"), "--out", str(tmp_path / "a")],
          "corrupt or not a genmodels checkpoint")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    fails([str(tmp_path / "foreign.pt"), "--out", str(tmp_path / "a")], "not a genmodels")
    (tmp_path / "unfinished").mkdir()
    shutil.copy(run / "checkpoint.pt", tmp_path / "unfinished" / "checkpoint.pt")
    fails([str(tmp_path / "unfinished"), "--out", str(tmp_path / "a")], "has no final.pt")
    fails([str(run), "--out", str(run)], "holds a run")
    fails([str(run), "--out", str(run), "--force"], "holds a run")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    fails([str(run), "--out", str(busy)], "not empty and holds no earlier export")
    assert not (tmp_path / "a").exists() and not (busy / "model.safetensors").exists()
    assert main(["export", str(run)]) == 2  # --out is required
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(busy), "--force"]) == 0
    assert (busy / "notes.txt").read_text() == "mine" and genmodels.load(busy)
    fails([str(busy), "--out", str(tmp_path / "b")], "is an export already")
    assert main(["export", str(run), "--out", str(busy)]) == 0  # an earlier export: replaced


# --- genmodels evaluate and the classifier:DIR features read exports --------------------------
def test_evaluate_reads_an_export_as_its_checkpoint(tmp_path, capsys):
    from genmodels.pipelines.run_evaluation import evaluate_source
    from genmodels.pipelines.sample_metrics import is_checkpoint, load_samples

    final = saved_model(tmp_path, "gan_mlp_cells")  # a GAN of the ring
    out = export_model(final, tmp_path / "export")
    assert is_checkpoint(out) and is_checkpoint(out / "model.safetensors")
    assert not is_checkpoint(out / "README.md")
    with pytest.raises(InputError, match="is a model checkpoint"):
        load_samples(out)
    with pytest.raises(InputError, match=r"holds run directories or exports \(export, run\)"):
        load_samples(tmp_path)
    reports = [evaluate_source(source, metrics=["mixture"]) for source in (final, out)]
    assert reports[1].pop("source") == str(out) and reports[0].pop("source") == str(final)
    assert reports[0] == reports[1] and reports[1]["mixture"]
    report = tmp_path / "ring.json"
    assert main(["evaluate", str(out), "--metrics", "mixture", "--out", str(report)]) == 0
    assert json.loads(report.read_text())["mixture"] == reports[1]["mixture"]
    capsys.readouterr()


def test_classifier_features_read_an_export(run, tmp_path):
    from genmodels.metrics import embed_images, feature_extractor
    from genmodels.metrics.features import read_checkpoint

    out = export_model(run, tmp_path / "cnn")
    state = read_checkpoint(out)
    assert state["kind"] == "classifier" and state["ema"] is None
    assert tuple(state["input_shape"]) == (1, 28, 28)
    assert_same_weights(state["model"], genmodels.load(run).state_dict())  # the EMA weights
    images = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    from_run, from_export = (embed_images(images, f"classifier:{source}")
                             for source in (run, out))
    assert torch.equal(from_run.features, from_export.features)
    assert torch.equal(from_run.labels, from_export.labels)
    assert feature_extractor(f"classifier:{out / 'model.safetensors'}").feature_dim == 32
    data = bytearray((out / "model.safetensors").read_bytes())
    data[-3] ^= 0xFF
    (out / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not match the sha256"):
        feature_extractor(f"classifier:{out}")
