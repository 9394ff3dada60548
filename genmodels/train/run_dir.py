"""Run directories: one process trains in one at a time, a finished run is never overwritten by
mistake, and a resumed run changes only what cannot change its course.

- :class:`RunLock`: an ``flock`` on ``RUN/.run.lock`` (which holds the PID) for the life of a run.
  The OS frees it when the process dies, so a lock file left by a killed run is taken over.
- :func:`open_run_dir`: a fresh run refuses a folder that holds a run unless ``overwrite``
  (which deletes the run's files, figures included, and nothing else); orphaned temporary
  files of killed checkpoint writes are removed.
- :func:`resume_changes`: the config of a resumed run may differ from its checkpoint's only in
  :data:`SAFE_ON_RESUME` keys; the changes are recorded with the step from which they apply.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from genmodels.config import ConfigError, config_from_dict, load_config

RUN_FILES = ("config.toml", "metrics.jsonl", "metrics.csv", "metrics.png", "checkpoint.pt",
             "final.pt")
RUN_FOLDERS = ("figures", "tensorboard")
LOCK_NAME = ".run.lock"
TEMPORARY = (".checkpoint.pt.*.tmp", ".final.pt.*.tmp",  # genmodels.utils.atomic_file's
             ".metrics.csv.*.tmp")  # temporary names (checkpoints, CsvLogger)

# Keys a resumed run may change: they change what is logged, saved or shown, or where data is
# read from, never the weights. The budget keys are safe unless the schedule depends on it.
SAFE_ON_RESUME = ("train.max_steps", "train.epochs", "train.checkpoint_every",
                  "train.log_every", "train.eval_every", "train.figure_every",
                  "train.progress", "train.loggers", "data.root")
BUDGET = ("train.max_steps", "train.epochs")


class RunDirectoryError(ConfigError):
    """A run directory that is in use, holds another run, or cannot be resumed as asked."""


class RunLock:
    """Exclusive lock on ``folder`` for this process, released by :meth:`release` (or when the
    process ends, whatever the cause)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        while True:
            file = open(self.path, "a+")  # noqa: SIM115 (held for the life of the run)
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.seek(0)
                holder = file.read().strip() or "unknown"
                file.close()
                raise RunDirectoryError(
                    f"{folder} is in use by another run (process {holder}); wait for it to "
                    "end, or give another --out") from None
            try:  # the holder may have unlinked the file between our open and flock
                same = os.path.samestat(os.fstat(file.fileno()), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            file.close()
        file.seek(0)
        previous = file.read().strip()
        if previous and previous != str(os.getpid()):
            print(f"{folder}: taking over the lock of process {previous}, which no longer "
                  "runs", file=sys.stderr)
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        if self._file.closed:
            return
        self.path.unlink(missing_ok=True)
        self._file.close()  # closing the descriptor releases the flock


def require_run(folder: Path) -> None:
    """Raise :class:`RunDirectoryError` unless ``folder`` holds a run (its ``config.toml``)."""
    if not (folder / "config.toml").is_file():
        raise RunDirectoryError(f"{folder} holds no run to resume (no config.toml); start one "
                                f"with: genmodels train CONFIG.toml --out {folder}")


def open_run_dir(folder: Path, *, resume: bool, overwrite: bool) -> RunLock:
    """Lock ``folder`` and make it ready: a fresh run needs a folder without a run (or
    ``overwrite``, which deletes the old run's files); a resumed one needs its checkpoint."""
    if resume and overwrite:
        raise RunDirectoryError("--resume continues the run in a folder and --overwrite "
                                "replaces it: give one of them")
    if resume:
        require_run(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = RunLock(folder)
    try:
        for pattern in TEMPORARY:  # left by writes killed mid-way; nobody else writes here now
            for orphan in folder.glob(pattern):
                orphan.unlink(missing_ok=True)
        existing = [name for name in (*RUN_FILES, *RUN_FOLDERS) if (folder / name).exists()]
        if resume and not (folder / "checkpoint.pt").is_file():
            raise RunDirectoryError(
                f"{folder} has no checkpoint yet: the run stopped before its first one "
                "(train.checkpoint_every steps, or at Ctrl-C). Start it again with --overwrite")
        if not resume and existing and not overwrite:
            raise RunDirectoryError(
                f"{folder} holds a run ({', '.join(existing)}); continue it with --resume "
                f"{folder}, replace it with --overwrite, or give another --out")
        if not resume:
            for name in existing:
                path = folder / name
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    except BaseException:
        lock.release()
        raise
    return lock


def flatten(config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{"train": {"lr": 1e-3}}`` -> ``{"train.lr": 1e-3}``, every key with its value (the
    defaults filled in by :func:`~genmodels.config.config_from_dict`)."""
    return {f"{section}.{key}": value for section, values in
            config_from_dict(config).to_dict().items() for key, value in values.items()}


def differences(a: dict[str, dict[str, Any]],
                b: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    """``{"section.key": [value in a, value in b]}`` for every key where two configs differ."""
    a, b = flatten(a), flatten(b)
    return {key: [a.get(key), b.get(key)] for key in sorted(set(a) | set(b))
            if a.get(key) != b.get(key)}


def resume_changes(saved: dict[str, dict[str, Any]], wanted: dict[str, dict[str, Any]], *,
                   step: int, steps_per_epoch: int) -> dict[str, list[Any]]:
    """``{"section.key": [saved value, wanted value]}`` for a resumed run whose checkpoint
    holds the config ``saved``; raises :class:`RunDirectoryError` for a change that would
    change the run from ``step`` on, or a budget below it."""
    changes, new = differences(saved, wanted), flatten(wanted)
    unsafe = [key for key in changes if key not in SAFE_ON_RESUME]
    if new["train.schedule"] not in ("constant", "inverse"):
        unsafe += [key for key in changes if key in BUDGET]  # the schedule spans the budget
    if unsafe:
        listed = ", ".join(f"{key} ({changes[key][0]!r} -> {changes[key][1]!r})"
                           for key in unsafe)
        raise RunDirectoryError(
            f"a resumed run cannot change {listed}: it would not be the run its first {step} "
            "steps belong to. Start a new run to try it (another --out, or --overwrite). "
            f"Resume can change: {', '.join(SAFE_ON_RESUME)}"
            + (" (the budget only with a constant or inverse schedule)" if any(
                key in BUDGET for key in unsafe) else ""))
    total = new["train.max_steps"] or new["train.epochs"] * steps_per_epoch
    if changes and total < step:
        raise RunDirectoryError(f"the run is at step {step} already; a budget of {total} steps "
                                "would end it before that")
    return changes


def check_config_file(folder: Path, saved: dict[str, dict[str, Any]]) -> None:
    """The run's ``config.toml`` must be the config its checkpoint was trained with: an edited
    file would be a silent change (give changes as overrides to --resume, which checks them)."""
    edited = differences(saved, load_config(folder / "config.toml").to_dict())
    if edited:
        listed = ", ".join(f"{key} ({before!r} in the checkpoint, {after!r} in the file)"
                           for key, (before, after) in edited.items())
        raise RunDirectoryError(
            f"{folder / 'config.toml'} differs from the config of {folder / 'checkpoint.pt'}: "
            f"{listed}. Undo the edit; to change a key that resume allows, give it as an "
            "override: genmodels train --resume RUN key=value")


def config_comments(amendments: list[dict[str, Any]]) -> str:
    """TOML comment lines recording the changes made at resumes (see :func:`resume_changes`)."""
    lines = []
    for amendment in amendments:
        for key, (before, after) in amendment["changes"].items():
            lines.append(f"# {key} = {after!r} from step {amendment['step']} (was {before!r})\n")
    return "".join(lines)
