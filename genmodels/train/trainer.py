"""The one training loop shared by every model kind.

A model declares *what* to optimise (:meth:`Model.parameter_groups`, :meth:`Model.phases`);
the :class:`Trainer` owns *how*: devices, seeding, data order, optimisers and schedules, AMP,
EMA, gradient clipping, data parallelism, logging, figures and checkpoints::

    config = load_config("configs/mnist_cnn.toml", ["train.epochs=1"])
    model = Trainer(config, out="runs/cnn").fit()
"""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from genmodels.config import Config, ConfigError, dump_toml
from genmodels.data.build import RunData, build_data
from genmodels.errors import UserError
from genmodels.models.base import MODELS, Batch, Losses, Model, Phase
from genmodels.optim import make_optimizer, make_scheduler
from genmodels.progress import progress
from genmodels.train import distributed as dist
from genmodels.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from genmodels.train.ema import EMA
from genmodels.train.loggers import Loggers
from genmodels.train.run_dir import (
    RunDirectoryError,
    check_config_file,
    config_comments,
    open_run_dir,
    resume_changes,
)
from genmodels.utils import rank_seed, resolve_device, seed_everything

CHECKPOINT_FORMAT = "genmodels/checkpoint/2"  # 2: per-rank RNG states, amendments
MODEL_FORMAT = "genmodels/model/1"


class NonFiniteLossError(UserError, FloatingPointError):
    """A loss, a gradient or the weights became NaN or Inf: the run stops before the update
    (or before writing the weights) and keeps its last good checkpoint."""


class Callback:
    """Hook into a run: subclass it and override either method (both do nothing here)."""

    def on_step(self, trainer: Trainer, losses: dict[str, Tensor]) -> None:
        """After each optimisation step, with the step's losses."""

    def on_evaluate(self, trainer: Trainer) -> dict[str, float]:
        """At each evaluation: extra held-out numbers, logged as ``eval/<name>``."""
        return {}


class Trainer:
    """Train ``config.model`` on ``config.data`` as ``config.train`` says, writing to ``out``.

    ``out`` receives ``config.toml``, ``metrics.jsonl`` (and the other ``train.loggers``:
    ``metrics.csv``, ``tensorboard/``; see :mod:`genmodels.train.loggers`), ``metrics.png``
    (redrawn at each evaluation and figure point), ``figures/``, ``checkpoint.pt`` (rolling,
    every ``train.checkpoint_every`` steps and at the end) and ``final.pt`` (read it with
    :func:`genmodels.load`). With ``resume=True`` the run continues
    from ``out/checkpoint.pt``; on CPU the final weights are bit-identical to an uninterrupted
    run, with data parallelism too. A folder that holds a run is refused unless ``resume`` or
    ``overwrite``; the folder is locked for the life of the run (see
    :mod:`genmodels.train.run_dir`).
    """

    def __init__(self, config: Config, out: str | Path, *, data_root: str | None = None,
                 resume: bool = False, overwrite: bool = False, data: RunData | None = None,
                 callbacks: Sequence[Callback] = ()) -> None:
        self.config, self.out, self.callbacks = config, Path(out), list(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callback {callback!r} should subclass genmodels.train.Callback")
        t = config.train
        self.device = dist.local_device(resolve_device(t.device))
        self.rank, self.world_size = dist.init_distributed(self.device)
        self.is_main = self.rank == 0
        self.loggers = Loggers()  # opened by _build
        self._lock = open_run_dir(self.out, resume=resume, overwrite=overwrite) \
            if self.is_main else None
        try:
            self._build(data_root, resume, data)
        except BaseException:
            self.release()
            raise

    def _build(self, data_root: str | None, resume: bool, data: RunData | None) -> None:
        config, t = self.config, self.config.train
        # The only place where a run seeds its RNGs. Each process gets its own stream (rank 0's
        # is the single-process one), so noise, dropout and latent draws differ across ranks;
        # the model is the same everywhere after the broadcast below.
        seed_everything(rank_seed(t.seed, self.rank))
        if self.device.type == "cuda":  # cuDNN's default kernels may add in any order
            torch.backends.cudnn.deterministic = t.deterministic
            torch.backends.cudnn.benchmark = not t.deterministic

        self.data = data or build_data(config.data, t.batch_size, root=data_root, seed=t.seed,
                                       rank=self.rank, world_size=self.world_size)
        self.model: Model = MODELS[config.kind](config.model, self.data.shape).to(self.device)
        if t.sync_batchnorm:
            if not any(isinstance(m, _BatchNorm) for m in self.model.modules()):
                raise ConfigError(f"train.sync_batchnorm = true, but this {config.kind} model has "
                                  "no BatchNorm layer to synchronise; set it to false")
            dist.convert_sync_batchnorm(self.model)
        if t.channels_last:
            self.model.to(memory_format=torch.channels_last)  # conv weights (4-d tensors) NHWC
        self.data.to(self.device)
        self.batches = self.data.train
        self.total_steps = t.max_steps or t.epochs * len(self.batches)

        self.model.validate(config)
        if not resume:
            self.model.prepare(self.data)
        dist.broadcast_parameters(self.model)  # every process starts from rank 0's model
        self.phases: list[Phase] = self.model.phases()
        local_batch = t.batch_size // self.world_size
        for phase in self.phases:
            if local_batch % phase.repeats:
                raise ConfigError(f"the batch of {local_batch} per process cannot be split into "
                                  f"{phase.repeats} equal micro-batches for the "
                                  f"{phase.optimizer!r} updates; make train.batch_size a "
                                  "multiple of it")
        groups = self.model.parameter_groups()
        self.params = {name: list(g["params"] if isinstance(g, dict) else g)
                       for name, g in groups.items()}
        self.optimizers = {name: make_optimizer(g, t) for name, g in groups.items()}
        self.schedulers = {name: make_scheduler(o, t, self.total_steps)
                           for name, o in self.optimizers.items()}
        # AMP: float16 autocast with gradient scaling on CUDA; bfloat16 autocast on the CPU (fast
        # where the CPU has bfloat16 units, e.g. AMX; same exponent range, so no scaling).
        self.amp = t.amp
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        scaled = self.amp and self.device.type == "cuda"
        if scaled and any(getattr(o, "requires_closure", False)
                          for o in self.optimizers.values()):
            raise ConfigError(f"train.optimizer = {t.optimizer!r} re-evaluates the loss through "
                              "a closure, which AMP's GradScaler cannot do; set train.amp=false")
        self.scaler = torch.amp.GradScaler("cuda", enabled=scaled)
        self.ema = EMA(self.model, t.ema, t.ema_warmup) if t.ema > 0 else None

        self.step, self.elapsed = 0, 0.0
        self._sums: dict[str, Tensor] = {}
        self._count = 0
        self._evaluated_at = -1  # step of the last evaluation
        self._plotted: tuple[int, int] | None = None  # (step, records) of the last metrics.png
        self.amendments: list[dict[str, Any]] = []  # config changes made at resumes
        self.interrupted = False
        self.loggers = Loggers.open(t.loggers, self.out, active=self.is_main)
        if resume:
            self._resume()
        elif self.is_main:
            (self.out / "config.toml").write_text(dump_toml(config))
        if t.monitor_every:
            from genmodels.train.monitor import ModeMonitor

            self.callbacks.append(ModeMonitor.for_run(self))

    # --- the loop -------------------------------------------------------------------------
    def release(self) -> None:
        """Close the loggers and unlock the run directory (:meth:`fit` does so when it returns
        or raises)."""
        self.loggers.close()
        if self._lock is not None:
            self._lock.release()

    def fit(self) -> Model:
        """Run to ``total_steps`` (or until Ctrl-C); returns the trained model."""
        try:
            return self._fit()
        finally:
            self.release()

    def _fit(self) -> Model:
        t = self.config.train
        if self.step >= self.total_steps and (self.out / "final.pt").is_file():
            if self.is_main:
                print(f"{self.out} is finished (step {self.step}); raise train.max_steps or "
                      "train.epochs to train on")
            return self.model
        bar = progress(total=self.total_steps, initial=self.step, desc=self.config.kind,
                       unit="step", disable=not (t.progress and self.is_main))
        start = time.perf_counter() - self.elapsed
        with self._catch_sigint():
            while self.step < self.total_steps and not self.interrupted:
                epoch_done = True
                for batch in self.batches:
                    losses = self.train_step(batch)
                    self.step += 1
                    self.elapsed = time.perf_counter() - start
                    bar.update(1)
                    for callback in self.callbacks:
                        callback.on_step(self, losses)
                    if self.step % t.log_every == 0 or self.step == self.total_steps:
                        bar.set_postfix(self._log_train(), refresh=False)
                    if t.eval_every and self.step % t.eval_every == 0:
                        self.evaluate()
                    if t.figure_every and self.step % t.figure_every == 0:
                        self.write_figures()
                    if self.step % t.checkpoint_every == 0 or self.interrupted:
                        self.save_checkpoint()
                    if self.step >= self.total_steps or self.interrupted:
                        epoch_done = self.batches.position == len(self.batches)
                        break
                if epoch_done and not t.eval_every and not self.interrupted:
                    self.evaluate()
        bar.close()
        if self.interrupted:
            if self.step % t.checkpoint_every:
                self.save_checkpoint()
            if self.is_main:
                print(f"interrupted at step {self.step}; continue with --resume {self.out}")
            return self.model
        if self._evaluated_at != self.step:  # e.g. a run shorter than one epoch
            self.evaluate()
        if self.step % t.checkpoint_every:
            self.save_checkpoint()
        if not t.figure_every or self.step % t.figure_every:
            self.write_figures()
        self.plot()
        self.save_model(self.out / "final.pt")
        return self.model

    def train_step(self, batch: Batch) -> Losses:
        """One step: every phase runs its ``repeats`` optimiser updates on micro-batches."""
        logged: Losses = {}
        if self.config.train.channels_last:
            batch = tuple(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
                          for x in batch)
        for phase in self.phases:
            micro_batches = zip(*(x.chunk(phase.repeats) for x in batch), strict=True)
            for micro in micro_batches:
                losses = self._update(phase, micro)
            prefix = f"{phase.optimizer}_" if len(self.phases) > 1 else ""
            logged.update({prefix + k: v.detach() for k, v in losses.items()})
        for scheduler in self.schedulers.values():
            scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model, self.step)  # self.step: the updates done before
        for k, v in logged.items():
            self._sums[k] = self._sums.get(k, 0.0) + v.float()
        self._count += 1
        return logged

    def _update(self, phase: Phase, batch: Batch) -> Losses:
        """One optimiser update. An optimiser that evaluates the closure more than once per
        step (SGD-G2's trial point) sees the same batch, and the normalisation statistics and
        other buffers its later evaluations move are put back as the first left them."""
        optimizer, params = self.optimizers[phase.optimizer], self.params[phase.optimizer]
        clip = 0.0 if getattr(optimizer, "clips_gradients", False) else self.config.train.grad_clip
        first: list[Losses] = []

        def closure() -> Tensor:
            buffers = list(self.model.buffers()) if first else []
            kept = [b.clone() for b in buffers]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(self.device.type, self.amp_dtype, enabled=self.amp):
                losses = phase.loss(batch)
            self.scaler.scale(losses["loss"]).backward()
            for buffer, value in zip(buffers, kept, strict=True):  # after the backward,
                buffer.copy_(value)  # which may need them as they were in the forward pass
            dist.average_gradients(params)
            if self.scaler.is_enabled():
                self.scaler.unscale_(optimizer)
            grads = [p.grad for p in params if p.grad is not None]
            norm = (torch.nn.utils.clip_grad_norm_(params, clip) if clip > 0 else
                    torch.nn.utils.get_total_norm(grads) if grads and not self.scaler.is_enabled()
                    else None)
            # one sync checks the losses and, before any update, the gradient norm (GradScaler
            # skips the steps with inf gradients itself)
            self._check_finite(phase, losses, None if self.scaler.is_enabled() else norm)
            first.append(losses)
            return losses["loss"]

        if self.scaler.is_enabled():  # GradScaler does not take closures
            closure()
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step(closure)
        return first[0]

    def _check_finite(self, phase: Phase, losses: Losses, grad_norm: Tensor | None = None) -> None:
        """Raise :class:`NonFiniteLossError` for a NaN or Inf loss or gradient (one sync)."""
        values = [v.detach().float().reshape(()) for v in losses.values()]
        if grad_norm is not None:
            values.append(grad_norm.detach().float().reshape(()))
        if bool(torch.isfinite(torch.stack(values)).all()):
            return
        bad = {k: float(v.detach()) for k, v in losses.items() if not torch.isfinite(v).all()}
        where = f" in the {phase.optimizer} update" if len(self.optimizers) > 1 else ""
        what = (f"loss at step {self.step + 1}{where}: {bad}" if bad else
                f"gradient at step {self.step + 1}{where} (norm {float(grad_norm)}; the losses "
                "are finite), before the update")
        self._stop(f"non-finite {what}")

    def _stop(self, what: str) -> None:
        kept = self.out / "checkpoint.pt"
        raise NonFiniteLossError(
            f"{what}. The run stopped"
            + (f"; the last good checkpoint {kept} is kept. " if kept.exists() else ". ")
            + "Try a lower train.lr, train.grad_clip=1.0, or check the data.")

    def _check_finite_weights(self) -> None:
        """Weights are written only when finite (every rank holds the same, so all agree)."""
        tensors = [*self.model.parameters(), *(self.ema.shadow.values() if self.ema else ())]
        if not bool(torch.stack([t.detach().isfinite().all() for t in tensors]).all()):
            self._stop(f"the weights are not finite at step {self.step} (the updates overflow)")

    # --- evaluation, figures, logs --------------------------------------------------------
    @contextmanager
    def evaluation_mode(self):
        """Eval mode, EMA weights if any, and a forked RNG seeded by the step, so that
        evaluating never changes the course of training."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(self.config.train.seed * 7919 + self.step)
            was_training = self.model.training
            self.model.eval()
            try:
                with self.ema.applied(self.model) if self.ema else nullcontext():
                    yield self.model
            finally:
                self.model.train(was_training)

    def evaluate(self) -> dict[str, float]:
        """Run :meth:`Model.evaluate` and the callbacks' ``on_evaluate`` on the held-out set."""
        if not self.is_main or self.data.eval is None:
            self._evaluated_at = self.step
            return {}
        self.data.eval.set_epoch(0)  # the same held-out draws at every evaluation
        with self.evaluation_mode() as model:
            metrics = model.evaluate(iter(self.data.eval))
            for callback in self.callbacks:
                metrics.update(callback.on_evaluate(self))
        self.record({f"eval/{k}": float(v) for k, v in metrics.items()})
        self._evaluated_at = self.step
        self.plot()
        return metrics

    def write_figures(self) -> list[Path]:
        """The model's figures in ``figures/`` (and to the image loggers); redraws
        ``metrics.png``."""
        if not self.is_main:
            return []
        folder = self.out / "figures"
        folder.mkdir(exist_ok=True)
        with self.evaluation_mode() as model:
            paths = model.figures(folder, self.step, self.data.figure_batch)
        self.loggers.figures(paths, self.step)
        self.plot()
        return paths

    def plot(self) -> None:
        """Redraw ``metrics.png`` (titled with the run's folder name, its y axes with the
        model's ``metric_units``), unless nothing was logged since the last time."""
        from genmodels.plots import plot_metrics

        if self.is_main and self._plotted != (self.step, self.loggers.records):
            plot_metrics(self.out / "metrics.jsonl", self.out / "metrics.png",
                         title=self.out.resolve().name, units=self.model.metric_units)
            self._plotted = (self.step, self.loggers.records)

    def _log_train(self) -> dict[str, str]:
        values = {k: float(v) / self._count for k, v in self._sums.items()}
        values = dist.average_scalars(values, self.device)
        self._sums, self._count = {}, 0
        lrs = {f"lr_{n}" if len(self.schedulers) > 1 else "lr": s.get_last_lr()[0]
               for n, s in self.schedulers.items()}
        self.record({**{f"train/{k}": v for k, v in values.items()}, **lrs})
        return {k: f"{v:.4g}" for k, v in values.items()}

    def record(self, values: dict[str, Any]) -> None:
        """Log one record ``{"step", "epoch", "time", **values}`` (a line of ``metrics.jsonl``,
        and to the other ``train.loggers``); keys ``split/name`` are drawn by :meth:`plot` in
        panel ``name``."""
        self.loggers.scalars(self.step, {"epoch": round(self.step / len(self.batches), 4),
                                         "time": round(self.elapsed, 3), **values})

    # --- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any] | None:
        """The whole training state on rank 0 (None on the others). Every process must call
        it: each one's RNG streams and running log sums are gathered (``"ranks"``)."""
        ranks = dist.gather_objects({
            "rng": rng_state(), "running": {"sums": self._sums, "count": self._count,
                                            "evaluated_at": self._evaluated_at}})
        if not self.is_main:
            return None
        return {
            "format": CHECKPOINT_FORMAT, "kind": self.config.kind,
            "input_shape": list(self.model.input_shape),
            "config": self.config.to_dict(), "amendments": self.amendments,
            "step": self.step, "elapsed": self.elapsed,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict(), "batches": self.batches.state_dict(),
            "ranks": ranks,
        }

    def save_checkpoint(self) -> None:
        self._check_finite_weights()
        state = self.state_dict()
        if self.is_main:
            with _sigint_deferred():
                save_checkpoint(state, self.out / "checkpoint.pt")
        dist.barrier()

    def save_model(self, path: Path) -> None:
        """The trained model as :func:`genmodels.load` reads it."""
        self._check_finite_weights()
        if self.is_main:
            with _sigint_deferred():
                save_checkpoint({"format": MODEL_FORMAT, "kind": self.config.kind,
                                 "input_shape": list(self.model.input_shape),
                                 "config": self.config.to_dict(), "amendments": self.amendments,
                                 "step": self.step, "model": self.model.state_dict(),
                                 "ema": self.ema.state_dict() if self.ema else None},
                                path)

    def _resume(self) -> None:
        path = self.out / "checkpoint.pt"
        state = load_checkpoint(path, map_location=self.device)
        ranks = state.get("ranks") or [{  # format 1: one process's state
            "rng": state["rng"], "running": {**state["running"], "evaluated_at": -1}}]
        if len(ranks) != self.world_size:
            raise RunDirectoryError(
                f"{path} was written by {len(ranks)} process(es) and this run has "
                f"{self.world_size}: resume with the same number (torchrun "
                f"--nproc_per_node={len(ranks)}), so that each gets its random streams back")
        saved_shape = tuple(state.get("input_shape") or self.model.input_shape)
        if saved_shape != self.model.input_shape:
            raise RunDirectoryError(
                f"{path} trained on examples of shape {saved_shape}, but the data now gives "
                f"{self.model.input_shape}; resume with the same data (data.size, "
                "data.channels), or start a new run")
        if self.is_main:
            check_config_file(self.out, state["config"])
        self.amendments = list(state.get("amendments", []))
        changes = resume_changes(state["config"], self.config.to_dict(), step=state["step"],
                                 steps_per_epoch=len(self.batches))
        if changes:
            self.amendments.append({"step": state["step"], "changes": changes})
            if self.is_main:
                (self.out / "config.toml").write_text(config_comments(self.amendments)
                                                      + dump_toml(self.config))
                print(f"resuming at step {state['step']} with "
                      + ", ".join(f"{k} = {new!r}" for k, (_, new) in changes.items()))
        if self.ema and state["ema"] is not None:  # through the model: its load hooks map
            self.model.load_state_dict(state["ema"])  # keys of older versions
            self.ema.load_state_dict(self.model.state_dict())
        self.model.load_state_dict(state["model"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        self.scaler.load_state_dict(state["scaler"])
        self.batches.load_state_dict(state["batches"])
        own = ranks[self.rank]
        set_rng_state(own["rng"])
        self.step, self.elapsed = state["step"], state["elapsed"]
        running = own["running"]
        self._sums, self._count = running["sums"], running["count"]
        self._evaluated_at = running["evaluated_at"]
        self.loggers.truncate(self.step)  # drop what was logged after the checkpoint

    @contextmanager
    def _catch_sigint(self):
        """Ctrl-C finishes the current step, saves a checkpoint and returns; twice aborts."""
        def handler(signum: int, frame: Any) -> None:
            self.interrupted = True
            signal.signal(signal.SIGINT, previous)

        with _sigint_handler(handler) as previous:
            yield


@contextmanager
def _sigint_handler(handler: Any):
    """Ctrl-C calls ``handler`` inside the block; yields the handler it replaced (None off the
    main thread, where Python cannot catch signals) and puts it back at the end."""
    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield None
        return
    try:
        yield previous
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _sigint_deferred():
    """Hold Ctrl-C while a file is written, then act on it once the file is whole."""
    pressed: list[int] = []
    with _sigint_handler(lambda signum, frame: pressed.append(signum)) as previous:
        yield
    if pressed and callable(previous):  # the run's handler (finish the step, then stop) or
        previous(signal.SIGINT, None)   # Python's default one (KeyboardInterrupt)
    elif pressed and previous == signal.SIG_DFL:
        raise KeyboardInterrupt
