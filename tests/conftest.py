"""Shared fixtures: the data root and small, fast run configs."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
import torch

from genmodels.config import Config, config_from_dict
from genmodels.train import Callback, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = os.environ.get("GENMODELS_DATA", str(ROOT.parent / "shared" / "data"))
# the suite's checksum stamps go to a folder of its own, not the user's cache (subprocesses too),
# removed when the session ends
os.environ["GENMODELS_CACHE"] = tempfile.mkdtemp(prefix="genmodels-test-cache-")
atexit.register(shutil.rmtree, os.environ["GENMODELS_CACHE"], ignore_errors=True)


# Resumes a killed run, then trains its config afresh into another folder, in one process
# (each start of torch costs seconds): argv KILLED CONFIG STRAIGHT DATA_ROOT. The fresh run
# comes second, so that any state the first one left in the process would show as a difference.
RESUME_THEN_STRAIGHT = '''
import sys
from genmodels.cli import main
killed, config, straight, data_root = sys.argv[1:]
assert main(["train", "--resume", killed, "--data-root", data_root]) == 0
assert main(["train", config, "--out", straight, "--data-root", data_root]) == 0
'''


@pytest.fixture(scope="session")
def data_root() -> str:
    if not (Path(DATA_ROOT) / "MNIST" / "raw").is_dir():
        pytest.fail(f"MNIST not found under {DATA_ROOT}; set GENMODELS_DATA")
    return DATA_ROOT


def tiny_config(**sections: dict) -> Config:
    """A small MLP classifier on 1024 MNIST images: a whole run takes about a second."""
    raw = {
        "model": {"kind": "classifier", "net": "mlp", "hidden": [32]},
        "data": {"name": "mnist", "subset": 1024, "eval_batch_size": 2000},
        "train": {"batch_size": 32, "epochs": 1, "lr": 1e-3, "progress": False,
                  "log_every": 8, "checkpoint_every": 10},
    }
    for section, values in sections.items():
        if "kind" in values:  # another model kind: start its section afresh
            raw[section] = {}
        raw[section].update(values)
    return config_from_dict(raw)


class InterruptAt(Callback):
    """Sends this process SIGINT (Ctrl-C) after ``step`` steps."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, trainer, losses):
        if trainer.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def weights(path: Path, key: str = "model") -> dict[str, torch.Tensor]:
    """The ``key`` state dict ("model" or "ema") of a checkpoint or final.pt."""
    return load_checkpoint(path)[key]


def assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


def assert_resume_is_bit_identical(config: Config, folder: Path, data_root: str,
                                   interrupt_at: int) -> None:
    """A run interrupted (Ctrl-C) after ``interrupt_at`` steps and resumed ends with the same
    weights, EMA and log lines as the uninterrupted run."""
    from genmodels.train import Trainer

    Trainer(config, folder / "full", data_root=data_root).fit()
    part = Trainer(config, folder / "part", data_root=data_root,
                   callbacks=[InterruptAt(interrupt_at)])
    part.fit()
    assert part.interrupted and part.step == interrupt_at
    Trainer(config, folder / "part", data_root=data_root, resume=True).fit()
    for key in ("model", "ema"):
        assert_identical(weights(folder / "full" / "final.pt", key),
                         weights(folder / "part" / "final.pt", key))
    assert metric_lines(folder / "full") == metric_lines(folder / "part")


def first_linear_output_dtypes(model: torch.nn.Module) -> set[torch.dtype]:
    """The set, filled as the model runs, of the dtypes its first ``nn.Linear`` outputs: under
    autocast the low-precision one, outside it float32."""
    dtypes: set[torch.dtype] = set()
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    first.register_forward_hook(lambda module, inputs, output: dtypes.add(output.dtype))
    return dtypes


def metric_lines(run: Path) -> list[dict]:
    """The records of ``run/metrics.jsonl`` without their wall-clock ``time``."""
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k != "time"} for line in lines]


@pytest.fixture
def tampered_weights(tmp_path):
    """A copy of the shipped MNIST CNN (its export folder) and its card in tmp_path, 8 bytes of
    the weights in model.safetensors zeroed: its sha256 no longer matches the card (nor the
    folder's model.sha256)."""
    import shutil

    from genmodels.metrics.features import WEIGHTS

    shutil.copytree(WEIGHTS / "mnist_cnn", tmp_path / "mnist_cnn")
    shutil.copy(WEIGHTS / "mnist_cnn.json", tmp_path / "mnist_cnn.json")
    with open(tmp_path / "mnist_cnn" / "model.safetensors", "r+b") as f:
        f.seek(-100, 2)
        f.write(b"\x00" * 8)
    return tmp_path


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny models: faster, and much faster on a busy machine
    (use with ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
