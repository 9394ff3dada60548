"""SGD, SGD + momentum, Adam and SGD-G2 at equal budgets of gradient evaluations.

    python benchmarks/optimizers.py [--evals 1920] [--pilot-evals 480] [--seeds 0 1 2]
    python benchmarks/optimizers.py --plot   # redraw the figures from the JSON

Two tasks, each through the package's Trainer on the CPU (one thread), constant learning rate:

- ``classifier``: configs/mnist_mlp.toml (784-512-256-10, dropout 0.2), cross-entropy;
- ``vae``: configs/vae_mnist.toml (784-400-20 VAE, Bernoulli decoder), negative ELBO in nats.

SGD-G2 evaluates the gradient twice per step, so it takes half as many steps: every optimiser
gets ``--evals`` gradient evaluations at batch 128 (1920: 4.1 epochs of one-evaluation
steps).
Each optimiser's learning rate (SGD-G2: its initial rate) is picked from a grid by a pilot run
of ``--pilot-evals`` on seed 0, scored by the loss on the 5k validation split held out of the
training set; the main runs then train on all 60k images and report the test set. Training
losses are the running means over each 24 evaluations that the Trainer logs. Results go to
docs/results/optimizers.json and docs/figures/optim_*.png.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genmodels.config import load_config
from genmodels.plots import plt, read_metrics
from genmodels.train import NonFiniteLossError, Trainer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "optimizers.json"
FIGURES = ROOT / "docs" / "figures"
TASKS = {"classifier": "mnist_mlp.toml", "vae": "vae_mnist.toml"}
# name -> (train overrides, gradient evaluations per step, learning rates of the pilot grid)
OPTIMIZERS: dict[str, tuple[list[str], int, list[float]]] = {
    "sgd": (["train.optimizer=sgd"], 1, [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]),
    "momentum": (["train.optimizer=sgd", "train.momentum=0.9"], 1, [3e-4, 1e-3, 3e-3, 1e-2, 3e-2]),
    "adam": (["train.optimizer=adam"], 1, [3e-4, 1e-3, 3e-3]),
    "sgd_g2": (["train.optimizer=sgd_g2"], 2, [1e-3, 1e-2, 1e-1]),
}
LABELS = {"sgd": "SGD", "momentum": "SGD + momentum 0.9", "adam": "Adam", "sgd_g2": "SGD-G2"}
LOG_EVALS = 24  # gradient evaluations between two logged training losses


def train(task: str, optimizer: str, lr: float, seed: int, evals: int,
          validation: bool) -> dict:
    """One run; its logged curves against gradient evaluations and seconds, and final metrics."""
    overrides, per_step, _ = OPTIMIZERS[optimizer]
    steps = evals // per_step
    config = load_config(ROOT / "configs" / TASKS[task], [
        *overrides, f"train.lr={lr}", f"train.seed={seed}", "train.schedule=constant",
        f"train.max_steps={steps}", f"train.log_every={LOG_EVALS // per_step}",
        f"train.eval_every={steps}", f"train.checkpoint_every={steps}", "train.progress=false",
        f"data.validation={'true' if validation else 'false'}"])
    with tempfile.TemporaryDirectory() as out:
        try:
            Trainer(config, out).fit()
        except NonFiniteLossError:
            return {"diverged": True}
        records = read_metrics(Path(out) / "metrics.jsonl")
    logs = [r for r in records if "train/loss" in r]
    final = next(r for r in records if "eval/loss" in r)
    return {"diverged": False,
            "evals": [r["step"] * per_step for r in logs],
            "seconds": [r["time"] for r in logs],
            "train_loss": [r["train/loss"] for r in logs],
            "lr": [r["lr"] for r in logs],
            **{k.removeprefix("eval/"): v for k, v in final.items() if k.startswith("eval/")}}


def pilot(tasks: list[str], evals: int) -> dict:
    """Validation loss of every grid learning rate (None: diverged), seed 0."""
    scores: dict = {}
    for task in tasks:
        for name, (_, _, grid) in OPTIMIZERS.items():
            for lr in grid:
                result = train(task, name, lr, seed=0, evals=evals, validation=True)
                score = None if result["diverged"] else result["loss"]
                scores.setdefault(task, {}).setdefault(name, {})[str(lr)] = score
                print(f"pilot {task} {name} lr={lr:g}: validation loss {score}", flush=True)
    return scores


def best_lr(scores: dict[str, float | None]) -> float:
    finite = {lr: s for lr, s in scores.items() if s is not None and np.isfinite(s)}
    return float(min(finite, key=finite.get))


def summarize(results: dict) -> str:
    """The Markdown table of the main runs: mean ± standard deviation over the seeds."""
    lines = ["| task | optimiser | lr | train loss at 1/4 budget | final train loss | "
             "test loss | test accuracy | wall s |", "|---" * 8 + "|"]
    for task, by_optimizer in results["runs"].items():
        for name, all_runs in by_optimizer.items():
            def stat(values: list[float], digits: int) -> str:
                return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"

            runs = [r for r in all_runs if not r["diverged"]]
            label = LABELS[name] + (f" (diverged on {len(all_runs) - len(runs)} of "
                                    f"{len(all_runs)} seeds)" if len(runs) < len(all_runs) else "")
            if not runs:
                lines.append(f"| {task} | {label} | {results['lr'][task][name]:g} |" + " - |" * 5)
                continue
            quarter = [r["train_loss"][r["evals"].index(results["evals"] // 4)] for r in runs]
            digits = 3 if task == "classifier" else 1
            accuracy = stat([r["accuracy"] for r in runs], 4) if task == "classifier" else "-"
            lines.append(
                f"| {task} | {label} | {results['lr'][task][name]:g} | "
                f"{stat(quarter, digits)} | {stat([r['train_loss'][-1] for r in runs], digits)} | "
                f"{stat([r['loss'] for r in runs], digits)} | {accuracy} | "
                f"{stat([r['seconds'][-1] for r in runs], 1)} |")
    return "\n".join(lines)


def plot(results: dict) -> list[Path]:
    """Per task: training loss against gradient evaluations and against seconds (mean over
    seeds, band = min..max); and SGD-G2's rate h against gradient evaluations."""
    paths = []
    for task, by_optimizer in results["runs"].items():
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        for name, all_runs in by_optimizer.items():
            runs = [r for r in all_runs if not r["diverged"]]
            if not runs:
                continue
            losses = np.array([r["train_loss"] for r in runs])
            evals, seconds = np.array(runs[0]["evals"]), np.mean([r["seconds"] for r in runs], 0)
            label = f"{LABELS[name]} (lr {results['lr'][task][name]:g})"
            for ax, x in zip(axes, (evals, seconds), strict=True):
                (line,) = ax.plot(x, losses.mean(0), label=label)
                ax.fill_between(x, losses.min(0), losses.max(0), alpha=0.2,
                                color=line.get_color())
        for ax, xlabel in zip(axes, ("gradient evaluations (batch 128)",
                                     "wall seconds (2 shared cores: indicative)"), strict=True):
            ax.set(xlabel=xlabel, yscale="log",
                   ylabel="training cross-entropy" if task == "classifier"
                   else "training -ELBO (nats)")
            ax.grid(alpha=0.3, which="both")
        if task == "vae":
            for ax in axes:
                ax.set_ylim(top=250)
        axes[0].legend()
        fig.suptitle(f"{task}: mean over the seeds, band = min..max")
        fig.tight_layout()
        paths.append(FIGURES / f"optim_{task}.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for task, by_optimizer in results["runs"].items():
        for seed, run in enumerate(r for r in by_optimizer["sgd_g2"] if not r["diverged"]):
            ax.plot(run["evals"], run["lr"], color="C0" if task == "classifier" else "C1",
                    alpha=0.8, label=task if seed == 0 else None)
    ax.set(xlabel="gradient evaluations", ylabel="SGD-G2 rate h", yscale="log",
           title="SGD-G2's learning rate, one line per seed")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    paths.append(FIGURES / "optim_sgd_g2_rate.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=1920)
    parser.add_argument("--pilot-evals", type=int, default=480)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--plot", action="store_true", help="only redraw from the JSON")
    args = parser.parse_args()
    if args.plot:
        results = json.loads(RESULTS.read_text())
        print(summarize(results))
        print(*plot(results), sep="\n")
        return

    torch.set_num_threads(1)  # the cores are shared: one thread, runs one after the other
    start = time.perf_counter()
    scores = pilot(args.tasks, args.pilot_evals)
    lrs = {task: {name: best_lr(scores[task][name]) for name in OPTIMIZERS} for task in args.tasks}
    runs: dict = {task: {name: [] for name in OPTIMIZERS} for task in args.tasks}
    for task in args.tasks:
        for seed in args.seeds:  # seeds outermost: load changes on the machine hit every optimiser
            for name in OPTIMIZERS:
                result = train(task, name, lrs[task][name], seed, args.evals, validation=False)
                runs[task][name].append({"seed": seed, **result})
                print(f"{task} {name} seed {seed}: " + ("diverged" if result["diverged"] else
                      f"test loss {result['loss']:.4f}, {result['seconds'][-1]:.1f} s"),
                      flush=True)
    results = {
        "evals": args.evals, "pilot_evals": args.pilot_evals, "seeds": args.seeds,
        "batch_size": 128, "log_evals": LOG_EVALS, "pilot": scores, "lr": lrs, "runs": runs,
        "machine": f"{platform.processor() or platform.machine()}, 1 torch thread on 2 cores "
                   f"shared with other jobs, torch {torch.__version__}",
        "total_minutes": round((time.perf_counter() - start) / 60, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(summarize(results))
    print(*plot(results), sep="\n")


if __name__ == "__main__":
    main()
