"""``genmodels inpaint CHECKPOINT --mask KIND --method M``: the 15-digit figure and every
inpainting metric (masked MSE, classifier scores, predictive and conditional NLL)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from genmodels.inpaint.masks import MASK_KINDS
from genmodels.inpaint.methods import METHODS

OPTIONS = {"map": ("steps",), "pseudo_gibbs": ("steps", "final"), "mwg": ("steps", "final"),
           "importance": ("k", "final")}


def _format(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def run(args: argparse.Namespace) -> int:
    from genmodels import classifier, load
    from genmodels.inpaint import (
        fifteen_digits_figure,
        held_out_images,
        inpainting_metrics,
        run_inpainting,
    )

    if args.nll < 0:
        raise ValueError(f"--nll should be a number of importance samples >= 0, got {args.nll}")
    model = load(args.checkpoint)
    images, labels = held_out_images(model.run_config.data, root=args.data_root, seed=args.seed)
    options = {name: getattr(args, name) for name in OPTIONS[args.method]
               if getattr(args, name) is not None}
    result = run_inpainting(model, images, labels, args.mask, args.method, n=args.n,
                            samples=args.samples, seed=args.seed, **options)
    path = fifteen_digits_figure(result["inputs"], result["mask"], result["completions"],
                                 result["truth"], args.out, labels=result["labels"])
    oracle = classifier() if model.input_shape[0] == 1 else None  # it reads 1-channel digits
    numbers = inpainting_metrics(model, result, oracle, k=args.nll)
    print(f"masked MSE {numbers['masked_mse']:.4f} per missing pixel")
    if oracle is not None:
        print(f"classifier accuracy {numbers['accuracy']:.4f}  true class among completions "
              f"{numbers['true_class_share']:.4f}  class entropy "
              f"{numbers['class_entropy']:.3f} nats")
    note = f" ({numbers['nll_note']})" if "nll_note" in numbers else ""
    print(f"predictive NLL {_format(numbers['predictive_nll'], 2)} nats/image  conditional NLL "
          f"-log p(x_miss|x_obs) {_format(numbers['conditional_nll'], 2)} nats/image "
          f"(k={args.nll}){note}")
    if args.save:
        torch.save(result, args.save)
        print(f"wrote {args.save}")
    if args.json:
        numbers |= {"checkpoint": str(args.checkpoint), "seed": args.seed,
                    "importance_samples": args.nll, "options": options}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(numbers, indent=2) + "\n")
        print(f"wrote {args.json}")
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
    p.add_argument("--nll", type=int, default=1000, metavar="K",
                   help="importance samples of the conditional NLL -log p(x_miss|x_obs) "
                        "(default 1000; 0 skips it)")
    p.add_argument("--out", default="inpainting.png")
    p.add_argument("--save", help="also write the tensors to this .pt file")
    p.add_argument("--json", help="also write every number to this JSON file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root")
    p.set_defaults(run=run)
