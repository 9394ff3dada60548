"""Inpaint MNIST test digits from Python with the shipped VAE: erase the top half, draw 8
completions of each digit, read them with the shipped classifier, save the 15-digit figure.

    python examples/inpaint_from_python.py [--checkpoint samples/checkpoints/iwae_mnist_grey]
                                           [--mask top] [--method mwg] [--out digits.png]

Any model that inpaints works: a VAE (methods map, pseudo_gibbs, mwg, importance), a diffusion
model (repaint) or a flow-matching model (replace, dps).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import genmodels
from genmodels.inpaint import (
    fifteen_digits_figure,
    held_out_images,
    inpainting_metrics,
    run_inpainting,
)

ROOT = Path(__file__).resolve().parents[1]

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--checkpoint", default=ROOT / "samples" / "checkpoints" / "iwae_mnist_grey")
parser.add_argument("--mask", default="top", help="top, center, quadrants1, random:0.5, ...")
parser.add_argument("--method", help="default: the model's (mwg for a VAE)")
parser.add_argument("--digits", type=int, default=15)
parser.add_argument("--samples", type=int, default=8)
parser.add_argument("--out", default="digits.png")
args = parser.parse_args()

model = genmodels.load(args.checkpoint)
images, labels = held_out_images(model.run_config.data)   # test digits, in the model's range
run = run_inpainting(model, images, labels, args.mask, args.method, n=args.digits,
                     samples=args.samples, seed=0)         # completions (n, S, 1, 28, 28)
numbers = inpainting_metrics(model, run, genmodels.classifier(), k=0)
fifteen_digits_figure(run["inputs"], run["mask"], run["completions"], run["truth"], args.out,
                      labels=run["labels"])
print(f"{run['method']} on {args.digits} digits, mask {args.mask}: the classifier reads the "
      f"true class in {numbers['accuracy']:.1%} of the completions; masked MSE "
      f"{numbers['masked_mse']:.4f}; figure {args.out}")
