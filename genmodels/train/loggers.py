"""Where a run's numbers and pictures go: ``train.loggers``.

- ``jsonl``: ``RUN/metrics.jsonl``, one JSON line per record. **Always written**, whatever
  ``train.loggers`` says: ``metrics.png``, resume, the mode-collapse monitor and
  ``genmodels compare`` read it. ``train.loggers`` adds the others.
- ``csv``: ``RUN/metrics.csv``, the same records as rows (see :class:`CsvLogger`).
- ``tensorboard``: ``RUN/tensorboard/``, event files of scalars and images (sample grids,
  predictions, the monitor's figures) for ``tensorboard --logdir runs/``. Needs the optional
  extra: ``pip install genmodels[tensorboard]``.

A record is ``{"step", "epoch", "time", **values}`` (values such as ``train/loss``,
``eval/loss``, ``lr``, ``monitor/modes``). On rank 0 only: the other processes of a
data-parallel run log nothing. At a resume every logger drops what was written after the
checkpoint's step (:meth:`Logger.truncate`), so the logs of a resumed run equal those of an
uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from genmodels.checks import ConfigError
from genmodels.utils import atomic_file

BOOKKEEPING = ("step", "epoch", "time")  # the fields of every record besides its values


class Logger(ABC):
    """One destination of a run's records. Subclasses set ``name`` (their ``train.loggers``
    spelling) and are built as ``cls(run_folder)`` on a fresh run (whose folder holds none of
    their files: :func:`~genmodels.train.run_dir.open_run_dir` removed them) or on a resumed
    one, which then calls :meth:`truncate`."""

    name = ""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @classmethod  # noqa: B027 (not abstract: most loggers need nothing)
    def check(cls) -> None:
        """Raise :class:`ConfigError` if this logger cannot run here (a missing package);
        called on every process before any logger is built."""

    @abstractmethod
    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Write one record: ``values`` holds ``epoch``, ``time`` and the numbers."""

    @abstractmethod
    def image(self, tag: str, step: int, image: str | Path | Tensor) -> None:
        """Log a picture: a PNG file, or a (C, H, W) tensor (uint8, or floats in [0, 1])."""

    @abstractmethod
    def truncate(self, step: int) -> None:
        """Drop everything written after ``step`` (at a resume from a checkpoint at ``step``)."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release files (a logger may be written to again afterwards)."""


class JsonlLogger(Logger):
    """``metrics.jsonl``: one line ``{"step", "epoch", "time", **values}`` per record, appended
    as it comes; :func:`genmodels.plots.read_metrics` reads it."""

    name = "jsonl"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.path = self.folder / "metrics.jsonl"
        self.path.touch()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")

    def image(self, tag: str, step: int, image: str | Path | Tensor) -> None:
        pass  # the figures are files of their own, in RUN/figures

    def truncate(self, step: int) -> None:
        """Keep the records up to ``step``; a last line cut short (the process was killed while
        appending it) is dropped too."""
        lines = [line for line in self.path.read_text().splitlines() if line]
        kept = []
        for number, line in enumerate(lines):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines) - 1:
                    break
                raise
            if record["step"] <= step:
                kept.append(line)
        self.path.write_text("".join(line + "\n" for line in kept))

    def close(self) -> None:
        pass  # each record is appended and closed at once


class CsvLogger(Logger):
    """``metrics.csv``: one row per record, the rows of ``metrics.jsonl`` in the same order.
    The columns are ``step``, ``epoch``, ``time``, then every value's key in the order it
    first appeared; a row leaves the keys its record lacks empty (train and eval lines are
    different records). A record with a key the header lacks rewrites the file once with the
    wider header (a handful of times per run: the first train, eval and monitor lines), through
    a temporary file, so the file is always whole. Numbers are written as JSON writes them;
    lines end in ``\\n``."""

    name = "csv"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.path = self.folder / "metrics.csv"
        self.columns = self._read()[0]

    def _read(self) -> tuple[list[str], list[dict[str, str]]]:
        if not self.path.exists():
            return [], []
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return list(reader.fieldnames or []), rows

    def _write(self, columns: list[str], rows: Iterable[dict[str, str]]) -> None:
        with atomic_file(self.path, "w") as f:
            writer = csv.DictWriter(f, columns, restval="", extrasaction="ignore",
                                    lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        self.columns = columns

    def scalars(self, step: int, values: dict[str, float]) -> None:
        row = {key: json.dumps(value) for key, value in {"step": step, **values}.items()}
        new = [key for key in row if key not in self.columns]
        if new:
            self._write([*self.columns, *new], self._read()[1])
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, restval="", lineterminator="\n").writerow(row)

    def image(self, tag: str, step: int, image: str | Path | Tensor) -> None:
        pass

    def truncate(self, step: int) -> None:
        """Keep the rows up to ``step``, and only the columns they fill: the file an
        uninterrupted run had at that step."""
        if not self.path.exists():  # csv added to train.loggers at this resume
            return
        columns, rows = self._read()
        kept = [row for row in rows if int(row["step"]) <= step]
        if not kept:  # nothing was logged before the checkpoint
            self.path.unlink()
            self.columns = []
            return
        self._write([c for c in columns if any(row.get(c) for row in kept)], kept)

    def close(self) -> None:
        pass


def summary_writer() -> type:
    """``torch.utils.tensorboard.SummaryWriter``, or a :class:`ConfigError` that says how to
    install it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("train.loggers has \"tensorboard\", but the tensorboard package is "
                          "not installed: pip install genmodels[tensorboard] (or pip install "
                          "tensorboard), or leave it out of train.loggers") from None
    return SummaryWriter


class TensorBoardLogger(Logger):
    """``RUN/tensorboard/``: every value of a record as a scalar at its step (``epoch`` and
    ``time`` left out), pictures as images. Event files are flushed every two minutes and at
    the end; a resumed run opens a new one with ``purge_step`` just past the checkpoint, so
    TensorBoard hides the points an interrupted run wrote after it (no duplicates)."""

    name = "tensorboard"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.writer_class = summary_writer()
        self.path = self.folder / "tensorboard"
        self._writer = None
        self._purge_step: int | None = None

    @classmethod
    def check(cls) -> None:
        summary_writer()

    @property
    def writer(self) -> Any:
        if self._writer is None:  # opened at the first write, after any truncate
            self._writer = self.writer_class(str(self.path), purge_step=self._purge_step)
            self._purge_step = None
        return self._writer

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            if key not in BOOKKEEPING:
                self.writer.add_scalar(key, value, step)

    def image(self, tag: str, step: int, image: str | Path | Tensor) -> None:
        if isinstance(image, (str, Path)):
            import numpy as np
            from PIL import Image

            with Image.open(image) as picture:
                pixels = np.asarray(picture.convert("RGB"))
            self.writer.add_image(tag, pixels, step, dataformats="HWC")
        else:
            self.writer.add_image(tag, image.detach().cpu(), step, dataformats="CHW")

    def truncate(self, step: int) -> None:
        self.close()
        self._purge_step = step + 1  # events at steps >= this one are hidden

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


LOGGERS: dict[str, type[Logger]] = {
    cls.name: cls for cls in (JsonlLogger, CsvLogger, TensorBoardLogger)}


def figure_tag(path: str | Path) -> str:
    """The image tag of a figure file: ``figures/samples_0000500.png`` -> ``figures/samples``."""
    return "figures/" + re.sub(r"_\d+$", "", Path(path).stem)


class Loggers:
    """The loggers of a run, called as one; :meth:`open` builds them. Empty off rank 0."""

    def __init__(self, loggers: Sequence[Logger] = ()) -> None:
        self.loggers = list(loggers)
        self.records = 0  # records written since this object was built

    @classmethod
    def open(cls, names: Sequence[str], folder: Path, *, active: bool = True) -> Loggers:
        """``jsonl`` and the loggers ``names`` (``train.loggers``) of the run in ``folder``;
        none are built unless ``active`` (rank 0), but all are checked everywhere."""
        unknown = [name for name in names if name not in LOGGERS]
        if unknown:
            raise ConfigError(f"train.loggers: unknown logger(s) {', '.join(map(repr, unknown))}; "
                              f"choose from: {', '.join(LOGGERS)}")
        classes = [LOGGERS[name] for name in dict.fromkeys(["jsonl", *names])]
        for logger in classes:
            logger.check()
        return cls([logger(folder) for logger in classes] if active else [])

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for logger in self.loggers:
            logger.scalars(step, values)
        self.records += 1

    def image(self, tag: str, step: int, image: str | Path | Tensor) -> None:
        for logger in self.loggers:
            logger.image(tag, step, image)

    def figures(self, paths: Iterable[str | Path], step: int) -> None:
        """The figure files written at ``step``, each under its :func:`figure_tag`."""
        for path in paths:
            self.image(figure_tag(path), step, path)

    def truncate(self, step: int) -> None:
        for logger in self.loggers:
            logger.truncate(step)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


__all__ = ["LOGGERS", "CsvLogger", "JsonlLogger", "Logger", "Loggers", "TensorBoardLogger",
           "figure_tag", "summary_writer"]
