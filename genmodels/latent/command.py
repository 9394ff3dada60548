"""``genmodels latent TOOL CHECKPOINT``: the latent tools from the command line, one PNG each."""

from __future__ import annotations

import argparse
import inspect

import torch

from genmodels.errors import InputError
from genmodels.progress import progress, tick_on_optimizer_step

TOOLS = ("interpolate", "traverse", "map", "scatter", "arithmetic", "quantize")
ENCODE_BATCH = 1000


def run(args: argparse.Namespace) -> int:
    from genmodels import classifier, load
    from genmodels.data import load_images, to_unit
    from genmodels.latent import (
        class_arithmetic,
        class_means,
        diverse_samples,
        encode_dataset,
        image_table,
        interpolate,
        latent_map,
        scatter_codes,
        traverse,
    )
    from genmodels.latent.quantize import quantize
    from genmodels.models import LatentVariableModel

    model = load(args.checkpoint)
    if not isinstance(model, LatentVariableModel):
        raise InputError(f"{args.checkpoint} holds a {model.kind}; latent tools need a VAE")
    oracle = classifier() if args.tool == "quantize" else None  # fail early if tampered
    test = load_images(model.run_config.data.name.replace("stacked_mnist", "mnist"), "test",
                       args.data_root)
    x, labels = to_unit(test.images[:args.n]), test.labels[:args.n]
    if args.tool in ("interpolate", "traverse") and max(args.pair) >= len(x):
        raise InputError(f"--pair {args.pair[0]} {args.pair[1]}: indices of the first --n "
                         f"{len(x)} test images should be < {len(x)}")
    if args.tool == "arithmetic":
        for flag, digit in (("--source", args.source), ("--target", args.target)):
            if not (labels == digit).any():
                raise InputError(f"{flag} {digit}: no test image of class {digit} among the "
                                 f"first --n {len(x)}")

    def encode(images: torch.Tensor) -> torch.Tensor:  # encode_dataset, with a progress bar
        starts = range(0, len(images), ENCODE_BATCH)
        return torch.cat([encode_dataset(model, images[i:i + ENCODE_BATCH])
                          for i in progress(starts, desc="encoding", unit="batch")])

    torch.manual_seed(args.seed)
    if args.tool == "interpolate":
        i, j = args.pair
        figure = interpolate(model, x[i], x[j], args.steps, args.method)
    elif args.tool == "traverse":
        figure = traverse(model, encode_dataset(model, x[args.pair[0]][None])[0],
                          steps=args.steps)
    elif args.tool == "map":
        figure = latent_map(model, encode(x), grid=args.steps)
    elif args.tool == "scatter":
        figure = encode(x)
    elif args.tool == "arithmetic":
        means = class_means(encode(x), labels)
        sources = x[labels == args.source][:8]
        strengths = torch.linspace(0, 1, args.steps)
        figure = torch.stack([class_arithmetic(model, sources, means, args.source, args.target,
                                               s) for s in strengths], dim=1)
    else:  # quantize: the Adam steps of the quantization points under a progress bar
        target = args.target_law.replace("-", "_")
        steps = inspect.signature(quantize).parameters["steps"].default
        with progress(total=steps, desc="quantizing", unit="step") as bar, \
                tick_on_optimizer_step(bar):
            figure = diverse_samples(model, args.points, target,
                                     None if target == "prior" else x, seed=args.seed)
        covered = len(set(oracle(figure.clamp(0, 1)).argmax(1).tolist()))
        print(f"{args.points} quantized samples cover {covered} classes")
    out = args.out or f"latent_{args.tool}.png"  # written once the work is done
    path = scatter_codes(figure, labels, out) if args.tool == "scatter" else \
        image_table(figure, out)
    print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from genmodels.cli import add_renamed, non_negative_int, output_path, positive_int

    p = sub.add_parser("latent", help="latent-space figures of a VAE")
    p.add_argument("tool", choices=TOOLS, help="the figure to draw")
    p.add_argument("checkpoint", help="final.pt or run directory of a VAE")
    p.add_argument("--out", type=output_path, help="PNG path (default: latent_TOOL.png)")
    p.add_argument("--n", type=positive_int, default=5000, help="test images to encode")
    p.add_argument("--pair", type=non_negative_int, nargs=2, default=[0, 1],
                   help="interpolate, traverse: indices of test images (< --n)")
    p.add_argument("--steps", type=positive_int, default=10,
                   help="interpolation/traversal/grid/arithmetic steps")
    p.add_argument("--method", default="slerp", choices=["lerp", "slerp"],
                   help="interpolate: along a segment or a great circle")
    p.add_argument("--source", type=non_negative_int, default=3, choices=range(10),
                   metavar="CLASS", help="arithmetic: from this class")
    p.add_argument("--target", type=non_negative_int, default=8, choices=range(10),
                   metavar="CLASS", help="arithmetic: towards this class")
    points = p.add_argument("--points", type=positive_int, default=10, metavar="K",
                            help="quantize: number of quantization points, one sample each "
                                 "(was --k)")
    add_renamed(p, "--k", points)
    p.add_argument("--target-law", default="prior",
                   choices=["prior", "posterior", "posterior-means"],
                   help="quantize: the prior, the aggregate posterior of the encoded test "
                        "images, or the law of their encoder means")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seeds the draws")
    p.add_argument("--data-root", help="data folder (default: $GENMODELS_DATA, then "
                                       "~/.cache/genmodels/data)")
    p.set_defaults(run=run)
