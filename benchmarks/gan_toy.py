"""GANs on the 2-D mixtures (ring of 8, grid of 25) with the PacGAN/VEEGAN protocol, over seeds.

    python benchmarks/gan_toy.py [--data ring grid] [--rows best minimax ...] [--seeds 5]
                                 [section.key=value ...]

For each dataset, row (``best`` = configs/gan_<data>.toml; the collapse-lab rows of
benchmarks/gan_lab.py change only the objective) and seed, train from scratch through the
Trainer on the CPU with the mode-collapse monitor on, then draw 2,500 samples from the EMA
weights and count (``genmodels.metrics.mixture_modes``): modes captured, share of high-quality
samples (within 3σ of a mode) and reverse KL (nats). Runs already in the results file are
skipped, so an interrupted benchmark continues where it stopped; a row whose resolved config is
the best config's (e.g. PacGAN4 when the best config is PacGAN4) reuses its runs.

Writes docs/results/gan_toy.json, the tables of docs/gan.md (``gan-toy``, ``gan-collapse-lab``),
scatter plots samples/gan/<data>_<row>.png (first seed), samples/gan/modes_over_training.png
(monitor: the run that loses the most modes against the best config), and the best seed of the
best config to samples/checkpoints/gan_<data>/ (an export folder, ``genmodels export``). Another
--results file (a side experiment, a smoke test) writes its table, figures and checkpoints
beside it and under --runs instead:

    python benchmarks/gan_toy.py --seeds 1 train.max_steps=300 --results /tmp/toy.json \
        --runs /tmp/runs
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from common import ROOT, write_between_markers
from gan_lab import (
    LAB_ROWS,
    LABELS,
    ROWS,
    TOY_RESULTS,
    add_run,
    benchmark_parser,
    finish_args,
    group,
    mean_std,
    pending_runs,
    recorded_runs,
    reused_best,
    run_config,
    seeds,
    ship,
    train,
    training_minutes,
    write_collapse_lab,
)

import genmodels
from genmodels.data.build import TOY_DATASETS
from genmodels.pipelines.run_evaluation import MIXTURE_SAMPLES, mixture_numbers
from genmodels.plots import scatter_points

CPU_SECONDS_PER_STEP = 0.012  # MLP 128-128-128, batch 256, one thread; replaced by measurements
# Published (ring modes, ring HQ %, grid modes, grid HQ %): PacGAN (Lin et al. 2018) Table 2,
# with VEEGAN's runs (Srivastava et al. 2017) and PacGAN's own run of the plain GAN.
REFERENCES = [("PacGAN4 (Lin et al. 2018)", 7.8, 95.9, 24.8, 93.6),
              ("VEEGAN (Srivastava et al. 2017)", 8, 52.9, 24.6, 40.0),
              ("GAN (PacGAN's run)", 6.3, 98.2, 17.3, 94.8)]


def main() -> None:
    parser = benchmark_parser(__doc__.splitlines()[0], TOY_RESULTS,
                              ROOT / "runs" / "gan_toy")
    parser.add_argument("--data", nargs="+", default=list(TOY_DATASETS), choices=TOY_DATASETS)
    parser.add_argument("--rows", nargs="+", default=list(LAB_ROWS), choices=ROWS,
                        help="default: the best config and the collapse lab's rows")
    args = parser.parse_intermixed_args()
    finish_args(args, TOY_RESULTS)

    runs = recorded_runs(args.results)
    todo = [(data, row, seed) for data in args.data for row in args.rows
            for seed in seeds(args) if f"{data}/{row}/seed{seed}" not in runs]
    minutes = training_minutes(todo, runs, args.overrides, CPU_SECONDS_PER_STEP)
    print(f"{len(todo)} runs to do, about {minutes:.0f} CPU minutes in all", flush=True)
    for data, row, seed in todo:
        key = f"{data}/{row}/seed{seed}"
        runs = pending_runs(args.results, key)
        if runs is None:
            continue
        record = reused_best(runs, data, row, seed, args.overrides)
        if record is None:
            out = args.runs / f"{data}_{row}_seed{seed}"
            config = run_config(data, row, seed, args.overrides)
            record = measure(config, out, row, seed, args.figures)
            if row == "best":
                ship(args.results, record, out / "final.pt", args.checkpoints,
                     (record["modes"], record["high_quality"]))
        print(key, {k: v for k, v in record.items() if k != "history"}, flush=True)
        add_run(args.results, key, record)
    runs = recorded_runs(args.results)  # with the runs other processes recorded meanwhile
    if not runs:
        return
    plot_histories(runs, args.figures / "modes_over_training.png")
    table = markdown(runs, Path(os.path.relpath(args.figures, args.doc.parent)))
    print("\n" + table)
    write_between_markers(args.doc, table, "gan-toy")
    print("\n" + write_collapse_lab(args.doc, toy_path=args.results))


def measure(config: genmodels.Config, out: Path, row: str, seed: int, figures: Path) -> dict:
    """Train one run into ``out`` and measure 2,500 samples of its EMA weights (the raw ones
    when the run keeps no EMA); the first seed's scatter goes to ``figures``."""
    data = config.data.name
    trainer, record = train(config, out)
    model = genmodels.load(out / "final.pt")
    numbers = mixture_numbers(model, MIXTURE_SAMPLES, seed=0)
    if seed == 0:
        points = model.sample(MIXTURE_SAMPLES, torch.Generator().manual_seed(0))
        title = (f"{LABELS[row]}: {numbers['modes_captured']}/{numbers['num_modes']} modes, "
                 f"{numbers['high_quality']:.1%} high quality")
        scatter_points(points, figures / f"{data}_{row}.png",
                       trainer.data.eval.tensors[0][:MIXTURE_SAMPLES], title=title)
    return {"data": data, "row": row, "seed": seed, "loss": config.model.loss,
            "pack": config.model.pack, "steps": trainer.step,
            "modes": numbers["modes_captured"], "num_modes": numbers["num_modes"],
            "high_quality": round(numbers["high_quality"], 4),
            "kl": round(numbers["reverse_kl"], 4) if numbers["high_quality"] else None,
            "counts": numbers["counts"], **record}


def plot_histories(runs: dict, out: Path) -> Path:
    """Modes covered over training (the monitor's counts) per dataset: the best config's first
    seed against the collapse-lab run that loses the most modes from its peak to its end (a
    run that never finds a mode has not collapsed; it has not learnt)."""
    import matplotlib.pyplot as plt

    datasets = sorted({r["data"] for r in runs.values()}, reverse=True)  # ring, grid
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.5), squeeze=False)
    for ax, data in zip(axes[0], datasets, strict=True):
        healthy = min(group(runs, data, "best"), key=lambda r: r["seed"], default=None)
        others = [r for r in runs.values() if r["data"] == data and r["row"] != "best"
                  and "same_as" not in r and max((h[1] for h in r["history"]), default=0)]
        collapsing = max(others, key=lambda r: (max(h[1] for h in r["history"]) - r["modes"],
                                                -r["modes"]), default=None)
        for record, style in ((healthy, "-"), (collapsing, "--")):
            if record and record["history"]:
                steps, modes = zip(*[(h[0], h[1]) for h in record["history"]], strict=True)
                ax.plot(steps, modes, style, marker="o", ms=3,
                        label=f"{LABELS[record['row']]}, seed {record['seed']}")
        ax.axhline(TOY_DATASETS[data]().n_modes, color="0.6", lw=0.8)
        ax.set_title(f"{data}: modes covered (2,500 samples, 3σ)")
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def markdown(runs: dict, figures: Path) -> str:
    """Rows of the lab (mean ± std over seeds), the published numbers, and links to the
    scatter plots (``figures``: their folder relative to the document)."""
    lines = ["| objective | seeds | ring modes (/8) | ring HQ % | ring KL | grid modes (/25) "
             "| grid HQ % | grid KL | CPU min / run (ring / grid) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in ROWS:
        ring, grid = group(runs, "ring", row), group(runs, "grid", row)
        if not ring and not grid:
            continue
        seeds = "/".join(str(len(g)) for g in (ring, grid))
        cells = []
        for records in (ring, grid):
            cells += [mean_std([r["modes"] for r in records]),
                      mean_std([r["high_quality"] for r in records], percent=True),
                      mean_std([r["kl"] for r in records], 3)]
        cpu = " / ".join(mean_std([r["cpu_minutes"] for r in records]) for records in (ring, grid))
        lines.append(f"| {LABELS[row]} | {seeds} | " + " | ".join(cells) + f" | {cpu} |")
    for name, *numbers in REFERENCES:
        lines.append(f"| published: {name} | – | {numbers[0]} | {numbers[1]} | – | {numbers[2]} "
                     f"| {numbers[3]} | – | – |")
    links = "".join(f" ![]({(figures / f'{d}_best.png').as_posix()})" for d in ("ring", "grid")
                    if any(r["data"] == d and r["row"] == "best" for r in runs.values()))
    return "\n".join(lines) + "\n\nSamples of the best config (seed 0):" + links


if __name__ == "__main__":
    main()
