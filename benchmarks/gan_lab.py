"""Shared by the GAN benchmarks (gan_toy.py, gan_stacked_mnist.py, gan_mnist.py): the rows of
the collapse lab, training one seeded run through the Trainer, mean ± std summaries and the
collapse-lab table of docs/gan.md.

Collapse lab: every row keeps the architecture, data, optimiser and step budget of the
dataset's best config (configs/gan_<data>.toml) and changes only the objective: the loss, the
PacGAN packing, no spectral norm (WGAN-GP and the critic-free energy distance would not use
it) and no energy-distance term in a critic's generator loss. ``best`` is the config file as
it is; ``best_amp`` is the same in bfloat16 autocast (the CPU's fast path, see docs/gan.md,
Speed), not a lab row.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, so do not share a results file
    fcntl = None

from common import ROOT

from genmodels.config import Config, load_config
from genmodels.export import export_model
from genmodels.plots import read_metrics
from genmodels.train import Trainer
from genmodels.train.monitor import ModeCollapseWarning

# The lab's rows compare objectives alone: no spectral norm, energy term or cells of the configs.
LAB = ["model.spectral_norm=false", "model.n_critic=1", "model.energy_weight=0",
       "model.clusters=0", "model.channel_cells=false", "model.cell_weight=0"]
LAB_ROWS: dict[str, list[str]] = {  # the rows of the collapse-lab table
    "best": [],
    "minimax": ["model.loss=minimax", "model.pack=1", *LAB],
    "non_saturating": ["model.loss=non_saturating", "model.pack=1", *LAB],
    "wgan_gp": ["model.loss=wasserstein", "model.penalty=gp", "model.pack=1", *LAB],
    "hinge": ["model.loss=hinge", "model.pack=1", *LAB],
    "pacgan2": ["model.loss=non_saturating", "model.pack=2", *LAB],
    "pacgan4": ["model.loss=non_saturating", "model.pack=4", *LAB],
    "energy": ["model.loss=energy", "model.pack=1", *LAB],
}
ROWS = {**LAB_ROWS, "best_amp": ["train.amp=true"]}  # + the best config in bfloat16 autocast
LABELS = {"best": "best config", "minimax": "minimax GAN", "non_saturating": "non-saturating GAN",
          "wgan_gp": "WGAN-GP", "hinge": "hinge", "pacgan2": "PacGAN2 (non-sat.)",
          "pacgan4": "PacGAN4 (non-sat.)", "energy": "energy distance (no critic)",
          "best_amp": "best config, `train.amp=true` (bfloat16)"}
TOY_RESULTS = ROOT / "docs" / "results" / "gan_toy.json"
STACKED_RESULTS = ROOT / "docs" / "results" / "gan_stacked_mnist.json"
STACKED_LAB_RESULTS = ROOT / "docs" / "results" / "gan_stacked_mnist_lab.json"  # shorter budget


def benchmark_parser(description: str, results: Path, runs: Path) -> argparse.ArgumentParser:
    """The arguments every GAN benchmark shares: config overrides, seeds, where results,
    docs, figures, shipped checkpoints and run folders go."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    parser.add_argument("--seeds", type=int, default=5,
                        help="run the seeds up to N - 1 (default: seeds 0 .. 4)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start at this seed instead (seeds FIRST .. N - 1), e.g. to split "
                             "the seeds over processes that share the results file")
    parser.add_argument("--results", type=Path, default=results)
    parser.add_argument("--runs", type=Path, default=runs)
    outputs = ("with the benchmark's own --results: docs/gan.md, samples/gan, samples/checkpoints; "
               "with another: RESULTS.md, RUNS/figures, RUNS/checkpoints")
    parser.add_argument("--doc", type=Path, help=f"default, {outputs}")
    parser.add_argument("--figures", type=Path)
    parser.add_argument("--checkpoints", type=Path)
    return parser


def finish_args(args: argparse.Namespace, *own_results: Path) -> None:
    """Check the seed range and fill the --doc, --figures and --checkpoints left unset, before
    any work. A benchmark's own results files feed the repository's docs/gan.md, samples/gan and
    samples/checkpoints; any other --results (a side experiment, a smoke test) writes RESULTS.md
    and RUNS/figures, RUNS/checkpoints, so it never rewrites the published tables or replaces a
    shipped checkpoint."""
    if args.first_seed >= args.seeds:
        raise SystemExit(f"--first-seed {args.first_seed} --seeds {args.seeds} selects no seed: "
                         f"--seeds is where the seeds end (seeds FIRST .. N - 1); for seed "
                         f"{args.first_seed} alone use --first-seed {args.first_seed} --seeds "
                         f"{args.first_seed + 1}")
    if args.results.resolve() in {path.resolve() for path in own_results}:
        defaults = (ROOT / "docs" / "gan.md", ROOT / "samples" / "gan",
                    ROOT / "samples" / "checkpoints")
    else:
        defaults = (args.results.with_suffix(".md"), args.runs / "figures",
                    args.runs / "checkpoints")
    for name, default in zip(("doc", "figures", "checkpoints"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)


def seeds(args: argparse.Namespace) -> range:
    """The seeds a benchmark runs: --first-seed .. --seeds - 1."""
    return range(args.first_seed, args.seeds)


def run_config(data: str, row: str, seed: int, extra: list[str]) -> Config:
    """configs/gan_<data>.toml with the row's overrides, the seed and ``extra``."""
    return load_config(ROOT / "configs" / f"gan_{data}.toml",
                       [*ROWS[row], f"train.seed={seed}", "train.progress=false", *extra])


def same_run(a: Config, b: Config) -> bool:
    """Whether two configs train the same model (ignoring logging and progress keys)."""
    ignored = {"progress", "log_every", "checkpoint_every", "figure_every"}

    def key(config: Config) -> dict:
        train = {k: v for k, v in dataclasses.asdict(config.train).items() if k not in ignored}
        return {"kind": config.kind, "model": dataclasses.asdict(config.model),
                "data": dataclasses.asdict(config.data), "train": train}

    return key(a) == key(b)


def reused_best(runs: dict, data: str, row: str, seed: int, extra: list[str]) -> dict | None:
    """The best config's record for this seed, relabelled, when ``row`` trains the very same
    model (e.g. a row equal to the best config); None when the row needs its own run."""
    best_key = f"{data}/best/seed{seed}"
    if row == "best" or best_key not in runs or not same_run(
            run_config(data, row, seed, extra), run_config(data, "best", seed, extra)):
        return None
    return {**runs[best_key], "row": row, "same_as": best_key}


def training_minutes(todo: list[tuple[str, str, int]], runs: dict, extra: list[str],
                     default_seconds_per_step: float) -> float:
    """CPU minutes to train the runs ``todo`` (data, row, seed): their steps times the CPU
    seconds per step measured so far in ``runs`` (``default_seconds_per_step`` before any);
    rows that train the best config's model again cost nothing."""
    measured = [r["cpu_minutes"] * 60 / r["steps"] for r in runs.values()
                if "same_as" not in r and r.get("steps")]
    per_step = sum(measured) / len(measured) if measured else default_seconds_per_step
    steps = 0
    for data, row, seed in todo:
        config = run_config(data, row, seed, extra)
        if row == "best" or not same_run(config, run_config(data, "best", seed, extra)):
            steps += config.train.max_steps
    return steps * per_step / 60


def train(config: Config, out: Path) -> tuple[Trainer, dict]:
    """Train from scratch into ``out`` (removed first); returns the trainer and
    ``{"wall_minutes", "cpu_minutes", "history"}``, the history being the monitor's
    ``[step, modes, kl]`` (2-D: ``[step, modes, kl, high_quality]``) from metrics.jsonl."""
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModeCollapseWarning)  # the history keeps the counts
        trainer = Trainer(config, out)
        trainer.fit()
    timing = {"wall_minutes": round((time.perf_counter() - wall) / 60, 2),
              "cpu_minutes": round((time.process_time() - cpu) / 60, 2)}
    history = []
    for record in read_metrics(out / "metrics.jsonl"):
        if "monitor/modes" in record:
            entry = [record["step"], record["monitor/modes"],
                     _round(record.get("monitor/kl", math.inf))]
            if "monitor/high_quality" in record:
                entry.append(round(record["monitor/high_quality"], 4))
            history.append(entry)
    return trainer, {**timing, "history": history}


def _round(value: float, digits: int = 4) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def ship(results_path: Path, record: dict, final: Path, folder: Path,
         score: tuple[float, ...]) -> bool:
    """Export the run's ``final`` model to the folder ``folder``/gan_<data> (``genmodels
    export``: config.toml, model.safetensors, model.sha256, README.md with the record's
    numbers) if ``score`` beats the shipped one's (``checkpoints`` in the results file);
    whether it did. The export keeps one set of weights, the EMA ones when the run has them
    (as ``genmodels.load`` samples), so that it loads at half the size."""
    data = record["data"]
    with _locked(results_path):
        results = load_results(results_path)
        shipped = results["checkpoints"].get(data)
        if shipped and tuple(shipped["score"]) >= score:
            return False
        run = f"{data}/{record['row']}/seed{record['seed']}"
        numbers = {"run": run, **{key: value for key, value in record.items()
                                  if isinstance(value, (int, float))
                                  and not isinstance(value, bool)}}
        path = export_model(final, Path(os.path.relpath(folder / f"gan_{data}")), numbers)
        size = sum(file.stat().st_size for file in path.iterdir() if file.is_file())
        results["checkpoints"][data] = {"run": run, "score": list(score),
                                        "path": relative(path),
                                        "megabytes": round(size / 2**20, 2)}
        save_results(results, results_path)
    return True


def relative(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def load_results(path: Path) -> dict:
    """``{"runs": {key: record}, "checkpoints": {data: record}}`` from ``path`` (empty if none),
    with any other keys of the file (e.g. an ``about`` line) kept."""
    results = json.loads(path.read_text()) if path.exists() else {}
    return {**results, "runs": results.get("runs", {}),
            "checkpoints": results.get("checkpoints", {})}


def save_results(results: dict, path: Path) -> None:
    """Write ``results`` to ``path`` atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(temporary, path)


def add_run(path: Path, key: str, record: dict) -> dict:
    """Add one run's ``record`` under ``key`` to the results file ``path`` and give up this
    process's claim on it (:func:`pending_runs`); returns all its runs. The file is re-read
    under a lock, so that processes sharing it (seeds or rows split over cores) keep each
    other's runs."""
    with _locked(path):
        results = load_results(path)
        results["runs"][key] = record
        save_results(results, path)
    _release(path, key)
    return results["runs"]


def recorded_runs(path: Path) -> dict:
    """The runs in the results file ``path`` now, including other processes' ones."""
    with _locked(path):
        return load_results(path)["runs"]


_claims: dict[tuple[Path, str], IO] = {}  # runs this process is training: their claim files


def pending_runs(path: Path, key: str) -> dict | None:
    """The runs in the results file ``path`` now, with ``key`` claimed for this process; None
    when ``key`` is among them (done before, or meanwhile by another process sharing the file)
    or another process is training it. So several copies of a benchmark on one results file
    share out its runs. A claim is a lock on a hidden file beside the results, held until
    :func:`add_run` records the run or the process ends: a killed run is free again."""
    if not _claim(path, key):
        return None
    runs = recorded_runs(path)  # read after claiming: a run recorded meanwhile is seen
    if key in runs:
        _release(path, key)
        return None
    return runs


def _claim(path: Path, key: str) -> bool:
    if fcntl is None:
        return True
    claim = open(_lock_file(path, "." + key.replace("/", ".")), "w")  # noqa: SIM115
    try:
        fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        claim.close()
        return False
    _claims[path, key] = claim
    return True


def _release(path: Path, key: str) -> None:
    claim = _claims.pop((path, key), None)
    if claim is not None:  # unlink first: whoever opens the name later gets a fresh file
        Path(claim.name).unlink(missing_ok=True)
        claim.close()


def _lock_file(path: Path, suffix: str = "") -> Path:
    """The hidden file ``.<name><suffix>.lock`` beside the results file ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}{suffix}.lock")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for the results file ``path`` (on a hidden file beside it)."""
    if fcntl is None:
        yield
        return
    with open(_lock_file(path), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def mean_std(values: list[float | None], digits: int = 1, percent: bool = False) -> str:
    """``"m ± s"`` over the finite values (sample std, ddof = 1), ``"–"`` when there are none;
    ``percent``: values are fractions shown as percentages."""
    values = [v * (100 if percent else 1) for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "–"
    m = sum(values) / len(values)
    if len(values) == 1:
        return f"{m:.{digits}f}"
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def group(runs: dict, data: str, row: str) -> list[dict]:
    """The records of ``data``/``row`` over seeds."""
    return [r for r in runs.values() if r["data"] == data and r["row"] == row]


def collapse_lab_table(toy: dict, stacked: dict) -> str:
    """Markdown: rows of :data:`LAB_ROWS`, columns modes and KL (nats) on ring, grid and Stacked
    MNIST, mean ± std over seeds (seeds in brackets)."""
    head = ("| objective | ring modes (/8) | ring KL | grid modes (/25) | grid KL "
            "| Stacked MNIST modes (/1000) | Stacked MNIST KL |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for row in LAB_ROWS:
        cells = []
        for data, runs in (("ring", toy), ("grid", toy), ("stacked_mnist", stacked)):
            records = group(runs, data, row)
            count = f" ({len(records)})" if records else ""
            cells += [mean_std([r["modes"] for r in records]) + count,
                      mean_std([r["kl"] for r in records], 2)]
        lines.append(f"| {LABELS[row]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_collapse_lab(doc: Path, toy_path: Path = TOY_RESULTS,
                       stacked_path: Path = STACKED_LAB_RESULTS) -> str:
    """Rebuild the collapse-lab table of ``doc`` from both results files."""
    from common import write_between_markers

    table = collapse_lab_table(load_results(toy_path)["runs"], load_results(stacked_path)["runs"])
    write_between_markers(doc, table, "gan-collapse-lab")
    return table
