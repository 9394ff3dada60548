"""The DCGAN on MNIST against the best VAE: FID on classifier features, class histogram, PRDC.

    python benchmarks/gan_mnist.py [--seeds 5] [--vae samples/checkpoints/iwae_mnist_nll]
                                   [section.key=value ...]

For each seed, train configs/gan_mnist.toml from scratch through the Trainer on the CPU, then
draw 10,000 samples from the EMA weights and compare them with the 10,000 MNIST test images
(``genmodels.pipelines.sample_metrics.evaluate_samples``): FID on the shipped CNN's 128-d features,
KL(class histogram || uniform) in nats and the classes covered, precision / recall / density /
coverage (k = 5). The VAE checkpoint (``--vae``; its samples are the decoder means at prior
codes) and 10,000 MNIST training images (the floor of each metric) are measured the same way.
Runs already in the results file are skipped.

Writes docs/results/gan_mnist.json, the ``gan-mnist`` table of docs/gan.md, the VAE's samples
samples/gan/mnist_vae.png, and the seed with the lowest FID to samples/checkpoints/gan_mnist/
(its samples to samples/gan/mnist_best.png); another --results file writes beside it and under
--runs instead. Smoke test: ``--seeds 1 train.max_steps=20 --n 1000 --results /tmp/m.json
--runs /tmp/runs --vae runs/demo_vae``.
"""

from __future__ import annotations

import os
from pathlib import Path

from common import ROOT, write_between_markers
from gan_lab import (
    LABELS,
    add_run,
    benchmark_parser,
    finish_args,
    group,
    mean_std,
    pending_runs,
    recorded_runs,
    relative,
    run_config,
    seeds,
    ship,
    train,
)

from genmodels.pipelines.run_evaluation import samples_from_checkpoint
from genmodels.pipelines.sample_metrics import evaluate_samples, reference_images
from genmodels.plots import save_image_grid

METRICS = ["fid", "prdc", "modes"]
ROWS = ["best", "best_amp"]  # of gan_lab.ROWS


def numbers(samples, reference, n: int) -> dict:
    """FID, class-histogram KL and classes covered, PRDC of ``samples`` against ``reference``
    (both (N, 1, 28, 28) in [0, 1]; at most ``n`` of each)."""
    report = evaluate_samples(samples, reference, METRICS, n=n, seed=0)
    prdc = {k: round(report["prdc"][k], 4) for k in ("precision", "recall", "density",
                                                     "coverage")}
    return {"n": report["n_samples"], "fid": round(report["fid"]["value"], 3),
            "kl": round(report["modes"]["kl_to_uniform"], 4),
            "classes": report["modes"]["modes_covered"], **prdc}


def main() -> None:
    own_results = ROOT / "docs" / "results" / "gan_mnist.json"
    parser = benchmark_parser(__doc__.splitlines()[0], own_results, ROOT / "runs" / "gan_mnist")
    parser.add_argument("--vae", type=Path,
                        default=ROOT / "samples" / "checkpoints" / "iwae_mnist_nll")
    parser.add_argument("--n", type=int, default=10_000, help="samples and test images")
    parser.add_argument("--rows", nargs="+", default=ROWS, choices=ROWS,
                        help="best: the config; best_amp: the same in bfloat16 autocast")
    args = parser.parse_intermixed_args()
    finish_args(args, own_results)

    runs = recorded_runs(args.results)
    test = reference_images("mnist-test")
    if "train_images" not in runs:
        runs = add_run(args.results, "train_images", {
            "data": "mnist", "row": "train_images",
            **numbers(reference_images("mnist-train", n=args.n, seed=1), test, args.n)})
    if "vae" not in runs or runs["vae"]["checkpoint"] != relative(args.vae):
        if args.vae.exists():
            samples = samples_from_checkpoint(args.vae, args.n, seed=0)
            save_image_grid(samples[:64], args.figures / "mnist_vae.png",
                            title=f"64 samples of the VAE {relative(args.vae)} (seed 0)")
            runs = add_run(args.results, "vae", {
                "data": "mnist", "row": "vae", "checkpoint": relative(args.vae),
                **numbers(samples, test, args.n)})
        else:
            print(f"no VAE checkpoint at {args.vae}; its row is left out", flush=True)
    for row, seed in [(row, seed) for row in args.rows for seed in seeds(args)]:
        key = f"mnist/{row}/seed{seed}"
        if pending_runs(args.results, key) is None:
            continue
        config = run_config("mnist", row, seed, args.overrides)
        out = args.runs / f"{row}_seed{seed}"
        trainer, timing = train(config, out)
        samples = samples_from_checkpoint(out / "final.pt", args.n, seed=0)
        record = {"data": "mnist", "row": row, "seed": seed, "steps": trainer.step,
                  "epochs": round(trainer.step / len(trainer.batches), 2),
                  **numbers(samples, test, args.n), **timing}
        if ship(args.results, record, out / "final.pt", args.checkpoints, (-record["fid"],)):
            save_image_grid(samples[:64], args.figures / "mnist_best.png",
                            title=f"64 samples of the shipped MNIST GAN ({row}, seed {seed}, "
                                  f"FID {record['fid']:.2f})")
        print(key, {k: v for k, v in record.items() if k != "history"}, flush=True)
        add_run(args.results, key, record)
    runs = recorded_runs(args.results)  # with the runs other processes recorded meanwhile
    table = markdown(runs, Path(os.path.relpath(args.figures, args.doc.parent)))
    print("\n" + table)
    write_between_markers(args.doc, table, "gan-mnist")


def markdown(runs: dict, figures: Path) -> str:
    """GAN seeds (mean ± std), the VAE and the training images, against the test set."""
    lines = ["| model | seeds | FID (CNN features) | class KL (nats) | classes | precision "
             "| recall | density | coverage | CPU min / run |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    rows = [(f"DCGAN, configs/gan_mnist.toml: {LABELS[row]}", group(runs, "mnist", row))
            for row in ROWS]
    if "vae" in runs:
        rows.append((f"VAE, `{runs['vae']['checkpoint']}`", [runs["vae"]]))
    rows.append(("MNIST training images (floor)", [runs["train_images"]]))
    for name, records in rows:
        if not records:
            continue
        cells = [mean_std([r["fid"] for r in records], 2), mean_std([r["kl"] for r in records], 4),
                 mean_std([r["classes"] for r in records], 0)]
        cells += [mean_std([r[k] for r in records], 3)
                  for k in ("precision", "recall", "density", "coverage")]
        cpu = mean_std([r["cpu_minutes"] for r in records]) if "cpu_minutes" in records[0] \
            else "–"
        seeds = len(records) if records[0]["row"] in ROWS else "–"
        lines.append(f"| {name} | {seeds} | " + " | ".join(cells) + f" | {cpu} |")
    names = ["mnist_best.png", *(["mnist_vae.png"] if "vae" in runs else [])]
    links = " ".join(f"![]({(figures / name).as_posix()})" for name in names)
    return "\n".join(lines) + f"\n\nSamples, GAN then VAE: {links}"


if __name__ == "__main__":
    main()
