"""Run directories: nothing lost, nothing mixed (refusing a finished run, the lock, resume with
overrides, orphaned temporary files, a second Ctrl-C during a checkpoint write)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch
from conftest import InterruptAt, assert_identical, metric_lines, tiny_config, weights

from genmodels.cli import main
from genmodels.config import load_config
from genmodels.train import Callback, Trainer, load_checkpoint
from genmodels.train import trainer as trainer_module
from genmodels.train.run_dir import LOCK_NAME, RunDirectoryError, RunLock


def finished_run(folder, data_root, **train):
    config = tiny_config(train={"max_steps": 20, "figure_every": 10, **train})
    Trainer(config, folder, data_root=data_root).fit()
    return config


def test_a_finished_run_is_never_replaced_by_mistake(tmp_path, data_root, capsys):
    config = finished_run(tmp_path, data_root)
    lines = (tmp_path / "metrics.jsonl").read_text()
    final = (tmp_path / "final.pt").read_bytes()
    with pytest.raises(RunDirectoryError, match="holds a run .*--resume .*--overwrite"):
        Trainer(config, tmp_path, data_root=data_root)
    (tmp_path / "run.toml").write_text((tmp_path / "config.toml").read_text())
    assert main(["train", str(tmp_path / "run.toml"), "--out", str(tmp_path),
                 "--data-root", data_root]) == 2
    assert "holds a run" in capsys.readouterr().err
    assert (tmp_path / "metrics.jsonl").read_text() == lines
    assert (tmp_path / "final.pt").read_bytes() == final

    (tmp_path / "figures" / "old_figure.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("the user's own file")
    config.train.max_steps, config.train.figure_every = 5, 0
    Trainer(config, tmp_path, data_root=data_root, overwrite=True).fit()
    assert [r["step"] for r in metric_lines(tmp_path) if "eval/loss" in r] == [5]
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["predictions_0000005.png"]
    assert (tmp_path / "notes.txt").exists()  # --overwrite deletes the run's files only
    with pytest.raises(RunDirectoryError, match="give one"):
        Trainer(config, tmp_path, data_root=data_root, resume=True, overwrite=True)


def test_one_process_per_run_directory(tmp_path, data_root, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from genmodels.train.run_dir import RunLock; lock = RunLock(Path(sys.argv[1])); "
         "print('locked', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirectoryError, match=f"in use by another run .*{holder.pid}"):
            Trainer(tiny_config(), tmp_path, data_root=data_root)
    finally:
        holder.kill()
        holder.wait()
    # the dead holder's lock file is taken over, with a message
    assert (tmp_path / LOCK_NAME).read_text().strip() == str(holder.pid)
    Trainer(tiny_config(train={"max_steps": 2}), tmp_path, data_root=data_root).fit()
    assert f"taking over the lock of process {holder.pid}" in capsys.readouterr().err
    assert not (tmp_path / LOCK_NAME).exists()  # released at the end of the run


def test_the_lock_is_held_for_the_life_of_the_run(tmp_path, data_root):
    class TryToLock(Callback):
        def on_step(self, trainer, losses):
            if trainer.step == 3:
                with pytest.raises(RunDirectoryError, match=str(os.getpid())):
                    RunLock(tmp_path)

    Trainer(tiny_config(train={"max_steps": 5}), tmp_path, data_root=data_root,
            callbacks=[TryToLock()]).fit()
    RunLock(tmp_path).release()  # free again after fit


def test_resume_refuses_changes_that_would_change_the_run(tmp_path, data_root, capsys):
    config = tiny_config(train={"max_steps": 40})
    Trainer(config, tmp_path, data_root=data_root, callbacks=[InterruptAt(15)]).fit()
    saved = load_checkpoint(tmp_path / "checkpoint.pt")
    for override in ("train.lr=0.5", "train.batch_size=64", "train.seed=3", "data.view=symmetric",
                     "train.ema=0.5", "train.schedule=cosine", "model.hidden=[16]",
                     "train.max_steps=10"):
        code = main(["train", "--resume", str(tmp_path), override, "--data-root", data_root])
        assert code == 2, override
        err = capsys.readouterr().err
        assert ("cannot change" in err or "at step 15 already" in err), (override, err)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == saved["step"]

    # an edited config.toml is a silent change: refused
    toml = (tmp_path / "config.toml").read_text()
    (tmp_path / "config.toml").write_text(toml.replace("lr = 0.001", "lr = 0.5"))
    with pytest.raises(RunDirectoryError, match="config.toml differs .*train.lr"):
        Trainer(load_config(tmp_path / "config.toml"), tmp_path, data_root=data_root,
                resume=True)
    (tmp_path / "config.toml").write_text(toml)


def test_resume_may_raise_the_budget_and_records_it(tmp_path, data_root):
    config = tiny_config(train={"max_steps": 20})
    Trainer(config, tmp_path / "part", data_root=data_root, callbacks=[InterruptAt(15)]).fit()
    assert main(["train", "--resume", str(tmp_path / "part"), "train.max_steps=30",
                 "train.progress=false", "--data-root", data_root]) == 0
    final = load_checkpoint(tmp_path / "part" / "final.pt")
    assert final["step"] == 30
    assert final["amendments"] == [{"step": 15, "changes": {"train.max_steps": [20, 30]}}]
    toml = (tmp_path / "part" / "config.toml").read_text()
    assert toml.startswith("# train.max_steps = 30 from step 15 (was 20)\n")
    assert load_config(tmp_path / "part" / "config.toml").train.max_steps == 30

    config.train.max_steps = 30  # the same weights as a run planned for 30 steps
    Trainer(config, tmp_path / "straight", data_root=data_root).fit()
    assert_identical(weights(tmp_path / "straight" / "final.pt"),
                     weights(tmp_path / "part" / "final.pt"))

    cosine = tiny_config(train={"max_steps": 20, "schedule": "cosine"})
    Trainer(cosine, tmp_path / "cosine", data_root=data_root, callbacks=[InterruptAt(5)]).fit()
    cosine.train.max_steps = 30
    with pytest.raises(RunDirectoryError, match="cannot change train.max_steps"):
        Trainer(cosine, tmp_path / "cosine", data_root=data_root, resume=True)


def test_resume_before_the_first_checkpoint_says_so(tmp_path, data_root):
    config = tiny_config(train={"checkpoint_every": 1000})
    Trainer(config, tmp_path, data_root=data_root, callbacks=[InterruptAt(3)]).fit()
    (tmp_path / "checkpoint.pt").unlink()  # as if killed before its first checkpoint
    with pytest.raises(RunDirectoryError, match="no checkpoint yet"):
        Trainer(config, tmp_path, data_root=data_root, resume=True)
    with pytest.raises(RunDirectoryError, match="holds no run"):
        Trainer(config, tmp_path / "empty", data_root=data_root, resume=True)


def test_orphaned_temporary_files_are_removed_at_the_next_start(tmp_path, data_root):
    config = tiny_config(train={"max_steps": 30})
    Trainer(config, tmp_path, data_root=data_root, callbacks=[InterruptAt(15)]).fit()
    orphans = [tmp_path / ".checkpoint.pt.x1y2.tmp", tmp_path / ".final.pt.abc.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"\0" * 1000)  # as left by a write killed with SIGKILL
    Trainer(config, tmp_path, data_root=data_root, resume=True).fit()
    assert not any(orphan.exists() for orphan in orphans)


def test_a_second_ctrl_c_during_a_checkpoint_write_finishes_the_write(tmp_path, data_root,
                                                                      monkeypatch, request):
    write = trainer_module.save_checkpoint

    def interrupted_write(state, path):  # Ctrl-C again while the file is being written
        # the handler in place is called as the signal would call it, synchronously: an
        # os.kill was processed at an unpredictable point when other threads were alive
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        return write(state, path)

    monkeypatch.setattr(trainer_module, "save_checkpoint", interrupted_write)
    # Python's own Ctrl-C handler, whatever this process inherited: a shell starts background
    # jobs (`make test &`) with SIGINT ignored, and a second Ctrl-C then has nothing to abort
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    config = tiny_config(train={"max_steps": 30, "checkpoint_every": 1000})
    trainer = Trainer(config, tmp_path, data_root=data_root, callbacks=[InterruptAt(15)])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    state = load_checkpoint(tmp_path / "checkpoint.pt")  # whole, at the step of the Ctrl-C
    assert state["step"] == 15
    assert not list(tmp_path.glob(".*.tmp"))
    assert not (tmp_path / LOCK_NAME).exists()
    torch.testing.assert_close(state["model"], trainer.model.state_dict())
