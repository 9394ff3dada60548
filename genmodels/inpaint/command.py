"""``genmodels inpaint CHECKPOINT --mask KIND --method M``: the 15-digit figure and every
inpainting metric (masked MSE, classifier scores, predictive and conditional NLL)."""

from __future__ import annotations

import argparse
import inspect
import json
import math
from pathlib import Path

import torch

from genmodels.errors import InputError
from genmodels.inpaint.masks import MASK_KINDS
from genmodels.inpaint.methods import METHODS
from genmodels.progress import progress, tick_on_forward

OPTIONS = {"map": ("steps",), "pseudo_gibbs": ("steps", "final"), "mwg": ("steps", "final"),
           "importance": ("k", "final")}


def decoder_passes(method: str, options: dict, n: int) -> int:
    """About how many decoder calls ``method`` makes on ``n`` images (the progress bar's
    total): one per chain step, per chunk of importance samples."""
    defaults = {name: p.default for name, p in inspect.signature(METHODS[method]).parameters.items()
                if p.default is not inspect.Parameter.empty}
    values = defaults | options
    if method == "mwg":
        return values["burn_in"] + values["steps"]
    if method == "importance":
        from genmodels.models import vae

        chunk = max(1, min(values["k"], vae.IMAGES_PER_CHUNK // n))
        return math.ceil(values["k"] / chunk) + 1
    return values.get("steps", 300) + (method == "map")


def _format(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def run(args: argparse.Namespace) -> int:
    from genmodels import classifier, load
    from genmodels.inpaint import (
        fifteen_digits_figure,
        held_out_images,
        inpainting_metrics,
        make_mask,
        run_inpainting,
    )
    from genmodels.io import SHIPPED_CLASSIFIERS
    from genmodels.models import LatentVariableModel

    model = load(args.checkpoint)
    if not isinstance(model, LatentVariableModel):
        raise InputError(f"{args.checkpoint} holds a {model.kind}; inpainting needs a VAE")
    try:  # read the mask before any work: a typo or a broken PNG fails at once
        make_mask(args.mask, 1, model.input_shape[1:])
    except (ValueError, OSError, SyntaxError) as err:  # SyntaxError: PIL's broken PNG
        raise InputError(f"--mask {args.mask}: {err}") from None
    images, labels = held_out_images(model.run_config.data, root=args.data_root, seed=args.seed)
    dataset = model.run_config.data.name  # a shipped classifier reads its own dataset only
    oracle = classifier(dataset) if dataset in SHIPPED_CLASSIFIERS and labels is not None \
        else None
    if oracle is not None and oracle.input_shape != model.input_shape:  # data.size, channels
        oracle = None
    if oracle is None:
        print(f"no shipped classifier reads {dataset} images of shape {model.input_shape}: "
              "the class-based numbers are left out")
    options = {name: getattr(args, name) for name in OPTIONS[args.method]
               if getattr(args, name) is not None}
    n = min(args.n, len(images))
    with progress(total=decoder_passes(args.method, options, n), desc=f"inpainting ({n} digits)",
                  unit="pass") as bar, tick_on_forward(model.decoder, bar):
        result = run_inpainting(model, images, labels, args.mask, args.method, n=args.n,
                                samples=args.samples, seed=args.seed, **options)
    with progress(total=1, desc="metrics", unit="stage") as bar:
        numbers = inpainting_metrics(model, result, oracle, k=args.nll)
        bar.update()
    print(f"masked MSE {numbers['masked_mse']:.4f} per missing pixel")
    if oracle is not None:
        print(f"classifier accuracy {numbers['accuracy']:.4f}  true class among completions "
              f"{numbers['true_class_share']:.4f}  class entropy "
              f"{numbers['class_entropy']:.3f} nats")
    note = f" ({numbers['nll_note']})" if "nll_note" in numbers else ""
    print(f"predictive NLL {_format(numbers['predictive_nll'], 2)} nats/image  conditional NLL "
          f"-log p(x_miss|x_obs) {_format(numbers['conditional_nll'], 2)} nats/image "
          f"(k={args.nll}){note}")
    # outputs only now that every number is in
    path = fifteen_digits_figure(result["inputs"], result["mask"], result["completions"],
                                 result["truth"], args.out, labels=result["labels"])
    if args.save:
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
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
    from genmodels.cli import add_renamed, non_negative_int, output_path, positive_int

    p = sub.add_parser("inpaint", help="erase pixels of test digits and complete them")
    p.add_argument("checkpoint", help="final.pt or run directory of a VAE")
    p.add_argument("--mask", default="top", help=f"one of {', '.join(MASK_KINDS)}")
    p.add_argument("--method", default="mwg", choices=sorted(METHODS),
                   help="completion method (docs/inpainting.md)")
    p.add_argument("--n", type=positive_int, default=15, help="test digits")
    p.add_argument("--samples", type=positive_int, default=8, help="completions per digit")
    p.add_argument("--steps", type=positive_int,
                   help="iterations of map, pseudo_gibbs, mwg (default: the method's)")
    proposals = p.add_argument("--proposals", dest="k", type=positive_int, metavar="K",
                               help="importance: proposals resampled from (default: the "
                                    "method's; was --k)")
    add_renamed(p, "--k", proposals)
    p.add_argument("--final", default="mean", choices=["mean", "sample"],
                   help="show the likelihood's mean or a draw on missing pixels")
    p.add_argument("--nll", type=non_negative_int, default=1000, metavar="K",
                   help="importance samples of the conditional NLL -log p(x_miss|x_obs); "
                        "0 skips it")
    p.add_argument("--out", type=output_path, default="inpainting.png", help="figure PNG")
    p.add_argument("--save", type=output_path, help="also write the tensors to this .pt file")
    p.add_argument("--json", type=output_path,
                   help="also write every number to this JSON file")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seeds the digits and draws")
    p.add_argument("--data-root", help="data folder (default: $GENMODELS_DATA, then "
                                       "~/.cache/genmodels/data)")
    p.set_defaults(run=run)
