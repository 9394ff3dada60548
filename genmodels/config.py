"""TOML run configs mapped onto dataclasses, with ``section.key=value`` overrides.

A config file has three sections::

    [model]            # `kind` picks the model class; the other keys are its Config fields
    kind = "classifier"
    net = "cnn"

    [data]             # DataConfig
    name = "mnist"

    [train]            # TrainConfig
    epochs = 3

Unknown sections or keys and values of the wrong type raise :class:`ConfigError`, whose message
lists the valid keys, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genmodels.checks import ConfigError, check_ranges

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


LOGGER_NAMES = ("jsonl", "csv", "tensorboard")  # the keys of genmodels.train.loggers.LOGGERS


@dataclass
class TrainConfig:
    """How to optimise: budget, optimiser, schedule, checkpoints, logging and hardware."""

    epochs: int = 1
    max_steps: int = 0  # stop after this many optimisation steps; 0 = no limit
    batch_size: int = 128  # global batch: split across processes under torchrun
    lr: float = 1e-3
    optimizer: str = "adam"  # see genmodels.optim.OPTIMIZERS
    momentum: float = 0.0  # SGD only
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # Adam/AdamW only
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | inverse (lr / (1 + n/n0)) | cosine
    schedule_n0: int = 1000  # n0 of the inverse schedule
    grad_clip: float = 0.0  # max global gradient norm; 0 = off
    seed: int = 0
    device: str = "auto"  # auto (CUDA if available) | cpu | cuda | cuda:1 ...
    amp: bool = False  # autocast: float16 + grad scaling on CUDA, bfloat16 on the CPU
    channels_last: bool = False  # image batches and conv weights in NHWC memory order: 14 % faster
    #                              steps for the MNIST CNN and U-Net on the CPU, none for DCGAN
    sync_batchnorm: bool = False  # under torchrun: BatchNorm statistics over the global batch
    #                               (genmodels.train.distributed.SyncBatchNorm), not each slice
    deterministic: bool = True  # CUDA: deterministic cuDNN kernels, so that a resumed run is
    #                             bit-identical; false lets cuDNN pick (and autotune) faster ones
    ema: float = 0.0  # decay of an exponential moving average of the weights; 0 = off
    ema_warmup: bool = False  # decay min(ema, (1 + n) / (10 + n)) at update n (diffusers'
    #                           warm-up): short runs do not keep the initial weights
    checkpoint_every: int = 1000  # steps between checkpoints (one is always written at the end)
    log_every: int = 50  # steps between lines in metrics.jsonl
    eval_every: int = 0  # steps between evaluations; 0 = at the end of each epoch
    figure_every: int = 0  # steps between sample/prediction figures; 0 = at the end only
    monitor_every: int = 0  # steps between mode-collapse measurements (models with sample(n),
    #                         data ring | grid | mnist | stacked_mnist); 0 = off
    monitor_samples: int = 2500  # samples per measurement (2,500: the PacGAN 2-D protocol)
    progress: bool = True  # tqdm progress bar
    loggers: list[str] = field(default_factory=lambda: ["jsonl"])  # jsonl (always written:
    #   metrics.png, resume and the monitor read it) | csv | tensorboard (RUN/tensorboard, needs
    #   pip install genmodels[tensorboard]); see genmodels.train.loggers

    def __post_init__(self) -> None:
        check_ranges(self, "train", positive=("epochs", "batch_size", "lr", "schedule_n0",
                                              "checkpoint_every", "log_every"),
                     non_negative=("max_steps", "weight_decay", "grad_clip", "eval_every",
                                   "figure_every", "monitor_every"),
                     below_one=("momentum", "ema"))
        if len(self.betas) != 2 or not all(0 <= beta < 1 for beta in self.betas):
            raise ConfigError(f"train.betas = {self.betas!r} should be two numbers in [0, 1), "
                              "e.g. [0.9, 0.999]")
        unknown = [name for name in self.loggers if name not in LOGGER_NAMES]
        if unknown:
            raise ConfigError(f"train.loggers = {self.loggers!r}: {', '.join(map(repr, unknown))} "
                              f"is not a logger; choose from: {', '.join(LOGGER_NAMES)} "
                              "(jsonl is always written, the others are added to it)")


@dataclass
class DataConfig:
    """What to train on."""

    name: str = "mnist"  # mnist | fashion | stacked_mnist | ring | grid | folder | array
    #                      (folder, array: your own images at data.path, see docs/data.md)
    root: str = ""  # data folder; empty = --data-root, then $GENMODELS_DATA, then the default
    path: str = ""  # folder (name = folder) or .npy/.npz/.pt file (name = array) of images
    download: bool = False  # fetch missing MNIST/Fashion-MNIST files (needs a network)
    subset: int = 0  # use only the first N training examples; 0 = all
    size: list[int] = field(default_factory=list)  # [H, W] to resize images to; [] = as stored
    channels: int = 0  # 1 (grey) or 3 (RGB) to convert images to; 0 = as stored
    view: str = "unit"  # unit [0,1] | symmetric [-1,1] | dynamic_binary | static_binary
    validation: bool = False  # hold out a seeded split of the training set, evaluate on it
    validation_size: int = 0  # images in that split (also folder/array data without test
    #                           images); 0 = 5,000 (mnist, fashion), 10 % (folder, array)
    eval_batch_size: int = 1000
    toy_size: int = 100_000  # training points drawn from a 2-D mixture (ring, grid)
    stacked_size: int = 60_000  # training images of Stacked MNIST

    def __post_init__(self) -> None:
        check_ranges(self, "data", positive=("eval_batch_size", "toy_size", "stacked_size"),
                     non_negative=("subset", "validation_size"))
        if self.size and (len(self.size) != 2 or not all(s > 0 for s in self.size)):
            raise ConfigError(f"data.size = {self.size!r} should be two positive integers "
                              "[H, W], e.g. [32, 32], or [] to keep the stored size")
        if self.channels not in (0, 1, 3):
            raise ConfigError(f"data.channels = {self.channels!r} should be 1 (grey), 3 (RGB) "
                              "or 0 (as stored)")
        own_images = self.name in ("folder", "array")
        if own_images and not self.path:
            raise ConfigError(f"data.name = {self.name!r} reads your images from data.path; set "
                              "data.path to a folder of PNG/JPEG files (folder) or a "
                              ".npy/.npz/.pt file (array)")
        if self.path and not own_images:
            raise ConfigError(f"data.path = {self.path!r} is only read with data.name = folder "
                              f"or array, not {self.name!r}; set data.name, or drop data.path")
        if self.validation_size and not (self.validation or own_images):
            raise ConfigError(f"data.validation_size = {self.validation_size} is only read with "
                              "data.validation = true (or folder/array data without test "
                              "images); set data.validation=true, or drop it")


MODEL_CONFIGS: dict[str, type] = {}  # model kind -> its Config dataclass (models.register)


@dataclass
class Config:
    """A whole run: the model's own config dataclass, the data and the training loop."""

    kind: str  # the model kind, a key of MODEL_CONFIGS (and of genmodels.models.MODELS)
    model: Any
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        model = {"kind": self.kind, **dataclasses.asdict(self.model)}
        return {"model": model, "data": dataclasses.asdict(self.data),
                "train": dataclasses.asdict(self.train)}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted where floats are."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where} = {value!r} should be {_type_name(tp)}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} = {value!r} should be a list of {_type_name(item)}")
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is Any or (isinstance(tp, type) and isinstance(value, tp)
                     and not (tp is int and isinstance(value, bool))):
        return value
    raise ConfigError(f"{where} = {value!r} should be {_type_name(tp)}, not {type(value).__name__}")


RETIRED_KEYS = {  # key -> why it went and what to do instead
    "model.in_channels": "the image shape comes from the data now (data.channels = 1 or 3 "
                         "converts it); delete the line",
    "model.data_dim": "the dimension of the points comes from the data now; delete the line",
}


def fill_dataclass(cls: type, values: dict[str, Any], section: str) -> Any:
    """Build ``cls(**values)`` after checking every key and value type."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if f"{section}.{key}" in RETIRED_KEYS and key not in names:
            raise ConfigError(f"{section}.{key} is no longer a setting: "
                              f"{RETIRED_KEYS[f'{section}.{key}']}")
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in [{section}]; "
            f"valid keys are: {', '.join(names)}"
        )
    return cls(**{k: _coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()})


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse ``section.key=value``; the value is read as TOML, else taken as a plain string."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"override {text!r} should look like section.key=value, "
                          "e.g. train.epochs=3 or model.hidden=[256,256]")
    name, raw = text.split("=", 1)
    section, key = name.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, key, value


def config_from_dict(raw: dict[str, Any], overrides: list[str] = ()) -> Config:
    """Validate a nested dict (as read from TOML) plus overrides into a :class:`Config`."""
    raw = {section: dict(values) for section, values in raw.items()}
    for text in overrides:
        section, key, value = parse_override(text)
        raw.setdefault(section, {})[key] = value
    unknown = sorted(set(raw) - {"model", "data", "train"})
    if unknown:
        raise ConfigError(f"unknown section(s) {', '.join(unknown)}; "
                          "valid sections are: model, data, train")
    model = dict(raw.get("model", {}))
    kind = model.pop("kind", None)
    if kind not in MODEL_CONFIGS:
        import genmodels.models  # noqa: F401  (registers every kind; config alone imports none)
    if kind not in MODEL_CONFIGS:
        raise ConfigError(f"[model] kind = {kind!r} is not a model kind; "
                          f"choose one of: {', '.join(sorted(MODEL_CONFIGS))}")
    return Config(
        kind=kind,
        model=fill_dataclass(MODEL_CONFIGS[kind], model, "model"),
        data=fill_dataclass(DataConfig, raw.get("data", {}), "data"),
        train=fill_dataclass(TrainConfig, raw.get("train", {}), "train"),
    )


def load_config(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read a TOML config file and apply ``section.key=value`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; see the examples in configs/")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None
    return config_from_dict(raw, overrides)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if value is None:
        raise ConfigError("TOML has no null value; use a sentinel such as 0 or an empty string")
    return repr(value)


def dump_toml(config: Config) -> str:
    """The resolved config as TOML text: every key, defaults included."""
    lines = []
    for section, values in config.to_dict().items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
        lines.append("")
    return "\n".join(lines)
