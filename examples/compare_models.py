"""Compare generative models of any family (VAE, GAN, diffusion, flow matching) on one table:
the same samples count, the same reference and the same metrics for each.

    python examples/compare_models.py [CHECKPOINT ...] [--n 10000] [--steps 20]

By default the shipped grey-digit VAE and DCGAN (samples/checkpoints/), and the shipped
diffusion and flow-matching models when present. Each model draws ``--n`` samples (``--steps``
sampler steps for diffusion and flow models), measured against the MNIST test set on the
shipped classifier's features. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from genmodels import load
from genmodels.models import IterativeSampler
from genmodels.pipelines.run_evaluation import draw_samples
from genmodels.pipelines.sample_metrics import evaluate_samples, reference_images

SHIPPED = Path(__file__).resolve().parents[1] / "samples" / "checkpoints"
DEFAULT = [SHIPPED / name for name in ("iwae_mnist_grey", "gan_mnist", "diffusion_mnist",
                                       "flow_mnist")]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("checkpoints", nargs="*", type=Path)
parser.add_argument("--n", type=int, default=10_000, help="samples per model and test images")
parser.add_argument("--steps", type=int, default=20, help="diffusion / flow sampler steps")
args = parser.parse_args()

test = reference_images("mnist-test")
rows = ["| model | kind | FID | precision | recall | coverage | classes | KL (nats) | "
        "s / 1000 samples |", "|---|---|---|---|---|---|---|---|---|"]
for path in args.checkpoints or [p for p in DEFAULT if p.exists()]:
    model = load(path)
    steps = args.steps if isinstance(model, IterativeSampler) else None
    start = time.perf_counter()
    samples = draw_samples(model, args.n, seed=0, steps=steps).clamp(0, 1)
    seconds = (time.perf_counter() - start) * 1000 / args.n
    report = evaluate_samples(samples, test, ["fid", "prdc", "modes"], n=args.n)
    prdc, modes = report["prdc"], report["modes"]
    rows.append(f"| {path.name} | {model.kind} | {report['fid']['value']:.2f} | "
                f"{prdc['precision']:.3f} | {prdc['recall']:.3f} | {prdc['coverage']:.3f} | "
                f"{modes['modes_covered']} | {modes['kl_to_uniform']:.4f} | {seconds:.1f} |")
print("\n".join(rows))
