"""Class-conditional MNIST, per class: the CVAE and the projection-discriminator GAN.

    python benchmarks/conditional_mnist.py [--models cvae cgan] [--per-class 1000]
                                           [--temperatures 0.9 0.8 0.7] [--reuse]
                                           [--results docs/results/conditional_mnist.json]
                                           [--runs runs/conditional_mnist] [section.key=value ...]

For each model, train configs/<model>_mnist.toml from scratch through the Trainer on the CPU
(the overrides apply to every model), then draw N samples of each class y (seed 0; the EMA
weights when the run keeps them, as ``genmodels.load`` does) and measure, per class and overall:

- accuracy: the share of the samples asked for class y that the shipped MNIST CNN (99.63% test
  accuracy) reads as y. Target: >= 99% for every class and overall;
- FID on the CNN's 128-d features: the class-y samples against the class-y test images (892 to
  1,135 each), and all the samples against the 10,000 test images;
- precision, recall, density and coverage (k = 5, Naeem et al. 2020) of the class-y samples
  against the class-y test images. Recall and coverage per class are the class-balanced
  diversity: a model that collapses inside a class scores low there even with a right class
  histogram; the overall number is their mean over the classes (each class weighs the same).

A model that draws Gaussian prior codes (the CVAE, a ``TemperedSampler``) is measured again at
each of ``--temperatures`` τ (z = μ + τ σ ε; Kingma & Dhariwal 2018): more typical samples at a
cost in diversity, which the per-class recall and coverage show. ``--reuse`` measures a run
already trained under RUNS again instead of training it anew.

The MNIST training images, N per class, are measured the same way (the floor of each metric).
Numbers go to docs/results/conditional_mnist.json, the tables to docs/conditional.md (between
the conditional-mnist markers), per-class grids (10 samples a class, one row a class) to
samples/conditional/<model>_mnist.png; another --results file writes RESULTS.md and
RUNS/figures instead, so that a side run never rewrites the published tables. Smoke test:
``--per-class 50 train.max_steps=20 --results /tmp/c.json --runs /tmp/c_runs``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from common import ROOT, published_outputs, train_from_scratch, write_between_markers

from genmodels import load
from genmodels.config import load_config
from genmodels.data import load_images
from genmodels.metrics import embed_images, frechet_distance, prdc
from genmodels.models import TemperedSampler
from genmodels.models.conditional import per_class_labels
from genmodels.pipelines.run_evaluation import draw_samples
from genmodels.pipelines.sample_metrics import as_8bit
from genmodels.plots import save_image_grid

MODELS = {"cvae": "configs/cvae_mnist.toml", "cgan": "configs/cgan_mnist.toml"}
LABELS = {"cvae": "CVAE (Sohn et al. 2015)", "cgan": "cGAN, projection discriminator",
          "train_images": "MNIST training images (floor)"}
CLASSES = 10
TARGET = 0.99  # classifier accuracy on the samples of each class, and overall
OWN_RESULTS = ROOT / "docs" / "results" / "conditional_mnist.json"
GRID_PER_CLASS = 10


def per_class_numbers(samples: torch.Tensor, labels: torch.Tensor, test_labels: torch.Tensor,
                      test_features: torch.Tensor) -> dict:
    """Accuracy, FID and PRDC per class and overall of ``samples`` ((n, 1, 28, 28), uint8 or
    float in [0, 1]) of ``labels`` against the test images of the same classes
    (``test_labels``, and ``test_features`` their CNN features)."""
    embedding = embed_images(samples, "mnist-cnn")
    features, read = embedding.features, embedding.labels[:, 0].cpu()
    classes = []
    for y in range(CLASSES):
        mine, theirs = labels == y, test_labels == y
        scores = prdc(test_features[theirs], features[mine], k=5)
        classes.append({"label": y, "samples": int(mine.sum()),
                        "accuracy": round(float((read[mine] == y).double().mean()), 4),
                        "fid": round(frechet_distance(features[mine], test_features[theirs]).value,
                                     3),
                        **{name: round(value, 4) for name, value in scores.items()}})
    accuracy = float((read == labels).double().mean())
    overall = {"accuracy": round(accuracy, 4),
               "worst_class_accuracy": min(c["accuracy"] for c in classes),
               "fid": round(frechet_distance(features, test_features).value, 3),
               "mean_class_fid": round(sum(c["fid"] for c in classes) / CLASSES, 3),
               **{f"mean_class_{name}": round(sum(c[name] for c in classes) / CLASSES, 4)
                  for name in ("precision", "recall", "density", "coverage")}}
    overall["meets_target"] = accuracy >= TARGET and overall["worst_class_accuracy"] >= TARGET
    return {"overall": overall, "classes": classes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--per-class", type=int, default=1000, help="samples of each class")
    parser.add_argument("--temperatures", type=float, nargs="*", default=[],
                        help="prior temperatures to measure a TemperedSampler at, besides 1")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the runs already trained under --runs again")
    parser.add_argument("--results", type=Path, default=OWN_RESULTS)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "conditional_mnist")
    parser.add_argument("--data-root")
    args = parser.parse_intermixed_args()
    doc, figures = published_outputs(args.results, OWN_RESULTS, "conditional.md", "conditional",
                                     args.runs)

    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    runs = results.setdefault("runs", {})
    test = load_images("mnist", "test", args.data_root)
    test_features = embed_images(test.images, "mnist-cnn").features
    labels = per_class_labels(CLASSES, args.per_class, "cpu")
    if "train_images" not in runs or runs["train_images"]["per_class_samples"] != args.per_class:
        train_set = load_images("mnist", "train", args.data_root)
        picked = torch.cat([(train_set.labels == y).nonzero()[:args.per_class, 0]
                            for y in range(CLASSES)])
        runs["train_images"] = {"per_class_samples": args.per_class, **per_class_numbers(
            train_set.images[picked], train_set.labels[picked], test.labels, test_features)}
    for name in args.models:
        out = args.runs / name
        if args.reuse and (out / "final.pt").is_file() and "steps" in runs.get(name, {}):
            training = {key: runs[name][key] for key in
                        ("config", "overrides", "steps", "epochs", "wall_minutes", "cpu_minutes")}
        else:
            config = load_config(ROOT / MODELS[name], ["train.progress=false", *args.overrides])
            trainer, timing = train_from_scratch(config, out, args.data_root)
            training = {"config": MODELS[name], "overrides": args.overrides,
                        "steps": trainer.step,
                        "epochs": round(trainer.step / len(trainer.batches), 2), **timing}
        model = load(out / "final.pt")  # EMA weights when the run keeps them
        samples = draw_samples(model, len(labels), seed=0, labels=labels).clamp(0, 1)
        save_grid(samples, labels, figures / f"{name}_mnist.png",
                  f"{LABELS[name]}: {GRID_PER_CLASS} samples of each class")
        runs[name] = {**training, "per_class_samples": args.per_class,
                      **per_class_numbers(as_8bit(samples), labels, test.labels,
                                          test_features)}
        print(name, json.dumps(runs[name]["overall"]), flush=True)
        for temperature in args.temperatures if isinstance(model, TemperedSampler) else []:
            cooled = draw_samples(model, len(labels), seed=0, labels=labels,
                                  temperature=temperature).clamp(0, 1)
            save_grid(cooled, labels, figures / f"{name}_mnist_t{temperature:g}.png",
                      f"{LABELS[name]}, prior temperature {temperature:g}: {GRID_PER_CLASS} "
                      "samples of each class")
            numbers = per_class_numbers(as_8bit(cooled), labels, test.labels, test_features)
            runs[name].setdefault("temperatures", {})[f"{temperature:g}"] = numbers
            print(name, f"temperature {temperature:g}", json.dumps(numbers["overall"]),
                  flush=True)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=2) + "\n")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(runs, Path(os.path.relpath(figures, doc.parent)))
    print("\n" + table)
    write_between_markers(doc, table, "conditional-mnist")


def save_grid(samples: torch.Tensor, labels: torch.Tensor, path: Path, title: str) -> None:
    """The first GRID_PER_CLASS samples of each class, one row a class."""
    grid = torch.cat([samples[labels == y][:GRID_PER_CLASS] for y in range(CLASSES)])
    save_image_grid(grid, path, nrow=GRID_PER_CLASS,
                    row_labels=[f"class {y}" for y in range(CLASSES)], title=title)


def temperature_table(name: str, run: dict, figures: Path) -> list[str]:
    """Overall numbers of ``run`` at τ = 1 and each temperature measured, then the grids."""
    rows = {"1": run, **run.get("temperatures", {})}
    lines = ["", f"{LABELS[name]} at reduced prior temperature τ (z = μ + τ σ ε; the same "
             "model and measurements):", "",
             "| τ | accuracy (target ≥ 99%) | worst class | FID (all) | mean class FID | "
             "mean class precision | mean class recall | mean class coverage | meets target |",
             "|---|---|---|---|---|---|---|---|---|"]
    for temperature, numbers in sorted(rows.items(), key=lambda item: -float(item[0])):
        o = numbers["overall"]
        lines.append(f"| {temperature} | {100 * o['accuracy']:.2f}% | "
                     f"{100 * o['worst_class_accuracy']:.2f}% | {o['fid']:.2f} | "
                     f"{o['mean_class_fid']:.2f} | {o['mean_class_precision']:.3f} | "
                     f"{o['mean_class_recall']:.3f} | {o['mean_class_coverage']:.3f} | "
                     f"{'yes' if o['meets_target'] else 'no'} |")
    grids = [f"![τ = {t}]({(figures / f'{name}_mnist_t{t}.png').as_posix()})"
             for t in run.get("temperatures", {})]
    return lines + (["", " ".join(grids)] if grids else [])


def markdown(runs: dict, figures: Path) -> str:
    """The overall table, then accuracy, FID and coverage per class, then the grids."""
    names = [name for name in (*MODELS, "train_images") if name in runs]
    lines = ["| model | samples / class | accuracy (target ≥ 99%) | worst class | FID (all) | "
             "mean class FID | mean class precision | mean class recall | mean class coverage | "
             "CPU min |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        run, o = runs[name], runs[name]["overall"]
        where = f" (`{run['config']}`, {run['epochs']} epochs)" if "config" in run else ""
        lines.append(f"| {LABELS[name]}{where} | {run['per_class_samples']} | "
                     f"{100 * o['accuracy']:.2f}% | {100 * o['worst_class_accuracy']:.2f}% | "
                     f"{o['fid']:.2f} | {o['mean_class_fid']:.2f} | "
                     f"{o['mean_class_precision']:.3f} | {o['mean_class_recall']:.3f} | "
                     f"{o['mean_class_coverage']:.3f} | {run.get('cpu_minutes', '–')} |")
    lines += ["", "Per class: accuracy / FID against that class's test images / coverage.", "",
              "| class | " + " | ".join(LABELS[name] for name in names) + " |",
              "|---|" + "---|" * len(names)]
    for y in range(CLASSES):
        cells = [runs[name]["classes"][y] for name in names]
        lines.append(f"| {y} | " + " | ".join(
            f"{100 * c['accuracy']:.1f}% / {c['fid']:.2f} / {c['coverage']:.3f}" for c in cells)
            + " |")
    grids = [f"![{LABELS[name]}]({(figures / f'{name}_mnist.png').as_posix()})"
             for name in MODELS if name in runs]
    if grids:
        lines += ["", f"Samples, {GRID_PER_CLASS} a class (one row a class), "
                  + " then ".join(LABELS[name] for name in MODELS if name in runs) + ":", "",
                  " ".join(grids)]
    for name in MODELS:
        if runs.get(name, {}).get("temperatures"):
            lines += temperature_table(name, runs[name], figures)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
