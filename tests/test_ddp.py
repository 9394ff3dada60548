"""Data parallelism under torchrun (2 gloo processes): each rank draws its own noise, and a run
killed with SIGKILL resumes bit-identically to an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from conftest import RESUME_THEN_STRAIGHT, ROOT, assert_identical, tiny_config, weights

from genmodels.config import dump_toml
from genmodels.train import load_checkpoint

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]

# Trains each config RUN.toml into RUN/ with hooks that record, on each rank, the generator's
# first input z (GAN) or the first reparameterisation noise ε = (z - μ) / σ of the VAE.
RECORD_NOISE = '''
import sys
import torch
from genmodels.config import load_config
from genmodels.train import Trainer

data_root, *config_paths = sys.argv[1:]
for config_path in config_paths:
    out = config_path.removesuffix(".toml")
    trainer = Trainer(load_config(config_path), out, data_root=data_root)
    model, seen = trainer.model, {}

    def keep(key, value):  # a hook that returns None leaves the forward pass as it is
        seen.setdefault(key, value.detach().clone())

    if trainer.config.kind == "gan":
        model.generator.register_forward_pre_hook(lambda m, args: keep("z", args[0]))
    else:
        model.encoder.register_forward_hook(lambda m, args, h: keep("h", h))
        model.decoder.register_forward_pre_hook(lambda m, args: keep("z", args[0]))
    trainer.fit()
    noise = dict(seen)
    if "h" in noise:
        mu, log_var = noise.pop("h").chunk(2, dim=1)
        noise["z"] = (noise["z"] - mu) / torch.exp(0.5 * log_var)
    torch.save(noise["z"], f"{out}/noise_rank{trainer.rank}.pt")
'''


def torchrun(*args: str, **kwargs) -> subprocess.CompletedProcess:
    run = subprocess.run([*TORCHRUN, *args], env=ENV, capture_output=True, timeout=300, **kwargs)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    return run


def kill_processes_naming(folder: Path) -> None:
    """SIGKILL every process whose command line holds ``folder``, and wait until they are gone
    (zombies count as gone: the OS has closed their files, so their run lock is free)."""
    mine = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(folder) in (proc / "cmdline").read_text():
                os.kill(int(proc.name), signal.SIGKILL)
                mine.append(proc)
        except (OSError, ProcessLookupError):
            pass
    for proc in mine:
        while proc.exists() and "zombie" not in _state(proc):
            time.sleep(0.01)


def _state(proc: Path) -> str:
    try:
        return next(line for line in (proc / "status").read_text().splitlines()
                    if line.startswith("State:")).lower()
    except (OSError, StopIteration):
        return "zombie"


def gan_ring(**train) -> dict:
    return {"model": {"kind": "gan", "net": "mlp", "hidden": [16], "latent_dim": 4},
            "data": {"name": "ring", "toy_size": 4096},
            "train": {"batch_size": 64, "log_every": 10, **train}}


def test_ranks_draw_their_own_noise(tmp_path, data_root):
    script = tmp_path / "record.py"
    script.write_text(RECORD_NOISE)
    vae = {"model": {"kind": "vae", "net": "mlp", "hidden": [32], "latent_dim": 4},
           "data": {"view": "dynamic_binary", "subset": 512}, "train": {"batch_size": 64}}
    runs = {"gan": gan_ring(), "vae": vae}
    for name, sections in runs.items():
        config = tiny_config(**sections)
        config.train.max_steps = 2
        (tmp_path / f"{name}.toml").write_text(dump_toml(config))
    torchrun(str(script), data_root, *(str(tmp_path / f"{name}.toml") for name in runs))
    for name in runs:
        first, second = (torch.load(tmp_path / name / f"noise_rank{r}.pt") for r in (0, 1))
        assert first.shape == second.shape == (32, 4)  # each rank's half of the batch of 64
        # independent N(0, 1) draws: no row of one rank appears in the other's
        assert torch.cdist(first, second).min() > 1e-3, f"{name}: ranks share their noise"


def test_ddp_resume_after_sigkill_is_bit_identical(tmp_path, data_root):
    config = tiny_config(**gan_ring(max_steps=600, checkpoint_every=50, ema=0.9))
    config.train.eval_every = 10**6
    (tmp_path / "run.toml").write_text(dump_toml(config))
    args = ["-m", "genmodels.cli", "train", str(tmp_path / "run.toml"), "--data-root", data_root]

    killed = subprocess.Popen([*TORCHRUN, *args, "--out", str(tmp_path / "killed")], env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    os.killpg(killed.pid, signal.SIGKILL)  # torchrun, and the workers wherever torchrun put
    kill_processes_naming(tmp_path / "killed")  # them (since torch 2.14: sessions of their own)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    state = load_checkpoint(checkpoint)
    assert 0 < state["step"] < 600 and not (tmp_path / "killed" / "final.pt").exists()
    assert len(state["ranks"]) == 2  # every rank's RNG state is saved
    assert not torch.equal(state["ranks"][0]["rng"]["torch"], state["ranks"][1]["rng"]["torch"])

    script = tmp_path / "resume_then_straight.py"
    script.write_text(RESUME_THEN_STRAIGHT)
    torchrun(str(script), str(tmp_path / "killed"), str(tmp_path / "run.toml"),
             str(tmp_path / "straight"), data_root)
    for key in ("model", "ema"):
        assert_identical(weights(Path(tmp_path / "straight" / "final.pt"), key),
                         weights(Path(tmp_path / "killed" / "final.pt"), key))


# Each rank normalises its half of one seeded batch with SyncBatchNorm, backpropagates a fixed
# linear loss, and saves what a single process needs to compare with BatchNorm on the whole.
SYNC_BATCHNORM = '''
import sys
import torch
import torch.distributed as dist
from genmodels.train.distributed import SyncBatchNorm, convert_sync_batchnorm

dist.init_process_group("gloo")
rank, out = dist.get_rank(), sys.argv[1]
x = torch.randn(8, 3, 5, 4, generator=torch.Generator().manual_seed(0)) * 3 + 1
weights = torch.randn(8, 3, 5, 4, generator=torch.Generator().manual_seed(1))
net = convert_sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3, momentum=0.3)))
assert isinstance(net[0], SyncBatchNorm)
half = x.chunk(2)[rank].clone().requires_grad_()
y = net(half)
(y * weights.chunk(2)[rank]).sum().backward()
torch.save({"y": y.detach(), "input_grad": half.grad, "weight_grad": net[0].weight.grad,
            "bias_grad": net[0].bias.grad, "state": net[0].state_dict()}, f"{out}/rank{rank}.pt")
dist.destroy_process_group()
'''


def test_sync_batchnorm_equals_batchnorm_on_the_global_batch(tmp_path):
    """Two processes with half a batch each, through SyncBatchNorm, give BatchNorm2d's output,
    input gradients and running statistics on the whole batch; their parameter gradients sum
    to BatchNorm's (the Trainer then averages them, as the loss is a mean over ranks)."""
    script = tmp_path / "sync_bn.py"
    script.write_text(SYNC_BATCHNORM)
    torchrun(str(script), str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    x = torch.randn(8, 3, 5, 4, generator=torch.Generator().manual_seed(0)) * 3 + 1
    weights = torch.randn(8, 3, 5, 4, generator=torch.Generator().manual_seed(1))
    reference = torch.nn.BatchNorm2d(3, momentum=0.3)
    x.requires_grad_()
    y = reference(x)
    (y * weights).sum().backward()
    close = {"atol": 1e-5, "rtol": 1e-5}
    torch.testing.assert_close(torch.cat([r["y"] for r in ranks]), y.detach(), **close)
    torch.testing.assert_close(torch.cat([r["input_grad"] for r in ranks]), x.grad, **close)
    torch.testing.assert_close(ranks[0]["weight_grad"] + ranks[1]["weight_grad"],
                               reference.weight.grad, **close)
    torch.testing.assert_close(ranks[0]["bias_grad"] + ranks[1]["bias_grad"],
                               reference.bias.grad, **close)
    for r in ranks:
        for key, value in reference.state_dict().items():
            torch.testing.assert_close(r["state"][key], value, **close)


TRAIN_AND_SAVE_STATE = '''
import sys
import torch
from genmodels.config import load_config
from genmodels.train import Trainer

data_root, *config_paths = sys.argv[1:]
for config_path in config_paths:  # one launch for all: each start of torch costs seconds
    out = config_path.removesuffix(".toml")
    trainer = Trainer(load_config(config_path), out, data_root=data_root)
    trainer.fit()
    torch.save(trainer.model.state_dict(), f"{out}/state_rank{trainer.rank}.pt")
'''


def test_trainer_sync_batchnorm_keeps_the_ranks_statistics_equal(tmp_path, data_root):
    """With train.sync_batchnorm the running statistics of BatchNorm come from the global batch
    and stay equal on both ranks; without it each rank keeps those of its own slices."""
    script = tmp_path / "train.py"
    script.write_text(TRAIN_AND_SAVE_STATE)
    paths = [tmp_path / f"sync{sync}.toml" for sync in (False, True)]
    for sync, path in zip((False, True), paths, strict=True):
        path.write_text(dump_toml(tiny_config(model={"batch_norm": True},
                                              train={"max_steps": 3, "sync_batchnorm": sync})))
    torchrun(str(script), data_root, *map(str, paths))
    spread = {}
    for sync in (False, True):
        states = [torch.load(tmp_path / f"sync{sync}" / f"state_rank{r}.pt") for r in (0, 1)]
        stats = [k for k in states[0] if k.endswith(("running_mean", "running_var"))]
        assert stats
        spread[sync] = max(float((states[0][k] - states[1][k]).abs().max()) for k in stats)
    assert spread[False] > 1e-3 and spread[True] < 1e-6, spread
