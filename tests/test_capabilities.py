"""Capabilities are declared by the classes a model inherits, never guessed from its members."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
import torch
from conftest import ROOT, tiny_config

from genmodels.cli import main
from genmodels.config import config_from_dict
from genmodels.models import (
    MODELS,
    ConditionalSampler,
    IterativeSampler,
    LatentVariableModel,
    LikelihoodModel,
    Model,
    Sampler,
    register,
)
from genmodels.train import save_checkpoint


def test_every_model_kind_declares_what_it_can_do():
    declared = {kind: (issubclass(cls, Sampler), issubclass(cls, LatentVariableModel),
                       issubclass(cls, LikelihoodModel)) for kind, cls in MODELS.items()
                if not kind.startswith("test_")}
    assert declared.pop("classifier") == (False, False, False)
    assert declared.pop("gan") == (True, False, False)
    for kind in ("diffusion", "flow_matching"):  # samplers in steps, no encoder
        assert declared.pop(kind) == (True, False, False)
        assert issubclass(MODELS[kind], IterativeSampler)
    assert set(declared.values()) == {(True, True, True)}  # the VAE family
    assert not any(issubclass(MODELS[kind], IterativeSampler) for kind in declared)


@dataclass
class LooksLikeASamplerConfig:
    width: int = 2


@register
class LooksLikeASampler(Model):
    """Has a ``sample`` method but does not declare :class:`Sampler`."""

    kind = "test_looks_like_a_sampler"
    Config = LooksLikeASamplerConfig

    def __init__(self, config, input_shape=None):
        super().__init__(config, input_shape)
        self.linear = torch.nn.Linear(config.width, config.width)

    def sample(self, n, generator=None):
        return torch.rand(n, 1, 28, 28, generator=generator)


def test_a_model_that_does_not_declare_sampling_cannot_sample(tmp_path, capsys):
    config = config_from_dict({"model": {"kind": "test_looks_like_a_sampler"}})
    model = LooksLikeASampler(config.model)
    save_checkpoint({"format": "genmodels/model/1", "kind": config.kind,
                     "config": config.to_dict(), "model": model.state_dict(), "ema": None},
                    tmp_path / "final.pt")
    assert main(["sample", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "cannot sample" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@dataclass
class LooksConditionalConfig:
    width: int = 2


@register
class LooksConditional(Model, Sampler):
    """A sampler with ``num_classes`` and a ``labels`` argument that does not declare
    :class:`ConditionalSampler`."""

    kind = "test_looks_conditional"
    Config = LooksConditionalConfig
    num_classes = 10

    def __init__(self, config, input_shape=None):
        super().__init__(config, input_shape)
        self.linear = torch.nn.Linear(config.width, config.width)

    def sample(self, n, generator=None, labels=None):
        return torch.rand(n, 1, 28, 28, generator=generator)


def test_conditional_sampling_is_declared(tmp_path, capsys):
    """``model.conditional = true`` builds models that declare ConditionalSampler (and stay
    Samplers); plain ones and look-alikes do not, and ``sample --label`` refuses them."""
    for model in ({"kind": "vae"}, {"kind": "gan"}):
        config = config_from_dict({"model": model})
        assert not isinstance(MODELS[config.kind](config.model), ConditionalSampler)
        config = config_from_dict({"model": {**model, "conditional": True}})
        built = MODELS[config.kind](config.model)
        assert isinstance(built, ConditionalSampler) and isinstance(built, Sampler)
    config = config_from_dict({"model": {"kind": "test_looks_conditional"}})
    save_checkpoint({"format": "genmodels/model/1", "kind": config.kind,
                     "config": config.to_dict(),
                     "model": LooksConditional(config.model).state_dict(), "ema": None},
                    tmp_path / "final.pt")
    assert main(["sample", str(tmp_path), "--label", "1", "--out", str(tmp_path / "x.png")]) == 2
    assert "unconditional" in capsys.readouterr().err
    assert main(["sample", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 0


def test_no_capability_is_guessed_with_hasattr():
    guess = re.compile(r"hasattr\([^,]+, *['\"](sample|encode|decode|prior|log_likelihood|"
                       r"eval_samples|num_classes)['\"]")
    offenders = [f"{path.relative_to(ROOT)}:{number}"
                 for path in sorted((ROOT / "genmodels").rglob("*.py"))
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if guess.search(line)]
    assert offenders == []


def test_trainer_callbacks_are_declared_not_guessed(tmp_path):
    """A callback subclasses Callback (whose hooks do nothing by default); an object that only
    looks like one is refused before the run starts."""
    from genmodels.train import Callback, Trainer

    class LooksLikeACallback:
        def on_step(self, trainer, losses):
            pass

    config = tiny_config(model={"kind": "classifier", "net": "mlp", "hidden": [8]},
                         train={"max_steps": 2})
    with pytest.raises(TypeError, match="subclass genmodels.train.Callback"):
        Trainer(config, tmp_path / "a", callbacks=[LooksLikeACallback()])
    steps = []

    class CountSteps(Callback):
        def on_step(self, trainer, losses):
            steps.append(trainer.step)

    Trainer(config, tmp_path / "b", callbacks=[CountSteps()]).fit()
    assert steps == [1, 2]
