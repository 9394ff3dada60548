"""``genmodels latent TOOL CHECKPOINT``: the latent tools from the command line, one PNG each."""

from __future__ import annotations

import argparse

import torch

TOOLS = ("interpolate", "traverse", "map", "scatter", "arithmetic", "quantize")


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

    model = load(args.checkpoint)
    if not hasattr(model, "encode"):
        raise ValueError(f"{args.checkpoint} holds a {model.kind}; latent tools need a VAE")
    test = load_images(model.run_config.data.name.replace("stacked_mnist", "mnist"), "test",
                       args.data_root)
    x, labels = to_unit(test.images[:args.n]), test.labels[:args.n]
    torch.manual_seed(args.seed)
    out = args.out or f"latent_{args.tool}.png"
    if args.tool == "interpolate":
        i, j = args.pair
        path = image_table(interpolate(model, x[i], x[j], args.steps, args.method), out)
    elif args.tool == "traverse":
        path = image_table(traverse(model, encode_dataset(model, x[args.pair[0]][None])[0],
                                    steps=args.steps), out)
    elif args.tool == "map":
        path = image_table(latent_map(model, encode_dataset(model, x), grid=args.steps), out)
    elif args.tool == "scatter":
        path = scatter_codes(encode_dataset(model, x), labels, out)
    elif args.tool == "arithmetic":
        means = class_means(encode_dataset(model, x), labels)
        sources = x[labels == args.source][:8]
        strengths = torch.linspace(0, 1, args.steps)
        table = torch.stack([class_arithmetic(model, sources, means, args.source, args.target, s)
                             for s in strengths], dim=1)
        path = image_table(table, out)
    else:  # quantize
        target = args.target_law.replace("-", "_")
        images = diverse_samples(model, args.k, target, None if target == "prior" else x,
                                 seed=args.seed)
        covered = len(set(classifier()(images.clamp(0, 1)).argmax(1).tolist()))
        print(f"{args.k} quantized samples cover {covered} classes")
        path = image_table(images, out)
    print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("latent", help="latent-space figures of a VAE")
    p.add_argument("tool", choices=TOOLS)
    p.add_argument("checkpoint", help="final.pt or run directory of a VAE")
    p.add_argument("--out", help="PNG path (default: latent_TOOL.png)")
    p.add_argument("--n", type=int, default=5000, help="test images to encode")
    p.add_argument("--pair", type=int, nargs=2, default=[0, 1], help="test indices to use")
    p.add_argument("--steps", type=int, default=10, help="interpolation/traversal/grid steps")
    p.add_argument("--method", default="slerp", choices=["lerp", "slerp"])
    p.add_argument("--source", type=int, default=3, help="arithmetic: from this class")
    p.add_argument("--target", type=int, default=8, help="arithmetic: towards this class")
    p.add_argument("--k", type=int, default=10, help="quantize: number of samples")
    p.add_argument("--target-law", default="prior",
                   choices=["prior", "posterior", "posterior-means"],
                   help="quantize: the prior, the aggregate posterior of the encoded test "
                        "images, or the law of their encoder means")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root")
    p.set_defaults(run=run)
