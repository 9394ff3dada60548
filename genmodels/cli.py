"""Command line: ``genmodels train | summary | accuracy | sample | evaluate | latent | inpaint
| export | serve | report | compare | scratch``; see ``genmodels -h``.

Every expected failure (a :class:`genmodels.errors.UserError`: bad argument, config, checkpoint
or data file; or a file that cannot be read or written) is one line on stderr and exit status
2; anything else is a bug and keeps its traceback. Numbers are checked by argparse as they are
read (:func:`positive_int`, :func:`non_negative_int`), outputs only written once the work is
done, and long commands show a progress bar with a time estimate (:mod:`genmodels.progress`).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from genmodels import __version__
from genmodels.config import ConfigError, load_config
from genmodels.errors import InputError, UserError
from genmodels.inpaint import command as inpaint_command
from genmodels.latent import command as latent_command
from genmodels.pipelines import compare as compare_command
from genmodels.serve import command as serve_command

if TYPE_CHECKING:  # torch loads only when a command runs: `genmodels --help` stays fast
    import torch

ARRAY_SUFFIXES = (".npy", ".pt")  # `sample --out`: the samples themselves
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")  # `sample --out`: a grid (a scatter for points)


# --- argument types: numbers and paths are checked as they are read ------------------------
def _integer(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"should be an integer, got {text!r}") from None
    if value < low:
        rule = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise argparse.ArgumentTypeError(f"should be {rule}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a count; never a Python index from the end)."""
    return _integer(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (an index, a seed, or a count where 0 means off)."""
    return _integer(text, 0)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"should be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"should be a finite number > 0, got {text}")
    return value


def label_argument(text: str) -> int | str:
    """argparse type of ``sample --label``: a class number (>= 0), or ``all``."""
    if text == "all":
        return text
    try:
        return _integer(text, 0)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"should be a class number (0, 1, ...) or 'all', got "
                                         f"{text!r}") from None


def output_path(text: str) -> str:
    """argparse type: a file that can be written: not a folder, and its nearest existing
    folder is writable (missing folders are created when the file is written)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    folder = Path(os.path.abspath(path)).parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: {folder} is a file")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: permission denied in {folder}")
    return text


class Renamed(argparse.Action):
    """The old spelling of a renamed flag: still accepted, with a note on stderr naming the
    new one (``--k`` meant importance samples, quantization points or proposals, depending on
    the command)."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs) -> None:
        self.new = new
        super().__init__(option_strings, dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS,
                         **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"{parser.prog}: note: {option_string} is deprecated, use {self.new}",
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_renamed(parser: argparse.ArgumentParser, old: str, new: argparse.Action) -> None:
    """Accept ``old`` as a deprecated spelling of the flag ``new`` (same type and dest)."""
    parser.add_argument(old, dest=new.dest, type=new.type, action=Renamed,
                        new=new.option_strings[0], metavar=new.metavar)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default, except where there is none (None)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


class UsageError(InputError):
    """An argument argparse refused; ``prog`` is the (sub)command that refused it."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """argparse with defaults in every ``--help`` and one-line errors: :meth:`error` raises
    :class:`UsageError`, which :func:`main` prints (no usage block) and turns into status 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        message = re.sub(r"^argument (\S+): should", r"argument \1 should", message)
        raise UsageError(self.prog, f"{message} (see {self.prog} -h)")


def _train(args: argparse.Namespace) -> int:
    from genmodels.train import Trainer
    from genmodels.train.run_dir import require_run

    if args.resume:
        out = Path(args.resume)
        config_path = args.config or out / "config.toml"
        if not args.config:
            require_run(out)
    elif args.config:
        config_path = args.config
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path(args.out or f"runs/{Path(args.config).stem}-{stamp}")
    else:
        raise ConfigError("give a CONFIG.toml to start a run, or --resume RUN_DIR")
    config = load_config(config_path, args.overrides)
    trainer = Trainer(config, out, data_root=args.data_root, resume=bool(args.resume),
                      overwrite=args.overwrite)
    if trainer.is_main:
        print(f"run directory: {out}")
    trainer.fit()
    if trainer.interrupted:
        return 130
    if trainer.is_main:
        print(f"saved {out / 'final.pt'}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from genmodels.data.build import data_shape
    from genmodels.models import MODELS
    from genmodels.summary import summarize

    config = load_config(args.config, args.overrides)
    model = MODELS[config.kind](config.model, data_shape(config.data))
    print(summarize(model, model.input_shape, forward=type(model).summary_pass))
    return 0


def _accuracy(args: argparse.Namespace) -> int:
    import torch

    from genmodels import classifier, load
    from genmodels.data import load_images, to_unit
    from genmodels.models import Classifier
    from genmodels.nets.classifier import INFERENCE_BATCH
    from genmodels.progress import progress

    start = time.perf_counter()
    model = load(args.checkpoint) if args.checkpoint else classifier(args.dataset)
    if not isinstance(model, Classifier):
        raise InputError(f"{args.checkpoint} holds a {model.description}; accuracy needs a "
                         "classifier (a run of [model] kind = \"classifier\")")
    test = load_images(args.dataset, "test", args.data_root)
    if model.input_shape != tuple(test.images.shape[1:]):
        raise InputError(f"{args.checkpoint} classifies images of shape {model.input_shape}; "
                         f"the {args.dataset} test images are {tuple(test.images.shape[1:])}")
    net, correct = model.inference_copy(), 0
    with torch.inference_mode(), progress(total=len(test), desc="accuracy", unit="img") as bar:
        for i in range(0, len(test), INFERENCE_BATCH):
            x = to_unit(test.images[i:i + INFERENCE_BATCH])  # (B, C, H, W)
            correct += int((net(x).argmax(1) == test.labels[i:i + INFERENCE_BATCH]).sum())
            bar.update(len(x))
    print(f"accuracy {correct / len(test):.4f}")
    print(f"({len(test)} {args.dataset} test images, {time.perf_counter() - start:.1f} s)",
          file=sys.stderr)
    return 0


DEFAULT_SAMPLES = 64  # `sample --n`
DEFAULT_PER_CLASS = 8  # `sample --label all`: samples of each class


def _sample_labels(args: argparse.Namespace, model) -> tuple[int, torch.Tensor | None, int]:
    """(samples, their labels or None, images per grid row) of ``sample``'s arguments:
    ``--label Y`` gives every sample class Y, ``--label all`` or ``--per-class K`` K samples
    of each class in class order (one grid row a class); InputErrors for a model that is not
    class-conditional, a label out of its range or conflicting flags."""
    import torch

    from genmodels.models import ConditionalSampler
    from genmodels.models.conditional import per_class_labels

    per_class = args.per_class or (DEFAULT_PER_CLASS if args.label == "all" else None)
    if args.label is None and per_class is None:
        return args.n or DEFAULT_SAMPLES, None, args.nrow
    flag = f"--label {args.label}" if args.label is not None else f"--per-class {per_class}"
    if not isinstance(model, ConditionalSampler):
        raise InputError(f"{flag}: {args.checkpoint} holds an unconditional {model.kind}; "
                         "labels apply to models trained with model.conditional = true")
    classes = model.num_classes
    if args.label == "all" or args.label is None:
        if args.n is not None:
            raise InputError(f"--n {args.n} with {flag}: a per-class grid has --per-class K "
                             f"samples of each of the {classes} classes; drop --n")
        return per_class * classes, per_class_labels(classes, per_class, "cpu"), per_class
    if args.per_class is not None:
        raise InputError(f"--per-class {args.per_class} with --label {args.label}: --per-class "
                         "draws every class; for one class give --label and --n")
    if args.label >= classes:
        raise InputError(f"--label {args.label} is out of range: the model has {classes} "
                         f"classes (labels 0 to {classes - 1})")
    n = args.n or DEFAULT_SAMPLES
    return n, torch.full((n,), args.label, dtype=torch.int64), args.nrow


def _sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from genmodels import load
    from genmodels.data.build import TOY_DATASETS
    from genmodels.models import IterativeSampler, Sampler
    from genmodels.pipelines.run_evaluation import draw_samples
    from genmodels.plots import run_name, save_image_grid, scatter_points

    suffix = Path(args.out).suffix.lower()
    if suffix not in (*ARRAY_SUFFIXES, *PICTURE_SUFFIXES):
        raise InputError(f"--out {args.out}: use .png for a grid of samples, or .npy or .pt for "
                         "the samples themselves")
    model = load(args.checkpoint)
    if not isinstance(model, Sampler):
        raise InputError(f"{args.checkpoint} holds a {model.description}, which cannot sample")
    n, labels, nrow = _sample_labels(args, model)
    samples = draw_samples(model, n, args.seed, steps=args.steps, labels=labels,  # as evaluate
                           temperature=args.temperature)
    if suffix in ARRAY_SUFFIXES:  # (N, C, H, W) float32 in [0, 1], or (N, 2) points
        samples = (samples if samples.dim() == 2 else samples.clamp(0, 1)).float()
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".npy":
            np.save(args.out, samples.numpy())
        else:
            torch.save(samples, args.out)
        written = Path(args.out)
    else:  # a figure titled with what drew it
        how = f", {model.sampler_label(args.steps)}" if isinstance(model, IterativeSampler) \
            else ""
        how += "" if args.temperature is None else f", temperature {args.temperature:g}"
        title = f"{n} samples of {model.kind} {run_name(args.checkpoint)} (seed {args.seed}{how})"
        if samples.dim() == 2:  # points, over as many of the 2-D mixture's own in grey
            mixture = TOY_DATASETS.get(model.run_config.data.name)
            reference = None if mixture is None else \
                mixture().sample(n, torch.Generator().manual_seed(args.seed + 1))[0]
            written = scatter_points(samples, args.out, reference, title=title)
        else:  # with labels, each row is headed by its class
            rows = None if labels is None else [f"class {int(y)}" for y in labels[::nrow]]
            written = save_image_grid(samples, args.out, nrow=nrow, title=title, row_labels=rows)
    print(f"wrote {written}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from genmodels.pipelines.run_evaluation import evaluate_source, write_evaluation

    metrics = args.metrics.split(",") if args.metrics else None
    full = EVALUATE_FULL if args.full else EVALUATE_QUICK
    n = args.n if args.n is not None else full["n"]
    k = args.importance_samples if args.importance_samples is not None else full["k"]
    report = evaluate_source(args.source, args.reference, metrics, n=n, k=k, seed=args.seed,
                             data_root=args.data_root, held_out_examples=n,
                             features=args.features, steps=args.steps,
                             temperature=args.temperature)
    print(json.dumps({key: value for key, value in report.items() if key != "modes"}, indent=2))
    for kind in ("note", "warning"):
        for text in report.get(f"{kind}s", []):
            print(f"genmodels evaluate: {kind}: {text}", file=sys.stderr)
    for path in write_evaluation(report, args.out):
        print(f"wrote {path}")
    return 0


# `genmodels evaluate`: the quick default (minutes on 2 CPU cores for an MLP VAE) and --full
# (the published protocol: 10,000 samples, NLL with k = 5000 on the whole MNIST test set)
EVALUATE_QUICK = {"n": 2000, "k": 100}
EVALUATE_FULL = {"n": 10_000, "k": 5000}


def _export(args: argparse.Namespace) -> int:
    from genmodels.export import (
        EXPORT_CHECKSUM,
        EXPORT_CONFIG,
        EXPORT_README,
        EXPORT_WEIGHTS,
        export_model,
    )

    out = export_model(args.source, args.out, force=args.force, ema=not args.raw_weights)
    size = (out / EXPORT_WEIGHTS).stat().st_size
    print(f"wrote {out}: {EXPORT_WEIGHTS} ({size / 1e6:.2f} MB), {EXPORT_CHECKSUM}, "
          f"{EXPORT_CONFIG}, {EXPORT_README}; load it with genmodels.load({str(out)!r})")
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


def add_sampler_arguments(command: argparse.ArgumentParser) -> None:
    """``--steps N``: sampler steps of an IterativeSampler (diffusion, flow matching);
    ``--temperature T``: that of a TemperedSampler's prior codes (VAEs)."""
    command.add_argument("--steps", type=positive_int,
                         help="sampler steps of a diffusion or flow-matching model (default: "
                              "its model.sample_steps)")
    command.add_argument("--temperature", type=positive_float,
                         help="VAEs: draw prior codes z = mu + T sigma eps; below 1 gives more "
                              "typical, less diverse samples (default: 1, the model itself)")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="genmodels", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)  # subparsers are Parsers too

    train = sub.add_parser("train", help="train a model from a TOML config")
    train.add_argument("config", nargs="?", help="CONFIG.toml (optional with --resume)")
    train.add_argument("overrides", nargs="*", help="section.key=value overrides")
    train.add_argument("--out", help="run directory (default: runs/CONFIG-TIMESTAMP)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the run already in --out (its files are deleted)")
    train.add_argument("--data-root", help="data folder (default: $GENMODELS_DATA, then "
                                           "~/.cache/genmodels/data)")
    train.set_defaults(run=_train)

    summary = sub.add_parser("summary", help="print the layers of a config's model")
    summary.add_argument("config", help="CONFIG.toml")
    summary.add_argument("overrides", nargs="*", help="section.key=value overrides")
    summary.set_defaults(run=_summary)

    accuracy = sub.add_parser("accuracy", help="test accuracy of a classifier")
    accuracy.add_argument("checkpoint", nargs="?",
                          help="final.pt, run directory or export folder (default: the "
                               "shipped CNN of --dataset)")
    accuracy.add_argument("--dataset", default="mnist", choices=["mnist", "fashion"],
                          help="whose test split")
    accuracy.add_argument("--data-root", help="data folder (default: $GENMODELS_DATA, then "
                                              "~/.cache/genmodels/data)")
    accuracy.set_defaults(run=_accuracy)

    sample = sub.add_parser(
        "sample", help="samples of a generative model: a grid (.png), or the samples (.npy, .pt)",
        description="Draws --n samples. A .png --out is a grid of images (a scatter plot for "
        "the points of a 2-D mixture); a .npy or .pt --out holds the samples themselves, "
        "float32 (N, C, H, W) in [0, 1] (points: (N, 2)), the input `genmodels evaluate` takes. "
        "A class-conditional model (model.conditional = true) samples the class --label Y, or "
        "with --label all (--per-class K) K samples of each class, in class order: one grid "
        "row a class.")
    sample.add_argument("checkpoint", help="final.pt, run directory or export folder")
    sample.add_argument("--n", type=positive_int,
                        help=f"samples (default: {DEFAULT_SAMPLES}; with --label all: "
                             "--per-class K of each class)")
    sample.add_argument("--label", type=label_argument,
                        help="conditional models: the class of every sample, or 'all' for a "
                             "per-class grid (default: classes drawn at their training shares)")
    sample.add_argument("--per-class", type=positive_int, metavar="K",
                        help=f"conditional models: K samples of each class, one grid row a "
                             f"class (implies --label all; default there: {DEFAULT_PER_CLASS})")
    sample.add_argument("--nrow", type=positive_int, default=8, help="images per grid row")
    sample.add_argument("--seed", type=non_negative_int, default=0, help="seeds the draws")
    add_sampler_arguments(sample)
    sample.add_argument("--out", type=output_path, default="samples.png",
                        help=".png grid, or .npy / .pt samples")
    sample.set_defaults(run=_sample)

    evaluate = sub.add_parser(
        "evaluate", help="metrics of a checkpoint or of samples, as JSON and Markdown",
        description="A checkpoint (final.pt, run directory or export folder of genmodels "
        "export) gets its held-out numbers (a "
        "VAE's -ELBO and importance-sampled NLL, on the first --n held-out images) and the "
        "metrics of --n samples it draws, against its own held-out data by default; samples "
        "(.npy/.npz/.pt array or a folder of PNG/JPEG images, any size, 1 or 3 channels) get "
        "the sample metrics. The defaults take minutes on 2 CPU cores (--n "
        f"{EVALUATE_QUICK['n']}, --importance-samples {EVALUATE_QUICK['k']}); --full runs the "
        f"published protocol ({EVALUATE_FULL['n']:,} samples, k = {EVALUATE_FULL['k']} on the "
        "whole test set).")
    evaluate.add_argument("source", help="checkpoint, run directory, export folder, "
                          ".npy/.npz/.pt samples or image folder")
    evaluate.add_argument("--reference", help="real images: mnist-test (default for samples), "
                          "mnist-train, fashion-test, fashion-train, stacked-mnist-test, "
                          "stacked-mnist-train, a folder of images or a .npy/.npz/.pt file "
                          "(its test_images if it has some); default for a model: its own "
                          "held-out data")
    evaluate.add_argument("--features", help="feature extractor: mnist-cnn, fashion-cnn, "
                          "pixels, classifier:RUN (a classifier trained with genmodels train), "
                          "torchscript:FILE; default: the shipped CNN of MNIST, Fashion-MNIST "
                          "and Stacked MNIST references, pixels for other data")
    evaluate.add_argument("--metrics", help="comma-separated, from held_out, mixture, fid, kid, "
                          "prdc, vendi, ndb, modes; default: all that apply")
    evaluate.add_argument("--full", action="store_true",
                          help=f"the full protocol: --n {EVALUATE_FULL['n']} --importance-samples "
                          f"{EVALUATE_FULL['k']} (a VAE: tens of minutes on a CPU)")
    evaluate.add_argument("--n", type=positive_int,
                          help="samples drawn, reference images and held-out test images used "
                          f"(default: {EVALUATE_QUICK['n']}; {EVALUATE_FULL['n']} with --full)")
    importance = evaluate.add_argument(
        "--importance-samples", type=non_negative_int, metavar="K",
        help=f"importance samples of a VAE's held-out NLL; 0 = ELBO only (default: "
        f"{EVALUATE_QUICK['k']}; {EVALUATE_FULL['k']} with --full; was --k)")
    add_renamed(evaluate, "--k", importance)
    evaluate.add_argument("--seed", type=non_negative_int, default=0, help="seeds the draws")
    add_sampler_arguments(evaluate)
    evaluate.add_argument("--out", type=output_path, default="evaluation.json",
                          help="JSON report; a .md summary and a _classes.png go beside it")
    evaluate.add_argument("--data-root", help="data folder (default: $GENMODELS_DATA, then "
                                              "~/.cache/genmodels/data)")
    evaluate.set_defaults(run=_evaluate)

    latent_command.register(sub)

    report = sub.add_parser("report", help="one-page Markdown report of a trained VAE run")
    report.add_argument("run_dir", help="run directory")
    report.add_argument("--seed", type=non_negative_int, default=0, help="seeds the draws")
    report.add_argument("--data-root", help="data folder (default: $GENMODELS_DATA, then "
                                            "~/.cache/genmodels/data)")
    report.set_defaults(run=_report)
    inpaint_command.register(sub)
    export = sub.add_parser(
        "export", help="a trained model as a portable folder (safetensors, no pickle)",
        description="Writes to --out the run's config.toml, its sampling weights as "
        "model.safetensors (the EMA ones when the run kept an EMA), their sha256 "
        "(model.sha256) and a README.md; genmodels.load(DIR) reads the folder without pickle.")
    export.add_argument("source", help="run directory, final.pt or checkpoint.pt")
    export.add_argument("--out", required=True, metavar="DIR",
                   help="folder to write (created; an earlier export there is replaced)")
    export.add_argument("--raw-weights", action="store_true",
                   help="export the trained weights of a run that kept an EMA, not the EMA")
    export.add_argument("--force", action="store_true",
                   help="write into a non-empty folder that holds no export (its other files "
                        "are kept)")
    export.set_defaults(run=_export)
    serve_command.register(sub)
    compare_command.register(sub)

    scratch = sub.add_parser("scratch", help="the NumPy MLP with hand-written backprop")
    scratch.add_argument("task", choices=["iris"], help="iris: 4-32-16-3 net, 30%% held out")
    scratch.add_argument("--epochs", type=positive_int, default=100, help="training epochs")
    scratch.add_argument("--seed", type=non_negative_int, default=0,
                         help="seeds the split and the weights")
    scratch.add_argument("--out", type=output_path, default="iris_loss.png",
                         help="loss-curve PNG")
    scratch.set_defaults(run=_scratch)
    return p


def _parse(cli: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    args, extra = cli.parse_known_args(argv)
    if extra:  # overrides after an option (`train CONFIG --out DIR key=value`) land here
        if not hasattr(args, "overrides") or any(a.startswith("-") or "=" not in a
                                                 for a in extra):
            prog = f"{cli.prog} {args.command}"
            raise UsageError(prog, f"unrecognized arguments: {' '.join(extra)} (see {prog} -h)")
        args.overrides += extra
    if args.command == "train" and args.config and "=" in args.config:
        args.overrides.insert(0, args.config)  # `train --resume DIR key=value`
        args.config = None
    return args


def _fail(prog: str, err: BaseException) -> int:
    """Print ``err`` as one line on stderr; the exit status of an expected failure."""
    if isinstance(err, OSError) and err.strerror and err.filename:
        text = f"{err.strerror}: {err.filename}"
    else:
        text = str(err) or type(err).__name__
    print(f"{prog}: error: {' '.join(text.split())}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status: 0, 2 for an expected failure (one line on
    stderr), 130 when interrupted. A bug (any other exception) propagates with its traceback."""
    cli = parser()
    prog = cli.prog
    try:
        args = _parse(cli, argv)
        prog = f"{cli.prog} {args.command}"
        return args.run(args)
    except UsageError as err:
        return _fail(err.prog, err)
    except (UserError, OSError) as err:  # OSError: a file missing, unreadable or unwritable
        return _fail(prog, err)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
