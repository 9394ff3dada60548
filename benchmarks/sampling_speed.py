"""Images per second of the shipped generative models against their FLOP bound, in one run.

    python benchmarks/sampling_speed.py [--steps 20] [--repeats 3]

For each shipped model (samples/checkpoints: the β-VAE, the GAN, DDPM and flow matching at
``--steps`` sampler steps, i.e. that many U-Net evaluations) and each batch size, the best of
``--repeats`` calls of ``model.sample(batch)`` on all threads. The FLOP bound: the FLOPs of one
sample counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and
convolutions, 2 FLOP a multiply-add; elementwise work not counted) at the measured sgemm peak of
a 2048² product. The batch a model draws in by default (``sample_batch_size``, what
``genmodels sample`` and ``evaluate`` use) is marked. For the U-Net models, the same loop on
NCHW noise (what ``sample`` did before it handed the U-Net channels-last noise) is timed beside
it at that batch. Results: docs/results/sampling_speed.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time

import torch
from common import ROOT, sgemm_peak
from torch.utils.flop_counter import FlopCounterMode

from genmodels import load
from genmodels.models import IterativeSampler
from genmodels.schedulers.loop import denoise

CHECKPOINTS = ROOT / "samples" / "checkpoints"
MODELS = {"beta_vae_mnist": [64, 1000, 10_000], "gan_mnist": [64, 128, 1000, 10_000],
          "diffusion_mnist": [32, 64, 256], "flow_mnist": [32, 64, 256]}
RESULTS = ROOT / "docs" / "results" / "sampling_speed.json"


def draw(model, n: int, steps: int) -> torch.Tensor:
    options = {"steps": steps} if isinstance(model, IterativeSampler) else {}
    return model.sample(n, torch.Generator().manual_seed(0), **options)


def nchw_loop(model, n: int, steps: int) -> torch.Tensor:
    """The sampling loop of a DenoisingModel on NCHW noise (the layout before channels-last)."""
    scheduler = model.scheduler()
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(0)
    x = scheduler.init_noise((n, *model.input_shape), generator, "cpu")
    return denoise(model.net, scheduler, x, generator)


def best_seconds(call, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def flops_per_sample(model, steps: int, n: int = 8) -> float:
    with FlopCounterMode(display=False) as counter:
        draw(model, n, steps)
    return counter.get_total_flops() / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="sampler steps of DDPM and flow")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    peak = sgemm_peak()
    results = {"command": "python benchmarks/sampling_speed.py " + " ".join(sys.argv[1:]),
               "steps": args.steps, "sgemm_peak_gflops": round(peak, 1),
               "machine": f"{platform.processor() or platform.machine()}, "
                          f"{torch.get_num_threads()} threads, torch {torch.__version__}",
               "models": {}}
    for name, batches in MODELS.items():
        model = load(CHECKPOINTS / name).eval()
        flops = flops_per_sample(model, args.steps)
        bound = peak * 1e9 / flops  # images per second
        rows = {}
        for batch in batches:
            draw(model, min(batch, 64), args.steps)  # warm-up
            best = best_seconds(functools.partial(draw, model, batch, args.steps), args.repeats)
            rows[batch] = {"seconds": round(best, 4), "images_per_second": round(batch / best, 1),
                           "over_bound": round(bound / (batch / best), 2),
                           "default": batch == model.sample_batch_size}
            print(f"{name} batch {batch}{' (default)' * rows[batch]['default']}: "
                  f"{batch / best:.0f} images/s, bound {bound:.0f} ({flops / 1e6:.1f} MFLOP a "
                  f"sample) -> {bound / (batch / best):.2f}x the bound (target <= 1.5x)",
                  flush=True)
        results["models"][name] = {"mflop_per_sample": round(flops / 1e6, 2),
                                   "bound_images_per_second": round(bound, 1),
                                   "sample_batch_size": model.sample_batch_size,
                                   "batches": rows, "target_over_bound": 1.5}
        if isinstance(model, IterativeSampler) and len(model.input_shape) == 3:
            batch = model.sample_batch_size
            nchw = best_seconds(functools.partial(nchw_loop, model, batch, args.steps),
                                args.repeats)
            results["models"][name]["nchw_images_per_second"] = round(batch / nchw, 1)
            print(f"{name} batch {batch}, the loop on NCHW noise: {batch / nchw:.0f} images/s",
                  flush=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
