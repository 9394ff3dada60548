"""SGD estimating the mean of N(m, σ²): why a constant rate never converges and 1/(n+1) does.

SGD on L(Y, X) = ½ (X − Y)², whose gradient in X is X − Y, reads X_n = X_{n−1} − ρ_n (X_{n−1} − Y_n)
with Y_n ~ N(m, σ²) i.i.d.

- constant ρ: X_n = (1 − ρ) X_{n−1} + ρ Y_n is an exponential moving average; its variance
  tends to ρ² σ² / (1 − (1 − ρ)²) = ρσ²/(2 − ρ), which is not zero;
- ρ_n = 1/(n + 1) (with n counted from 0): X_n = (n X_{n−1} + Y_n)/(n + 1) is exactly the
  empirical mean of Y_0..Y_n, whose variance σ²/(n + 1) goes to zero.

Run ``python -m genmodels.optim.sgd_mean`` to check both numerically.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np


def sgd_mean_estimate(samples: np.ndarray, schedule: float | Callable[[int], float],
                      x0: float = 0.0) -> np.ndarray:
    """SGD iterates X_n after seeing samples Y_0..Y_n, for samples of shape (..., N).

    ``schedule`` is a constant ρ or a function n -> ρ_n. Returns X of the samples' shape;
    independent runs go along the leading axes.
    """
    samples = np.asarray(samples, dtype=np.float64)
    rate = schedule if callable(schedule) else (lambda n: schedule)
    estimates = np.empty_like(samples)
    x = np.full(samples.shape[:-1], x0, dtype=np.float64)
    for n in range(samples.shape[-1]):
        x = x - rate(n) * (x - samples[..., n])  # the gradient of ½ (x − Y_n)² is x − Y_n
        estimates[..., n] = x
    return estimates


def ema_limit_variance(rate: float, sigma: float) -> float:
    """Stationary variance ρσ²/(2 − ρ) of the constant-rate iterates."""
    return rate * sigma**2 / (2 - rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mean", type=float, default=1.0)
    parser.add_argument("--sigma", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=10_000, help="independent SGD runs")
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    samples = rng.normal(args.mean, args.sigma, size=(args.runs, args.steps))
    print(f"N(m={args.mean}, sigma^2={args.sigma**2}), {args.runs} runs of {args.steps} steps")
    print(f"{'rate':>12} {'mean of X_N':>12} {'var of X_N':>12} {'predicted':>12}")
    for rate in (0.5, 0.1, 0.01):
        final = sgd_mean_estimate(samples, rate)[:, -1]
        print(f"{rate:>12} {final.mean():>12.4f} {final.var():>12.5f} "
              f"{ema_limit_variance(rate, args.sigma):>12.5f}")
    final = sgd_mean_estimate(samples, lambda n: 1 / (n + 1))[:, -1]
    print(f"{'1/(n+1)':>12} {final.mean():>12.4f} {final.var():>12.5f} "
          f"{args.sigma**2 / args.steps:>12.5f}")
    gap = np.abs(final - samples.mean(axis=1)).max()
    print(f"1/(n+1): largest |X_N - empirical mean| over the runs = {gap:.2e}")


if __name__ == "__main__":
    main()
