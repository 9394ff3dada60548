"""DDPM and flow matching on MNIST: FID, class KL and coverage over sampling seeds, FID against
NFE for each sampler, and what sampling costs on this CPU.

    python benchmarks/diffusion_mnist.py [--sections quality curve ship] [--seeds 3]
                                         [--n 10000] [--quality-nfe 20]
                                         [--curve-n 2000] [--nfe 5 10 20 50 100]

The models are the runs ``RUNS/diffusion_mnist`` and ``RUNS/flow_mnist``, trained beforehand on
one CPU thread each (both at once, one per core) by the commands in ``TRAIN_COMMANDS``; their
training wall and CPU minutes are read back from the run's metrics.jsonl. Samples come from the
EMA weights and are compared with the 10,000 MNIST test images
(``genmodels.pipelines.sample_metrics.evaluate_samples``): FID on the shipped CNN's 128-d
features, KL(class histogram || uniform) in nats and classes covered, precision / recall /
density / coverage (k = 5).

Sections (each result is recorded as it is measured; measured ones are skipped, so the script
resumes, and two copies sharing the results file split the work, one per core):

- ``quality``: ``--n`` samples at ``--quality-nfe`` net evaluations with each kind's default
  sampler (DDIM η = 0; Heun), sampling seeds 0 .. ``--seeds`` − 1 of the one trained model.
- ``curve``: ``--curve-n`` samples (seed 0) at each NFE of ``--nfe`` for DDPM ancestral,
  DDIM, Euler and Heun (Heun: NFE / 2 steps); the figure samples/diffusion/fid_vs_nfe.png.
- ``ship``: the EMA weights alone to samples/checkpoints/{diffusion,flow}_mnist.pt and 64
  samples of each to samples/diffusion/.

Writes docs/results/diffusion_mnist.json and the ``diffusion-mnist`` tables of
docs/diffusion.md. Smoke test: ``--runs /tmp/runs --results /tmp/d.json --n 200 --curve-n 200
--nfe 2 4 --seeds 1`` on runs trained with ``train.max_steps=20``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from common import ROOT, sampling_checkpoint, write_between_markers
from gan_lab import add_run, pending_runs, recorded_runs, relative

from genmodels import load
from genmodels.models.denoising import DenoisingModel
from genmodels.pipelines.run_evaluation import draw_samples
from genmodels.pipelines.sample_metrics import evaluate_samples, reference_images
from genmodels.plots import read_metrics, save_image_grid

RESULTS = ROOT / "docs" / "results" / "diffusion_mnist.json"
KINDS = {"diffusion": "diffusion_mnist", "flow_matching": "flow_mnist"}  # kind: run folder
TRAIN_COMMANDS = {run: f"OMP_NUM_THREADS=1 genmodels train configs/{run}.toml --out runs/{run} "
                       "train.epochs=7" for run in KINDS.values()}
SAMPLERS = {"ddpm": "diffusion", "ddim": "diffusion", "euler": "flow_matching",
            "heun": "flow_matching"}  # sampler: kind
METRICS = ["fid", "prdc", "modes"]


def with_sampler(model: DenoisingModel, sampler: str) -> DenoisingModel:
    """``model`` sampling with ``sampler`` (its config's ``sampler`` or ``solver``)."""
    field = "sampler" if model.kind == "diffusion" else "solver"
    setattr(model.config, field, sampler)
    return model


def steps_for(sampler: str, nfe: int) -> int:
    """Sampler steps that make ``nfe`` net evaluations (Heun evaluates twice a step)."""
    return max(1, nfe // 2) if sampler == "heun" else nfe


def measure(model: DenoisingModel, sampler: str, nfe: int, n: int, seed: int,
            test: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """The metrics of ``n`` samples drawn with ``sampler`` at ``nfe`` evaluations, with the
    sampling wall and CPU seconds per 1,000 images; and the samples."""
    steps = steps_for(sampler, nfe)
    wall, cpu = time.perf_counter(), time.process_time()
    samples = draw_samples(with_sampler(model, sampler), n, seed, batch_size=500,
                           steps=steps).clamp(0, 1)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    report = evaluate_samples(samples, test, METRICS, n=n, seed=0)
    prdc = {k: round(report["prdc"][k], 4) for k in ("precision", "recall", "density",
                                                     "coverage")}
    return {"sampler": sampler, "nfe": steps * (2 if sampler == "heun" else 1), "steps": steps,
            "n": n, "seed": seed, "fid": round(report["fid"]["value"], 3),
            "kl": round(report["modes"]["kl_to_uniform"], 5),
            "classes": report["modes"]["modes_covered"], **prdc,
            "seconds_per_1000": round(wall * 1000 / n, 1),
            "cpu_seconds_per_1000": round(cpu * 1000 / n, 1),
            "threads": torch.get_num_threads()}, samples


def training_record(run: Path) -> dict:
    """How the run trained: steps, wall minutes (the metrics log's last time), the final
    held-out loss, the command."""
    records = list(read_metrics(run / "metrics.jsonl"))
    held_out = [r["eval/loss"] for r in records if "eval/loss" in r]
    return {"run": relative(run), "steps": records[-1]["step"],
            "wall_minutes": round(records[-1]["time"] / 60, 1),
            "test_loss": round(held_out[-1], 5) if held_out else None,
            "command": TRAIN_COMMANDS.get(run.name, "")}


def quality_table(runs: dict) -> str:
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
                     f"{stat('seconds_per_1000', 0)} |")
    return "\n".join(lines)


def curve_table(runs: dict, nfes: list[int]) -> str:
    lines = ["| sampler | " + " | ".join(f"NFE {n}" for n in nfes) + " |",
             "|---|" + "---|" * len(nfes)]
    for sampler in SAMPLERS:
        cells = []
        for nfe in nfes:
            r = runs.get(f"curve/{sampler}/nfe{nfe}")
            cells.append(f"{r['fid']:.2f} ({r['seconds_per_1000']:.0f} s)" if r else "")
        lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curve(runs: dict, nfes: list[int], path: Path) -> None:
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
    ax.set_xscale("log")
    ax.set_yscale("log")
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
    parser.add_argument("--sections", nargs="+", default=["quality", "curve", "ship"],
                        choices=["quality", "curve", "ship"])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--quality-nfe", type=int, default=20)
    parser.add_argument("--curve-n", type=int, default=2_000)
    parser.add_argument("--nfe", type=int, nargs="+", default=[5, 10, 20, 50, 100])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    own = args.results.resolve() == RESULTS.resolve()
    doc = ROOT / "docs" / "diffusion.md" if own else args.results.with_suffix(".md")
    figures = ROOT / "samples" / "diffusion" if own else args.runs / "figures"

    models = {kind: load(args.runs / run) for kind, run in KINDS.items()}
    test = reference_images("mnist-test")
    for kind, run in KINDS.items():
        if (runs := pending_runs(args.results, f"training/{kind}")) is not None:
            add_run(args.results, f"training/{kind}", training_record(args.runs / run))
    tasks = []
    if "quality" in args.sections:
        default = {"diffusion": "ddim", "flow_matching": "heun"}
        tasks += [(f"quality/{kind}/seed{seed}", kind, default[kind], args.quality_nfe, args.n,
                   seed) for seed in range(args.seeds) for kind in KINDS]
    if "curve" in args.sections:
        tasks += [(f"curve/{sampler}/nfe{nfe}", kind, sampler, nfe, args.curve_n, 0)
                  for nfe in args.nfe for sampler, kind in SAMPLERS.items()]
    for key, kind, sampler, nfe, n, seed in tasks:
        if pending_runs(args.results, key) is None:
            continue
        record, _ = measure(models[kind], sampler, nfe, n, seed, test)
        add_run(args.results, key, record)
        print(key, record, flush=True)

    if "ship" in args.sections:
        for kind, run in KINDS.items():
            path = sampling_checkpoint(args.runs / run / "final.pt",
                                       (ROOT / "samples" / "checkpoints" if own else figures)
                                       / f"{run}.pt")
            shipped = load(path)
            default = {"diffusion": "ddim", "flow_matching": "heun"}[kind]
            generator = torch.Generator().manual_seed(0)
            grid = with_sampler(shipped, default).sample(64, generator)
            save_image_grid(grid, figures / f"{run}.png")
            print(f"shipped {relative(path)} ({path.stat().st_size / 2**20:.2f} MB)")

    runs = recorded_runs(args.results)
    training = "\n".join(
        f"- `{r['command']}`: {r['steps']} steps, {r['wall_minutes']} min wall on one thread, "
        f"held-out loss {r['test_loss']}" for key, r in sorted(runs.items())
        if key.startswith("training/"))
    command = "python benchmarks/diffusion_mnist.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in (("seeds", args.seeds), ("n", args.n), ("quality_nfe", args.quality_nfe),
                     ("curve_n", args.curve_n), ("nfe", args.nfe)))
    write_between_markers(doc, f"{training}\n\n{quality_table(runs)}\n\nFID against NFE "
                          f"({args.curve_n} samples, seed 0; in brackets the wall seconds per "
                          f"1,000 images on one thread):\n\n{curve_table(runs, args.nfe)}\n\n"
                          f"`{command}`", "diffusion-mnist")
    plot_curve(runs, args.nfe, figures / "fid_vs_nfe.png")


if __name__ == "__main__":
    main()
