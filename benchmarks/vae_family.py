"""Train every VAE variant on MNIST and Fashion-MNIST and measure them the same way.

    python benchmarks/vae_family.py [CONFIG_STEM ...] [section.key=value ...]
                                    [--datasets mnist fashion] [--k 1000]

For each config (configs/<stem>.toml) and dataset, train from scratch through the Trainer on
the CPU, then on the full test set (in the view the model was trained on) measure:
the negative ELBO and the importance-sampled NLL with k samples (nats; stochastic encoders),
the reconstruction MSE per pixel (all), and the training minutes. Sample grids go to
samples/vae/<stem>_<dataset>.png, numbers to docs/results/vae_family.json and a Markdown table
on stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
from common import ROOT, write_between_markers

from genmodels.config import load_config
from genmodels.plots import save_image_grid
from genmodels.train import Trainer

VARIANTS = ["vae_mnist", "beta_vae_mnist", "iwae_mnist", "wae_mmd_mnist", "sliced_wae_mnist",
            "radon_sobolev_mnist"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("items", nargs="*", metavar="CONFIG_STEM | section.key=value",
                        help=f"configs to run (default: {' '.join(VARIANTS)}) and overrides")
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion"])
    parser.add_argument("--k", type=int, default=1000, help="importance samples of the NLL")
    parser.add_argument("--out", default="runs/vae_family")
    args = parser.parse_intermixed_args()
    extra = [item for item in args.items if "=" in item]
    variants = [item for item in args.items if "=" not in item] or VARIANTS

    results_path = ROOT / "docs" / "results" / "vae_family.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for stem in variants:
        for dataset in args.datasets:
            config = load_config(ROOT / "configs" / f"{stem}.toml",
                                 [f"data.name={dataset}", "train.progress=false", *extra])
            out = Path(args.out) / f"{stem}_{dataset}"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            trainer = Trainer(config, out)
            model = trainer.fit().eval()
            minutes = (time.perf_counter() - start) / 60
            stochastic = not model.deterministic_encoder
            model.config.eval_samples = args.k if stochastic else 0
            start = time.perf_counter()
            with torch.no_grad(), torch.random.fork_rng():
                torch.manual_seed(0)
                trainer.data.eval.set_epoch(0)
                metrics = model.evaluate(iter(trainer.data.eval))
            grid = save_image_grid(model.sample(64, torch.Generator().manual_seed(0)),
                                   ROOT / "samples" / "vae" / f"{stem}_{dataset}.png",
                                   title=f"{model.kind} (configs/{stem}.toml) on {dataset}: 64 "
                                         "samples, the likelihood's mean at prior draws")
            key = f"{stem}/{dataset}"
            results[key] = {
                "kind": config.kind, "dataset": dataset, "view": config.data.view,
                "likelihood": config.model.likelihood, "epochs": config.train.epochs,
                "nll": round(metrics["nll"], 2) if stochastic else None,
                "nelbo": round(metrics["nelbo"], 2) if "nelbo" in metrics else None,
                "importance_samples": args.k if stochastic else None,
                "mse": round(metrics["mse"], 5), "train_minutes": round(minutes, 1),
                "eval_minutes": round((time.perf_counter() - start) / 60, 1),
                "samples": str(grid.relative_to(ROOT)),
                "command": f"genmodels train configs/{stem}.toml data.name={dataset}",
            }
            print(json.dumps({key: results[key]}), flush=True)
            results_path.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    print("\n" + table)
    write_between_markers(ROOT / "docs" / "vae.md", table, "vae-family")


def markdown(results: dict) -> str:
    """The results as a Markdown table, linking each sample grid from docs/."""
    lines = ["| config | data | view | test NLL (IS) | test -ELBO | recon MSE / pixel | samples "
             "| train min |", "|---|---|---|---|---|---|---|---|"]
    for key, r in results.items():
        nll = f"{r['nll']:.2f} (k={r['importance_samples']})" if r["nll"] is not None else "n/a"
        nelbo = f"{r['nelbo']:.2f}" if r["nelbo"] is not None else "n/a"
        lines.append(f"| `{key.split('/')[0]}` | {r['dataset']} | {r['view']} | {nll} | {nelbo} "
                     f"| {r['mse']:.4f} | ![]({'../' + r['samples']}) | {r['train_minutes']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
