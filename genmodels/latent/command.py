"""``genmodels latent TOOL CHECKPOINT``: the latent tools from the command line, one PNG each."""

from __future__ import annotations

import argparse
import inspect

from genmodels.errors import InputError

TOOLS = ("interpolate", "traverse", "map", "scatter", "arithmetic", "quantize")
ENCODE_BATCH = 1000


def run(args: argparse.Namespace) -> int:
    import torch

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
    from genmodels.latent.quantization import quantize
    from genmodels.latent.tools import MAP_SPAN, TRAVERSE_SPAN
    from genmodels.models import LatentVariableModel
    from genmodels.plots import run_name
    from genmodels.progress import progress, tick_on_optimizer_step

    model = load(args.checkpoint)
    if not isinstance(model, LatentVariableModel):
        raise InputError(f"{args.checkpoint} holds a {model.description}; latent tools need a VAE")
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
    about = f"{model.kind} {run_name(args.checkpoint)}"  # what each figure's title names
    if args.tool == "interpolate":
        i, j = args.pair
        figure = interpolate(model, x[i], x[j], args.steps, args.method)
        ends = [f"{t:.2g}" for t in torch.linspace(0, 1, args.steps).tolist()]
        ends[-1], ends[0] = f"test {j}", f"test {i}"  # one step: the start only
        labels_of = {"col_labels": ends, "xlabel": f"t along the {args.method} path",
                     "title": f"{args.method} interpolation ({about}): decodings from the code "
                              f"of test image {i} (left) to that of test image {j} (right)"}
    elif args.tool == "traverse":
        code = encode_dataset(model, x[args.pair[0]][None])[0]
        figure = traverse(model, code, steps=args.steps)
        values = torch.linspace(-TRAVERSE_SPAN, TRAVERSE_SPAN, args.steps).tolist()
        labels_of = {"col_labels": [f"{v:+.2g}" for v in values],
                     "row_labels": [f"z[{d}]" for d in range(len(code))],
                     "xlabel": "value of the row's coordinate (prior standard deviations)",
                     "title": f"Traversal of the code of test image {args.pair[0]} ({about}): "
                              "one coordinate varied per row, the others fixed"}
    elif args.tool == "map":
        figure = latent_map(model, encode(x), grid=args.steps)
        values = [f"{v:+.2g}" for v in torch.linspace(-MAP_SPAN, MAP_SPAN, args.steps).tolist()]
        plane = ("z[0]", "z[1]") if model.latent_dim == 2 else \
            tuple(f"PC {k} (standard deviations of the codes)" for k in (1, 2))
        where = "the 2-D latent space" if model.latent_dim == 2 else \
            f"the principal plane of {len(x)} test codes"
        labels_of = {"col_labels": values, "row_labels": values[::-1], "xlabel": plane[0],
                     "ylabel": plane[1],
                     "title": f"Decodings of a {args.steps} × {args.steps} grid over {where} "
                              f"({about})"}
    elif args.tool == "scatter":
        figure = encode(x)
    elif args.tool == "arithmetic":
        means = class_means(encode(x), labels)
        sources = x[labels == args.source][:8]
        strengths = torch.linspace(0, 1, args.steps)
        figure = torch.stack([class_arithmetic(model, sources, means, args.source, args.target,
                                               s) for s in strengths], dim=1)
        labels_of = {"col_labels": [f"{s:.2g}" for s in strengths.tolist()],
                     "xlabel": f"strength s of z + s · (mean {args.target} code − mean "
                               f"{args.source} code)",
                     "title": f"Class arithmetic ({about}): {len(sources)} test {args.source}s "
                              f"moved towards the {args.target}s"}
    else:  # quantize: the Adam steps of the quantization points under a progress bar
        target = args.target_law.replace("-", "_")
        steps = inspect.signature(quantize).parameters["steps"].default
        with progress(total=steps, desc="quantizing", unit="step") as bar, \
                tick_on_optimizer_step(bar):
            figure = diverse_samples(model, args.points, target,
                                     None if target == "prior" else x, seed=args.seed)
        classes = oracle(figure.clamp(0, 1)).argmax(1).tolist()
        covered = len(set(classes))
        print(f"{args.points} quantized samples cover {covered} classes")
        labels_of = {"col_labels": [str(c) for c in classes],
                     "xlabel": "class predicted by the shipped classifier",
                     "title": f"{args.points} quantized samples ({about}): decodings of "
                              "Huber-energy quantization points of the target law "
                              f"{args.target_law}; {covered} class{'es' * (covered != 1)}"}
    out = args.out or f"latent_{args.tool}.png"  # written once the work is done
    if args.tool == "scatter":
        path = scatter_codes(figure, labels, out,
                             title=f"{len(x)} test codes of {about}, coloured by class")
    else:
        path = image_table(figure, out, **labels_of)
    print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from genmodels.cli import add_renamed, non_negative_int, output_path, positive_int

    p = sub.add_parser("latent", help="latent-space figures of a VAE")
    p.add_argument("tool", choices=TOOLS, help="the figure to draw")
    p.add_argument("checkpoint", help="final.pt, run directory or export folder of a VAE")
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
