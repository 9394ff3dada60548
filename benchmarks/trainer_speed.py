"""One epoch through genmodels' Trainer against a pytorch/examples loop, in one process.

    python benchmarks/trainer_speed.py [mlp_classifier vae] [--repeats 2]

The references are the loops of pytorch/examples (mnist/main.py, vae/main.py):
``torchvision.datasets.MNIST`` with ``ToTensor()`` behind a ``DataLoader`` (per-sample PIL
decoding and collation), then zero_grad / forward / loss / backward / Adam step. Ours is
``Trainer.fit()`` on the same net, batch size and optimiser, with the data held in memory as
uint8 tensors; its time includes everything fit() does (logging, checkpoint and final save)
except the end-of-epoch evaluation, which the references do not do. The two loops alternate
and the best of ``--repeats`` is kept. Results go to docs/results/trainer_speed.json.

- ``mlp_classifier``: configs/mnist_mlp.toml (784-512-256-10, dropout 0.2), target >= 2x;
- ``vae``: configs/vae_mnist.toml (the pytorch/examples VAE 784-400-20, batch 128) on grey
  levels as in the example, target >= 2.5x.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision import datasets, transforms

from genmodels.config import Config, load_config
from genmodels.data import resolve_data_root
from genmodels.models import MODELS
from genmodels.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["train.epochs=1", "train.progress=false", "train.eval_every=1000000000"]


def classifier_loss(model, data, target):
    return F.cross_entropy(model.net(data), target)


def vae_loss(model, data, target):
    """pytorch/examples vae/main.py: summed BCE plus the closed-form KL."""
    mu, log_var = model.encoder(data).chunk(2, dim=1)
    z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
    recon = model.decoder(z)
    bce = F.binary_cross_entropy_with_logits(recon, data, reduction="sum")
    return bce - 0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())


CASES: dict[str, tuple[str, list[str], Callable, float]] = {
    "mlp_classifier": ("mnist_mlp.toml", [], classifier_loss, 2.0),
    "vae": ("vae_mnist.toml", ["data.view=unit"], vae_loss, 2.5),
}


def reference_epoch(config: Config, loss_fn: Callable) -> float:
    """pytorch/examples-style epoch; returns seconds."""
    torch.manual_seed(0)
    model = MODELS[config.kind](config.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    dataset = datasets.MNIST(resolve_data_root(), train=True, transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.train.batch_size,
                                         shuffle=True, drop_last=True)
    model.train()
    start = time.perf_counter()
    for data, target in loader:
        optimizer.zero_grad()
        loss = loss_fn(model, data, target)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def trainer_epoch(config: Config) -> float:
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


def linear_training_flops(model: torch.nn.Module, batch_size: int) -> int:
    """FLOPs of one training step counted over the linear layers: forward, weight gradients and
    input gradients, except for the first layer, whose input (the data) needs none
    (2 FLOPs per multiply-add; biases and activations ignored)."""
    macs = [m.in_features * m.out_features for m in model.modules()
            if isinstance(m, torch.nn.Linear)]
    return 2 * (3 * sum(macs) - macs[0]) * batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=list(CASES))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    out = ROOT / "docs" / "results" / "trainer_speed.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    peak = sgemm_peak()
    for name in args.cases:
        file, overrides, loss_fn, target = CASES[name]
        config = load_config(ROOT / "configs" / file, [*COMMON, *overrides])
        reference, ours = [], []
        for _ in range(args.repeats):
            reference.append(reference_epoch(config, loss_fn))
            ours.append(trainer_epoch(config))
        steps = 60_000 // config.train.batch_size
        flops = linear_training_flops(MODELS[config.kind](config.model),
                                      config.train.batch_size) * steps
        gflops = flops / min(ours) / 1e9
        results[name] = {
            "config": f"configs/{file} {' '.join(overrides)}".strip(),
            "reference_seconds": round(min(reference), 2),
            "trainer_seconds": round(min(ours), 2),
            "speedup": round(min(reference) / min(ours), 2), "target": target,
            "trainer_gflops": round(gflops, 1), "sgemm_peak_gflops": round(peak, 1),
            "fraction_of_peak": round(gflops / peak, 3),
            "all_reference_seconds": [round(t, 2) for t in reference],
            "all_trainer_seconds": [round(t, 2) for t in ours],
            "batch_size": config.train.batch_size, "steps": steps,
            "machine": f"{platform.processor() or platform.machine()}, "
                       f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        }
        r = results[name]
        print(f"{name}: reference loop (DataLoader + ToTensor) {r['reference_seconds']:.2f} s, "
              f"Trainer {r['trainer_seconds']:.2f} s per epoch -> {r['speedup']:.2f}x "
              f"(target >= {target}x); Trainer {r['trainer_gflops']:.1f} GFLOP/s = "
              f"{100 * r['fraction_of_peak']:.0f}% of the measured sgemm peak "
              f"{peak:.1f} GFLOP/s", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
