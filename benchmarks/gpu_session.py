"""One prepared run on a lent GPU (docs/gpu.md): the CUDA tests, GPU speed, and longer training
of the MNIST diffusion and flow-matching models and of flow matching on Stacked MNIST, measured
on the spot with the metrics of docs/diffusion.md.

    python benchmarks/gpu_session.py --out OUT [--budget 540] [--train-seconds 270]
    python benchmarks/gpu_session.py --out /tmp/gpu --smoke     # the same on the CPU, tiny

The device lends a GPU for one short window (docs/gpu.md), so everything is one script with a
wall-clock ``--budget``: each section checks the time left and is skipped (and recorded as
skipped) rather than overrun it. In order:

1. ``speed``: seconds per Trainer step of the MNIST U-Net (batch 128 and 256, float32 and
   float16 AMP) and of the pytorch/examples VAE and MLP classifier epochs; images per second
   of U-Net sampling at NFE 20, batch 1000.
2. ``train`` (while ``tests`` run beside it): configs/diffusion_mnist.toml,
   configs/flow_mnist.toml and configs/flow_stacked_mnist.toml on the GPU at batch 256, all
   three at once, stopped by Ctrl-C (SIGINT: the Trainer finishes the step and saves) after
   ``--train-seconds``. The learning rate is constant, so the run equals one trained with
   ``train.max_steps`` = the steps reached (recorded with its command).
3. ``tests``: ``pytest tests/test_cuda.py`` and the CUDA check of test_metrics_reference.py.
4. ``quality`` (EMA weights, 10,000 samples at NFE 20, sampling seeds 0-2, FID / class KL /
   PRDC against the test set), ``stacked`` (26,000 samples: modes of 1000, KL), ``likelihood``
   (bits/dim of 1,000 test images by adaptive RK45), ``curve`` (FID of 2,000 samples at NFE 5
   .. 250 for each sampler).
5. The exports (``genmodels export``, EMA weights) and full checkpoints as tar files, and
   results.json, to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, write_between_markers
from diffusion_mnist import curve_table, measure, plot_curve, quality_table, steps_for

from genmodels import load
from genmodels.config import load_config
from genmodels.export import export_model
from genmodels.metrics import stacked_mnist_modes
from genmodels.models import MODELS
from genmodels.models.ode_likelihood import bits_per_dim_of
from genmodels.pipelines.run_evaluation import draw_samples
from genmodels.pipelines.sample_metrics import reference_images
from genmodels.plots import read_metrics, save_image_grid
from genmodels.train import load_checkpoint, save_checkpoint

RUNS = {"diffusion_mnist": "configs/diffusion_mnist.toml",
        "flow_mnist": "configs/flow_mnist.toml",
        "flow_stacked_mnist": "configs/flow_stacked_mnist.toml"}
GPU_TRAIN = ["train.batch_size=256", "train.epochs=1000", "train.progress=false",
             "train.checkpoint_every=1000", "train.log_every=100"]
DEFAULT_SAMPLER = {"diffusion": "ddim", "flow_matching": "heun"}
CURVE = {"diffusion_mnist": ["ddpm", "ddim"], "flow_mnist": ["euler", "heun"]}


class Session:
    """The results so far (written to OUT/results.json after every entry) and the clock."""

    def __init__(self, out: Path, budget: float) -> None:
        self.out, self.start, self.budget = out, time.perf_counter(), budget
        self.results: dict = {"budget_seconds": budget, "skipped": []}

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)

    def record(self, key: str, value) -> None:
        self.results[key] = value
        (self.out / "results.json").write_text(json.dumps(self.results, indent=1))
        print(f"[{time.perf_counter() - self.start:6.1f} s] {key}: {value}", flush=True)

    def has_time(self, what: str, seconds: float) -> bool:
        """Whether ``seconds`` are left for ``what``; if not, it is recorded as skipped."""
        if self.left() >= seconds:
            return True
        self.results["skipped"].append(what)
        print(f"[{time.perf_counter() - self.start:6.1f} s] skipped {what}: too little time left",
              flush=True)
        return False


def step_seconds(config_file: str, overrides: list[str], steps: int, data_root: str) -> float:
    """Seconds per Trainer step, from the end of step 10 to the end of the last."""
    from diffusion_speed import StepClock

    from genmodels.train import Trainer

    config = load_config(ROOT / config_file, [*overrides, f"train.max_steps={steps}",
                                              "train.progress=false", "train.eval_every=1000000",
                                              "train.checkpoint_every=1000000", "train.ema=0"])
    clock = StepClock()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, out, data_root=data_root, callbacks=[clock])
        trainer.fit()
    return (clock.stamps[-1] - clock.stamps[9]) / (len(clock.stamps) - 10)


def speed(session: Session, device: str, data_root: str, smoke: bool) -> None:
    steps = 12 if smoke else 60
    base = [f"train.device={device}"]
    cases = {"unet_b128_fp32": ("configs/diffusion_mnist.toml", []),
             "unet_b256_fp32": ("configs/diffusion_mnist.toml", ["train.batch_size=256"]),
             "unet_b128_amp": ("configs/diffusion_mnist.toml", ["train.amp=true"]),
             "unet_b256_amp": ("configs/diffusion_mnist.toml",
                               ["train.batch_size=256", "train.amp=true"]),
             "vae_mlp_b128": ("configs/vae_mnist.toml", ["data.view=unit"]),
             "classifier_mlp_b128": ("configs/mnist_mlp.toml", [])}
    if smoke:  # the U-Net is slow on a CPU
        cases = {name: case for name, case in cases.items() if "unet" not in name}
    numbers = {}
    for name, (file, overrides) in cases.items():
        if not (smoke or session.has_time(f"speed/{name}", 400)):
            continue
        numbers[name] = round(step_seconds(file, [*base, *overrides], steps, data_root), 5)
    unet = load_config(ROOT / "configs/diffusion_mnist.toml").model
    model = MODELS["diffusion"](unet, (1, 28, 28)).to(device).eval()
    n = 100 if smoke else 1000
    generator = torch.Generator(device).manual_seed(0)
    with torch.no_grad():
        model.sample(n, generator, steps=2)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.sample(n, generator, steps=20)
        if device == "cuda":
            torch.cuda.synchronize()
    numbers["unet_sampling_images_per_second_nfe20_b1000"] = round(
        n / (time.perf_counter() - start), 1)
    # multiply-adds of one forward pass of the U-Net on one image, by hooks on its convs/linears
    macs = []

    def count(module, inputs, output):
        weight = module.weight
        per_output = weight[0].numel()
        macs.append(output.numel() // output.shape[0] * per_output)

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model.net(torch.zeros(1, 1, 28, 28, device=device), torch.zeros(1, device=device))
    for hook in hooks:
        hook.remove()
    numbers["unet_forward_macs_per_image"] = sum(macs)
    session.record("speed", numbers)


def start_training(runs: Path, device: str, data_root: str, smoke: bool
                   ) -> dict[str, subprocess.Popen]:
    extra = ["data.subset=512", "data.stacked_size=512", "train.batch_size=32"] if smoke else []
    processes = {}
    for run, config in RUNS.items():
        log = open(runs / f"{run}.log", "w")
        command = [sys.executable, "-m", "genmodels.cli", "train", str(ROOT / config),
                   "--out", str(runs / run), "--data-root", data_root,
                   f"train.device={device}", *GPU_TRAIN, *extra]
        processes[run] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    return processes


def stop_training(session: Session, processes: dict[str, subprocess.Popen], runs: Path) -> None:
    for process in processes.values():
        process.send_signal(signal.SIGINT)
    for run, process in processes.items():
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            code = "killed"
        records = list(read_metrics(runs / run / "metrics.jsonl"))
        held_out = [r["eval/loss"] for r in records if "eval/loss" in r]
        if not (runs / run / "checkpoint.pt").is_file():
            session.record(f"training/{run}", {"exit": code, "log_tail": (
                runs / f"{run}.log").read_text()[-1500:]})
            continue
        saved = load_checkpoint(runs / run / "checkpoint.pt")
        steps = saved["step"]
        session.record(f"training/{run}", {
            "exit": code, "steps": steps, "wall_minutes": round(saved["elapsed"] / 60, 2),
            "test_loss": round(held_out[-1], 5) if held_out else None,
            "command": f"genmodels train {RUNS[run]} --out runs/{run} train.device=cuda "
                       + " ".join(o for o in GPU_TRAIN if "progress" not in o
                                  and "epochs" not in o) + f" train.max_steps={steps}",
            "log_tail": (runs / f"{run}.log").read_text()[-300:]})


def run_tests(out: Path) -> subprocess.Popen:
    log = open(out / "tests.log", "w")
    return subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                             "tests/test_cuda.py",
                             "tests/test_metrics_reference.py::test_cuda_matches_cpu"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def evaluate(session: Session, runs: Path, device: str, smoke: bool) -> dict:
    models = {}
    for run in RUNS:
        checkpoint = runs / run / "checkpoint.pt"
        if checkpoint.is_file():
            models[run] = load(checkpoint, device=device)
    test = reference_images("mnist-test")
    n = 200 if smoke else 10_000
    batch = 100 if smoke else 1000
    for seed in range(3):
        for run in ("diffusion_mnist", "flow_mnist"):
            if run not in models or not session.has_time(f"quality/{run}/seed{seed}", 120):
                continue
            model = models[run]
            session.record(f"quality/{run}/seed{seed}", measure(
                model, DEFAULT_SAMPLER[model.kind], 20, n, seed, test, batch_size=batch))
        if seed == 0 and "flow_stacked_mnist" in models:
            model = models["flow_stacked_mnist"]
            wall = time.perf_counter()
            samples = draw_samples(model, 260 if smoke else 26_000, 0, batch_size=batch,
                                   steps=steps_for("heun", 20)).clamp(0, 1)
            histogram = stacked_mnist_modes(samples, n=None)
            session.record("stacked/flow_stacked_mnist/seed0", {
                "sampler": "heun", "nfe": 20, "n": len(samples),
                "modes": histogram.modes_covered, "kl": round(histogram.kl_to_uniform, 4),
                "seconds": round(time.perf_counter() - wall, 1)})
    test_uint8 = test.mul(255).round().to(torch.uint8)
    for run in ("diffusion_mnist", "flow_mnist"):
        if run not in models or not session.has_time(f"likelihood/{run}", 90):
            continue
        wall = time.perf_counter()
        numbers = bits_per_dim_of(models[run], test_uint8[:50 if smoke else 1000], probes=1,
                                  solver="rk45", generator=torch.Generator().manual_seed(0),
                                  batch_size=500)
        session.record(f"likelihood/{run}", {
            "bits_per_dim": round(numbers["mean"], 4),
            "standard_error": round(numbers["standard_error"], 4), "n": numbers["n"],
            "nfe": numbers["nfe"], "solver": "rk45", "rtol": 1e-5, "probes": 1,
            "seconds": round(time.perf_counter() - wall, 1)})
    curve = [(nfe, run, sampler) for nfe in (5, 10, 20, 50, 100, 250)
             for run, samplers in CURVE.items() if run in models for sampler in samplers]
    for nfe, run, sampler in curve:
        if session.has_time(f"curve/{sampler}/nfe{nfe}", 45):
            session.record(f"curve/{sampler}/nfe{nfe}", measure(
                models[run], sampler, nfe, 200 if smoke else 2000, 0, test, metrics=["fid"],
                batch_size=batch))
    return models


def package(session: Session, runs: Path, models: dict, device: str) -> None:
    """Exports (EMA weights, 64 samples each) in one tar, each run's checkpoint in another."""
    exports = runs / "exports"
    with tarfile.open(session.out / "exports.tar", "w") as tar:
        for run in models:
            folder = export_model(runs / run / "checkpoint.pt", exports / run)
            with torch.no_grad():
                samples = load(folder, device).sample(64, torch.Generator(device).manual_seed(0))
            save_image_grid(samples.cpu(), exports / run / "samples.png")
            for extra in ("metrics.jsonl", "config.toml"):
                if (runs / run / extra).is_file():
                    tar.add(runs / run / extra, f"{run}/run_{extra}")
            tar.add(folder, run)
    for run in models:
        with tarfile.open(session.out / f"checkpoint_{run}.tar", "w") as tar:
            tar.add(runs / run / "checkpoint.pt", f"{run}/checkpoint.pt")


def quality_of_exports(session: Session, folder: Path, runs: list[str], device: str,
                       seeds: int) -> None:
    """``--exports FOLDER --quality ddpm:100 euler:100 ...``: the quality section alone, on
    the export folders FOLDER/diffusion_mnist and FOLDER/flow_mnist (the exports of a session
    before), with each sampler:NFE given, seeds 0 .. ``seeds`` − 1."""
    test = reference_images("mnist-test")
    kinds = {"ddpm": "diffusion_mnist", "ddim": "diffusion_mnist", "euler": "flow_mnist",
             "heun": "flow_mnist"}
    models = {run: load(folder / run, device=device) for run in set(kinds.values())}
    for seed in range(seeds):
        for entry in runs:
            sampler, nfe = entry.split(":")
            if not session.has_time(f"quality/{sampler}/nfe{nfe}/seed{seed}", 20):
                continue
            session.record(f"quality/{sampler}/nfe{nfe}/seed{seed}", measure(
                models[kinds[sampler]], sampler, int(nfe), 10_000, seed, test,
                batch_size=1000))


KINDS = {"diffusion_mnist": "diffusion", "flow_mnist": "flow_matching"}
TITLES = {"diffusion_mnist": "DDPM (cosine, ε), 50 DDIM steps",
          "flow_mnist": "flow matching, 25 Heun steps (NFE 50)",
          "flow_stacked_mnist": "Stacked MNIST: flow matching, 25 Heun steps"}


def report(results_file: Path, runs: Path) -> None:
    """``--report RESULTS --runs RUNS``: ship RUNS/<run>/checkpoint.pt (the checkpoints of a
    session, unpacked) to samples/checkpoints/<run>/ with the measured numbers and titled
    samples to samples/diffusion/, draw samples/diffusion/fid_vs_nfe.png and write the
    ``gpu-session`` tables of docs/diffusion.md."""
    results = json.loads(results_file.read_text())
    for run in RUNS:
        record = results[f"training/{run}"]
        source = runs / run / "checkpoint.pt"
        state = load_checkpoint(source)
        train = state["config"]["train"]  # the run as one reproduces it: the steps reached
        if train.get("max_steps") != record["steps"]:  # (a constant learning rate: the same)
            train.update(max_steps=record["steps"], device="auto")
            save_checkpoint(state, source)
        numbers = {"held-out loss": record["test_loss"], "GPU minutes (H200)":
                   record["wall_minutes"]}
        if (quality := results.get(f"quality/{run}/seed0")):
            numbers[f"FID (10,000 samples, {quality['sampler']} NFE {quality['nfe']}, MNIST "
                    "CNN features)"] = quality["fid"]
        if (stacked := results.get(f"stacked/{run}/seed0")):
            numbers["Stacked MNIST modes (of 1000), KL (26,000 samples, NFE 20)"] = \
                f"{stacked['modes']}, {stacked['kl']}"
        folder = export_model(Path(os.path.relpath(source)),
                              Path(os.path.relpath(ROOT / "samples" / "checkpoints" / run)),
                              numbers, force=True)
        with torch.no_grad():
            samples = load(folder).sample(64, torch.Generator().manual_seed(0))
        save_image_grid(samples, ROOT / "samples" / "diffusion" / f"{run}.png",
                        title=f"{TITLES[run]}: 64 samples (EMA weights, seed 0)")
    curve = {key: r for key, r in results.items() if key.startswith("curve/")}
    nfes = sorted({r["nfe"] for r in curve.values() if r["sampler"] != "heun"})
    plot_curve(curve, nfes, ROOT / "samples" / "diffusion" / "fid_vs_nfe.png")
    quality = {f"quality/{KINDS[run]}/{seed}": r for key, r in results.items()
               if key.startswith("quality/") and (run := key.split("/")[1]) in KINDS
               and (seed := key.split("/")[2])}
    training = "\n".join(f"- `{r['command']}`: {r['steps']} steps, {r['wall_minutes']} min on "
                         f"the H200 (three runs sharing it), held-out loss {r['test_loss']}"
                         for key, r in results.items() if key.startswith("training/"))
    likelihood = ["| kind | test images | bits/dim | standard error | solver (NFE) | seconds |",
                  "|---|---|---|---|---|---|"]
    likelihood += [f"| {KINDS[key.split('/')[1]]} | {r['n']} | {r['bits_per_dim']:.3f} | "
                   f"{r['standard_error']:.3f} | RK45, rtol {r['rtol']} ({r['nfe']:.0f}) | "
                   f"{r['seconds']} |" for key, r in results.items()
                   if key.startswith("likelihood/")]
    stacked = results.get("stacked/flow_stacked_mnist/seed0")
    speed = results["speed"]
    write_between_markers(ROOT / "docs" / "diffusion.md", "\n".join([
        training, "", "Samples from the EMA weights against the 10,000 test images "
        "(the last column: H200 seconds per 1,000 images, batch 1000):", "",
        quality_table(quality, seconds_digits=1), "",
        f"FID against NFE ({next(iter(curve.values()))['n']} samples, seed 0; in brackets "
        "the H200 seconds per 1,000 images):", "", curve_table(curve, nfes, seconds_digits=1), "",
        "Bits per dimension (dequantized 8-bit test images, one Rademacher probe):", "",
        *likelihood, "",
        f"Stacked MNIST (flow matching, heun NFE {stacked['nfe']}, {stacked['n']} samples): "
        f"**{stacked['modes']} / 1000 modes, KL {stacked['kl']}**." if stacked else "", "",
        f"H200 speed: a Trainer step of the U-Net {speed['unet_b128_fp32'] * 1e3:.1f} ms at "
        f"batch 128 and {speed['unet_b256_fp32'] * 1e3:.1f} ms at batch 256 (float32; "
        f"float16 AMP {speed['unet_b128_amp'] * 1e3:.1f} and "
        f"{speed['unet_b256_amp'] * 1e3:.1f} ms); sampling "
        f"{speed['unet_sampling_images_per_second_nfe20_b1000']:.0f} images/s at NFE 20.",
        "", f"`python benchmarks/gpu_session.py --out OUT --budget {results['budget_seconds']:.0f}"
        " --train-seconds 270` on the GPU, then `python benchmarks/gpu_session.py --report "
        "docs/results/gpu_session.json --runs runs/gpu` here"]), "gpu-session")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--budget", type=float, default=540, help="wall seconds in all")
    parser.add_argument("--train-seconds", type=float, default=270)
    parser.add_argument("--data-root", default=os.environ.get("GENMODELS_DATA"))
    parser.add_argument("--smoke", action="store_true", help="tiny, on whatever device there is")
    parser.add_argument("--exports", type=Path, help="only the quality of these exports")
    parser.add_argument("--quality", nargs="+", default=["ddpm:100", "euler:100"],
                        help="with --exports: sampler:NFE entries")
    parser.add_argument("--seeds", type=int, default=3, help="with --exports")
    parser.add_argument("--report", type=Path, help="a session's results.json: ship and write")
    parser.add_argument("--runs", type=Path, help="with --report: the unpacked checkpoints")
    args = parser.parse_args()
    if args.report:
        report(args.report, args.runs)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    session = Session(args.out, args.budget)
    session.record("device", {
        "torch": torch.__version__, "device": device,
        "name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "cpus": os.cpu_count(), "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32})
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    if args.exports:
        quality_of_exports(session, args.exports, args.quality, device, args.seeds)
        return

    speed(session, device, args.data_root, args.smoke)
    runs = Path(tempfile.mkdtemp(prefix="gpu-runs-"))
    processes = start_training(runs, device, args.data_root, args.smoke)
    train_start = time.perf_counter()
    tests = run_tests(args.out)
    try:
        code = tests.wait(timeout=max(10.0, args.train_seconds - 10))
    except subprocess.TimeoutExpired:
        tests.kill()
        code = "killed at the training deadline"
    session.record("tests", {"exit": code,
                             "tail": (args.out / "tests.log").read_text()[-1500:]})
    time.sleep(max(0.0, train_start + args.train_seconds - time.perf_counter()))
    stop_training(session, processes, runs)
    models = evaluate(session, runs, device, args.smoke)
    package(session, runs, models, device)
    session.record("total_seconds", round(time.perf_counter() - session.start, 1))


if __name__ == "__main__":
    main()
