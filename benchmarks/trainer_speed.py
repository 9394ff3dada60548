"""One epoch of the MNIST MLP classifier: genmodels' Trainer against a pytorch/examples loop.

    python benchmarks/trainer_speed.py [--repeats 2]

The reference is the loop of pytorch/examples (mnist/main.py): ``torchvision.datasets.MNIST``
with ``ToTensor()`` behind a ``DataLoader`` (per-sample PIL decoding and collation), then
zero_grad / forward / cross-entropy / backward / Adam step. Ours is ``Trainer.fit()`` on the
same net (configs/mnist_mlp.toml), batch size and optimiser, with the data held in memory as
uint8 tensors; its time includes everything fit() does (logging, checkpoint and final save)
except the end-of-epoch evaluation, which the reference does not do. Both run in this process,
alternately, and the best of ``--repeats`` is kept. Results go to
docs/results/trainer_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision import datasets, transforms

from genmodels.config import load_config
from genmodels.data import resolve_data_root
from genmodels.models import Classifier
from genmodels.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = ["train.epochs=1", "train.progress=false", "train.eval_every=1000000000"]


def reference_epoch(config) -> float:
    """pytorch/examples-style epoch; returns seconds."""
    torch.manual_seed(0)
    model = Classifier(config.model).net
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    dataset = datasets.MNIST(resolve_data_root(), train=True, transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.train.batch_size,
                                         shuffle=True, drop_last=True)
    model.train()
    start = time.perf_counter()
    for data, target in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def trainer_epoch(config) -> float:
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, out)
        start = time.perf_counter()
        trainer.fit()
        return time.perf_counter() - start


def sgemm_peak(n: int = 2048, repeats: int = 10) -> float:
    """Measured float32 matrix-multiply throughput of this machine, GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def mlp_training_flops(sizes: list[int]) -> int:
    """FLOPs of one training sample: forward, weight gradients, and input gradients of every
    layer but the first (2 FLOPs per multiply-add; bias and activations ignored)."""
    macs = [m * n for m, n in zip(sizes[:-1], sizes[1:], strict=True)]
    return 2 * (2 * sum(macs) + sum(macs[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    config = load_config(ROOT / "configs" / "mnist_mlp.toml", OVERRIDES)
    reference, ours = [], []
    for _ in range(args.repeats):
        reference.append(reference_epoch(config))
        ours.append(trainer_epoch(config))
    steps = 60_000 // config.train.batch_size
    flops = mlp_training_flops([784, *config.model.hidden, 10]) * steps * config.train.batch_size
    peak = sgemm_peak()
    result = {
        "reference_seconds": round(min(reference), 2), "trainer_seconds": round(min(ours), 2),
        "speedup": round(min(reference) / min(ours), 2),
        "trainer_gflops": round(flops / min(ours) / 1e9, 1), "sgemm_peak_gflops": round(peak, 1),
        "fraction_of_peak": round(flops / min(ours) / 1e9 / peak, 3),
        "all_reference_seconds": [round(t, 2) for t in reference],
        "all_trainer_seconds": [round(t, 2) for t in ours],
        "batch_size": config.train.batch_size, "steps": steps,
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} threads, torch {torch.__version__}",
    }
    print(f"reference loop (DataLoader + ToTensor): {result['reference_seconds']:.2f} s/epoch")
    print(f"genmodels Trainer (in-memory tensors):  {result['trainer_seconds']:.2f} s/epoch")
    print(f"speed-up: {result['speedup']:.2f}x   (target >= 2x)")
    print(f"Trainer throughput: {result['trainer_gflops']:.1f} GFLOP/s = "
          f"{100 * result['fraction_of_peak']:.0f}% of the measured sgemm peak "
          f"{result['sgemm_peak_gflops']:.1f} GFLOP/s")
    out = ROOT / "docs" / "results" / "trainer_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
