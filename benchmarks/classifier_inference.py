"""Images per second of the shipped MNIST CNN at inference, by batch size, against its FLOP
bound, in one run: the eval-mode net as trained (NCHW, batch norm) and its ``inference_copy``
(batch norm folded, channels-last), the net behind ``genmodels.classifier()``, ``genmodels
accuracy`` and the ``mnist-cnn`` features of the metrics.

    python benchmarks/classifier_inference.py [--images 4096] [--repeats 3]
                                              [--batches 2000 1000 512 256 128 64]

Each case classifies ``--images`` MNIST test images in batches under ``torch.inference_mode``,
best of ``--repeats``, on all threads. The FLOP bound: the FLOPs of one image counted by
``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products, 2 FLOP a
multiply-add) at the measured sgemm peak. Writes docs/results/classifier_inference.json.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from common import ROOT, sgemm_peak
from torch.utils.flop_counter import FlopCounterMode

from genmodels import load
from genmodels.data import load_images, to_unit
from genmodels.io import WEIGHTS
from genmodels.metrics.features import verified_weights


def images_per_second(net: torch.nn.Module, images: torch.Tensor, batch: int,
                      repeats: int) -> float:
    best = float("inf")
    with torch.inference_mode():
        net(to_unit(images[:batch]))  # warm-up: oneDNN primitives for this shape
        for _ in range(repeats):
            start = time.perf_counter()
            for i in range(0, len(images), batch):
                net(to_unit(images[i:i + batch])).argmax(1)
            best = min(best, time.perf_counter() - start)
    return len(images) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[2000, 1000, 512, 256, 128, 64])
    parser.add_argument("--data-root")
    args = parser.parse_args()

    model = load(verified_weights(WEIGHTS / "mnist_cnn")).eval().requires_grad_(False)
    images = load_images("mnist", "test", args.data_root).images[:args.images]  # (n, 1, 28, 28)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(to_unit(images[:8]))
    flops = counter.get_total_flops() / 8
    peak = sgemm_peak()
    bound = peak * 1e9 / flops  # images per second
    print(f"{torch.get_num_threads()} threads, sgemm peak {peak:.1f} GFLOP/s, "
          f"{flops / 1e6:.1f} MFLOP an image: bound {bound:.0f} images/s")
    nets = {"eval-mode net (NCHW, batch norm)": model, "inference_copy": model.inference_copy()}
    results = {"threads": torch.get_num_threads(), "sgemm_peak_gflops": round(peak, 1),
               "mflop_per_image": round(flops / 1e6, 2), "bound_images_per_s": round(bound),
               "images": len(images), "command": "python benchmarks/classifier_inference.py",
               "cases": []}
    for name, net in nets.items():
        for batch in args.batches:
            rate = images_per_second(net, images, batch, args.repeats)
            print(f"{name:34s} batch {batch:5d}: {rate:6.0f} images/s, {bound / rate:.2f}x the "
                  "bound", flush=True)
            results["cases"].append({"net": name, "batch": batch, "images_per_s": round(rate),
                                     "times_bound": round(bound / rate, 2)})
    out = ROOT / "docs" / "results" / "classifier_inference.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
