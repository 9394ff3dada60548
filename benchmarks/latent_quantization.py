"""Diverse sampling by latent quantization: K Huber-energy quantization points against K i.i.d.
draws, for the prior N(0, I), the aggregate posterior of training codes and the law of their
encoder means (``genmodels.latent.TARGET_LAWS``).

    python benchmarks/latent_quantization.py [--checkpoint samples/checkpoints/beta_vae_mnist]
                                             [--k 10] [--repeats 20] [--steps 500]
                                             [--batch 1000] [--restarts 1]

Each repeat draws K codes i.i.d. from the target and fits K quantization points
(``genmodels.latent.quantization``; with ``--restarts R``, R fits from different seeds and the
one closest to the target in energy distance is kept), then decodes both sets (the
likelihood's mean) and measures: the number of classes the shipped classifier finds among the
K images, their Vendi score (cosine kernel on pixels; 1 to K) and the squared energy distance
between the K codes and a fixed sample of the target (lower: closer to the target). Reports
mean ± std over repeats to docs/results/latent_quantization.json, a table to docs/latent.md
(between markers) and one repeat's images to samples/latent/quantized_vs_iid.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from common import ROOT, write_between_markers

from genmodels import classifier, load
from genmodels.data import load_images, to_unit
from genmodels.latent import (
    TARGET_LAWS,
    image_table,
    law_sampler,
    quantize,
)
from genmodels.metrics import energy_distance, vendi_score
from genmodels.models.distributions import DiagonalGaussianMixture

CHECKPOINT = "samples/checkpoints/beta_vae_mnist"
METRICS = ("classes", "vendi", "energy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=CHECKPOINT, help=f"a VAE (default {CHECKPOINT})")
    parser.add_argument("--k", type=int, default=10, help="samples per set")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--steps", type=int, default=500, help="Adam steps of the quantization")
    parser.add_argument("--batch", type=int, default=1000, help="target draws J per step")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--restarts", type=int, default=1, help="fits per repeat; keep the best")
    parser.add_argument("--train", type=int, default=10_000,
                        help="training images whose codes define the aggregate posterior")
    parser.add_argument("--reference", type=int, default=5000,
                        help="target draws the energy distance is measured against")
    parser.add_argument("--data-root")
    args = parser.parse_args()
    if min(args.k, args.repeats, args.restarts, args.train, args.reference) < 1:
        parser.error("--k, --repeats, --restarts, --train and --reference must be positive")

    torch.set_num_threads(1)
    model = load(ROOT / args.checkpoint).eval()
    oracle = classifier()
    means, stds = training_codes(model, args.train, args.data_root)
    samplers = {"prior": law_sampler(model.prior()),
                "posterior": law_sampler(DiagonalGaussianMixture(means, stds)),
                "posterior_means": law_sampler(DiagonalGaussianMixture(means,
                                                                       torch.zeros_like(stds)))}
    results = {"checkpoint": args.checkpoint, "model": describe(model), "k": args.k,
               "repeats": args.repeats, "steps": args.steps, "batch": args.batch,
               "lr": args.lr, "restarts": args.restarts, "train_images": args.train,
               "command": command(args), "targets": {}}
    shown = []
    for target in TARGET_LAWS:
        start = time.perf_counter()
        sampler = samplers[target]
        reference = sampler(args.reference, torch.Generator().manual_seed(10_000))
        rows: dict[str, list[dict]] = {"iid": [], "quantized": []}
        for repeat in range(args.repeats):
            iid = sampler(args.k, torch.Generator().manual_seed(1000 + repeat))
            fits = [quantize(sampler, args.k, model.latent_dim, steps=args.steps,
                             batch=args.batch, lr=args.lr, seed=repeat * args.restarts + j)
                    for j in range(args.restarts)]
            best = min(fits, key=lambda points: float(energy_distance(points, reference)))
            for name, codes in (("iid", iid), ("quantized", best)):
                images = decode(model, codes)
                rows[name].append(measure(images, codes, reference, oracle))
                if repeat == 0:
                    shown.append(images)
        results["targets"][target] = {
            name: {metric: summary([row[metric] for row in values]) for metric in METRICS}
            for name, values in rows.items()}
        results["targets"][target]["seconds"] = round(time.perf_counter() - start, 1)
        print(json.dumps({target: results["targets"][target]}), flush=True)
    figure = image_table(torch.stack(shown), ROOT / "samples" / "latent" / "quantized_vs_iid.png",
                         row_labels=[f"{target} {name}" for target in TARGET_LAWS
                                     for name in ("i.i.d.", "quantized")],
                         title=f"{args.k} decoded codes per row (repeat 0): i.i.d. draws of each "
                               "target law against its Huber-energy quantization points")
    results["figure"] = str(figure.relative_to(ROOT))
    path = ROOT / "docs" / "results" / "latent_quantization.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    print("\n" + table)
    write_between_markers(ROOT / "docs" / "latent.md", table, "latent-quantization")


def training_codes(model, n: int, root: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder means and standard deviations (n, D) of the first n training images (grey
    levels): the aggregate posterior (1/n) Σ_i q(z | x_i)."""
    images = to_unit(load_images(model.run_config.data.name, "train", root).images[:n])
    device = next(model.parameters()).device
    means, stds = [], []
    with torch.no_grad():
        for start in range(0, n, 1000):
            q = model.encode(images[start:start + 1000].to(device))
            means.append(q.mean.cpu())
            stds.append(q.variance.sqrt().cpu())
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def decode(model, codes):
    device = next(model.parameters()).device
    return model.decode(codes.to(device)).mean.clamp(0, 1).cpu()


@torch.no_grad()
def measure(images, codes, reference, oracle) -> dict:
    """Classes covered, Vendi score (cosine, pixels) and energy distance² to the target."""
    return {"classes": len(set(oracle(images).argmax(1).tolist())),
            "vendi": vendi_score(images.flatten(1)),
            "energy": float(energy_distance(codes, reference))}


def summary(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def describe(model) -> str:
    c = model.config
    return (f"{model.kind}, {c.net} {'-'.join(map(str, c.hidden))}, latent {c.latent_dim}, "
            f"{c.likelihood}")


def command(args: argparse.Namespace) -> str:
    return (f"python benchmarks/latent_quantization.py --checkpoint {args.checkpoint} "
            f"--k {args.k} --repeats {args.repeats} --steps {args.steps} --batch {args.batch} "
            f"--lr {args.lr} --restarts {args.restarts} --train {args.train}")


def markdown(results: dict) -> str:
    lines = [f"Model `{results['checkpoint']}` ({results['model']}); K = {results['k']}, "
             f"{results['repeats']} repeats (mean ± std); command `{results['command']}`.", "",
             "| target | samples | classes covered (of 10) | Vendi score (of K) "
             "| energy distance² to target |", "|---|---|---|---|---|"]
    for target, row in results["targets"].items():
        for name in ("iid", "quantized"):
            cells = " | ".join(f"{row[name][m]['mean']:.{3 if m == 'energy' else 2}f} ± "
                               f"{row[name][m]['std']:.{3 if m == 'energy' else 2}f}"
                               for m in METRICS)
            lines.append(f"| {target} | {name} | {cells} |")
    rows = ", ".join(f"{target} {name}" for target in results["targets"]
                     for name in ("i.i.d.", "quantized"))
    lines += ["", f"Repeat 0, rows: {rows}: ![quantized vs iid](../{results['figure']})"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
