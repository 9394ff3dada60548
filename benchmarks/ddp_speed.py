"""Data parallel on 2 gloo processes: genmodels' gradient averaging against PyTorch's
``DistributedDataParallel``, in one run.

    python benchmarks/ddp_speed.py [--cases mlp_classifier vae cnn_classifier] [--repeats 3]
                                   [--steps 200]

Launches itself under ``torchrun --standalone --nproc_per_node=2`` (one thread per process, so
the two processes fill the two cores). Each case trains the config's model for ``--steps``
steps at its global batch (half on each rank, from tensors in memory) with Adam, in three ways
that alternate, best of ``--repeats``:

- ``flat all-reduce``: after the backward pass, ``genmodels.train.distributed.average_gradients``
  (one flat all-reduce per optimiser, what the Trainer does);
- ``torch DDP``: the model wrapped in ``DistributedDataParallel`` (25 MB buckets, all-reduce
  overlapped with the backward pass);
- ``Trainer``: ``Trainer.fit()`` itself under torchrun (the flat all-reduce plus everything fit
  does per step: logging, the finite checks), ``train.max_steps = --steps``; its loop time
  (``Trainer.elapsed``), without the final evaluation and save.

Also ``single process``: the same loop in one process on the whole batch with 2 threads (what
data parallelism has to beat on this machine). Results: docs/results/ddp_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as torch_dist

from genmodels.config import load_config
from genmodels.data import load_images
from genmodels.models import MODELS
from genmodels.train import Trainer
from genmodels.train import distributed as dist

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "ddp_speed.json"
CASES = {"mlp_classifier": ("mnist_mlp.toml", []),
         "vae": ("vae_mnist.toml", ["data.view=unit"]),
         "cnn_classifier": ("mnist_cnn.toml", [])}
COMMON = ["train.progress=false", "train.eval_every=1000000000", "train.log_every=50",
          "train.checkpoint_every=1000000"]


def batches(config, rank: int, world: int, steps: int) -> list[tuple[torch.Tensor, ...]]:
    """This rank's slices of the first ``steps`` shuffled global batches of MNIST (one epoch at
    most), as float images in [0, 1] and labels, in memory."""
    data = load_images("mnist", "train")
    size, local = config.train.batch_size, config.train.batch_size // world
    if steps * size > len(data.images):
        raise SystemExit(f"--steps {steps} at batch {size} is more than one epoch")
    order = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(0))
    slices = [order[i * size:(i + 1) * size][rank * local:(rank + 1) * local]
              for i in range(steps)]
    return [(data.images[i].float().div_(255), data.labels[i]) for i in slices]


def loop(loss, parameters: list, lr: float, data: list, average: bool) -> float:
    """Seconds of ``len(data)`` Adam steps of ``loss(batch)["loss"]``; with ``average``, the
    gradients go through genmodels' flat all-reduce after each backward pass."""
    optimizer = torch.optim.Adam(parameters, lr=lr)
    if torch_dist.is_initialized():
        torch_dist.barrier()
    start = time.perf_counter()
    for batch in data:
        optimizer.zero_grad(set_to_none=True)
        loss(batch)["loss"].backward()
        if average:
            dist.average_gradients(parameters)
        optimizer.step()
    return time.perf_counter() - start


class LossModule(torch.nn.Module):
    """DDP wraps a module's forward: this one's forward is the model's loss."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.loss(batch)


def worker(args) -> None:
    torch.set_num_threads(1)
    torch_dist.init_process_group("gloo")
    rank, world = torch_dist.get_rank(), torch_dist.get_world_size()
    results = {}
    for name in args.cases:
        file, overrides = CASES[name]
        config = load_config(ROOT / "configs" / file, [*COMMON, *overrides,
                                                       f"train.max_steps={args.steps}"])
        data = batches(config, rank, world, args.steps)
        times = {"flat all-reduce": [], "torch DDP": [], "Trainer": []}
        for _ in range(args.repeats):
            torch.manual_seed(0)
            model = MODELS[config.kind](config.model)
            dist.broadcast_parameters(model)
            times["flat all-reduce"].append(loop(model.loss, list(model.parameters()),
                                                 config.train.lr, data, average=True))
            torch.manual_seed(0)
            wrapped = torch.nn.parallel.DistributedDataParallel(
                LossModule(MODELS[config.kind](config.model)))
            times["torch DDP"].append(loop(wrapped, list(wrapped.parameters()),
                                           config.train.lr, data, average=False))
            with tempfile.TemporaryDirectory() as out:
                out = [out]
                torch_dist.broadcast_object_list(out)  # rank 0's folder for every rank
                trainer = Trainer(config, out[0])
                torch_dist.barrier()
                trainer.fit()
                times["Trainer"].append(trainer.elapsed)  # the steps, not the final save
                torch_dist.barrier()
        results[name] = {k: [round(t, 3) for t in v] for k, v in times.items()}
    if rank == 0:
        Path(args.child).write_text(json.dumps(results))
    torch_dist.destroy_process_group()


def single_process(args) -> dict:
    torch.set_num_threads(2)
    out = {}
    for name in args.cases:
        file, overrides = CASES[name]
        config = load_config(ROOT / "configs" / file, [*COMMON, *overrides])
        data = batches(config, 0, 1, args.steps)
        runs = []
        for _ in range(args.repeats):
            torch.manual_seed(0)
            model = MODELS[config.kind](config.model)
            runs.append(loop(model.loss, list(model.parameters()), config.train.lr, data,
                             average=False))
        out[name] = [round(t, 3) for t in runs]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        worker(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        child = Path(tmp) / "ranks.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc_per_node=2", __file__, "--child", str(child), "--cases", *args.cases,
                   "--repeats", str(args.repeats), "--steps", str(args.steps)]
        subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        ranks = json.loads(child.read_text())
    single = single_process(args)
    results = {"command": "python benchmarks/ddp_speed.py " + " ".join(sys.argv[1:]),
               "steps": args.steps, "processes": 2, "threads_per_process": 1,
               "torch": torch.__version__, "cases": {}}
    for name in args.cases:
        best = {k: min(v) for k, v in ranks[name].items()}
        best["single process, 2 threads"] = min(single[name])
        results["cases"][name] = {
            "best_seconds": best, "all_seconds": {**ranks[name],
                                                  "single process, 2 threads": single[name]},
            "torch_ddp_over_flat_all_reduce": round(best["flat all-reduce"] / best["torch DDP"], 3),
        }
        print(f"{name}: " + ", ".join(f"{k} {v:.2f} s" for k, v in best.items())
              + f" ({args.steps} steps); torch DDP is "
              f"{results['cases'][name]['torch_ddp_over_flat_all_reduce']:.2f}x the flat "
              "all-reduce", flush=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
