"""Train the shipped classifier configs to their accuracy targets and record the results.

    python benchmarks/classifiers.py [mnist_cnn fashion_cnn mnist_mlp] [--ship]

Each config in configs/ is trained from scratch through the common Trainer on the CPU; the
test accuracy and the wall-clock training time go to docs/results/classifiers.json (and a
table on stdout). ``--ship`` exports the MNIST and Fashion-MNIST CNNs (``genmodels export``)
to the folders genmodels/weights/{mnist,fashion}_cnn/ and writes their cards beside them (the
sha256 of model.safetensors, its size, the accuracy and the command that reproduces them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

from genmodels.config import load_config
from genmodels.data import load_images, to_unit
from genmodels.export import export_model
from genmodels.io import WEIGHTS
from genmodels.portable import EXPORT_WEIGHTS
from genmodels.train import Trainer
from genmodels.utils import sha256

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"mnist_cnn": ("mnist", 0.993), "fashion_cnn": ("fashion", 0.93),
           "mnist_mlp": ("mnist", 0.98)}
SHIPPED = ("mnist_cnn", "fashion_cnn")  # genmodels.classifier(dataset) loads these


@torch.no_grad()
def test_accuracy(model: torch.nn.Module, dataset: str) -> float:
    test = load_images(dataset, "test")
    predictions = torch.cat([model(to_unit(test.images[i:i + 2000])).argmax(1)
                             for i in range(0, len(test), 2000)])
    return float((predictions == test.labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(TARGETS))
    parser.add_argument("--ship", action="store_true")
    parser.add_argument("--out", default="runs/benchmarks")
    args = parser.parse_args()

    results_path = ROOT / "docs" / "results" / "classifiers.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in args.names:
        dataset, target = TARGETS[name]
        config = load_config(ROOT / "configs" / f"{name}.toml", ["train.progress=false"])
        out = Path(args.out) / name
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        model = Trainer(config, out).fit().eval()
        seconds = time.perf_counter() - start
        accuracy = test_accuracy(model, dataset)
        results[name] = {
            "dataset": dataset, "test_accuracy": round(accuracy, 4), "target": target,
            "met": accuracy >= target, "train_seconds": round(seconds, 1),
            "epochs": config.train.epochs, "command": f"genmodels train configs/{name}.toml",
            "machine": f"{platform.processor() or platform.machine()}, "
                       f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        }
        print(f"{name:12s} {dataset:8s} accuracy {accuracy:.4f} (target {target}) "
              f"{'met' if accuracy >= target else 'MISSED'}  {seconds / 60:.1f} min", flush=True)
        results_path.write_text(json.dumps(results, indent=2) + "\n")
        if args.ship and name in SHIPPED:
            folder = export_model(out / "final.pt", Path(os.path.relpath(WEIGHTS / name)),
                                  {"test_accuracy": round(accuracy, 4)})  # README: its path
            shipped = folder / EXPORT_WEIGHTS
            card = {"file": f"{name}/{EXPORT_WEIGHTS}", "sha256": sha256(shipped),
                    "bytes": shipped.stat().st_size, "test_accuracy": round(accuracy, 4),
                    "command": f"python benchmarks/classifiers.py {name} --ship "
                               f"(= genmodels train configs/{name}.toml)"}
            (WEIGHTS / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
            print(f"shipped {folder} ({card['bytes']} bytes of weights)")
    if not all(results[n]["met"] for n in args.names):
        sys.exit(1)


if __name__ == "__main__":
    main()
