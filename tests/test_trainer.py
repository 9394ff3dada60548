"""The common loop: resume bit-identically, stop on NaN, Ctrl-C, EMA, phases, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
import torch
from conftest import (
    RESUME_THEN_STRAIGHT,
    ROOT,
    InterruptAt,
    assert_identical,
    first_linear_output_dtypes,
    metric_lines,
    tiny_config,
    weights,
)
from torch import nn

import genmodels
from genmodels.config import ConfigError, dump_toml
from genmodels.models import Model, Phase, register
from genmodels.train import (
    Callback,
    CheckpointError,
    NonFiniteLossError,
    Trainer,
    load_checkpoint,
)
from genmodels.train.distributed import SyncBatchNorm

# Every source of randomness at once: dropout, dynamic binarisation, shuffling, EMA, cosine lr.
RANDOM_RUN = {"model": {"dropout": 0.2}, "data": {"view": "dynamic_binary"},
              "train": {"epochs": 2, "ema": 0.9, "schedule": "cosine"}}


def test_ctrl_c_saves_and_resume_is_bit_identical(tmp_path, data_root):
    config = tiny_config(**RANDOM_RUN)
    full = Trainer(config, tmp_path / "full", data_root=data_root)
    full.fit()
    assert full.step == 2 * (1024 // 32)

    part = Trainer(config, tmp_path / "part", data_root=data_root, callbacks=[InterruptAt(45)])
    part.fit()
    assert part.interrupted and part.step == 45
    assert not (tmp_path / "part" / "final.pt").exists()
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["step"] == 45

    Trainer(config, tmp_path / "part", data_root=data_root, resume=True).fit()
    for key in ("model", "ema"):
        assert_identical(weights(tmp_path / "full" / "final.pt", key),
                         weights(tmp_path / "part" / "final.pt", key))
    assert metric_lines(tmp_path / "full") == metric_lines(tmp_path / "part")


def test_cpu_amp_trains_in_bfloat16_and_resumes_bit_identically(tmp_path, data_root):
    config = tiny_config(train={"amp": True, "epochs": 2})
    full = Trainer(config, tmp_path / "full", data_root=data_root)
    dtypes = first_linear_output_dtypes(full.model)
    full.fit()
    assert dtypes == {torch.bfloat16, torch.float32}  # training under autocast, evaluation not
    amp_weights = weights(tmp_path / "full" / "final.pt")
    assert all(w.dtype == torch.float32 for w in amp_weights.values())  # float32 master weights

    config.train.amp = False
    Trainer(config, tmp_path / "float32", data_root=data_root).fit()
    assert any(not torch.equal(w, amp_weights[k])
               for k, w in weights(tmp_path / "float32" / "final.pt").items())

    config.train.amp = True
    Trainer(config, tmp_path / "part", data_root=data_root, callbacks=[InterruptAt(45)]).fit()
    Trainer(config, tmp_path / "part", data_root=data_root, resume=True).fit()
    assert_identical(amp_weights, weights(tmp_path / "part" / "final.pt"))
    assert metric_lines(tmp_path / "full") == metric_lines(tmp_path / "part")


def test_resume_after_sigkill_is_bit_identical(tmp_path, data_root):
    config = tiny_config(**RANDOM_RUN)
    config.train.epochs, config.train.checkpoint_every = 30, 50
    config.train.eval_every = 10**6  # no evaluation: this test is about the weights
    (tmp_path / "run.toml").write_text(dump_toml(config))
    command = [sys.executable, "-m", "genmodels.cli", "train", str(tmp_path / "run.toml"),
               "--data-root", data_root]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    killed = subprocess.Popen([*command, "--out", str(tmp_path / "killed")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    saved_step = load_checkpoint(checkpoint)["step"]
    assert 0 < saved_step < 30 * 32 and not (tmp_path / "killed" / "final.pt").exists()

    resumed = subprocess.run([sys.executable, "-c", RESUME_THEN_STRAIGHT, str(tmp_path / "killed"),
                              str(tmp_path / "run.toml"), str(tmp_path / "straight"), data_root],
                             env=env, capture_output=True)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    for key in ("model", "ema"):
        assert_identical(weights(tmp_path / "straight" / "final.pt", key),
                         weights(tmp_path / "killed" / "final.pt", key))


def test_matrix_products_do_not_depend_on_the_thread_count():
    """MKL may change the thread count of a product at run time (MKL_DYNAMIC), which changes
    float32 results in the last bits and made the SIGKILL test above fail now and then.
    Importing genmodels puts MKL in strict reproducible mode (MKL_CBWR=AUTO,STRICT)."""
    script = """if True:
        import genmodels, torch
        g = torch.Generator().manual_seed(0)
        for m, k, n in [(32, 784, 32), (64, 4096, 64), (128, 784, 400), (256, 1024, 512)]:
            a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
            torch.set_num_threads(1)
            one = a @ b
            torch.set_num_threads(2)
            assert torch.equal(one, a @ b), f"{m}x{k} @ {k}x{n} differs between 1 and 2 threads"
    """
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"} | {"PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-1000:]


@dataclass
class NanConfig:
    nan_at: int = 5  # the loss turns NaN on this call


@register
class NanModel(Model):
    """Linear regression whose loss turns NaN on a chosen call (a test double)."""

    kind = "test_nan"
    Config = NanConfig

    def __init__(self, config, input_shape=None):
        super().__init__(config, input_shape)
        self.linear = nn.Linear(784, 1)
        self.calls = 0

    def loss(self, batch):
        self.calls += 1
        loss = self.linear(batch[0].flatten(1)).pow(2).mean()
        return {"loss": loss * float("nan") if self.calls == self.config.nan_at else loss}


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, data_root):
    config = tiny_config(model={"kind": "test_nan", "nan_at": 25})
    trainer = Trainer(config, tmp_path, data_root=data_root)
    with pytest.raises(NonFiniteLossError, match="step 25.*checkpoint.pt is kept"):
        trainer.fit()
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 20
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert not (tmp_path / "final.pt").exists()


@dataclass
class TwoPlayerConfig:
    n_critic: int = 4


@register
class TwoPlayer(Model):
    """Two optimisers; the critic updates n_critic times per step on micro-batches."""

    kind = "test_two_player"
    Config = TwoPlayerConfig

    def __init__(self, config, input_shape=None):
        super().__init__(config, input_shape)
        self.critic, self.generator = nn.Linear(784, 1), nn.Linear(784, 1)
        self.critic_batches: list[int] = []

    def parameter_groups(self):
        return {"critic": list(self.critic.parameters()),
                "generator": {"params": list(self.generator.parameters()), "lr": 0.0}}

    def phases(self):
        return [Phase("critic", self.critic_loss, repeats=self.config.n_critic),
                Phase("generator", lambda b: {"loss": self.generator(b[0].flatten(1)).mean()})]

    def critic_loss(self, batch):
        self.critic_batches.append(len(batch[0]))
        return {"loss": self.critic(batch[0].flatten(1)).pow(2).mean(), "size": torch.tensor(1.)}


def test_phases_repeats_and_param_groups(tmp_path, data_root):
    config = tiny_config(model={"kind": "test_two_player", "n_critic": 4},
                         train={"max_steps": 5})
    trainer = Trainer(config, tmp_path, data_root=data_root)
    before = [p.clone() for p in trainer.model.generator.parameters()]
    trainer.fit()
    assert trainer.model.critic_batches == [8] * 20  # 4 micro-batches of 32 / 4, 5 steps
    assert trainer.optimizers["critic"].state_dict()["state"][0]["step"] == 20
    assert trainer.optimizers["generator"].state_dict()["state"][0]["step"] == 5
    for a, b in zip(before, trainer.model.generator.parameters(), strict=True):
        assert torch.equal(a, b)  # its group has lr = 0
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert {"train/critic_loss", "train/generator_loss", "lr_critic"} <= set(record)


def test_run_directory_and_load(tmp_path, data_root):
    config = tiny_config(train={"epochs": 2, "ema": 0.5})
    model = Trainer(config, tmp_path, data_root=data_root).fit()
    for name in ("config.toml", "metrics.jsonl", "metrics.png", "checkpoint.pt", "final.pt"):
        assert (tmp_path / name).is_file(), name
    assert list((tmp_path / "figures").glob("predictions_*.png"))
    evals = [r for r in metric_lines(tmp_path) if "eval/accuracy" in r]
    assert [r["epoch"] for r in evals] == [1.0, 2.0] and evals[-1]["eval/accuracy"] > 0.7

    loaded = genmodels.load(tmp_path)
    assert not loaded.training and loaded.run_config == config
    x = torch.rand(5, 1, 28, 28)
    raw = genmodels.load(tmp_path / "final.pt", ema=False)
    assert torch.equal(raw(x), model.eval()(x))
    assert not torch.equal(loaded(x), raw(x))  # EMA weights differ from the raw ones


def test_ema_is_the_average_of_the_weights(tmp_path, data_root):
    config = tiny_config(train={"max_steps": 3, "ema": 0.5, "optimizer": "sgd", "lr": 0.1})
    history = []

    class Record(Callback):
        def on_step(self, trainer, losses):
            history.append({k: v.clone() for k, v in trainer.model.state_dict().items()})

    trainer = Trainer(config, tmp_path, data_root=data_root, callbacks=[Record()])
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    for name, value in trainer.ema.shadow.items():
        expected = start[name]
        for w in history:
            expected = 0.5 * expected + 0.5 * w[name]
        torch.testing.assert_close(value, expected)


def test_ema_warmup_follows_the_diffusers_decay_schedule(tmp_path, data_root):
    config = tiny_config(train={"max_steps": 3, "ema": 0.15, "ema_warmup": True,
                                "optimizer": "sgd", "lr": 0.1})
    history = []

    class Record(Callback):
        def on_step(self, trainer, losses):
            history.append({k: v.clone() for k, v in trainer.model.state_dict().items()})

    trainer = Trainer(config, tmp_path, data_root=data_root, callbacks=[Record()])
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    decays = [min(0.15, (1 + n) / (10 + n)) for n in range(3)]  # 0.1, 0.15 (capped), 0.15
    assert decays == [0.1, 0.15, 0.15]
    for name, value in trainer.ema.shadow.items():
        if not value.is_floating_point():
            continue
        expected = start[name]
        for decay, w in zip(decays, history, strict=True):
            expected = decay * expected + (1 - decay) * w[name]
        torch.testing.assert_close(value, expected)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, data_root):
    Trainer(tiny_config(train={"max_steps": 10}), tmp_path, data_root=data_root).fit()
    data = (tmp_path / "checkpoint.pt").read_bytes()
    (tmp_path / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        Trainer(tiny_config(), tmp_path, data_root=data_root, resume=True)
    with pytest.raises(CheckpointError, match="does not exist"):
        genmodels.load(tmp_path / "missing")


def test_ddp_two_gloo_processes_match_one(tmp_path, data_root):
    config = tiny_config(train={"max_steps": 12, "batch_size": 64, "checkpoint_every": 6})
    (tmp_path / "run.toml").write_text(dump_toml(config))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = ["-m", "genmodels.cli", "train", str(tmp_path / "run.toml"), "--data-root", data_root]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node=2", *args, "--out", str(tmp_path / "ddp")],
                         env=env, capture_output=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr.decode()[-3000:]
    Trainer(config, tmp_path / "single", data_root=data_root).fit()
    single, both = weights(tmp_path / "single" / "final.pt"), weights(tmp_path / "ddp" / "final.pt")
    for name in single:
        torch.testing.assert_close(both[name], single[name], rtol=1e-4, atol=1e-5)
    lines = metric_lines(tmp_path / "ddp")
    assert [r["step"] for r in lines if "train/loss" in r] == [8, 12]


@dataclass
class NaNGradientConfig:
    nan_at: int = 12  # the update whose gradient is NaN while its loss is finite


@register
class NaNGradient(Model):
    """A linear least-squares model whose ``nan_at``-th update has a finite loss and a NaN
    gradient (d sqrt(u)/du at u = 0 is inf, times 0)."""

    kind = "test_nan_gradient"
    Config = NaNGradientConfig

    def __init__(self, config, input_shape=None):
        super().__init__(config, input_shape)
        self.linear, self.calls = nn.Linear(784, 1), 0

    def loss(self, batch):
        self.calls += 1
        loss = self.linear(batch[0].flatten(1)).pow(2).mean()
        if self.calls == self.config.nan_at:
            loss = loss + torch.sqrt(self.linear.weight.sum() * 0)  # value 0, gradient NaN
        return {"loss": loss}


@pytest.mark.parametrize("optimizer", ["adam", "sgd_g2"])
def test_nan_gradient_stops_before_the_update(tmp_path, data_root, optimizer):
    """With SGD-G2 the NaN is at the trial point of update 6: θ stays, not θ - h g."""
    nan_at = 12  # the 12th loss evaluation: update 12 (adam), update 6's trial (sgd_g2)
    config = tiny_config(model={"kind": "test_nan_gradient", "nan_at": nan_at},
                         train={"optimizer": optimizer, "lr": 1e-3, "checkpoint_every": 5})
    before = {}
    record = type("Record", (Callback,), {"on_step": lambda self, trainer, losses: before.update(
        {k: v.clone() for k, v in trainer.model.state_dict().items()})})()
    trainer = Trainer(config, tmp_path, data_root=data_root, callbacks=[record])
    step = nan_at if optimizer == "adam" else nan_at // 2
    with pytest.raises(NonFiniteLossError, match=f"gradient at step {step} .*before the update"):
        trainer.fit()
    assert trainer.step == step - 1
    assert_identical(trainer.model.state_dict(), before)  # the bad update was not applied
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == (10 if step > 10 else 5)


def test_weights_that_overflow_are_never_written(tmp_path, data_root):
    """lr = 3e38: the first update overflows the weights; no checkpoint holds them."""
    config = tiny_config(train={"optimizer": "adam", "lr": 3e38, "checkpoint_every": 1})
    with pytest.raises(NonFiniteLossError, match="not finite|non-finite"):
        Trainer(config, tmp_path, data_root=data_root).fit()
    assert not (tmp_path / "final.pt").exists()
    if (tmp_path / "checkpoint.pt").exists():
        state = load_checkpoint(tmp_path / "checkpoint.pt")
        assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_load_refuses_non_finite_weights(tmp_path, data_root):
    Trainer(tiny_config(train={"max_steps": 3}), tmp_path, data_root=data_root).fit()
    state = load_checkpoint(tmp_path / "final.pt")
    next(iter(state["model"].values()))[0] = float("nan")
    torch.save(state, tmp_path / "final.pt")
    with pytest.raises(CheckpointError, match="not finite"):
        genmodels.load(tmp_path)


def test_a_run_shorter_than_an_epoch_evaluates_at_its_end(tmp_path, data_root):
    config = tiny_config(train={"max_steps": 5})  # an epoch is 32 steps
    Trainer(config, tmp_path, data_root=data_root).fit()
    evaluations = [r for r in metric_lines(tmp_path) if "eval/accuracy" in r]
    assert [r["step"] for r in evaluations] == [5]


def test_sync_batchnorm_needs_a_batchnorm_layer(tmp_path, data_root):
    with pytest.raises(ConfigError, match="no BatchNorm layer"):
        Trainer(tiny_config(train={"sync_batchnorm": True}), tmp_path / "run", data_root=data_root)
    trainer = Trainer(tiny_config(model={"batch_norm": True}, train={"sync_batchnorm": True}),
                      tmp_path / "bn", data_root=data_root)
    assert any(isinstance(m, SyncBatchNorm) for m in trainer.model.modules())
    trainer.fit()  # one process: SyncBatchNorm is BatchNorm


def test_channels_last_matches_nchw_and_resumes_bit_identically(tmp_path, data_root):
    """train.channels_last: the convolutions see NHWC batches and weights, the weights end
    within float32 rounding of the NCHW run's, and a resume is bit-identical."""
    sections = {"model": {"kind": "classifier", "net": "cnn", "channels": [4, 8], "hidden": [16]},
                "train": {"epochs": 1, "channels_last": True}}
    config = tiny_config(**sections)
    trainer = Trainer(config, tmp_path / "nhwc", data_root=data_root)
    seen = []
    conv = next(m for m in trainer.model.modules() if isinstance(m, nn.Conv2d))
    conv.register_forward_pre_hook(lambda m, args: seen.append(
        args[0].is_contiguous(memory_format=torch.channels_last)) if m.training else None)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    trainer.fit()
    assert seen and all(seen)
    nhwc = weights(tmp_path / "nhwc" / "final.pt")

    config.train.channels_last = False
    Trainer(config, tmp_path / "nchw", data_root=data_root).fit()
    for key, value in weights(tmp_path / "nchw" / "final.pt").items():
        torch.testing.assert_close(nhwc[key], value, atol=1e-4, rtol=1e-3)

    config.train.channels_last = True
    Trainer(config, tmp_path / "part", data_root=data_root, callbacks=[InterruptAt(13)]).fit()
    Trainer(config, tmp_path / "part", data_root=data_root, resume=True).fit()
    assert_identical(nhwc, weights(tmp_path / "part" / "final.pt"))
