"""Speed and memory of genmodels.metrics against the reference packages, in one run.

    python benchmarks/metrics_speed.py [--repeats 3] [--cases fid prdc sliced large]

Data: 10,000 MNIST test images against 10,000 training images (a seeded subset), or their
FID-MNIST features (the shipped CNN's 128-d penultimate layer). Within a case the two
implementations alternate and the best of ``--repeats`` is kept; ratios are reference time
over ours, so > 1 means faster. Peak memory is measured in a fresh subprocess per
implementation: the growth of the resident set (VmHWM after resetting it) over the inputs.

- ``fid``: ``fid(test, train)`` from images (its default batches of 128) against torchmetrics'
  ``FrechetInceptionDistance`` with the same trained CNN (eval mode, as a user passes the net
  they trained) as its custom feature module, fed batches of 128 and of 1000; the faster of
  the two is the reference (target >= 1.5);
  and from precomputed features (``frechet_distance`` against the metric on an identity
  module; 10 times the repeats, as each takes milliseconds).
- ``prdc``: ``prdc(train_features, test_features, k=5)`` against ``prdc.compute_prdc``
  (target >= 5 and < 2 GB peak).
- ``sliced``: ``sliced_wasserstein`` with 1000 projections against
  ``ot.sliced_wasserstein_distance``, on float32 features (as a user passes them; POT's float64
  projections make it compute in float64) and on float64 features (target >= 1).
- ``large``: ``energy_distance`` and ``mmd`` (RBF, unbiased) on 50,000 x 50,000 points of
  N(0, I_128), float32: time and peak memory for two chunk sizes, against the 10 GB of one
  full 50k x 50k float32 matrix; and ``prdc`` (k = 5, default chunk) on the same points
  (target < 1 GB).

Results go to docs/results/metrics_speed.json.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import ot
import prdc as prdc_package
import torch
import torchmetrics
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance

from genmodels import load
from genmodels.data import load_images, to_unit
from genmodels.io import WEIGHTS
from genmodels.metrics import (
    energy_distance,
    fid,
    frechet_distance,
    mmd,
    mnist_features,
    prdc,
    sliced_wasserstein,
)
from genmodels.metrics.features import verified_weights
from genmodels.nets.classifier import INFERENCE_BATCH

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results" / "metrics_speed.json"
N = 10_000
LARGE = 50_000
REFERENCE_BATCHES = (INFERENCE_BATCH, 1000)  # torchmetrics' update batches


class CNNFeatures(nn.Module):
    """The shipped CNN's penultimate layer as a torchmetrics feature extractor: the trained
    net in eval mode (``genmodels.classifier()`` is its inference copy, which ``fid`` runs)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = load(verified_weights(WEIGHTS / "mnist_cnn")).net.eval()
        self.num_features = 128

    def forward(self, x: Tensor) -> Tensor:
        return self.net.features(x)


class Identity(nn.Module):
    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


def best_of(repeats: int, **runs: Callable[[], object]) -> dict[str, list[float]]:
    """Seconds of each run, the runs alternating, ``repeats`` rounds."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(round(time.perf_counter() - start, 3))
    return seconds


def ratio_entry(seconds: dict[str, list[float]], ours: str, reference: str,
                target: float | None) -> dict:
    entry = {f"{name}_seconds": min(values) for name, values in seconds.items()}
    entry["speedup"] = round(min(seconds[reference]) / min(seconds[ours]), 2)
    if target is not None:
        entry["target"] = target
    entry["all_seconds"] = seconds
    return entry


def torchmetrics_fid(x: Tensor, y: Tensor, feature: nn.Module, batch: int = 1000) -> float:
    metric = FrechetInceptionDistance(feature=feature)
    for i in range(0, len(x), batch):
        metric.update(x[i:i + batch], real=True)
    for i in range(0, len(y), batch):
        metric.update(y[i:i + batch], real=False)
    return metric.compute().item()


def reference_prdc(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the sample sizes
        return {k: float(v) for k, v in prdc_package.compute_prdc(real, fake, 5).items()}


def fid_case(test: Tensor, train: Tensor, repeats: int) -> dict:
    ours = fid(test, train).value
    reference = torchmetrics_fid(test, train, CNNFeatures())
    references = {f"torchmetrics_batch{batch}": functools.partial(
        torchmetrics_fid, test, train, CNNFeatures(), batch) for batch in REFERENCE_BATCHES}
    seconds = best_of(repeats, ours=lambda: fid(test, train), **references)
    fastest = min(references, key=lambda name: min(seconds[name]))
    images = {**ratio_entry(seconds, "ours", fastest, 1.5), "reference": fastest,
              "value": ours, "torchmetrics_value": reference}
    x, y = mnist_features(test), mnist_features(train)
    seconds = best_of(10 * repeats, ours=lambda: frechet_distance(x, y),  # ~0.05 s each
                      torchmetrics=lambda: torchmetrics_fid(x, y, Identity(128)))
    return {"from_images": images,
            "from_features": ratio_entry(seconds, "ours", "torchmetrics", None)}


def prdc_case(real: Tensor, fake: Tensor, repeats: int) -> dict:
    real_np, fake_np = real.numpy(), fake.numpy()
    ours, reference = prdc(real, fake, 5), reference_prdc(real_np, fake_np)
    seconds = best_of(repeats, ours=lambda: prdc(real, fake, 5),
                      prdc_package=lambda: reference_prdc(real_np, fake_np))
    entry = ratio_entry(seconds, "ours", "prdc_package", 5.0)
    entry["values"] = ours
    entry["prdc_package_values"] = reference
    entry["max_abs_difference_float32"] = max(abs(ours[k] - reference[k]) for k in ours)
    ours64 = prdc(real.double(), fake.double(), 5)
    reference64 = reference_prdc(real_np.astype(np.float64), fake_np.astype(np.float64))
    entry["max_abs_difference_float64"] = max(abs(ours64[k] - reference64[k]) for k in ours64)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "features.pt"
        torch.save({"x": real, "y": fake}, path)
        entry["peak_memory_mb"] = {name: child_peak(name, path)
                                   for name in ("prdc", "prdc_package")}
    entry["memory_target_mb"] = 2048
    return entry


def sliced_timings(x: Tensor, y: Tensor, repeats: int) -> dict:
    xn, yn = x.numpy(), y.numpy()
    seconds = best_of(repeats, ours=lambda: sliced_wasserstein(x, y, n_projections=1000, seed=0),
                      pot=lambda: ot.sliced_wasserstein_distance(xn, yn, n_projections=1000,
                                                                 seed=0))
    return ratio_entry(seconds, "ours", "pot", 1.0)


def sliced_case(x: Tensor, y: Tensor, repeats: int) -> dict:
    entries = {"float32": sliced_timings(x.float(), y.float(), repeats),
               "float64": sliced_timings(x.double(), y.double(), repeats)}
    projections = ot.sliced.get_random_projections(x.shape[1], 1000, seed=0)
    x64, y64 = x.double(), y.double()
    ours = sliced_wasserstein(x64, y64, projections=projections).item()
    reference = ot.sliced_wasserstein_distance(x64.numpy(), y64.numpy(),
                                               projections=projections)
    entries["same_projections_relative_difference"] = abs(ours - reference) / reference
    return entries


def large_case() -> dict:
    entry: dict = {"n": LARGE, "d": 128, "full_matrix_gb": LARGE * LARGE * 4 / 1e9}
    for name in ("energy_distance", "mmd"):
        entry[name] = {f"chunk_{chunk}": child_peak(f"{name}:{chunk}", None)
                       for chunk in (1024, 4096)}
    entry["prdc"] = child_peak("prdc", None) | {"memory_target_mb": 1024}
    return entry


def resident_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(name: str, path: str | None) -> None:
    """Run one implementation and print its seconds and peak memory growth as JSON."""
    if path is None:  # large: N(0, I) points, float32
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(LARGE, 128, generator=generator)
        y = torch.randn(LARGE, 128, generator=generator) * 1.1
    else:
        data = torch.load(path)
        x, y = data["x"], data["y"]
    name, _, chunk = name.partition(":")
    runs = {
        "prdc": lambda: prdc(x, y, 5),
        "prdc_package": lambda: reference_prdc(x.numpy(), y.numpy()),
        "energy_distance": lambda: energy_distance(x, y, chunk=int(chunk)),
        "mmd": lambda: mmd(x, y, "rbf", bandwidths=16.0, chunk=int(chunk)),
    }
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current RSS
    baseline = resident_kb("VmRSS")
    start = time.perf_counter()
    value = runs[name]()
    seconds = time.perf_counter() - start
    growth = (resident_kb("VmHWM") - baseline) / 1024
    print(json.dumps({"seconds": round(seconds, 2), "peak_growth_mb": round(growth, 1),
                      "value": value if isinstance(value, dict) else float(value)}))


def child_peak(name: str, path: Path | None) -> dict:
    command = [sys.executable, __file__, "--child", name]
    if path is not None:
        command += ["--path", str(path)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=["fid", "prdc", "sliced", "large"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.path)
        return
    test = to_unit(load_images("mnist", "test").images)
    train_images = load_images("mnist", "train").images
    subset = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(0))[:N]
    train = to_unit(train_images[subset.sort().values])
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    results["machine"] = (f"{platform.machine()}, {torch.get_num_threads()} threads, "
                          f"torch {torch.__version__}, torchmetrics {torchmetrics.__version__}, "
                          f"POT {ot.__version__}, prdc 0.2")
    results["command"] = "python benchmarks/metrics_speed.py " + " ".join(sys.argv[1:])
    features = None
    for case in args.cases:
        print(f"{case} ...", flush=True)
        if case == "fid":
            results["fid"] = fid_case(test, train, args.repeats)
        elif case == "large":
            results["large"] = large_case()
        else:
            if features is None:
                features = mnist_features(train), mnist_features(test)
            if case == "prdc":
                results["prdc"] = prdc_case(*features, args.repeats)
            elif case == "sliced":
                results["sliced"] = sliced_case(*features, args.repeats)
            else:
                raise ValueError(f"unknown case {case!r}")
        print(json.dumps(results[case], indent=2), flush=True)
        OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
