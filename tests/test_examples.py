"""The scripts of examples/ run as a user runs them (a subprocess each), on small budgets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, cwd: Path) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=cwd,
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_train_on_your_folder(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("train", 48), ("test", 16)):
        for label in ("discs", "bars"):
            folder = tmp_path / "pictures" / split / label
            folder.mkdir(parents=True)
            for i in range(count // 2):
                image = np.zeros((20, 20, 3), np.uint8)
                c = rng.integers(5, 15)
                if label == "discs":
                    yy, xx = np.mgrid[:20, :20]
                    image[(yy - c) ** 2 + (xx - 10) ** 2 < 16] = (200, 80, 40)
                else:
                    image[:, c - 2:c + 2] = (40, 80, 200)
                Image.fromarray(image).save(folder / f"{i}.png")
    out = run_example("train_on_your_folder.py", str(tmp_path / "pictures"), "--size", "16",
                      "--max-steps", "3", "--batch-size", "16", "--out", str(tmp_path / "run"),
                      cwd=tmp_path)
    assert "input (3, 16, 16)" in out and "pixel FID" in out
    assert (tmp_path / "run" / "samples.png").exists()


def test_evaluate_other_samples(tmp_path):
    from genmodels.pipelines.sample_metrics import reference_images

    train = reference_images("mnist-train", n=300, seed=1)          # "another tool's" samples
    np.save(tmp_path / "samples.npy", (train[:, 0].numpy() * 255).astype(np.uint8))  # (N, 28, 28)
    out = run_example("evaluate_other_samples.py", "samples.npy", "--n", "300", cwd=tmp_path)
    assert "300 samples against 300 MNIST test images" in out
    fid = float(out.split("FID ")[1].split()[0])
    assert fid < 15  # real digits against real digits: small at this sample size
    assert "classes covered 10/10" in out


def test_inpaint_from_python(tmp_path):
    out = run_example("inpaint_from_python.py", "--digits", "4", "--samples", "2", "--out",
                      "digits.png", cwd=tmp_path)
    assert "mwg on 4 digits, mask top" in out and (tmp_path / "digits.png").exists()


@pytest.mark.parametrize("names", [("iwae_mnist_grey", "gan_mnist")])
def test_compare_models(tmp_path, names):
    paths = [str(ROOT / "samples" / "checkpoints" / name) for name in names]
    out = run_example("compare_models.py", *paths, "--n", "200", cwd=tmp_path)
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(names)
    assert table[2].startswith("| iwae_mnist_grey | iwae |")
    assert table[3].startswith("| gan_mnist | gan |")
