"""``genmodels inpaint CHECKPOINT --mask KIND --method M``: the 15-digit figure and every
inpainting metric (masked MSE, classifier scores; a VAE's predictive and conditional NLL) of a
VAE, a diffusion or a flow-matching model."""

from __future__ import annotations

import argparse
import inspect
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from genmodels.errors import InputError
from genmodels.inpaint.options import (
    DEFAULT_METHODS,
    FINAL,
    FINALS,
    FLAGS,
    JUMP_LENGTH,
    MASK_KINDS,
    OPTIONS,
    RESAMPLE,
    STEP_SIZE,
)

if TYPE_CHECKING:  # torch loads only when a command runs
    from torch import nn

    from genmodels.models import Model


def decoder_passes(method: str, options: dict, n: int) -> int:
    """About how many decoder calls ``method`` makes on ``n`` images (the progress bar's
    total): one per chain step, per chunk of importance samples."""
    from genmodels.inpaint.methods import METHODS

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


def forward_passes(model: Model, method: str, options: dict, n: int) -> tuple[int, nn.Module]:
    """The progress bar's total for ``method`` on ``n`` images and the module whose forward
    calls advance it: a diffusion or flow model's net, a VAE's decoder."""
    from genmodels.inpaint.denoising import net_evaluations
    from genmodels.models.denoising import DenoisingModel

    if isinstance(model, DenoisingModel):
        return net_evaluations(model, method, options), model.net
    return decoder_passes(method, options, n), model.decoder


def method_options(args: argparse.Namespace, method: str) -> dict:
    """The options given on the command line for ``method``; InputError for one it does not
    take."""
    given = {name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None}
    foreign = [FLAGS[name] for name in given if name not in OPTIONS[method]]
    if foreign:
        takes = ", ".join(FLAGS[name] for name in OPTIONS[method])
        raise InputError(f"{', '.join(foreign)} does not apply to --method {method} (it takes "
                         f"{takes})")
    if "final" in OPTIONS[method]:
        given.setdefault("final", FINAL)
    return given


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"should be a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"should be a number >= 0, got {text}")
    return value


def _format(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def run(args: argparse.Namespace) -> int:
    import torch

    from genmodels import classifier, load
    from genmodels.inpaint import (
        family,
        fifteen_digits_figure,
        held_out_images,
        inpainting_method,
        inpainting_metrics,
        make_mask,
        run_inpainting,
    )
    from genmodels.io import SHIPPED_CLASSIFIERS
    from genmodels.models import VAE
    from genmodels.plots import run_name
    from genmodels.progress import progress, tick_on_forward

    model = load(args.checkpoint)
    try:
        family(model)
    except TypeError:
        raise InputError(f"{args.checkpoint} holds a {model.description}; inpainting needs a "
                         "VAE, a diffusion or a flow-matching model") from None
    if len(model.input_shape) != 3:
        raise InputError(f"{args.checkpoint} holds a {model.description} model of points "
                         f"{model.input_shape}; inpainting needs images")
    method = inpainting_method(model, args.method)  # the default of the model's kind if None
    options = method_options(args, method)
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
    n = min(args.n, len(images))
    total, counted = forward_passes(model, method, options, n)
    with progress(total=total, desc=f"inpainting ({n} digits)", unit="pass") as bar, \
            tick_on_forward(counted, bar):
        result = run_inpainting(model, images, labels, args.mask, method, n=args.n,
                                samples=args.samples, seed=args.seed, **options)
    with progress(total=1, desc="metrics", unit="stage") as bar:
        numbers = inpainting_metrics(model, result, oracle, k=args.nll)
        bar.update()
    print(f"masked MSE {numbers['masked_mse']:.4f} per missing pixel")
    if oracle is not None:
        print(f"classifier accuracy {numbers['accuracy']:.4f}  true class among completions "
              f"{numbers['true_class_share']:.4f}  class entropy "
              f"{numbers['class_entropy']:.3f} nats")
    likelihoods = isinstance(model, VAE)
    note = f" ({numbers['nll_note']})" if "nll_note" in numbers else ""
    if likelihoods:
        print(f"predictive NLL {_format(numbers['predictive_nll'], 2)} nats/image  conditional "
              f"NLL -log p(x_miss|x_obs) {_format(numbers['conditional_nll'], 2)} nats/image "
              f"(k={args.nll}){note}")
    else:
        print(f"no predictive or conditional NLL{note}")
    # outputs only now that every number is in
    title = (f"{model.kind} {run_name(args.checkpoint)}: {method} inpainting, mask "
             f"{args.mask}; each row: the input (missing pixels grey), {args.samples} "
             "completions, the truth")
    path = fifteen_digits_figure(result["inputs"], result["mask"], result["completions"],
                                 result["truth"], args.out, labels=result["labels"], title=title)
    if args.save:
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        torch.save(result, args.save)
        print(f"wrote {args.save}")
    if args.json:
        numbers |= {"checkpoint": str(args.checkpoint), "seed": args.seed,
                    "importance_samples": args.nll if likelihoods else None,
                    "options": options}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(numbers, indent=2) + "\n")
        print(f"wrote {args.json}")
    print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from genmodels.cli import add_renamed, non_negative_int, output_path, positive_int

    defaults = ", ".join(f"{method} for {name}" for name, method in DEFAULT_METHODS.items())
    p = sub.add_parser("inpaint", help="erase pixels of test digits and complete them")
    p.add_argument("checkpoint", help="final.pt, run directory or export folder of a VAE, a "
                                      "diffusion or a flow-matching model")
    p.add_argument("--mask", default="top", help=f"one of {', '.join(MASK_KINDS)}")
    p.add_argument("--method", choices=sorted(OPTIONS),
                   help=f"completion method (docs/inpainting.md; default: {defaults})")
    p.add_argument("--n", type=positive_int, default=15, help="test digits")
    p.add_argument("--samples", type=positive_int, default=8, help="completions per digit")
    p.add_argument("--steps", type=positive_int,
                   help="iterations of map, pseudo_gibbs, mwg; sampler steps of repaint, "
                        "replace, dps (default: the method's; a diffusion or flow model's "
                        "model.sample_steps)")
    proposals = p.add_argument("--proposals", dest="k", type=positive_int, metavar="K",
                               help="importance: proposals resampled from (default: the "
                                    "method's; was --k)")
    add_renamed(p, "--k", proposals)
    p.add_argument("--final", choices=FINALS,
                   help="pseudo_gibbs, mwg, importance: show the likelihood's mean or a draw "
                        f"on missing pixels (default: {FINAL})")
    p.add_argument("--jump-length", type=positive_int, metavar="J",
                   help=f"repaint: steps of each resampling jump (default: {JUMP_LENGTH})")
    p.add_argument("--resample", type=positive_int, metavar="R",
                   help="repaint: times each stretch of J steps is run; 1 = no resampling "
                        f"(default: {RESAMPLE})")
    p.add_argument("--step-size", type=non_negative_float, metavar="ZETA",
                   help=f"dps: guidance step size per solver step (default: {STEP_SIZE})")
    p.add_argument("--nll", type=non_negative_int, default=1000, metavar="K",
                   help="VAEs: importance samples of the conditional NLL -log "
                        "p(x_miss|x_obs); 0 skips it")
    p.add_argument("--out", type=output_path, default="inpainting.png", help="figure PNG")
    p.add_argument("--save", type=output_path, help="also write the tensors to this .pt file")
    p.add_argument("--json", type=output_path,
                   help="also write every number to this JSON file")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seeds the digits and draws")
    p.add_argument("--data-root", help="data folder (default: $GENMODELS_DATA, then "
                                       "~/.cache/genmodels/data)")
    p.set_defaults(run=run)
