"""Reading the folders of ``genmodels export`` without model code and without pickle.

An export folder holds ``model.safetensors`` (the weights, with a header giving the format,
the model kind, the input shape, the training step and whether the weights are the EMA ones),
``model.sha256`` (its sha256, ``sha256sum`` format), ``config.toml`` (the run's whole config)
and a ``README.md``. :func:`read_export` checks the sha256 first, then reads the safetensors
file and the TOML config into plain tensors and dicts.

This module is a leaf (torch, safetensors, tomllib and ``genmodels.errors``/``utils`` only), so
that ``genmodels.io`` (which builds the model) and the metrics' classifier features
(``genmodels.metrics.features``, which may not import model code) share one reader.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genmodels.errors import UserError
from genmodels.utils import sha256

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

EXPORT_FORMAT = "genmodels/export/1"  # the "format" of a model.safetensors header
EXPORT_WEIGHTS = "model.safetensors"  # the files of an export folder (genmodels export)
EXPORT_CHECKSUM = "model.sha256"
EXPORT_CONFIG = "config.toml"


class ExportError(UserError, RuntimeError):
    """An export folder that is incomplete, changed after the export or not a genmodels
    export."""


@dataclass(frozen=True)
class Export:
    """What an export folder holds: the model ``kind``, its saved ``config`` (the dict of
    ``config.toml``), the ``input_shape`` of one example, the ``weights`` (CPU tensors), the
    training ``step``, whether the weights are the run's EMA ones (``ema``) and the safetensors
    ``header``."""

    kind: str
    config: dict[str, Any]
    input_shape: tuple[int, ...]
    weights: dict[str, torch.Tensor]
    step: int
    ema: bool
    header: dict[str, str]

    def state(self) -> dict[str, Any]:
        """The export as the dict of a ``final.pt`` holding one set of weights (``"model"``;
        ``"ema"`` None), for readers of checkpoints."""
        return {"format": self.header.get("format"), "kind": self.kind, "config": self.config,
                "input_shape": list(self.input_shape), "step": self.step,
                "model": self.weights, "ema": None}


def export_folder(path: str | Path) -> Path | None:
    """The export folder that ``path`` names (the folder, or its ``model.safetensors``), None
    when it is none (no ``model.safetensors`` there)."""
    path = Path(path)
    if path.name == EXPORT_WEIGHTS and path.is_file():
        return path.parent
    if path.is_dir() and (path / EXPORT_WEIGHTS).is_file():
        return path
    return None


def _fix(folder: Path) -> str:
    return f"export it again with: genmodels export RUN --out {folder}"


def read_checksum(folder: Path, fix: str | None = None) -> str:
    """The hex sha256 that ``folder/model.sha256`` (``sha256sum`` format) gives
    ``model.safetensors``; ``fix``: what to do when there is none (default: export again)."""
    file = folder / EXPORT_CHECKSUM
    fix = fix or _fix(folder)
    if not file.is_file():
        raise ExportError(f"{folder} has a {EXPORT_WEIGHTS} but no {EXPORT_CHECKSUM} to "
                          f"check it against; {fix}")
    for line in file.read_text().splitlines():
        digest, _, name = line.strip().partition(" ")
        if name.strip().lstrip("*") == EXPORT_WEIGHTS and len(digest) == 64:
            return digest.lower()
    raise ExportError(f"{file} gives no sha256 of {EXPORT_WEIGHTS} (a line "
                      f"'<64 hex digits>  {EXPORT_WEIGHTS}'); {fix}")


def verified_digest(folder: Path) -> str:
    """The sha256 of ``folder/model.safetensors``, checked against ``model.sha256``."""
    file = folder / EXPORT_WEIGHTS
    expected = read_checksum(folder)
    digest = sha256(file)
    if digest != expected:
        raise ExportError(f"{file} does not match the sha256 in {folder / EXPORT_CHECKSUM}: "
                          f"it was changed or damaged after the export; {_fix(folder)}")
    return digest


def read_export(folder: str | Path) -> Export:
    """The export in ``folder``: the sha256 of its weights first (:func:`verified_digest`),
    then the safetensors file and the TOML config; no pickle. Raises :class:`ExportError`."""
    from safetensors import SafetensorError, safe_open

    folder = Path(folder)
    verified_digest(folder)
    file = folder / EXPORT_WEIGHTS
    try:
        with safe_open(file, framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            weights = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ExportError(f"{file} is not a safetensors file ({err})") from None
    if header.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{file} is a safetensors file but not a genmodels export (its "
                          f"header's format is {header.get('format')!r}, not "
                          f"{EXPORT_FORMAT!r}); export a run with genmodels export")
    config_file = folder / EXPORT_CONFIG
    try:
        config = tomllib.loads(config_file.read_text())
        input_shape = tuple(int(n) for n in json.loads(header["input_shape"]))
        step = int(header.get("step", 0))
    except FileNotFoundError:
        raise ExportError(f"{folder} has no {EXPORT_CONFIG}; {_fix(folder)}") from None
    except (tomllib.TOMLDecodeError, KeyError, ValueError, TypeError) as err:
        raise ExportError(f"{folder}: unreadable {EXPORT_CONFIG} or header "
                          f"({type(err).__name__}: {err})") from None
    model = config.get("model")
    kind = model.get("kind") if isinstance(model, dict) else None
    if kind != header.get("kind"):
        raise ExportError(f"{config_file} is for a model of kind {kind!r} but {file} holds a "
                          f"{header.get('kind')!r}; {_fix(folder)}")
    return Export(kind=kind, config=config, input_shape=input_shape, weights=weights,
                  step=step, ema=header.get("ema") == "true", header=dict(header))
