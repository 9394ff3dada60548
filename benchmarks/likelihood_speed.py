"""Importance-sampled NLL of the shipped headline IWAE against its FLOP bound, in one run.

    python benchmarks/likelihood_speed.py [--n 10000] [--k 5000] [--reference-n 200]

Times ``genmodels evaluate``'s held-out path (``held_out_numbers``: the test images, dynamically
binarised as in training, 100 a batch, ``VAE.log_likelihood`` with k importance samples) on the
first ``--n`` test images of samples/checkpoints/iwae_mnist_nll (MLP 784-400-400-50, test NLL
85.27 nats at k = 5000), on all threads. The FLOP bound: the decoder's matrix products (2 FLOP a
multiply-add, 50·400 + 400·400 + 400·784 per sample, k samples per image) plus the encoder's
(once per image), at the measured sgemm peak of a 2048² product; nothing else is counted.

In the same process, the previous implementation on the first ``--reference-n`` images:
torch's ``Bernoulli.log_prob`` (``binary_cross_entropy_with_logits``) and 50,000 decoded images
a chunk, for the speed-up and the agreement of the estimates (different random draws: they
agree within Monte Carlo error, not bit for bit). Results: docs/results/likelihood_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from contextlib import contextmanager

import torch
from common import ROOT, sgemm_peak
from torch.distributions import Independent

from genmodels import load
from genmodels.models import vae as vae_module
from genmodels.models.distributions import BernoulliImages
from genmodels.pipelines.run_evaluation import held_out_numbers

CHECKPOINT = ROOT / "samples" / "checkpoints" / "iwae_mnist_nll"
RESULTS = ROOT / "docs" / "results" / "likelihood_speed.json"


def linear_macs(module: torch.nn.Module) -> int:
    return sum(m.in_features * m.out_features for m in module.modules()
               if isinstance(m, torch.nn.Linear))


@contextmanager
def previous_implementation():
    """torch's Bernoulli log-density and 50,000-image chunks, as before this benchmark."""
    kept = BernoulliImages.log_prob, vae_module.IMAGES_PER_CHUNK
    BernoulliImages.log_prob, vae_module.IMAGES_PER_CHUNK = Independent.log_prob, 50_000
    try:
        yield
    finally:
        BernoulliImages.log_prob, vae_module.IMAGES_PER_CHUNK = kept


def decoder_gemm_seconds(model, k: int, n: int, rows: int = 2000) -> float:
    """Seconds of the decoder's matrix products alone for ``k`` samples of ``n`` images, at the
    shapes log_likelihood uses (``rows`` decoded images a product): the floor of any
    implementation with this BLAS, measured on 20 chunks and scaled."""
    layers = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)]
    pairs = [(torch.randn(rows, m.in_features), m.weight.detach()) for m in layers]
    for x, w in pairs:
        torch.mm(x, w.t())
    start = time.perf_counter()
    for _ in range(20):
        for x, w in pairs:
            torch.mm(x, w.t())
    return (time.perf_counter() - start) / 20 * k * n / rows


def timed_nll(model, n: int, k: int) -> dict:
    torch.manual_seed(0)
    numbers = held_out_numbers(model, n=n, k=k)
    return {"examples": n, "nll": round(numbers["nll"], 4), "seconds": numbers["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="test images")
    parser.add_argument("--k", type=int, default=5000, help="importance samples per image")
    parser.add_argument("--reference-n", type=int, default=200,
                        help="images for the previous implementation (0: skip)")
    args = parser.parse_args()

    model = load(CHECKPOINT).eval()
    peak = sgemm_peak()
    flops_per_image = 2 * (linear_macs(model.decoder) * args.k + linear_macs(model.encoder))
    ours = timed_nll(model, args.reference_n, args.k) if args.reference_n else None
    previous = None
    if args.reference_n:
        with previous_implementation():
            previous = timed_nll(model, args.reference_n, args.k)
    full = timed_nll(model, args.n, args.k)
    bound = flops_per_image * args.n / peak / 1e9
    gemm = decoder_gemm_seconds(model, args.k, args.n)
    result = {
        "command": "python benchmarks/likelihood_speed.py " + " ".join(sys.argv[1:]),
        "checkpoint": str(CHECKPOINT.relative_to(ROOT)), "k": args.k, **full,
        "flop": flops_per_image * args.n, "sgemm_peak_gflops": round(peak, 1),
        "flop_bound_seconds": round(bound, 1), "over_bound": round(full["seconds"] / bound, 2),
        "target_over_bound": 1.5, "decoder_products_alone_seconds": round(gemm, 1),
        "same_images": {"current": ours, "previous": previous,
                        "speedup": round(previous["seconds"] / ours["seconds"], 2)}
        if previous else None,
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} threads, torch {torch.__version__}",
    }
    print(f"IS-NLL of {args.n} test images, k = {args.k}: {full['nll']:.2f} nats in "
          f"{full['seconds']:.1f} s; {result['flop']:.3g} FLOP at the sgemm peak {peak:.0f} "
          f"GFLOP/s = {bound:.1f} s bound -> {result['over_bound']:.2f}x the bound "
          f"(target <= 1.5x); the decoder's products alone at these shapes: {gemm:.1f} s")
    if previous:
        print(f"first {args.reference_n} images: {ours['seconds']:.1f} s ({ours['nll']:.2f} nats) "
              f"against the previous implementation's {previous['seconds']:.1f} s "
              f"({previous['nll']:.2f} nats): {result['same_images']['speedup']:.2f}x")
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
