"""``genmodels export RUN_OR_CHECKPOINT --out DIR``: a trained model as a portable folder that
:func:`genmodels.load` reads without unpickling anything.

The folder holds

- ``config.toml``: the run's whole config, every key (with the changes made at resumes as
  comments): :func:`genmodels.config.load_config` reads it, ``genmodels train DIR/config.toml``
  trains the model again;
- ``model.safetensors``: the weights it samples with (the EMA ones when the run kept an EMA,
  else the model's), contiguous, with a header giving the format, the model kind, the input
  shape (JSON), the training step and whether the weights are the EMA ones;
- ``model.sha256``: its sha256 in ``sha256sum`` format (``sha256sum -c model.sha256`` in the
  folder), checked by ``genmodels.load`` before it reads the weights;
- ``README.md``: what the model is, how it was trained and its headline numbers.

Each file is written to a temporary name in the folder and renamed over the target.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch

from genmodels.config import Config, dump_toml
from genmodels.errors import InputError
from genmodels.io import build_model, read_saved_model
from genmodels.portable import EXPORT_CHECKSUM, EXPORT_CONFIG, EXPORT_FORMAT, EXPORT_WEIGHTS
from genmodels.train.run_dir import config_comments
from genmodels.utils import atomic_file, checkpoint_input_shape

EXPORT_README = "README.md"
EXPORT_FILES = (EXPORT_CONFIG, EXPORT_WEIGHTS, EXPORT_CHECKSUM, EXPORT_README)
RUN_MARKERS = ("final.pt", "checkpoint.pt", "metrics.jsonl")  # a run lives in the folder


def export_model(source: str | Path, out: str | Path, numbers: dict[str, Any] | None = None,
                 *, force: bool = False, ema: bool = True) -> Path:
    """Write the model of ``source`` (a run directory, a ``final.pt`` or a ``checkpoint.pt``)
    to the folder ``out`` (created) as ``config.toml``, ``model.safetensors``, ``model.sha256``
    and ``README.md``; returns ``out``.

    ``numbers``: headline numbers for the README's table (``{"test accuracy": 0.9963}``);
    None takes the last evaluation in the run's ``metrics.jsonl`` (up to the checkpoint's
    step) and the numbers of a weight card (``*.json``) beside the checkpoint, if any.
    ``out`` may be new, empty or an earlier export (whose files are replaced); any other
    non-empty folder is refused unless ``force`` (its other files are kept), and a folder
    that holds a run always is. ``ema=False`` exports the trained weights of a run that also
    kept an EMA (e.g. a short run whose average still holds much of the initial weights).
    """
    source, out = Path(source), Path(out)
    checkpoint = checkpoint_of(source)
    check_out(out, force)
    state = read_saved_model(checkpoint)
    use_ema = ema and state.get("ema") is not None
    model = build_model(state["kind"], state["config"], checkpoint_input_shape(state),
                        state["ema"] if use_ema else state["model"], checkpoint)
    from safetensors.torch import save

    from genmodels import __version__

    header = {"format": EXPORT_FORMAT, "kind": state["kind"],
              "input_shape": json.dumps(list(model.input_shape)),
              "step": str(int(state.get("step", 0))), "ema": "true" if use_ema else "false",
              "genmodels": __version__}
    if not use_ema and state.get("ema") is not None:
        header["ema_left_out"] = "true"  # the run kept an EMA; the trained weights were chosen
    blob = save(portable_tensors(model.state_dict()), metadata=header)
    if numbers is None:
        numbers = recorded_numbers(checkpoint, int(state.get("step", 0)))
    config_text = config_comments(state.get("amendments") or []) + dump_toml(model.run_config)
    readme = export_readme(model, model.run_config, out=out, source=source, header=header,
                           size=len(blob), numbers=numbers)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / EXPORT_WEIGHTS, blob)
    write_atomic(out / EXPORT_CHECKSUM,
                 f"{hashlib.sha256(blob).hexdigest()}  {EXPORT_WEIGHTS}\n".encode())
    write_atomic(out / EXPORT_CONFIG, config_text.encode())
    write_atomic(out / EXPORT_README, readme.encode())
    return out


def checkpoint_of(source: Path) -> Path:
    """The checkpoint file that ``source`` names: itself, or a run directory's ``final.pt``."""
    if not source.exists():
        raise InputError(f"{source} does not exist; give a run directory, a final.pt or a "
                         "checkpoint.pt of genmodels train")
    if not source.is_dir():
        return source
    if (source / "final.pt").is_file():
        return source / "final.pt"
    if (source / EXPORT_WEIGHTS).is_file():
        raise InputError(f"{source} is an export already (it holds {EXPORT_WEIGHTS}); copy the "
                         "folder, or export the run it came from")
    if (source / "checkpoint.pt").is_file():
        raise InputError(f"{source} has no final.pt: the run has not finished; export its last "
                         f"checkpoint with: genmodels export {source / 'checkpoint.pt'} --out DIR")
    raise InputError(f"{source} holds no run (no final.pt); give a run directory, a final.pt "
                     "or a checkpoint.pt of genmodels train")


def is_export(folder: Path) -> bool:
    """Whether ``folder`` holds an export (its weights and their checksum)."""
    return (folder / EXPORT_WEIGHTS).is_file() and (folder / EXPORT_CHECKSUM).is_file()


def check_out(out: Path, force: bool) -> None:
    """Raise :class:`InputError` unless ``out`` can take an export (see :func:`export_model`)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder to export to")
    if not out.is_dir():
        return
    run = [name for name in RUN_MARKERS if (out / name).exists()]
    if run:
        raise InputError(f"--out {out} holds a run ({', '.join(run)}); an export there would "
                         f"replace its {EXPORT_CONFIG}: give another folder")
    others = sorted(path.name for path in out.iterdir())
    if others and not force and not is_export(out):
        listed = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise InputError(f"--out {out} is not empty and holds no earlier export ({listed}); give "
                         "a new or empty folder, or --force to write the export beside them")


def portable_tensors(weights: dict[str, Any]) -> dict[str, torch.Tensor]:
    """``weights`` as safetensors stores them: CPU tensors, contiguous, each with storage of
    its own (safetensors refuses tensors that share memory, e.g. tied weights)."""
    bad = [name for name, value in weights.items() if not torch.is_tensor(value)]
    if bad:
        raise InputError(f"the model's state dict holds {', '.join(bad[:3])}, which "
                         f"{'is' if len(bad) == 1 else 'are'} not a tensor; safetensors holds "
                         "tensors only")
    return {name: value.detach().to("cpu").clone(memory_format=torch.contiguous_format)
            for name, value in weights.items()}


def recorded_numbers(checkpoint: Path, step: int) -> dict[str, Any]:
    """The last evaluation (``eval/*``) in ``metrics.jsonl`` beside ``checkpoint`` up to
    ``step``, and the numbers of a weight card (``NAME.json`` beside ``NAME.pt``)."""
    numbers: dict[str, Any] = {}
    log = checkpoint.parent / "metrics.jsonl"
    if log.is_file():
        for line in log.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            evaluated = {key: value for key, value in record.items() if key.startswith("eval/")}
            if evaluated and isinstance(record.get("step"), int) and record["step"] <= step:
                numbers = {"step": record["step"], **evaluated}
    card = checkpoint.with_suffix(".json")
    if card.is_file():
        try:
            values = json.loads(card.read_text())
        except json.JSONDecodeError:
            values = {}
        numbers |= {key: value for key, value in values.items() if key != "bytes" and
                    isinstance(value, (int, float)) and not isinstance(value, bool)}
    return numbers


def _number(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return str(value)


def export_readme(model: torch.nn.Module, config: Config, *, out: Path, source: Path,
                  header: dict[str, str], size: int, numbers: dict[str, Any]) -> str:
    """The README.md of an export: what it is, how it was trained, its numbers."""
    t, d, shape = config.train, config.data, model.input_shape
    what = ("×".join(str(n) for n in shape) + " images" if len(shape) == 3
            else f"{shape[0]}-D points")
    params = sum(p.numel() for p in model.parameters())
    net = getattr(config.model, "net", None)
    ema = header["ema"] == "true"
    if ema:
        weights = f"the EMA of the weights (decay {t.ema})"
    elif header.get("ema_left_out") == "true":
        weights = (f"the trained weights; the run's EMA (decay {t.ema}) was left out at export "
                   "(genmodels export --raw-weights)")
    elif t.ema:
        weights = (f"the checkpoint's one set of weights (the run kept an EMA, decay {t.ema}; "
                   "a sampling checkpoint holds the EMA weights there)")
    else:
        weights = "the trained weights (no EMA)"
    data = [d.name]
    data += [f"subset {d.subset}"] if d.subset else []
    data += [f"size {d.size[0]}×{d.size[1]}"] if d.size else []
    data += [f"{d.channels} channels"] if d.channels else []
    data += [f"view {d.view}"]
    data += [f"path {d.path}"] if d.path else []
    optimizer = f"{t.optimizer}, lr {t.lr}, batch {t.batch_size}, schedule {t.schedule}"
    optimizer += f", betas {t.betas}" if t.optimizer.startswith("adam") else ""
    optimizer += f", momentum {t.momentum}" if t.momentum else ""
    optimizer += f", weight decay {t.weight_decay}" if t.weight_decay else ""
    optimizer += f", grad clip {t.grad_clip}" if t.grad_clip else ""
    budget = f"{t.epochs} epoch{'s' if t.epochs != 1 else ''}"
    budget += f" (max_steps {t.max_steps})" if t.max_steps else ""
    lines = [
        f"# {out.name}: a genmodels {config.kind} model", "",
        f"A `{config.kind}` model{f' ({net} net)' if net else ''} of {what}: "
        f"{params:,} parameters, {size / 1e6:.2f} MB of weights. Exported by `genmodels "
        f"export` (genmodels {header['genmodels']}) from `{source}`.", "",
        "## Load it", "",
        "```python", "import genmodels",
        f'model = genmodels.load("{out}")  # eval mode; its config is model.run_config',
        "```", "",
        f"`{EXPORT_WEIGHTS}` holds {weights}; no pickle is read. `genmodels.load` checks its "
        f"sha256 against `{EXPORT_CHECKSUM}` first (`sha256sum -c {EXPORT_CHECKSUM}` in this "
        "folder does the same).", "",
        "## Training", "",
        "| | |", "|---|---|",
        f"| kind | {config.kind}{f', net {net}' if net else ''} |",
        f"| input | {what} ({', '.join(str(n) for n in shape)}) |",
        f"| data | {', '.join(data)} |",
        f"| optimizer | {optimizer} |",
        f"| budget | {budget} |",
        f"| steps | {header['step']} |",
        f"| seed | {t.seed} |",
        f"| amp | {'on' if t.amp else 'off'} |", "",
        f"`{EXPORT_CONFIG}` is the run's whole config: train it again with "
        f"`genmodels train {out / EXPORT_CONFIG} --out runs/{out.name}`.",
    ]
    if numbers:
        lines += ["", "## Numbers", "", "| number | value |", "|---|---|"]
        lines += [f"| {name} | {_number(value)} |" for name, value in numbers.items()]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`genmodels.utils.atomic_file`)."""
    with atomic_file(path) as f:
        f.write(data)
