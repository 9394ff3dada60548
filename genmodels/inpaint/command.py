"""``genmodels inpaint CHECKPOINT --mask KIND --method M``: the 15-digit figure and metrics."""

from __future__ import annotations

import argparse

import torch

from genmodels.inpaint.masks import MASK_KINDS
from genmodels.inpaint.methods import METHODS

OPTIONS = {"map": ("steps",), "pseudo_gibbs": ("steps", "final"), "mwg": ("steps", "final"),
           "importance": ("k", "final")}


def run(args: argparse.Namespace) -> int:
    from genmodels import classifier, load
    from genmodels.inpaint import (
        classifier_accuracy,
        completion_class_entropy,
        fifteen_digits_figure,
        held_out_images,
        masked_mse,
        run_inpainting,
        true_class_share,
    )

    model = load(args.checkpoint)
    images, labels = held_out_images(model.run_config.data, root=args.data_root, seed=args.seed)
    options = {name: getattr(args, name) for name in OPTIONS[args.method]
               if getattr(args, name) is not None}
    result = run_inpainting(model, images, labels, args.mask, args.method, n=args.n,
                            samples=args.samples, seed=args.seed, **options)
    path = fifteen_digits_figure(result["inputs"], result["mask"], result["completions"],
                                 result["truth"], args.out, labels=result["labels"])
    completions = result["completions"].clamp(0, 1)
    oracle = classifier()
    print(f"masked MSE {masked_mse(completions, result['truth'], result['mask']):.4f}")
    if model.input_shape[0] == 1:  # the shipped classifier reads 1-channel digits
        labels = result["labels"]
        print(f"classifier accuracy {classifier_accuracy(completions, labels, oracle):.4f}  "
              f"true class among completions {true_class_share(completions, labels, oracle):.4f}"
              f"  class entropy {completion_class_entropy(completions, oracle):.3f} nats")
    if args.save:
        torch.save(result, args.save)
        print(f"wrote {args.save}")
    print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inpaint", help="erase pixels of test digits and complete them")
    p.add_argument("checkpoint", help="final.pt or run directory of a VAE")
    p.add_argument("--mask", default="top", help=f"{', '.join(MASK_KINDS)} (default: top)")
    p.add_argument("--method", default="mwg", choices=sorted(METHODS))
    p.add_argument("--n", type=int, default=15, help="test digits")
    p.add_argument("--samples", type=int, default=8, help="completions per digit")
    p.add_argument("--steps", type=int, help="iterations (map, pseudo_gibbs, mwg)")
    p.add_argument("--k", type=int, help="proposals (importance)")
    p.add_argument("--final", default="mean", choices=["mean", "sample"],
                   help="show the likelihood's mean (default) or a draw on missing pixels")
    p.add_argument("--out", default="inpainting.png")
    p.add_argument("--save", help="also write the tensors to this .pt file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root")
    p.set_defaults(run=run)
