"""Start-up: the wall time of ``genmodels --help``, of every ``genmodels COMMAND --help``, and of
``genmodels sample`` of 64 images from each shipped generative model, start-up included.

    python benchmarks/startup.py [--repeats 5] [--results docs/results/startup.json]

Each command runs ``--repeats`` times as a fresh process (``.venv/bin/genmodels``, files warm in
the page cache after the first run); the table gives the best and the median wall time, beside
``python -c "import torch"``, the floor of any command that computes. Targets (issue 27):
``--help`` <= 0.5 s, ``sample`` of 64 images <= 4 s. Numbers go to docs/results/startup.json and
the table to docs/performance.md (between the startup markers).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, write_between_markers

HELP_TARGET_S = 0.5
SAMPLE_TARGET_S = 4.0
SHIPPED = ("beta_vae_mnist", "gan_mnist", "diffusion_mnist", "flow_mnist")


def wall(argv: list[str], repeats: int) -> dict:
    """Best and median wall seconds of ``argv`` run ``repeats`` times (one warm-up run first,
    not counted, so that every timed run finds the files in the page cache)."""
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       cwd=ROOT)
        if i:
            times.append(time.perf_counter() - start)
    return {"best_s": min(times), "median_s": statistics.median(times), "runs": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results", type=Path, default=ROOT / "docs/results/startup.json")
    args = parser.parse_args()
    genmodels = str(Path(sys.executable).with_name("genmodels"))
    from genmodels.cli import parser as cli_parser

    commands = list(cli_parser()._subparsers._group_actions[0].choices)
    rows: dict[str, dict] = {}
    rows['python -c "import torch"'] = wall([sys.executable, "-c", "import torch"], args.repeats)
    for command in ["", *commands]:
        argv = [genmodels, *([command] if command else []), "--help"]
        rows[" ".join(["genmodels", command, "--help"]).replace("  ", " ")] = \
            wall(argv, args.repeats) | {"target_s": HELP_TARGET_S}
        print(f"{command or 'genmodels'} --help: {rows[list(rows)[-1]]['best_s']:.3f} s",
              flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for name in SHIPPED:
            out = Path(folder) / f"{name}.png"
            argv = [genmodels, "sample", f"samples/checkpoints/{name}", "--n", "64", "--out",
                    str(out)]
            rows[f"genmodels sample samples/checkpoints/{name} --n 64"] = \
                wall(argv, args.repeats) | {"target_s": SAMPLE_TARGET_S}
            print(f"sample {name}: {rows[list(rows)[-1]]['best_s']:.2f} s", flush=True)
    result = {"command": "python benchmarks/startup.py " + " ".join(sys.argv[1:]),
              "threads": os.environ.get("OMP_NUM_THREADS", "all cores"),
              "cpu_count": os.cpu_count(), "rows": rows}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"`{result['command'].strip()}` ({os.cpu_count()} cores; best and median of "
             f"{args.repeats} fresh processes after one warm-up):", "",
             "| command | best (s) | median (s) | target (s) | met |", "|---|---|---|---|---|"]
    for name, row in rows.items():
        target = row.get("target_s")
        met = "" if target is None else ("yes" if row["best_s"] <= target else "**no**")
        lines.append(f"| `{name}` | {row['best_s']:.3f} | {row['median_s']:.3f} | "
                     f"{'' if target is None else target} | {met} |")
    if args.results.resolve() == (ROOT / "docs/results/startup.json").resolve():
        write_between_markers(ROOT / "docs" / "performance.md", "\n".join(lines), "startup")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
