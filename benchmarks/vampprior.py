"""VampPrior VAE against the plain VAE with the same nets: test NLL on MNIST.

    python benchmarks/vampprior.py [--epochs 100] [--k 5000] [--test-images 10000]
                                   [--models vae vampprior] [--eval-only] [section.key=value ...]

Trains configs/vae_mnist_300.toml and configs/vampprior_mnist.toml (MLP 784-300-300-40,
Bernoulli decoder, dynamically binarised MNIST, Adam 5e-4, batch 100) from scratch through the
Trainer on the CPU, then measures on the 10,000 test images (the fixed held-out binarisation)
the importance-sampled NLL with k samples (nats, Burda et al. 2016) on the first
``--test-images`` of them, and the negative ELBO on all. ``--eval-only`` measures the runs
already in ``--out``.
Numbers go to docs/results/vampprior.json and the table between the ``vampprior`` markers of
docs/vae.md; sample grids to samples/vae/. The paper (Tomczak & Welling 2018, Table 2) reports
85.57 nats for its one-layer VampPrior VAE (gated MLP units, 2,000 epochs with warm-up).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from common import ROOT, write_between_markers

from genmodels import load
from genmodels.config import load_config
from genmodels.data.build import build_data
from genmodels.plots import save_image_grid
from genmodels.progress import progress
from genmodels.train import Trainer

CONFIGS = {"vae": "vae_mnist_300", "vampprior": "vampprior_mnist"}
PAPER_NLL = 85.57  # Tomczak & Welling 2018, Table 2, VampPrior, one stochastic layer


def _images(n: int) -> str:
    return "all 10,000" if n == 10_000 else f"first {n:,}"


def last_record(run: Path) -> dict:
    """The run's last line in metrics.jsonl (its ``time``: training seconds)."""
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])


@torch.no_grad()
def test_numbers(model, batches, k: int, images: int, desc: str) -> dict[str, float]:
    """Mean IS-NLL (k samples) over the first ``images`` held-out images and mean -ELBO over
    all of them, nats per image."""
    nll = nelbo = 0.0
    count = scored = 0
    with progress(total=min(images, len(batches.tensors[0])), desc=desc, unit="img") as bar:
        for batch in batches:
            x = batch[0]
            nelbo -= float(model.elbo(x).sum())
            count += len(x)
            if scored < images:
                x = x[:images - scored]
                nll -= float(model.log_likelihood(x, k).sum())
                scored += len(x)
                bar.update(len(x))
    return {"nll": nll / scored, "nelbo": nelbo / count, "nll_images": scored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--k", type=int, default=5000, help="importance samples of the NLL")
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--test-images", type=int, default=10_000,
                        help="test images of the NLL (the -ELBO uses all 10,000)")
    parser.add_argument("--eval-only", action="store_true",
                        help="measure the runs already in --out instead of training")
    parser.add_argument("--out", default="runs/vampprior")
    args = parser.parse_args()

    results_path = ROOT / "docs" / "results" / "vampprior.json"
    for name in args.models:
        config = load_config(ROOT / "configs" / f"{CONFIGS[name]}.toml",
                             [f"train.epochs={args.epochs}", "train.progress=false",
                              "data.eval_batch_size=100", *args.overrides])
        out = Path(args.out) / name
        if not args.eval_only:
            shutil.rmtree(out, ignore_errors=True)
            Trainer(config, out).fit()
        minutes = last_record(out)["time"] / 60
        model = load(out)
        data = build_data(config.data, config.train.batch_size)
        torch.manual_seed(0)
        numbers = test_numbers(model, data.eval, args.k, args.test_images,
                               f"{name} NLL (k={args.k})")
        save_image_grid(model.sample(64, torch.Generator().manual_seed(0)),
                        ROOT / "samples" / "vae" / f"{CONFIGS[name]}.png",
                        title=f"{name} (configs/{CONFIGS[name]}.toml): 64 samples, the "
                              "likelihood's mean at prior draws")
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        results[name] = {"config": f"configs/{CONFIGS[name]}.toml", "epochs": args.epochs,
                         "k": args.k, "train_minutes": round(minutes, 1),
                         **{key: round(value, 2) for key, value in numbers.items()}}
        results[name]["nll_images"] = numbers["nll_images"]
        print(name, results[name], flush=True)
        results_path.write_text(json.dumps(results, indent=2) + "\n")

    rows = ["| prior | test NLL (IS, k; images) | test −ELBO (10,000 images) | epochs | "
            "training |", "|---|---|---|---|---|"]
    for name, r in results.items():
        rows.append(f"| {'VampPrior, K = 500' if name == 'vampprior' else 'N(0, I)'} | "
                    f"{r['nll']:.2f} (k = {r['k']}; {_images(r['nll_images'])}) | "
                    f"{r['nelbo']:.2f} | {r['epochs']} | {r['train_minutes']} min |")
    rows.append(f"| paper (Tomczak & Welling 2018), VampPrior | {PAPER_NLL} (k = 5,000; "
                "all 10,000) | | up to 2,000 | |")
    table = "\n".join(rows)
    write_between_markers(ROOT / "docs" / "vae.md", table, "vampprior")
    print(table)


if __name__ == "__main__":
    main()
