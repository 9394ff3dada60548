"""Does the probability-flow ODE's bits/dim converge? The shipped MNIST diffusion and flow
models on the first 20 test images, with fixed-step Heun (25, 100 steps), RK4 (50) and the
adaptive RK45 (rtol = atol = 1e-5), one Rademacher probe, seed 0.

    python benchmarks/ode_likelihood_convergence.py [--n 20]

Prints one line per model and solver: mean bits/dim, standard error, NFE, seconds.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import ROOT

import genmodels
from genmodels.models.ode_likelihood import bits_per_dim_of
from genmodels.pipelines.sample_metrics import reference_images

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n", type=int, default=20, help="test images (the first N)")
args = parser.parse_args()
torch.set_num_threads(1)
x = reference_images("mnist-test").mul(255).round().to(torch.uint8)[:args.n]  # (n, 1, 28, 28)
for run in ("flow_mnist", "diffusion_mnist"):
    model = genmodels.load(ROOT / "samples" / "checkpoints" / run)
    for solver, steps in (("heun", 25), ("heun", 100), ("rk4", 50), ("rk45", 1)):
        start = time.time()
        r = bits_per_dim_of(model, x, steps=steps, probes=1, solver=solver,
                            generator=torch.Generator().manual_seed(0), batch_size=args.n)
        print(f"{run} {solver} {steps}: {r['mean']:.3f} ± {r['standard_error']:.3f} bits/dim, "
              f"NFE {r['nfe']:.0f}, {time.time() - start:.0f} s", flush=True)
