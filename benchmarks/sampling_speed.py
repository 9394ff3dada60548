"""Images per second of the shipped generative models against their FLOP bound, in one run.

    python benchmarks/sampling_speed.py [--steps 20] [--repeats 3]

For each shipped model (samples/checkpoints: the β-VAE, the GAN, DDPM and flow matching at
``--steps`` sampler steps, i.e. that many U-Net evaluations) and each batch size, the best of
``--repeats`` calls of ``model.sample(batch)`` on all threads. The FLOP bound: the FLOPs of one
sample counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and
convolutions, 2 FLOP a multiply-add; elementwise work not counted) at the measured sgemm peak of
a 2048² product. Results: docs/results/sampling_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import torch
from common import ROOT, sgemm_peak
from torch.utils.flop_counter import FlopCounterMode

from genmodels import load
from genmodels.models import IterativeSampler

CHECKPOINTS = ROOT / "samples" / "checkpoints"
MODELS = {"beta_vae_mnist": [64, 1000, 10_000], "gan_mnist": [64, 1000, 10_000],
          "diffusion_mnist": [64, 256], "flow_mnist": [64, 256]}
RESULTS = ROOT / "docs" / "results" / "sampling_speed.json"


def draw(model, n: int, steps: int) -> torch.Tensor:
    options = {"steps": steps} if isinstance(model, IterativeSampler) else {}
    return model.sample(n, torch.Generator().manual_seed(0), **options)


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
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                draw(model, batch, args.steps)
                best = min(best, time.perf_counter() - start)
            rows[batch] = {"seconds": round(best, 4), "images_per_second": round(batch / best, 1),
                           "over_bound": round(bound / (batch / best), 2)}
            print(f"{name} batch {batch}: {batch / best:.0f} images/s, bound {bound:.0f} "
                  f"({flops / 1e6:.1f} MFLOP a sample) -> {bound / (batch / best):.2f}x the bound "
                  "(target <= 1.5x)", flush=True)
        results["models"][name] = {"mflop_per_sample": round(flops / 1e6, 2),
                                   "bound_images_per_second": round(bound, 1),
                                   "batches": rows, "target_over_bound": 1.5}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
