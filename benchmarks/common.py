"""Helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``, which puts
this folder on ``sys.path``)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_between_markers(path: Path, text: str, name: str) -> None:
    """Replace what lies between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` in the
    Markdown file ``path`` by ``text``; the markers are appended at the end when missing."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    doc = path.read_text() if path.exists() else ""
    if start not in doc:
        doc = doc.rstrip("\n") + f"\n\n{start}\n{end}\n"
    head, rest = doc.split(start, 1)
    path.write_text(f"{head}{start}\n{text}\n{end}{rest.split(end, 1)[1]}")



def published_outputs(results: Path, own: Path, doc: str, figures: str,
                      runs: Path) -> tuple[Path, Path]:
    """(Markdown file, figure folder) of a benchmark: ``docs/DOC`` and ``samples/FIGURES`` when
    ``results`` is its own published file ``own``; beside a side run otherwise
    (``RESULTS.md``, ``RUNS/figures``), so that a side run never rewrites the published ones."""
    if results.resolve() == own.resolve():
        return ROOT / "docs" / doc, ROOT / "samples" / figures
    return results.with_suffix(".md"), runs / "figures"


def train_from_scratch(config, out: Path, data_root: str | None = None):
    """Train ``config`` through the Trainer into ``out`` (removed first); the trainer and its
    wall and CPU minutes."""
    import shutil
    import time

    from genmodels.train import Trainer

    shutil.rmtree(out, ignore_errors=True)
    wall, cpu = time.perf_counter(), time.process_time()
    trainer = Trainer(config, out, data_root=data_root)
    trainer.fit()
    return trainer, {"wall_minutes": round((time.perf_counter() - wall) / 60, 2),
                     "cpu_minutes": round((time.process_time() - cpu) / 60, 2)}


def sgemm_peak(n: int = 2048, repeats: int = 10) -> float:
    """Measured float32 matrix-multiply throughput of this machine, GFLOP/s."""
    import time

    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9
