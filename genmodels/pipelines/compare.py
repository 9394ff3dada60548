"""``genmodels compare RUN_DIR... --out FILE.png``: the curves of several runs on one figure
(one panel per metric the runs share, one curve per run) and a Markdown table of their final
numbers (the last value of each metric, the steps and the model kind), printed and written
beside the figure as ``FILE.md``.

Everything is read from each run's ``metrics.jsonl`` (written whatever ``train.loggers`` says)
and ``config.toml``; the runs may still be training.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from genmodels.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NOT_METRICS = ("step", "epoch", "time")
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


@dataclass
class Run:
    """One run as ``compare`` sees it: its label, kind and records."""

    folder: Path
    label: str
    kind: str
    records: list[dict]

    def metrics(self) -> list[str]:
        """Every key that holds a number in some record, besides step, epoch and time."""
        keys = {key for record in self.records for key, value in record.items()
                if isinstance(value, (int, float)) and not isinstance(value, bool)}
        return sorted(keys - set(NOT_METRICS))

    def curve(self, key: str) -> tuple[list[int], list[float]]:
        points = [(r["step"], r[key]) for r in self.records if key in r]
        return [step for step, _ in points], [value for _, value in points]

    @property
    def steps(self) -> int:
        return max(record["step"] for record in self.records)


def read_run(folder: str | Path) -> Run:
    """The records and model kind of a run directory; :class:`InputError` for a folder that
    holds no run or no records."""
    folder = Path(folder)
    if not (folder / "config.toml").is_file():
        raise InputError(f"{folder} is not a run directory (no config.toml)")
    metrics = folder / "metrics.jsonl"
    if not metrics.is_file():
        raise InputError(f"{folder} has no metrics.jsonl (it logged nothing yet)")
    try:
        records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        kind = str(tomllib.loads((folder / "config.toml").read_text())["model"]["kind"])
    except (ValueError, KeyError, TypeError) as err:  # JSON and TOML errors are ValueErrors
        raise InputError(f"cannot read the run in {folder}: {err}") from None
    if not records:
        raise InputError(f"{metrics} holds no records yet")
    return Run(folder, folder.resolve().name, kind, records)


def read_runs(folders: list[str]) -> list[Run]:
    """The runs, labelled by their folder names (by the paths as given where names repeat)."""
    runs = [read_run(folder) for folder in folders]
    names = [run.label for run in runs]
    for run, folder in zip(runs, folders, strict=True):
        if names.count(run.label) > 1:
            run.label = folder
    return runs


def shared_metrics(runs: list[Run], wanted: list[str] | None = None) -> list[str]:
    """The metrics every run has (``wanted``, checked, in its order, if given)."""
    have = [set(run.metrics()) for run in runs]
    if wanted:
        for run, keys in zip(runs, have, strict=True):
            missing = [key for key in wanted if key not in keys]
            if missing:
                raise InputError(f"--metrics: {run.folder} has no {', '.join(missing)} (it has "
                                 f"{', '.join(sorted(keys))})")
        return list(dict.fromkeys(wanted))
    shared = sorted(set.intersection(*have))
    if not shared:
        listed = "; ".join(f"{run.label}: {', '.join(run.metrics()) or 'none'}" for run in runs)
        raise InputError(f"the runs share no metric ({listed})")
    return shared


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def markdown_table(runs: list[Run], metrics: list[str]) -> str:
    """One row per run: its label, kind, steps and the last value of each metric."""
    header = ["run", "kind", "steps", *metrics]
    rows = [[run.label, run.kind, str(run.steps),
             *(_number(run.curve(key)[1][-1]) for key in metrics)] for run in runs]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def compare(folders: list[str], out: str | Path,
            metrics: list[str] | None = None) -> tuple[str, Path, Path]:
    """Draw the curves of the runs in ``folders`` to ``out`` and write the table of their final
    numbers beside it (``out`` with suffix ``.md``); returns the table and the two paths."""
    from genmodels.plots import plot_curves

    out = Path(out)
    if out.suffix.lower() not in FIGURE_SUFFIXES:
        raise InputError(f"--out {out}: give a {', '.join(FIGURE_SUFFIXES)} file name")
    runs = read_runs(folders)
    keys = shared_metrics(runs, metrics)
    panels = {key: {run.label: run.curve(key) for run in runs} for key in keys}
    names = ", ".join(run.label for run in runs)
    figure = plot_curves(panels, out, title=f"{len(runs)} run{'s' * (len(runs) > 1)}: {names}")
    table = markdown_table(runs, keys)
    notes = out.with_suffix(".md")
    notes.write_text(f"# {names}\n\n![curves]({out.name})\n\nFinal numbers (the last value "
                     f"of each metric in metrics.jsonl):\n\n{table}")
    return table, figure, notes


def run(args: argparse.Namespace) -> int:
    metrics = [key.strip() for key in args.metrics.split(",") if key.strip()] \
        if args.metrics else None
    table, figure, notes = compare(args.run_dirs, args.out, metrics)
    print(table, end="")
    print(f"wrote {figure}")
    print(f"wrote {notes}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from genmodels.cli import output_path

    p = sub.add_parser(
        "compare", help="the curves of several runs on one figure, and their final numbers",
        description="One figure with a panel per metric the runs share (train/loss, eval/loss, "
        "lr, ...) and a curve per run, and a Markdown table of each run's last values, printed "
        "and written beside the figure (FILE.md). Reads each run's metrics.jsonl.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories")
    p.add_argument("--out", type=output_path, default="compare.png",
                   help="figure (.png, .pdf or .svg); the table goes beside it as .md")
    p.add_argument("--metrics", metavar="NAME,...",
                   help="only these metrics, e.g. train/loss,eval/loss (default: every metric "
                        "the runs share)")
    p.set_defaults(run=run)
