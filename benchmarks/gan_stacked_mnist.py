"""GANs on Stacked MNIST (1000 modes), the VEEGAN/PacGAN protocol, over seeds.

    python benchmarks/gan_stacked_mnist.py [--rows best minimax ...] [--seeds 5] [--lab]
                                           [section.key=value ...]

For each row (``best`` = configs/gan_stacked_mnist.toml; the collapse-lab rows of
benchmarks/gan_lab.py change only the objective, without cells) and seed, train from scratch
through the Trainer on the CPU (the monitor counts modes of 2,500 samples along the way), then
draw 26,000 samples from the EMA weights, classify each channel with the shipped MNIST CNN and
count the digit triples (``genmodels.metrics.stacked_mnist_modes``): modes covered out of 1000 and
KL(p_model || uniform) in nats, and the part of it due to each channel's digit histogram
(``stacked_mnist_channel_kl``; the rest is dependence between channels). Training minutes (wall
and process CPU) are recorded. Runs already in the results file are skipped; a row whose
resolved config is the best config's reuses its runs.

Writes docs/results/gan_stacked_mnist.json, the ``gan-stacked-mnist`` table of docs/gan.md,
sample grids samples/gan/stacked_mnist_<row>.png (first seed), and the best seed of the best
config (either precision) to samples/checkpoints/gan_stacked_mnist/ with its samples in
samples/gan/stacked_mnist_shipped.png.

``--lab``: the collapse lab's Stacked MNIST columns, every row at the lab budget of
``LAB_STEPS`` steps in bfloat16 autocast (a float32 run of the config's 20,000 steps costs
~80 CPU minutes, too much for 7 objectives × 5 seeds on a CPU). Results go to
docs/results/gan_stacked_mnist_lab.json, the tables ``gan-stacked-mnist-lab`` and
``gan-collapse-lab`` and samples/gan/stacked_mnist_lab_<row>.png; nothing is shipped.
Another --results file (a side experiment, a smoke test) writes its table, figures and
checkpoints beside it and under --runs instead: ``--seeds 1 train.max_steps=20
--results /tmp/s.json --runs /tmp/runs``.
"""

from __future__ import annotations

import os
from pathlib import Path

from common import ROOT, write_between_markers
from gan_lab import (
    LAB_ROWS,
    LABELS,
    ROWS,
    STACKED_LAB_RESULTS,
    STACKED_RESULTS,
    add_run,
    benchmark_parser,
    finish_args,
    group,
    load_results,
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

from genmodels.metrics import stacked_mnist_channel_kl, stacked_mnist_modes
from genmodels.metrics.modes import STACKED_MNIST_SAMPLES
from genmodels.pipelines.run_evaluation import samples_from_checkpoint
from genmodels.plots import save_image_grid

DATA = "stacked_mnist"
LAB_STEPS = 3000  # the collapse lab's budget on Stacked MNIST, for every row
CPU_SECONDS_PER_STEP = 0.25  # DCGAN [64, 128], batch 64, one thread; replaced by measurements
# Published (modes of 1000, KL): PacGAN (Lin et al. 2018) Table 3 and VEEGAN (Srivastava et
# al. 2017) Table 2, 26,000 samples.
REFERENCES = [("PacDCGAN2 (Lin et al. 2018)", 1000, 0.06),
              ("DCGAN (VEEGAN's run)", 99, 3.4), ("DCGAN (PacGAN's run)", 78.9, 4.50),
              ("VEEGAN (Srivastava et al. 2017)", 150, 2.95),
              ("Unrolled GAN (VEEGAN's run)", 48.7, 4.32)]


def main() -> None:
    parser = benchmark_parser(__doc__.splitlines()[0], STACKED_RESULTS,
                              ROOT / "runs" / "gan_stacked_mnist")
    parser.add_argument("--rows", nargs="+", choices=ROWS,
                        help="default: every row (--lab: the collapse lab's rows)")
    parser.add_argument("--lab", action="store_true",
                        help=f"every row at the lab budget ({LAB_STEPS} steps, bfloat16)")
    args = parser.parse_intermixed_args()
    name, marker = DATA, "gan-stacked-mnist"
    if args.lab:
        name, marker = f"{DATA}_lab", "gan-stacked-mnist-lab"
        args.overrides = [f"train.max_steps={LAB_STEPS}", "train.amp=true", *args.overrides]
        if args.results == STACKED_RESULTS:
            args.results = STACKED_LAB_RESULTS
    finish_args(args, STACKED_RESULTS, STACKED_LAB_RESULTS)

    runs = recorded_runs(args.results)
    rows = args.rows or list(LAB_ROWS if args.lab else ROWS)
    todo = [(row, seed) for row in rows for seed in seeds(args)
            if f"{DATA}/{row}/seed{seed}" not in runs]
    minutes = training_minutes([(DATA, row, seed) for row, seed in todo], runs, args.overrides,
                               CPU_SECONDS_PER_STEP)
    print(f"{len(todo)} runs to do, about {minutes:.0f} CPU minutes of training (plus about "
          "1.6 CPU minutes per run to draw and classify the 26,000 samples)", flush=True)
    for row, seed in todo:
        key = f"{DATA}/{row}/seed{seed}"
        runs = pending_runs(args.results, key)
        if runs is None:
            continue
        record = reused_best(runs, DATA, row, seed, args.overrides)
        if record is None:
            config = run_config(DATA, row, seed, args.overrides)
            out = args.runs / f"{row}_seed{seed}"
            trainer, timing = train(config, out)
            samples = samples_from_checkpoint(out / "final.pt", STACKED_MNIST_SAMPLES, seed=0)
            histogram = stacked_mnist_modes(samples)
            if seed == 0:
                save_image_grid(samples[:64], args.figures / f"{name}_{row}.png",
                                title=f"Stacked MNIST, GAN {row} (seed 0): 64 samples")
            record = {"data": DATA, "row": row, "seed": seed, "loss": config.model.loss,
                      "pack": config.model.pack, "steps": trainer.step,
                      "epochs": round(trainer.step / len(trainer.batches), 2),
                      "samples": STACKED_MNIST_SAMPLES, "modes": histogram.modes_covered,
                      "kl": round(histogram.kl_to_uniform, 4),
                      "channel_kl": [round(kl, 4) for kl in stacked_mnist_channel_kl(histogram)],
                      **timing}
            if row in ("best", "best_amp") and not args.lab and ship(
                    args.results, record, out / "final.pt", args.checkpoints,
                    (histogram.modes_covered, -histogram.kl_to_uniform)):
                save_image_grid(samples[:64], args.figures / f"{DATA}_shipped.png",
                                title=f"Stacked MNIST, the shipped GAN ({row}, seed {seed}): "
                                      f"{histogram.modes_covered} of 1000 modes, KL "
                                      f"{histogram.kl_to_uniform:.3f}; 64 samples")
        print(key, {k: v for k, v in record.items() if k != "history"}, flush=True)
        add_run(args.results, key, record)
    runs = recorded_runs(args.results)  # with the runs other processes recorded meanwhile
    if not runs:
        return
    figures = Path(os.path.relpath(args.figures, args.doc.parent))
    if args.lab:
        caption, figure = "Samples of the best config (seed 0)", figures / f"{name}_best.png"
    else:
        shipped = load_results(args.results)["checkpoints"].get(DATA, {}).get("run", "none yet")
        caption = f"Samples of the shipped checkpoint ({shipped})"
        figure = figures / f"{DATA}_shipped.png"
    table = markdown(runs, caption, figure)
    print("\n" + table)
    write_between_markers(args.doc, table, marker)
    if args.lab:
        print("\n" + write_collapse_lab(args.doc, stacked_path=args.results))


def markdown(runs: dict, caption: str, figure: Path) -> str:
    """Rows of the lab (mean ± std over seeds), the published numbers, and ``caption`` with a
    link to the samples in ``figure`` (relative to the document)."""
    lines = ["| objective | seeds | modes (/1000) | KL (nats) | of it, channels' digits | steps "
             "| CPU min / run |", "|---|---|---|---|---|---|---|"]
    for row in ROWS:
        records = group(runs, DATA, row)
        if records:
            cpu = mean_std([r["cpu_minutes"] for r in records])  # a reused run: its cost
            channels = (mean_std([sum(r["channel_kl"]) for r in records], 3)
                        if all("channel_kl" in r for r in records) else "–")
            lines.append(f"| {LABELS[row]} | {len(records)} "
                         f"| {mean_std([r['modes'] for r in records])} "
                         f"| {mean_std([r['kl'] for r in records], 3)} | {channels} "
                         f"| {records[0]['steps']} | {cpu} |")
    for name, modes, kl in REFERENCES:
        lines.append(f"| published: {name} | – | {modes} | {kl} | – | – | – |")
    return "\n".join(lines) + f"\n\n{caption}: ![]({figure.as_posix()})"


if __name__ == "__main__":
    main()
