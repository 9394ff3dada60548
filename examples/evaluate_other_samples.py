"""Measure samples made by another tool (diffusers, a GAN of your own, ...) on MNIST, with the
metrics genmodels reports for its own models.

    python examples/evaluate_other_samples.py samples.npy [--n 10000]

``samples.npy`` holds images (N, 28, 28), (N, 1, 28, 28) or (N, 28, 28, 1), uint8 or float in
[0, 1]; they are compared with the MNIST test set on the shipped classifier's features: FID,
precision / recall / density / coverage, and how evenly the ten classes are covered. The same
from the command line: ``genmodels evaluate samples.npy --reference mnist-test``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from genmodels.pipelines.sample_metrics import evaluate_samples, reference_images

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("samples")
parser.add_argument("--n", type=int, default=10_000, help="samples and test images used")
args = parser.parse_args()

samples = torch.from_numpy(np.load(args.samples))
if samples.dim() == 3:                      # (N, 28, 28) -> (N, 1, 28, 28)
    samples = samples[:, None]
elif samples.shape[-1] in (1, 3):           # channels last -> channels first
    samples = samples.permute(0, 3, 1, 2)
test = reference_images("mnist-test")       # (10000, 1, 28, 28) in [0, 1]
report = evaluate_samples(samples, test, ["fid", "prdc", "modes"], n=args.n)
prdc, modes = report["prdc"], report["modes"]
print(f"{report['n_samples']} samples against {report['n_reference']} MNIST test images")
print(f"FID {report['fid']['value']:.2f} (shipped CNN features)  precision "
      f"{prdc['precision']:.3f}  recall {prdc['recall']:.3f}  density {prdc['density']:.3f}  "
      f"coverage {prdc['coverage']:.3f}")
print(f"classes covered {modes['modes_covered']}/10, KL(classes || uniform) "
      f"{modes['kl_to_uniform']:.4f} nats")
