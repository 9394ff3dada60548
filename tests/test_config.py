import subprocess
import sys
from pathlib import Path

import pytest

from genmodels.config import (
    ConfigError,
    TrainConfig,
    config_from_dict,
    dump_toml,
    load_config,
    parse_override,
)

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.toml"))


def test_every_shipped_config_loads():
    assert CONFIGS, "configs/ is empty"
    for path in CONFIGS:
        config = load_config(path)
        assert config.kind and config.train.epochs >= 1


def test_load_config_alone_knows_every_kind():
    """A fresh interpreter that imports only genmodels.config reads a config (the model kinds
    register when genmodels.models is imported; load_config imports it when it must)."""
    code = ("from genmodels.config import load_config; "
            f"print(load_config({str(CONFIGS[0])!r}).kind)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parents[1])
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == load_config(CONFIGS[0]).kind


def test_unknown_key_lists_the_valid_keys():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"model": {"kind": "classifier"}, "train": {"epoch": 3}})
    message = str(err.value)
    assert "epoch " in message and "[train]" in message
    for key in ("epochs", "max_steps", "batch_size", "lr", "seed", "device", "checkpoint_every"):
        assert key in message


def test_unknown_section_and_kind():
    with pytest.raises(ConfigError, match="valid sections are: model, data, train"):
        config_from_dict({"model": {"kind": "classifier"}, "optim": {}})
    with pytest.raises(ConfigError, match="choose one of: .*classifier"):
        config_from_dict({"model": {"kind": "vea"}})


@pytest.mark.parametrize("override, message", [
    ("train.epochs=2.5", "train.epochs = 2.5 should be int"),
    ("train.lr=fast", "train.lr = 'fast' should be float"),
    ("train.progress=1", "train.progress = 1 should be bool"),
    ("model.hidden=[1, \"a\"]", r"model.hidden\[1\] = 'a' should be int"),
    ("data.subset=true", "data.subset = True should be int"),
])
def test_wrong_types_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"model": {"kind": "classifier"}}, [override])


@pytest.mark.parametrize("override, message", [
    ("train.checkpoint_every=0", r"train.checkpoint_every = 0 should be > 0"),
    ("train.batch_size=-8", r"train.batch_size = -8 should be > 0"),
    ("train.lr=0", r"train.lr = 0.0 should be > 0"),
    ("train.max_steps=-1", r"train.max_steps = -1 should be >= 0"),
    ("train.ema=1", r"train.ema = 1.0 should be in \[0, 1\)"),
    ("data.eval_batch_size=0", r"data.eval_batch_size = 0 should be > 0"),
    ("data.subset=-5", r"data.subset = -5 should be >= 0"),
])
def test_values_out_of_range_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"model": {"kind": "classifier"}}, [override])
    config_from_dict({"model": {"kind": "classifier"}},  # the edge of each range is valid
                     ["train.ema=0", "train.max_steps=0", "data.subset=0", "train.log_every=1"])


def test_overrides_are_parsed_as_toml():
    assert parse_override("model.hidden=[256, 128]") == ("model", "hidden", [256, 128])
    assert parse_override("train.device=cpu") == ("train", "device", "cpu")
    assert parse_override("train.amp=true") == ("train", "amp", True)
    assert parse_override("train.lr=1e-4") == ("train", "lr", 1e-4)
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("epochs=3")
    config = config_from_dict({"model": {"kind": "classifier"}},
                              ["train.lr=1", "model.net=mlp", "data.subset=100"])
    assert config.train.lr == 1.0 and isinstance(config.train.lr, float)
    assert config.model.net == "mlp" and config.data.subset == 100


def test_dump_toml_round_trips(tmp_path):
    for path in CONFIGS:
        config = load_config(path, ["train.seed=7", "data.root=a \"quoted\" path"])
        (tmp_path / "c.toml").write_text(dump_toml(config))
        assert load_config(tmp_path / "c.toml") == config


def test_defaults_cover_the_required_keys():
    required = {"epochs", "max_steps", "batch_size", "lr", "seed", "device", "checkpoint_every"}
    assert required <= set(TrainConfig.__dataclass_fields__)


def test_missing_or_invalid_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("[train\nepochs = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")
