"""Where the CVAE's misread samples come from: what the shipped MNIST CNN reads in the CVAE's
decodings of its own posterior codes of training digits, against its prior samples.

    python benchmarks/cvae_codes.py [--run runs/conditional_mnist/cvae] [--images 20000]
                                    [--per-class 1000]

For the first ``--images`` MNIST training images x with labels y, and the trained CVAE of
``benchmarks/conditional_mnist.py`` (configs/cvae_mnist.toml), the share read as y by the
shipped CNN of each class of images decoded (likelihood means, as ``sample`` returns) from:

- ``posterior mean``: the code μ(x, y), the reconstruction;
- ``posterior draw``: a code z ~ q(z | x, y);
- ``class Gaussian``: ``--per-class`` codes from the full-covariance Gaussian fitted to the
  posterior means of class y (the aggregate posterior, to second order);
- ``prior``: ``--per-class`` codes from the learned prior p(z | y) (the model's own samples).

The first row bounds what any sampler of codes can reach with this decoder. Prints a table
and writes docs/results/cvae_codes.json.
"""

from __future__ import annotations

import argparse
import json

import torch
from common import ROOT

from genmodels import classifier, load
from genmodels.data import load_images, to_unit
from genmodels.nets.classifier import INFERENCE_BATCH

CLASSES = 10


def read_as(oracle, images: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Per class, the share of ``images`` (N, 1, 28, 28) in [0, 1] read as their label."""
    predicted = torch.cat([oracle(chunk).argmax(1) for chunk in images.split(INFERENCE_BATCH)])
    return [round(float((predicted[labels == k] == k).float().mean()), 4) for k in range(CLASSES)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=str(ROOT / "runs" / "conditional_mnist" / "cvae"))
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--data-root")
    args = parser.parse_args()

    torch.manual_seed(0)
    model, oracle = load(args.run).eval(), classifier()
    train = load_images("mnist", "train", args.data_root)
    x, y = to_unit(train.images[:args.images]), train.labels[:args.images]  # (N, 1, 28, 28), (N,)
    per_class = torch.arange(CLASSES).repeat_interleave(args.per_class)  # (10 n,)
    rows = {}
    with torch.no_grad():
        posterior = model.encode(x, y)
        rows["posterior mean"] = (model.decode(posterior.mean, y).mean, y)
        rows["posterior draw"] = (model.decode(posterior.sample(), y).mean, y)
        codes = torch.cat([torch.distributions.MultivariateNormal(
            posterior.mean[y == k].mean(0), torch.cov(posterior.mean[y == k].T)).sample(
            (args.per_class,)) for k in range(CLASSES)])  # (10 n, latent)
        rows["class Gaussian"] = (model.decode(codes, per_class).mean, per_class)
        rows["prior"] = (model.sample(len(per_class), torch.Generator().manual_seed(0),
                                      labels=per_class), per_class)
        shares = {name: read_as(oracle, images, labels)
                  for name, (images, labels) in rows.items()}
    print("| codes | " + " | ".join(map(str, range(CLASSES))) + " | worst |")
    print("|---|" + "---|" * (CLASSES + 1))
    for name, share in shares.items():
        print(f"| {name} | " + " | ".join(f"{100 * s:.1f}" for s in share)
              + f" | {100 * min(share):.1f} |")
    out = ROOT / "docs" / "results" / "cvae_codes.json"
    out.write_text(json.dumps({"command": "python benchmarks/cvae_codes.py", "run": args.run,
                               "images": args.images, "per_class": args.per_class,
                               "read_as_label": shares}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
