"""Inpaint MNIST test digits with one VAE: every mask × every completion method, same digits.

    python benchmarks/inpainting.py [--checkpoint samples/checkpoints/iwae_mnist_nll]
                                    [--n 200] [--samples 10] [--k 1000] [--steps 200]
                                    [--masks top ...] [--methods map ...] [--figures top ...]

On N seeded test digits (statically binarised once, seed 0, for a model of binarised MNIST),
for each mask and method: S completions per digit (the likelihood's mean on missing pixels),
then the masked MSE per missing pixel; the shipped classifier's accuracy on completions, the
share of digits whose true class is among their S completions and the entropy of the
completion classes (nats); the method's predictive NLL −log (1/S) Σ_s p(x_miss | z_s) at the
codes z_s behind its completions (nats per digit) and, paired over the same digits, how much
lower MwG's is than pseudo-Gibbs'; and, once per mask, the model's own
−log p(x_miss | x_obs) importance-sampled with k codes, p(x_obs)'s proposal built from the
encoder at MwG's completions (nats per digit). Numbers go to
docs/results/inpainting.json, tables to docs/inpainting.md (between markers), and the
"15 digits to guess" figures (first 15 digits, MwG) to samples/inpainting/<mask>.png
(``--name inpainting_grey``: docs/results/inpainting_grey.json, samples/inpainting/grey_<mask>.png).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from common import ROOT, write_between_markers

from genmodels import classifier, load
from genmodels.inpaint import (
    METHODS,
    conditional_nll,
    fifteen_digits_figure,
    held_out_images,
    inpainting_metrics,
    predictive_nll,
    run_inpainting,
)
from genmodels.utils import seed_everything

CHECKPOINT = "samples/checkpoints/iwae_mnist_nll"
MASKS = ["top", "bottom", "left", "right", "quadrants1", "quadrants2", "quadrants3", "center",
         "random:0.5", "rectangles"]
FIGURES = ["top", "quadrants1", "center", "random:0.5"]
PYRO_CVAE = {"quadrants1": 71.8, "quadrants2": 51.0, "quadrants3": 24.2}  # nats, Pyro tutorial
FIGURE_ROWS = 15


def method_options(method: str, args: argparse.Namespace) -> dict:
    """The options a method is run with: ``steps`` iterations for map and the chains, ``k``
    proposals for importance, and the likelihood's mean as output of the samplers."""
    if method == "map":
        return {"steps": args.steps}
    if method == "importance":
        return {"k": args.k, "final": "mean"}
    return {"steps": args.steps, "final": "mean"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=CHECKPOINT, help=f"a VAE (default {CHECKPOINT})")
    parser.add_argument("--n", type=int, default=200, help="test digits")
    parser.add_argument("--samples", type=int, default=10, help="completions per digit (S)")
    parser.add_argument("--k", type=int, default=1000,
                        help="importance samples: conditional NLL and the importance method")
    parser.add_argument("--steps", type=int, default=200, help="map and chain iterations")
    parser.add_argument("--masks", nargs="+", default=MASKS)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--figures", nargs="*", default=FIGURES, help="masks to draw (MwG)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="inpainting",
                        help="results go to docs/results/NAME.json and between the NAME-results "
                             "markers of docs/inpainting.md")
    parser.add_argument("--data-root")
    args = parser.parse_args()

    torch.set_num_threads(1)
    model = load(ROOT / args.checkpoint).eval()
    images, labels = held_out_images(model.run_config.data, root=args.data_root, seed=args.seed)
    oracle = classifier()
    results: dict = {"checkpoint": args.checkpoint, "model": describe(model), "n": args.n,
                     "samples": args.samples, "importance_samples": args.k,
                     "steps": args.steps, "seed": args.seed, "command": command(args),
                     "masks": {}}
    results_path = ROOT / "docs" / "results" / f"{args.name}.json"
    binary = bool(((images == 0) | (images == 1)).all())  # else no likelihood scores (grey)
    prefix = "" if args.name == "inpainting" else f"{args.name.removeprefix('inpainting_')}_"
    for mask in args.masks:
        start = time.perf_counter()
        row: dict = {"methods": {}}
        scores, runs = {}, {}
        for method in args.methods:
            begin = time.perf_counter()
            run = runs[method] = run_inpainting(model, images, labels, mask, method, n=args.n,
                                                samples=args.samples, seed=args.seed,
                                                **method_options(method, args))
            numbers = inpainting_metrics(model, run, oracle, k=0)
            if binary:
                scores[method] = predictive_nll(model, run["truth"], run["mask"], run["codes"])
            numbers["seconds"] = round(time.perf_counter() - begin, 1)
            row["methods"][method] = {key: value for key, value in numbers.items()
                                      if key not in ("mask", "method", "n", "samples",
                                                     "conditional_nll", "conditional_nll_se",
                                                     "nll_note")}
            if method == "mwg" and mask in args.figures:
                figure = fifteen_digits_figure(
                    run["inputs"][:FIGURE_ROWS], run["mask"][:FIGURE_ROWS],
                    run["completions"][:FIGURE_ROWS], run["truth"][:FIGURE_ROWS],
                    ROOT / "samples" / "inpainting" / f"{prefix}{mask.replace(':', '')}.png",
                    labels=run["labels"][:FIGURE_ROWS])
                row["figure"] = str(figure.relative_to(ROOT))
        if {"mwg", "pseudo_gibbs"} <= scores.keys():  # paired over the same digits
            gain = scores["pseudo_gibbs"] - scores["mwg"]
            row["mwg_gain_over_pseudo_gibbs"] = float(gain.mean())
            row["mwg_gain_over_pseudo_gibbs_se"] = float(gain.std() / len(gain) ** 0.5)
        seed_everything(args.seed)
        row |= model_conditional_nll(model, runs.get("mwg", run), args.k) if binary else \
            {"conditional_nll": None, "conditional_nll_se": None}
        row["missing_pixels"] = numbers["missing_pixels"]
        row["seconds"] = round(time.perf_counter() - start, 1)
        results["masks"][mask] = row
        print(json.dumps({mask: row}), flush=True)
        results_path.write_text(json.dumps(results, indent=2) + "\n")
    tables = markdown(results)
    print("\n" + tables)
    write_between_markers(ROOT / "docs" / "inpainting.md", tables, f"{args.name}-results")


def model_conditional_nll(model, run: dict, k: int) -> dict:
    """Mean and standard error over the run's digits of −log p(x_miss | x_obs) (nats), p(x_obs)
    importance-sampled from the encoder at the run's completions (MwG's when it ran)."""
    device = next(model.parameters()).device
    values = conditional_nll(model, run["truth"].to(device), run["mask"].to(device), k,
                             completions=run["completions"].to(device))
    return {"conditional_nll": float(values.mean()),
            "conditional_nll_se": float(values.std() / len(values) ** 0.5)}


def describe(model) -> str:
    c = model.config
    return (f"{model.kind}, {c.net} {'-'.join(map(str, c.hidden))}, latent {c.latent_dim}, "
            f"{c.likelihood}, data view {model.run_config.data.view}")


def command(args: argparse.Namespace) -> str:
    text = (f"python benchmarks/inpainting.py --checkpoint {args.checkpoint} --n {args.n} "
            f"--samples {args.samples} --k {args.k} --steps {args.steps}")
    if args.masks != MASKS:
        text += " --masks " + " ".join(args.masks)
    if args.methods != list(METHODS):
        text += " --methods " + " ".join(args.methods)
    if args.figures != FIGURES:
        text += " --figures " + " ".join(args.figures)
    if args.name != "inpainting":
        text += f" --name {args.name}"
    return text


def markdown(results: dict) -> str:
    """The masks × methods table, the Pyro comparison and the run's description."""
    def number(value: float | None, digits: int) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    lines = [f"Model `{results['checkpoint']}` ({results['model']}); {results['n']} test digits, "
             f"S = {results['samples']} completions each, k = {results['importance_samples']} "
             f"importance samples, {results['steps']} iterations; command "
             f"`{results['command']}`.", "",
             "| mask | method | masked MSE | accuracy | true class among S | class entropy "
             "(nats) | predictive NLL (nats) | model −log p(x_miss\\|x_obs) (nats) |",
             "|---|---|---|---|---|---|---|---|"]
    def plus_minus(value: float | None, error: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f} ± {error:.1f}"

    for mask, row in results["masks"].items():
        model_nll = plus_minus(row["conditional_nll"], row["conditional_nll_se"])
        for method, r in row["methods"].items():
            nll = plus_minus(r["predictive_nll"], r["predictive_nll_se"])
            lines.append(f"| `{mask}` | {method} | {r['masked_mse']:.4f} "
                         f"| {number(r['accuracy'], 3)} | {number(r['true_class_share'], 3)} "
                         f"| {number(r['class_entropy'], 2)} | {nll} | {model_nll} |")
    gains = [f"`{mask}` {row['mwg_gain_over_pseudo_gibbs']:.1f} ± "
             f"{row['mwg_gain_over_pseudo_gibbs_se']:.1f}" for mask, row in results["masks"].items()
             if "mwg_gain_over_pseudo_gibbs" in row]
    if gains:
        lines += ["", "Predictive NLL of pseudo-Gibbs minus that of MwG, paired over the same "
                  "digits (nats, mean ± standard error; positive: MwG better): "
                  + ", ".join(gains) + "."]
    quadrants = [mask for mask in PYRO_CVAE if mask in results["masks"]
                 and results["masks"][mask]["conditional_nll"] is not None]
    if quadrants:
        lines += ["", "| observed quadrants | Pyro CVAE test loss (nats) | this model −log "
                  "p(x_miss\\|x_obs) (nats) | MwG predictive NLL (nats) |", "|---|---|---|---|"]
        for mask in quadrants:
            row = results["masks"][mask]
            mwg = row["methods"].get("mwg", {}).get("predictive_nll")
            lines.append(f"| {mask[-1]} | {PYRO_CVAE[mask]} | {row['conditional_nll']:.1f} ± "
                         f"{row['conditional_nll_se']:.1f} | {number(mwg, 1)} |")
    figures = [f"![{mask}](../{row['figure']})" for mask, row in results["masks"].items()
               if "figure" in row]
    if figures:
        lines += ["", "MwG completions of the first 15 digits (input, S completions, truth):", "",
                  " ".join(figures)]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
