"""Command line: ``genmodels train | summary | accuracy | sample | evaluate | latent | inpaint
| scratch``; see ``genmodels -h``."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

import torch

from genmodels.config import ConfigError, load_config
from genmodels.inpaint import command as inpaint_command
from genmodels.latent import command as latent_command


def _train(args: argparse.Namespace) -> int:
    from genmodels.train import Trainer

    if args.resume:
        out = Path(args.resume)
        config_path = args.config or out / "config.toml"
    elif args.config:
        config_path = args.config
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path(args.out or f"runs/{Path(args.config).stem}-{stamp}")
    else:
        raise ConfigError("give a CONFIG.toml to start a run, or --resume RUN_DIR")
    config = load_config(config_path, args.overrides)
    trainer = Trainer(config, out, data_root=args.data_root, resume=bool(args.resume))
    if trainer.is_main:
        print(f"run directory: {out}")
    trainer.fit()
    if trainer.interrupted:
        return 130
    if trainer.is_main:
        print(f"saved {out / 'final.pt'}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from genmodels.models import MODELS
    from genmodels.summary import summarize

    config = load_config(args.config, args.overrides)
    model = MODELS[config.kind](config.model)
    print(summarize(model, model.input_shape, forward=type(model).summary_pass))
    return 0


def _accuracy(args: argparse.Namespace) -> int:
    from genmodels import classifier, load
    from genmodels.data import load_images, to_unit

    start = time.perf_counter()
    model = load(args.checkpoint) if args.checkpoint else classifier()
    test = load_images(args.dataset, "test", args.data_root)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(test), 2000):
            x = to_unit(test.images[i:i + 2000])
            correct += int((model(x).argmax(1) == test.labels[i:i + 2000]).sum())
    print(f"accuracy {correct / len(test):.4f}")
    print(f"({len(test)} {args.dataset} test images, {time.perf_counter() - start:.1f} s)",
          file=sys.stderr)
    return 0


def _sample(args: argparse.Namespace) -> int:
    from genmodels import load
    from genmodels.plots import save_image_grid, scatter_points

    model = load(args.checkpoint)
    if not hasattr(model, "sample"):
        raise ValueError(f"{args.checkpoint} holds a {model.kind}, which cannot sample")
    samples = model.sample(args.n, generator=torch.Generator().manual_seed(args.seed))
    if samples.dim() == 2:  # points of a 2-D mixture
        written = scatter_points(samples, args.out, title=f"{args.n} samples")
    else:
        written = save_image_grid(samples, args.out, nrow=args.nrow)
    print(f"wrote {written}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from genmodels.pipelines.evaluation import evaluate_source, write_evaluation

    metrics = args.metrics.split(",") if args.metrics else None
    report = evaluate_source(args.source, args.reference, metrics, n=args.n, k=args.k,
                             seed=args.seed, data_root=args.data_root)
    print(json.dumps({key: value for key, value in report.items() if key != "modes"}, indent=2))
    for path in write_evaluation(report, args.out):
        print(f"wrote {path}")
    return 0


def _scratch(args: argparse.Namespace) -> int:
    from genmodels.scratch import save_loss_curve, train_iris

    run = train_iris(epochs=args.epochs, seed=args.seed)
    print(f"accuracy {run.test_accuracy:.4f}")
    print(f"wrote {save_loss_curve(run.losses, args.out)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from genmodels.pipelines.report import write_report

    print(f"wrote {write_report(args.run_dir, args.data_root, args.seed)}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genmodels", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model from a TOML config")
    train.add_argument("config", nargs="?", help="CONFIG.toml (optional with --resume)")
    train.add_argument("overrides", nargs="*", help="section.key=value overrides")
    train.add_argument("--out", help="run directory (default: runs/CONFIG-TIMESTAMP)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    train.add_argument("--data-root", help="data folder (default: $GENMODELS_DATA, then "
                                           "~/.cache/genmodels/data)")
    train.set_defaults(run=_train)

    summary = sub.add_parser("summary", help="print the layers of a config's model")
    summary.add_argument("config")
    summary.add_argument("overrides", nargs="*")
    summary.set_defaults(run=_summary)

    accuracy = sub.add_parser("accuracy", help="test accuracy of a classifier")
    accuracy.add_argument("checkpoint", nargs="?",
                          help="final.pt or run directory (default: the shipped MNIST CNN)")
    accuracy.add_argument("--dataset", default="mnist", choices=["mnist", "fashion"])
    accuracy.add_argument("--data-root")
    accuracy.set_defaults(run=_accuracy)

    sample = sub.add_parser("sample", help="a grid of samples from a generative model (a "
                            "scatter plot for 2-D points)")
    sample.add_argument("checkpoint", help="final.pt or run directory")
    sample.add_argument("--n", type=int, default=64)
    sample.add_argument("--nrow", type=int, default=8)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", default="samples.png")
    sample.set_defaults(run=_sample)

    evaluate = sub.add_parser(
        "evaluate", help="metrics of a checkpoint or of samples, as JSON and Markdown",
        description="A checkpoint (final.pt or run directory) gets its held-out numbers (a "
        "VAE's -ELBO and importance-sampled NLL) and the metrics of n samples it draws; "
        "samples (.pt tensor, .npy array or a folder of PNGs) get the sample metrics.")
    evaluate.add_argument("source", help="checkpoint, run directory, .pt/.npy samples or PNG "
                          "folder")
    evaluate.add_argument("--reference", help="real images: mnist-test (default for samples), "
                          "mnist-train, fashion-test, fashion-train, stacked-mnist-test, "
                          "stacked-mnist-train; default for a model: its dataset's test split")
    evaluate.add_argument("--metrics", help="comma-separated, from held_out, mixture, fid, kid, "
                          "prdc, vendi, ndb, modes; default: all that apply")
    evaluate.add_argument("--n", type=int, default=10_000,
                          help="samples drawn (and reference images used) for sample metrics")
    evaluate.add_argument("--k", type=int, default=5000,
                          help="importance samples of a VAE's NLL; 0 = ELBO only")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--out", default="evaluation.json",
                          help="JSON report; a .md summary and a _classes.png go beside it")
    evaluate.add_argument("--data-root")
    evaluate.set_defaults(run=_evaluate)

    latent_command.register(sub)

    report = sub.add_parser("report", help="one-page Markdown report of a trained VAE run")
    report.add_argument("run_dir", help="run directory")
    report.add_argument("--seed", type=int, default=0)
    report.add_argument("--data-root")
    report.set_defaults(run=_report)
    inpaint_command.register(sub)

    scratch = sub.add_parser("scratch", help="the NumPy MLP with hand-written backprop")
    scratch.add_argument("task", choices=["iris"], help="iris: 4-32-16-3 net, 30%% held out")
    scratch.add_argument("--epochs", type=int, default=100)
    scratch.add_argument("--seed", type=int, default=0, help="seeds the split and the weights")
    scratch.add_argument("--out", default="iris_loss.png", help="loss-curve PNG")
    scratch.set_defaults(run=_scratch)
    return p


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args, extra = cli.parse_known_args(argv)
    if extra:  # overrides after an option (`train CONFIG --out DIR key=value`) land here
        if not hasattr(args, "overrides") or any(a.startswith("-") or "=" not in a
                                                 for a in extra):
            cli.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides += extra
    if args.command == "train" and args.config and "=" in args.config:
        args.overrides.insert(0, args.config)  # `train --resume DIR key=value`
        args.config = None
    try:
        return args.run(args)
    except (ConfigError, FileNotFoundError, ValueError, TypeError) as err:
        print(f"genmodels {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
