"""One behaviour for every command: expected failures are one line on stderr and status 2,
bugs keep their traceback, numbers are checked as they are read, outputs are written only
once the work succeeded, long commands show progress, and flags mean one thing."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, tiny_config

import genmodels
from genmodels import cli, progress
from genmodels.cli import main
from genmodels.pipelines.run_evaluation import samples_from_checkpoint
from genmodels.train import Trainer

CNN = ROOT / "genmodels" / "weights" / "mnist_cnn"  # export folders
RING = ROOT / "samples" / "checkpoints" / "gan_ring"


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, data_root) -> Path:
    """A VAE trained for 5 steps (latent 4, hidden 32), on dynamically binarised MNIST."""
    out = tmp_path_factory.mktemp("vae") / "run"
    config = tiny_config(model={"kind": "vae", "latent_dim": 4, "hidden": [32]},
                         data={"view": "dynamic_binary"}, train={"max_steps": 5})
    Trainer(config, out, data_root=data_root).fit()
    return out


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory, data_root) -> Path:
    """A small MLP classifier trained for one epoch on 1024 images."""
    out = tmp_path_factory.mktemp("classifier") / "run"
    Trainer(tiny_config(), out, data_root=data_root).fit()
    return out


@pytest.fixture
def tampered_classifier(tmp_path, monkeypatch) -> Path:
    """The shipped CNN's weights with one byte appended: its sha256 no longer matches."""
    folder = tmp_path / "weights"
    shutil.copytree(CNN, folder / "mnist_cnn")
    shutil.copy(CNN.with_name("mnist_cnn.json"), folder / "mnist_cnn.json")
    with open(folder / "mnist_cnn" / "model.safetensors", "ab") as f:
        f.write(b"\0")
    monkeypatch.setattr(genmodels.io, "WEIGHTS", folder)
    return folder


def one_error_line(capsys, command: str) -> str:
    """The whole of stderr, checked to be one line ``genmodels COMMAND: error: ...``."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"genmodels {command}: error: "), err
    return lines[0]


class Evil:
    """A pickle that would create a folder when loaded without ``weights_only``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def _broken_png(path: Path) -> Path:
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(noise).save(path)  # incompressible: the pixels fill most of the file
    path.write_bytes(path.read_bytes()[:400])  # its header and half of its pixels
    return path


# --- expected failures: one line on stderr, status 2 -----------------------------------------
def test_missing_corrupt_and_malicious_checkpoints(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in one_error_line(capsys, "sample")
    assert main(["accuracy", str(ROOT / "README.md")]) == 2  # the advice fits the file
    line = one_error_line(capsys, "accuracy")
    assert "corrupt or not a genmodels checkpoint" in line and "delete" not in line
    truncated = tmp_path / "final.pt"
    torch.save({"format": "genmodels/model/1", "kind": "gan", "model": {"w": torch.zeros(2000)}},
               truncated)
    truncated.write_bytes(truncated.read_bytes()[:3000])
    assert main(["sample", str(truncated), "--out", str(tmp_path / "x.png")]) == 2
    assert "corrupt" in one_error_line(capsys, "sample")
    marker = tmp_path / "code-ran"
    torch.save({"format": "genmodels/model/1", "kind": "vae", "x": Evil(marker)},
               tmp_path / "evil.pt")
    assert main(["sample", str(tmp_path / "evil.pt")]) == 2
    line = one_error_line(capsys, "sample")
    assert "corrupt" in line and "weights_only=False" not in line and not marker.exists()
    torch.save({"format": "genmodels/model/1", "kind": "vae"}, tmp_path / "hand_made.pt")
    assert main(["sample", str(tmp_path / "hand_made.pt")]) == 2
    assert "not a saved model: it has no config or model" in one_error_line(capsys, "sample")


def test_a_corrupt_rolling_checkpoint_says_what_to_do(vae_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(vae_run, run)
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert main(["train", "--resume", str(run)]) == 2
    assert "delete it, or resume from an earlier copy" in one_error_line(capsys, "train")


def test_resume_before_the_first_checkpoint(vae_run, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(vae_run / "config.toml", run / "config.toml")  # started, never checkpointed
    assert main(["train", "--resume", str(run)]) == 2
    assert "checkpoint" in one_error_line(capsys, "train")
    assert main(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "holds no run to resume" in one_error_line(capsys, "train")


def test_a_diverging_run_and_a_missing_device(tmp_path, capsys, data_root):
    base = ["train", "configs/mnist_mlp.toml", "data.subset=256", "train.batch_size=32",
            "train.progress=false", "--data-root", data_root]
    assert main([*base, "train.lr=1e30", "--out", str(tmp_path / "nan")]) == 2
    err = capsys.readouterr().err  # stdout has the run directory; stderr the one line
    assert err.count("\n") == 1 and "non-finite loss" in err and "Traceback" not in err
    if not torch.cuda.is_available():
        assert main([*base, "train.device=cuda", "--out", str(tmp_path / "cuda")]) == 2
        assert "CUDA is not available" in one_error_line(capsys, "train")
    assert main([*base, "train.device=gpu", "--out", str(tmp_path / "gpu")]) == 2
    assert "is not a device" in one_error_line(capsys, "train")


def test_corrupt_masks_and_sample_files(vae_run, tmp_path, capsys, data_root):
    (tmp_path / "text.png").write_text("not a picture")
    for mask in (tmp_path / "text.png", _broken_png(tmp_path / "broken.png")):
        assert main(["inpaint", str(vae_run), "--mask", f"png:{mask}", "--out",
                     str(tmp_path / "x.png"), "--data-root", data_root]) == 2
        assert f"--mask png:{mask}" in one_error_line(capsys, "inpaint")
    assert not (tmp_path / "x.png").exists()
    (tmp_path / "samples.npy").write_text("not an array")
    assert main(["evaluate", str(tmp_path / "samples.npy"), "--data-root", data_root]) == 2
    assert "samples.npy (This file contains pickled (object) data); save it again with " \
        "np.save" in one_error_line(capsys, "evaluate")
    folder = tmp_path / "pngs"
    folder.mkdir()
    _broken_png(folder / "0.png")
    assert main(["evaluate", str(folder), "--data-root", data_root]) == 2
    assert f"cannot decode the image {folder / '0.png'}" in one_error_line(capsys, "evaluate")
    (tmp_path / "broken.pt").write_bytes(b"\x80\x02garbage")  # is_checkpoint reads it
    assert main(["evaluate", str(tmp_path / "broken.pt"), "--data-root", data_root]) == 2
    assert "corrupt or not a torch file" in one_error_line(capsys, "evaluate")
    assert main(["evaluate", str(vae_run.parent)]) == 2  # neither a run nor images
    assert "holds run directories or exports (run), not images" in one_error_line(capsys,
                                                                                "evaluate")


def test_files_that_cannot_be_written(vae_run, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("")
    assert main(["sample", str(vae_run), "--out", str(tmp_path / "file" / "x.png")]) == 2
    assert "cannot write" in one_error_line(capsys, "sample")
    assert main(["sample", str(vae_run), "--out", str(tmp_path)]) == 2
    assert "is a folder" in one_error_line(capsys, "sample")
    assert main(["sample", str(vae_run), "--out", str(tmp_path / "x.gif")]) == 2
    assert "use .png" in one_error_line(capsys, "sample")
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        if not os.access(read_only, os.W_OK):  # not as root, which may write anywhere
            assert main(["sample", str(vae_run), "--out", str(read_only / "x.png")]) == 2
            assert "permission denied" in one_error_line(capsys, "sample")
    finally:
        read_only.chmod(0o700)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.npy"))

    monkeypatch.setattr(np, "save", refuse)  # a folder made read-only during the work
    assert main(["sample", str(vae_run), "--out", str(tmp_path / "x.npy")]) == 2
    assert one_error_line(capsys, "sample").endswith(f"Permission denied: {tmp_path / 'x.npy'}")


def test_commands_refuse_the_wrong_model_kind(vae_run, capsys, data_root):
    assert main(["accuracy", str(vae_run), "--data-root", data_root]) == 2
    assert "holds a vae; accuracy needs a classifier" in one_error_line(capsys, "accuracy")
    assert main(["sample", str(CNN)]) == 2
    assert "cannot sample" in one_error_line(capsys, "sample")
    assert main(["report", str(CNN)]) == 2
    assert "the report needs a VAE" in one_error_line(capsys, "report")


def test_bugs_keep_their_traceback(monkeypatch, tmp_path):
    from genmodels.pipelines import run_evaluation

    for error in (ZeroDivisionError, KeyError, ValueError, TypeError, RuntimeError):
        def bug(*args, error=error, **kwargs):
            raise error("a bug deep inside")

        monkeypatch.setattr(run_evaluation, "evaluate_source", bug)
        with pytest.raises(error, match="a bug deep inside"):
            main(["evaluate", str(tmp_path / "samples.npy")])


# --- numbers are checked where they are read -------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["inpaint", "RUN", "--n", "-1"], "argument --n should be a positive integer, got -1"),
    (["inpaint", "RUN", "--steps", "0"], "argument --steps should be a positive integer"),
    (["inpaint", "RUN", "--samples", "0"], "argument --samples should be a positive integer"),
    (["inpaint", "RUN", "--proposals", "0"], "argument --proposals should be a positive"),
    (["latent", "interpolate", "RUN", "--pair", "-1", "0"],
     "argument --pair should be an integer >= 0, got -1"),
    (["latent", "arithmetic", "RUN", "--target", "-1"], "argument --target should be"),
    (["latent", "arithmetic", "RUN", "--source", "10"], "invalid choice: 10"),
    (["latent", "map", "RUN", "--steps", "0"], "argument --steps should be a positive"),
    (["latent", "scatter", "RUN", "--n", "0"], "argument --n should be a positive"),
    (["latent", "quantize", "RUN", "--points", "0"], "argument --points should be a positive"),
    (["sample", "RUN", "--n", "-1"], "argument --n should be a positive integer"),
    (["sample", "RUN", "--nrow", "0"], "argument --nrow should be a positive integer"),
    (["sample", "RUN", "--n", "ten"], "argument --n should be an integer, got 'ten'"),
    (["evaluate", "RUN", "--n", "0"], "argument --n should be a positive integer"),
    (["evaluate", "RUN", "--importance-samples", "-5"], "should be an integer >= 0"),
    (["scratch", "iris", "--epochs", "0"], "argument --epochs should be a positive integer"),
    (["train", "configs/mnist_mlp.toml", "--epochz", "1"], "unrecognized arguments: --epochz"),
])
def test_numbers_are_checked_as_they_are_read(capsys, argv, message):
    assert main(argv) == 2
    line = one_error_line(capsys, argv[0])
    assert message in line and line.endswith(f"(see genmodels {argv[0]} -h)")


@pytest.mark.parametrize("override, message", [
    ("model.hidden=[0]", "model.hidden = [0] should hold widths > 0"),
    ("train.betas=[0.9]", "train.betas = [0.9] should be two numbers in [0, 1)"),
    ("train.betas=[0.9, 1.5]", "should be two numbers in [0, 1)"),
    ("model.net='resnet'", "model.net = 'resnet'"),
])
def test_config_values_are_checked_as_they_are_read(capsys, override, message):
    assert main(["summary", "configs/mnist_mlp.toml", override]) == 2
    assert message in one_error_line(capsys, "summary")


def test_summary_refuses_an_empty_latent_space(capsys):
    for path in ("configs/vae_mnist.toml", "configs/gan_mnist.toml"):
        assert main(["summary", path, "model.latent_dim=0"]) == 2
        assert "model.latent_dim = 0 should be > 0" in one_error_line(capsys, "summary")


def test_indices_and_classes_must_exist_in_the_images_read(vae_run, capsys, data_root):
    assert main(["latent", "interpolate", str(vae_run), "--n", "5", "--pair", "0", "7",
                 "--data-root", data_root]) == 2
    assert "should be < 5" in one_error_line(capsys, "latent")
    assert main(["latent", "arithmetic", str(vae_run), "--n", "1", "--source", "3",
                 "--data-root", data_root]) == 2  # the first test digit is a 7
    assert "no test image of class 3" in one_error_line(capsys, "latent")


# --- outputs only after the work succeeded ---------------------------------------------------
def test_no_output_when_the_classifier_is_tampered_with(vae_run, tmp_path, capsys, data_root,
                                                        tampered_classifier):
    out = tmp_path / "digits.png"
    assert main(["inpaint", str(vae_run), "--n", "2", "--samples", "2", "--steps", "2",
                 "--nll", "0", "--out", str(out), "--json", str(tmp_path / "n.json"),
                 "--data-root", data_root]) == 2
    assert "sha256" in one_error_line(capsys, "inpaint")
    assert not out.exists() and not (tmp_path / "n.json").exists()
    out = tmp_path / "quantized.png"
    assert main(["latent", "quantize", str(vae_run), "--n", "50", "--out", str(out),
                 "--data-root", data_root]) == 2
    assert "sha256" in one_error_line(capsys, "latent") and not out.exists()
    run = tmp_path / "run"
    shutil.copytree(vae_run, run)
    assert main(["report", str(run), "--data-root", data_root]) == 2
    assert "sha256" in one_error_line(capsys, "report")
    assert not any((run / name).exists() for name in ("samples.png", "report.md"))


# --- progress -----------------------------------------------------------------------------------
def test_progress_in_a_log_writes_a_few_plain_lines(capsys, monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.2)
    for _ in progress.progress(range(3), desc="quick"):  # done before the first interval
        pass
    assert capsys.readouterr().err == ""
    start = time.perf_counter()
    for _ in progress.progress(range(200), desc="slow", unit="item"):
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and lines[-1].startswith("slow: 100%")
    assert 2 <= len(lines) <= elapsed / 0.2 + 2
    assert all(re.search(r"\d+/200 \[\d\d:\d\d<\d\d:\d\d", line) for line in lines)  # ETA


def test_long_commands_show_progress(vae_run, classifier_run, tmp_path, capsys, monkeypatch,
                                    data_root):
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)  # every update is a line
    assert main(["accuracy", str(classifier_run), "--data-root", data_root]) == 0
    assert "accuracy: 100%" in capsys.readouterr().err
    assert main(["inpaint", str(vae_run), "--n", "2", "--samples", "2", "--steps", "3",
                 "--nll", "5", "--out", str(tmp_path / "i.png"), "--data-root", data_root]) == 0
    err = capsys.readouterr().err
    assert "inpainting (2 digits): 100%" in err and "103/103" in err  # burn-in 100 + 3 steps
    assert main(["latent", "scatter", str(vae_run), "--n", "1500", "--out",
                 str(tmp_path / "s.png"), "--data-root", data_root]) == 0
    assert "encoding: 100%" in capsys.readouterr().err
    assert main(["evaluate", str(vae_run), "--metrics", "held_out,fid", "--n", "200",
                 "--out", str(tmp_path / "e.json"), "--data-root", data_root]) == 0
    err = capsys.readouterr().err
    for bar in ("held-out NLL (k = 100): 100%", "sampling: 100%", "metrics: 100%"):
        assert bar in err, err


# --- evaluate: quick defaults, --full, --n caps the held-out images --------------------------
def test_evaluate_defaults_are_quick_and_full_is_one_flag(monkeypatch, tmp_path):
    from genmodels.pipelines import run_evaluation

    calls = []
    monkeypatch.setattr(run_evaluation, "evaluate_source",
                        lambda *args, **kwargs: calls.append(kwargs) or {"source": "x"})
    out = str(tmp_path / "e.json")
    assert main(["evaluate", "runs/vae", "--out", out]) == 0
    assert main(["evaluate", "runs/vae", "--full", "--out", out]) == 0
    assert main(["evaluate", "runs/vae", "--full", "--n", "300", "--out", out]) == 0
    quick, full, capped = ({k: c[k] for k in ("n", "k", "held_out_examples")} for c in calls)
    assert quick == {"n": 2000, "k": 100, "held_out_examples": 2000}
    assert full == {"n": 10_000, "k": 5000, "held_out_examples": 10_000}
    assert capped == {"n": 300, "k": 5000, "held_out_examples": 300}


def test_evaluate_n_caps_the_held_out_images(vae_run, tmp_path, data_root):
    out = tmp_path / "e.json"
    assert main(["evaluate", str(vae_run), "--metrics", "held_out", "--n", "300",
                 "--importance-samples", "4", "--out", str(out), "--data-root", data_root]) == 0
    held_out = json.loads(out.read_text())["held_out"]
    assert held_out["examples"] == 300 and held_out["importance_samples"] == 4


# --- sample writes what evaluate reads -------------------------------------------------------
def test_sample_to_npy_then_evaluate(vae_run, tmp_path, capsys, data_root):
    array = tmp_path / "samples.npy"
    assert main(["sample", str(vae_run), "--n", "300", "--seed", "3", "--out", str(array)]) == 0
    samples = np.load(array)
    assert samples.shape == (300, 1, 28, 28) and samples.dtype == np.float32
    assert 0 <= samples.min() and samples.max() <= 1
    np.testing.assert_array_equal(samples, samples_from_checkpoint(vae_run, 300, 3).numpy())
    assert main(["sample", str(vae_run), "--n", "300", "--seed", "3",
                 "--out", str(tmp_path / "samples.pt")]) == 0
    assert torch.equal(torch.load(tmp_path / "samples.pt"), torch.from_numpy(samples))
    reports = []
    for source in (array, vae_run):  # the file, and the checkpoint it was drawn from
        out = tmp_path / f"{Path(source).stem}.json"
        assert main(["evaluate", str(source), "--metrics", "fid,modes", "--n", "300",
                     "--seed", "3", "--out", str(out), "--data-root", data_root]) == 0
        reports.append(json.loads(out.read_text()))
    assert reports[0]["fid"] == reports[1]["fid"] and reports[0]["modes"] == reports[1]["modes"]
    assert main(["sample", str(RING), "--n", "100", "--out", str(tmp_path / "ring.npy")]) == 0
    points = np.load(tmp_path / "ring.npy")
    assert points.shape == (100, 2) and points.dtype == np.float32


# --- flags ------------------------------------------------------------------------------------
def _subparsers() -> dict:
    parser = cli.parser()
    (action,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return action.choices


def test_every_help_shows_the_defaults():
    for name, sub in _subparsers().items():
        text = " ".join(sub.format_help().split())
        for action in sub._actions:
            if action.default not in (None, False) and action.help not in (None, "==SUPPRESS==") \
                    and action.dest != "help":
                default = action.default
                assert f"(default: {default})" in text, (name, action.dest)


def test_help_imports_neither_torch_nor_numpy():
    """`genmodels --help` and every `genmodels COMMAND --help` read the arguments from light
    modules (genmodels.lazy): the heavy packages load only when a command runs (issue 27)."""
    script = """
import contextlib, io, sys
from genmodels.cli import main, parser
commands = list(parser()._subparsers._group_actions[0].choices)
for argv in ([], *([name] for name in commands)):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main([*argv, "--help"])
        except SystemExit as stop:
            assert stop.code == 0, argv
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "numpy", "scipy", "ot",
                                                         "matplotlib", "PIL", "tqdm"})
print(len(commands), heavy)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    count, heavy = done.stdout.split(" ", 1)
    assert int(count) >= 12 and heavy.strip() == "[]", done.stdout


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"genmodels {genmodels.__version__}\n"


def test_k_is_renamed_everywhere(monkeypatch, capsys, tmp_path):
    for name, sub in _subparsers().items():
        assert "--k " not in sub.format_help(), name  # one meaning per flag name
    parser = cli.parser()
    for argv, dest, new in ((["inpaint", "RUN", "--k", "5"], "k", "--proposals"),
                            (["latent", "quantize", "RUN", "--k", "5"], "points", "--points"),
                            (["evaluate", "RUN", "--k", "5"], "importance_samples",
                             "--importance-samples")):
        assert getattr(parser.parse_args(argv), dest) == 5
        assert f"--k is deprecated, use {new}" in capsys.readouterr().err
    assert parser.parse_args(["inpaint", "RUN"]).k is None  # the method's default


# --- the README ------------------------------------------------------------------------------
def _readme_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Using it", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if "genmodels.cli" in words:  # torchrun ... -m genmodels.cli ARGS
            words = ["genmodels", *words[words.index("genmodels.cli") + 1:]]
        if words and words[0] == "genmodels":
            commands.append(words[1:])
    return commands


def test_readme_commands_parse_and_create_what_they_use():
    commands = _readme_commands()
    assert len(commands) >= 10
    made = set()
    for argv in commands:
        args = cli.parser().parse_args(argv)
        used = getattr(args, "checkpoint", None) or getattr(args, "source", None)
        if used and (used.startswith("runs/") or not (ROOT / used).exists()):  # not shipped
            assert used in made, f"{' '.join(argv)} uses {used}, made by no earlier command"
        if getattr(args, "out", None):
            made.add(args.out)


def test_license_is_mit():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "genmodels developers" in text
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text()
