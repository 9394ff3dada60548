"""DDPM and flow matching on MNIST: FID, class KL and coverage over sampling seeds, FID against
NFE for each sampler, and what sampling costs on this CPU.

    python benchmarks/diffusion_mnist.py [--sections quality curve ship] [--seeds 3]
                                         [--n 10000] [--quality-nfe 20]
                                         [--curve-n 2000] [--nfe 5 10 20 50 100]

The models are the runs ``RUNS/diffusion_mnist`` and ``RUNS/flow_mnist``, trained beforehand on
one CPU thread each (both at once, one per core) by the commands in ``TRAIN_COMMANDS``; their
training wall minutes are read back from the run's metrics.jsonl. Samples come from the trained
weights (``--weights raw``, the default: these runs' EMA, 0.999 without warm-up over 2,340
steps, still holds 10 % of the initial net and gives noisy DDPM samples) or their EMA
(``--weights ema``) and are compared with the 10,000 MNIST test images
(``genmodels.pipelines.sample_metrics.evaluate_samples``): FID on the shipped CNN's 128-d
features, KL(class histogram || uniform) in nats and classes covered, precision / recall /
density / coverage (k = 5).

Sections (each result is recorded as it is measured; measured ones are skipped, so the script
resumes, and two copies sharing the results file split the work, one per core):

- ``quality``: ``--n`` samples at ``--quality-nfe`` net evaluations with each kind's default
  sampler (DDIM η = 0; Heun), sampling seeds 0 .. ``--seeds`` − 1 of the one trained model.
- ``curve``: ``--curve-n`` samples (seed 0) at each NFE of ``--nfe`` for DDPM ancestral,
  DDIM, Euler and Heun (Heun: NFE / 2 steps); the figure samples/diffusion/fid_vs_nfe.png.
- ``likelihood``: bits per dimension of the first ``--bpd-n`` dequantized test images through
  the probability-flow ODE (``bits_per_dim_of``: Heun, ``--bpd-steps`` steps, one Rademacher
  probe), with the standard error over the images.
- ``inpainting``: ``--inpaint-n`` test digits (seed 0) × ``--inpaint-samples`` completions per
  mask of ``--inpaint-masks`` (default ``INPAINT_MASKS``) and each method of the kind
  (RePaint: ``--repaint-steps`` steps, j = 10, r = ``--resample``; flow replacement and DPS:
  the model's sampler at its default steps):
  the shipped classifier's accuracy on completions, the masked MSE, the true class among the
  completions; the grey VAE's numbers (docs/results/inpainting_grey.json) beside; the 15-digit
  figures to samples/diffusion/inpaint_<method>_<mask>.png.
- ``ship`` (done first): the weights exported (``genmodels export``) to
  samples/checkpoints/{diffusion,flow}_mnist/ with the numbers measured so far, and 64 samples
  of each to samples/diffusion/; run ``--sections ship`` again to refresh the numbers.

Writes docs/results/diffusion_mnist.json and the ``diffusion-mnist`` tables of
docs/diffusion.md. Smoke test: ``--runs /tmp/runs --results /tmp/d.json --n 200 --curve-n 200
--nfe 2 4 --seeds 1`` on runs trained with ``train.max_steps=20``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from common import ROOT, write_between_markers
from gan_lab import add_run, pending_runs, recorded_runs, relative

from genmodels import classifier, load
from genmodels.export import export_model
from genmodels.inpaint import (
    fifteen_digits_figure,
    held_out_images,
    inpainting_metrics,
    net_evaluations,
    run_inpainting,
)
from genmodels.models.denoising import DenoisingModel
from genmodels.models.ode_likelihood import bits_per_dim_of
from genmodels.pipelines.run_evaluation import draw_samples
from genmodels.pipelines.sample_metrics import evaluate_samples, reference_images
from genmodels.plots import read_metrics, save_image_grid

RESULTS = ROOT / "docs" / "results" / "diffusion_mnist.json"
KINDS = {"diffusion": "diffusion_mnist", "flow_matching": "flow_mnist"}  # kind: run folder
DEFAULT_RUNS = ROOT / "runs"
TRAIN_COMMANDS = {  # as run: stopped (Ctrl-C) near step 850, resumed with a shorter budget;
    # trained before train.ema_warmup existed (now on in the configs): false reproduces them
    run: f"OMP_NUM_THREADS=1 genmodels train configs/{run}.toml --out runs/{run} train.epochs=7 "
         f"train.ema_warmup=false; then OMP_NUM_THREADS=1 genmodels train --resume runs/{run} "
         "train.epochs=5 train.eval_every=2340" for run in KINDS.values()}
SAMPLERS = {"ddpm": "diffusion", "ddim": "diffusion", "euler": "flow_matching",
            "heun": "flow_matching"}  # sampler: kind
METRICS = ["fid", "prdc", "modes"]
INPAINT_MASKS = ["random:0.5", "top", "quadrants1"]
VAE_INPAINTING = ROOT / "docs" / "results" / "inpainting_grey.json"


@contextmanager
def sampling_with(model: DenoisingModel, sampler: str) -> Iterator[DenoisingModel]:
    """``model`` sampling with ``sampler`` (its config's ``sampler`` or ``solver``) inside the
    block, its own sampler again after it."""
    field = "sampler" if model.kind == "diffusion" else "solver"
    own = getattr(model.config, field)
    setattr(model.config, field, sampler)
    try:
        yield model
    finally:
        setattr(model.config, field, own)


def steps_for(sampler: str, nfe: int) -> int:
    """Sampler steps that make ``nfe`` net evaluations (Heun evaluates twice a step)."""
    return max(1, nfe // 2) if sampler == "heun" else nfe


def measure(model: DenoisingModel, sampler: str, nfe: int, n: int, seed: int,
            test: torch.Tensor, metrics: list[str] = METRICS, batch_size: int = 100) -> dict:
    """The ``metrics`` of ``n`` samples drawn with ``sampler`` at ``nfe`` evaluations,
    ``batch_size`` at a time, with the sampling wall and CPU seconds per 1,000 images."""
    steps = steps_for(sampler, nfe)
    wall, cpu = time.perf_counter(), time.process_time()
    with sampling_with(model, sampler):
        samples = draw_samples(model, n, seed, batch_size=batch_size, steps=steps).clamp(0, 1)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    report = evaluate_samples(samples, test, metrics, n=n, seed=0)
    numbers = {"fid": round(report["fid"]["value"], 3)}
    if "modes" in metrics:
        numbers.update(kl=round(report["modes"]["kl_to_uniform"], 5),
                       classes=report["modes"]["modes_covered"])
    if "prdc" in metrics:
        numbers.update({k: round(report["prdc"][k], 4)
                        for k in ("precision", "recall", "density", "coverage")})
    return {"sampler": sampler, "nfe": steps * (2 if sampler == "heun" else 1), "steps": steps,
            "n": n, "seed": seed, **numbers,
            "seconds_per_1000": round(wall * 1000 / n, 1),
            "cpu_seconds_per_1000": round(cpu * 1000 / n, 1),
            "threads": torch.get_num_threads()}


def likelihood(model: DenoisingModel, test_uint8: torch.Tensor, n: int, steps: int) -> dict:
    """Bits per dimension of the first ``n`` test images (Heun, one probe, seeded)."""
    wall = time.perf_counter()
    numbers = bits_per_dim_of(model, test_uint8[:n], steps=steps, probes=1, solver="heun",
                              generator=torch.Generator().manual_seed(0), batch_size=100)
    return {"bits_per_dim": round(numbers["mean"], 4),
            "standard_error": round(numbers["standard_error"], 4), "n": numbers["n"],
            "nfe": numbers["nfe"], "solver": "heun", "steps": steps, "probes": 1,
            "minutes": round((time.perf_counter() - wall) / 60, 1)}


def inpainting(model: DenoisingModel, method: str, mask: str, n: int, samples: int,
               options: dict, figure: Path | None) -> dict:
    """The inpainting numbers of ``method`` on ``n`` test digits with ``mask``, and its
    15-digit figure (the first 15 of them) to ``figure``."""
    images, labels = held_out_images(model.run_config.data)
    wall = time.perf_counter()
    run = run_inpainting(model, images, labels, mask, method, n=n, samples=samples, seed=0,
                         **options)
    seconds = time.perf_counter() - wall
    numbers = inpainting_metrics(model, run, classifier(), k=0)
    if figure is not None:
        fifteen_digits_figure(run["inputs"][:15], run["mask"][:15], run["completions"][:15],
                              run["truth"][:15], figure, labels=run["labels"][:15])
    return {"method": method, "mask": mask, "n": n, "samples": samples, "options": options,
            **{key: round(numbers[key], 4) for key in ("accuracy", "true_class_share",
                                                       "class_entropy", "masked_mse")},
            "nfe": net_evaluations(model, method, options),
            "seconds": round(seconds, 1)}


def ship(runs: Path, checkpoints: Path, figures: Path, results: dict, ema: bool) -> None:
    """Export each run's weights (its EMA ones if ``ema``) to ``checkpoints``/<run> with the
    numbers measured so far, and 64 of its samples to ``figures``/<run>.png."""
    for kind, run in KINDS.items():
        numbers = {"held-out loss": training_record(runs / run)["test_loss"]}
        if (quality := results.get(f"quality/{kind}/seed0")):
            numbers[f"FID ({quality['n']} samples, {quality['sampler']} NFE {quality['nfe']}, "
                    "MNIST CNN features)"] = quality["fid"]
        folder = export_model(Path(os.path.relpath(runs / run / "final.pt")),
                              Path(os.path.relpath(checkpoints / run)), numbers, ema=ema)
        generator = torch.Generator().manual_seed(0)
        save_image_grid(load(folder).sample(64, generator), figures / f"{run}.png",
                        title=f"{kind}: 64 samples of the shipped {run} (seed 0)")
        size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
        print(f"shipped {relative(folder)} ({size:.2f} MB)")


def training_record(run: Path) -> dict:
    """How the run trained: steps, wall minutes (the metrics log's last time), the final
    held-out loss, the command (``TRAIN_COMMANDS`` for the CPU runs under ``runs/``; runs
    trained elsewhere, such as the GPU session's, keep theirs in their own results)."""
    records = list(read_metrics(run / "metrics.jsonl"))
    held_out = [r["eval/loss"] for r in records if "eval/loss" in r]
    return {"run": relative(run), "steps": records[-1]["step"],
            "wall_minutes": round(records[-1]["time"] / 60, 1),
            "test_loss": round(held_out[-1], 5) if held_out else None,
            "command": TRAIN_COMMANDS[run.name] if run.parent.resolve() == DEFAULT_RUNS
            else f"trained elsewhere: see {relative(run)}/config.toml"}


def quality_table(runs: dict, seconds_digits: int = 0) -> str:
    lines = ["| kind | sampler | NFE | seeds | n | FID | class KL (nats) | classes | precision "
             "| recall | density | coverage | s / 1000 images |", "|" + "---|" * 13]
    for kind in KINDS:
        rows = [r for key, r in runs.items() if key.startswith(f"quality/{kind}/")]
        if not rows:
            continue

        def stat(name: str, digits: int, rows: list = rows) -> str:
            values = [r[name] for r in rows]
            mean = sum(values) / len(values)
            if len(values) == 1:
                return f"{mean:.{digits}f}"
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            return f"{mean:.{digits}f} ± {std:.{digits}f}"

        first = rows[0]
        lines.append(f"| {kind} | {first['sampler']} | {first['nfe']} | {len(rows)} | "
                     f"{first['n']} | {stat('fid', 2)} | {stat('kl', 4)} | "
                     f"{min(r['classes'] for r in rows)} | {stat('precision', 3)} | "
                     f"{stat('recall', 3)} | {stat('density', 3)} | {stat('coverage', 3)} | "
                     f"{stat('seconds_per_1000', seconds_digits)} |")
    return "\n".join(lines)


def curve_table(runs: dict, nfes: list[int], seconds_digits: int = 0) -> str:
    lines = ["| sampler | " + " | ".join(f"NFE {n}" for n in nfes) + " |",
             "|---|" + "---|" * len(nfes)]
    for sampler in SAMPLERS:
        cells = []
        for nfe in nfes:
            r = runs.get(f"curve/{sampler}/nfe{nfe}")
            cells.append(f"{r['fid']:.2f} ({r['seconds_per_1000']:.{seconds_digits}f} s)"
                         if r else "")
        lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def likelihood_table(runs: dict) -> str:
    lines = ["| kind | test images | bits/dim | standard error | solver, steps (NFE) | minutes |",
             "|---|---|---|---|---|---|"]
    for kind in KINDS:
        if (r := runs.get(f"likelihood/{kind}")):
            value = f"{r['bits_per_dim']:.3f}" + (
                " (invalid: below 0, impossible for dequantized 8-bit data; the fixed-step "
                "solver has not converged)" if r["bits_per_dim"] < 0 else "")
            lines.append(f"| {kind} | {r['n']} | {value} | "
                         f"{r['standard_error']:.3f} | {r['solver']}, {r['steps']} "
                         f"({r['nfe']}) | {r['minutes']} |")
    return "\n".join(lines)


def inpainting_table(runs: dict, masks: list[str]) -> str:
    vae = json.loads(VAE_INPAINTING.read_text())["masks"] if VAE_INPAINTING.exists() else {}
    lines = ["| mask | method | model | accuracy | true class among S | masked MSE ([0, 1] "
             "pixels) | NFE | seconds |", "|---|---|---|---|---|---|---|---|"]
    for mask in masks:
        for key, r in runs.items():
            if key.startswith("inpainting/") and r["mask"] == mask:
                lines.append(f"| {mask} | {r['method']} | {key.split('/')[1]} | "
                             f"{r['accuracy']:.4f} | {r['true_class_share']:.3f} | "
                             f"{r['masked_mse'] / 4:.4f} | {r['nfe']} | {r['seconds']:.0f} |")
                # (the MSE is recorded in the models' [-1, 1] range: / 4 in [0, 1] units)
        for method, r in vae.get(mask, {}).get("methods", {}).items():
            lines.append(f"| {mask} | {method} | grey IWAE (inpainting.md) | "
                         f"{r['accuracy']:.4f} | {r['true_class_share']:.3f} | "
                         f"{r['masked_mse']:.4f} | | {r['seconds']:.0f} |")
    return "\n".join(lines)


def plot_curve(runs: dict, nfes: list[int], path: Path) -> None:
    if not any(key.startswith("curve/") for key in runs):
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    n = None
    for sampler, kind in SAMPLERS.items():
        points = [(r["nfe"], r["fid"]) for nfe in nfes
                  if (r := runs.get(f"curve/{sampler}/nfe{nfe}"))]
        if points:
            n = runs[f"curve/{sampler}/nfe{points[0][0]}"]["n"] if n is None else n
            ax.plot(*zip(*points, strict=True), marker="o",
                    label=f"{sampler} ({'DDPM' if kind == 'diffusion' else 'flow matching'})")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = sorted({r["nfe"] for key, r in runs.items() if key.startswith("curve/")})
    ax.set_xticks(ticks)
    fids = [r["fid"] for key, r in runs.items() if key.startswith("curve/")]
    ax.set_yticks([t for t in (1, 2, 5, 10, 20, 50, 100, 200)
                   if min(fids) / 1.5 <= t <= max(fids) * 1.5])
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("net evaluations per sample (NFE)")
    ax.set_ylabel("FID on the MNIST CNN's features")
    ax.set_title(f"MNIST: FID against NFE ({n} samples vs 10,000 test images)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sections = ["quality", "curve", "likelihood", "inpainting", "ship"]
    parser.add_argument("--sections", nargs="*", default=sections, choices=sections,
                        help="none: only rewrite the tables and the figure")
    parser.add_argument("--runs", type=Path, default=DEFAULT_RUNS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--quality-nfe", type=int, default=20)
    parser.add_argument("--curve-n", type=int, default=2_000)
    parser.add_argument("--nfe", type=int, nargs="+", default=[5, 10, 20, 50, 100])
    parser.add_argument("--bpd-n", type=int, default=1000)
    parser.add_argument("--bpd-steps", type=int, default=25)
    parser.add_argument("--inpaint-n", type=int, default=100)
    parser.add_argument("--inpaint-masks", nargs="+", default=INPAINT_MASKS)
    parser.add_argument("--inpaint-samples", type=int, default=4)
    parser.add_argument("--repaint-steps", type=int, default=25)
    parser.add_argument("--resample", type=int, default=5)
    parser.add_argument("--weights", choices=["raw", "ema"], default="raw",
                        help="the trained weights or their EMA (these runs' EMA, 0.999 without "
                             "warm-up over 2,340 steps, still holds 10%% of the initial net)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    own = args.results.resolve() == RESULTS.resolve()
    doc = ROOT / "docs" / "diffusion.md" if own else args.results.with_suffix(".md")
    figures = ROOT / "samples" / "diffusion" if own else args.runs / "figures"

    ema = args.weights == "ema"
    models = {kind: load(args.runs / run, ema=ema) for kind, run in KINDS.items()}
    test = reference_images("mnist-test")
    for kind, run in KINDS.items():
        if (runs := pending_runs(args.results, f"training/{kind}")) is not None:
            add_run(args.results, f"training/{kind}", training_record(args.runs / run))
    if "ship" in args.sections:  # first: the models are kept even if a later section stops
        ship(args.runs, ROOT / "samples" / "checkpoints" if own else figures, figures,
             recorded_runs(args.results), ema)
    default = {"diffusion": "ddim", "flow_matching": "heun"}
    quality = [(f"quality/{kind}/seed{seed}", measure, (models[kind], default[kind],
                                                       args.quality_nfe, args.n, seed, test))
               for seed in range(args.seeds) for kind in KINDS] \
        if "quality" in args.sections else []
    tasks = quality[:len(KINDS)]  # one seed of each kind first, the other seeds last
    if "curve" in args.sections:
        tasks += [(f"curve/{sampler}/nfe{nfe}", measure,
                   (models[kind], sampler, nfe, args.curve_n, 0, test))
                  for nfe in args.nfe for sampler, kind in SAMPLERS.items()]
    if "likelihood" in args.sections:
        test_uint8 = reference_images("mnist-test").mul(255).round().to(torch.uint8)
        tasks += [(f"likelihood/{kind}", likelihood,
                   (models[kind], test_uint8, args.bpd_n, args.bpd_steps)) for kind in KINDS]
    if "inpainting" in args.sections:
        methods = {"diffusion": {"repaint": {"steps": args.repaint_steps,
                                             "resample": args.resample}},
                   "flow_matching": {"replace": {}, "dps": {}}}
        tasks += [(f"inpainting/{kind}/{method}/{mask}", inpainting,
                   (models[kind], method, mask, args.inpaint_n, args.inpaint_samples, options,
                    figures / f"inpaint_{method}_{mask.replace(':', '')}.png"))
                  for mask in args.inpaint_masks for kind in KINDS
                  for method, options in methods[kind].items()]
    tasks += quality[len(KINDS):]
    for key, task, task_args in tasks:
        if pending_runs(args.results, key) is None:
            continue
        record = {**task(*task_args), "weights": args.weights}
        add_run(args.results, key, record)
        print(key, record, flush=True)

    runs = recorded_runs(args.results)
    training = "\n".join(
        f"- `{r['command']}`: {r['steps']} steps, {r['wall_minutes']} min wall, "
        f"held-out loss {r['test_loss']}" for key, r in sorted(runs.items())
        if key.startswith("training/"))
    command = f"python benchmarks/diffusion_mnist.py --weights {args.weights} " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in (("seeds", args.seeds), ("n", args.n), ("quality_nfe", args.quality_nfe),
                     ("curve_n", args.curve_n), ("nfe", args.nfe), ("bpd_n", args.bpd_n),
                     ("bpd_steps", args.bpd_steps), ("inpaint_n", args.inpaint_n),
                     ("inpaint_samples", args.inpaint_samples),
                     ("inpaint_masks", args.inpaint_masks),
                     ("repaint_steps", args.repaint_steps), ("resample", args.resample)))
    write_between_markers(doc, f"{training}\n\n{quality_table(runs)}\n\nFID against NFE "
                          f"({args.curve_n} samples, seed 0; in brackets the wall seconds per "
                          f"1,000 images on one thread):\n\n{curve_table(runs, args.nfe)}\n\n"
                          f"Bits per dimension (dequantized 8-bit test images):\n\n"
                          f"{likelihood_table(runs)}\n\nInpainting ({args.inpaint_n} test "
                          f"digits, {args.inpaint_samples} completions each; the grey IWAE: "
                          f"200 digits × 10):\n\n{inpainting_table(runs, args.inpaint_masks)}\n\n"
                          f"`{command}`", "diffusion-mnist")
    plot_curve(runs, args.nfe, figures / "fid_vs_nfe.png")


if __name__ == "__main__":
    main()
