"""Reference table of every sample metric on real MNIST and on degraded copies of it.

    python benchmarks/metrics_reference_table.py

The reference is 10,000 MNIST training images (a seeded subset); each row is a set built from
the 10,000 MNIST test images: as they are (the floor), with Gaussian noise, blurred, without
the 9s, and with only 3 classes or 1 class (mode collapse). Every metric compares the row with
the reference on FID-MNIST features (the shipped CNN's 128-d penultimate layer), except NDB and
the birthday test (pixels). Two more floors against other reference subsets (seeds 1, 2) give
the sampling noise of each metric; a metric notices a degradation when it moves the worse way
by more than twice that noise. A last table counts the modes of 26,000 real Stacked MNIST
images with the shipped CNN.

Writes docs/results/metrics_table.json and the generated part of the "Reference table"
section of docs/metrics.md (between its markers).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import torch
from common import ROOT, write_between_markers
from torch import Tensor
from torchvision.transforms.functional import gaussian_blur

from genmodels.data import load_images, mode_index, stacked_mnist, to_unit
from genmodels.metrics import (
    birthday_test,
    bures_wasserstein,
    energy_distance,
    frechet_distance,
    kid,
    label_histogram,
    mmd,
    mnist_features_and_labels,
    ndb,
    pixel_features,
    prdc,
    sinkhorn,
    sliced_wasserstein,
    stacked_mnist_modes,
    vendi_score,
    wasserstein,
)

JSON_OUT = ROOT / "docs" / "results" / "metrics_table.json"
DOC = ROOT / "docs" / "metrics.md"
N_REFERENCE = 10_000
N_TRANSPORT = 1000  # points per set for the exact and entropic transport (O(n^2) memory)
NOISE_STD, BLUR_SIGMA = 0.2, 1.0

# name, header, better ("low" or "high"), format
COLUMNS = [
    ("fid", "FID", "low", "{:.2f}"),
    ("kid", "KID ×10³", "low", "{:.2f}"),
    ("precision", "precision", "high", "{:.3f}"),
    ("recall", "recall", "high", "{:.3f}"),
    ("density", "density", "high", "{:.3f}"),
    ("coverage", "coverage", "high", "{:.3f}"),
    ("vendi", "Vendi", "high", "{:.2f}"),
    ("ndb", "NDB /100", "low", "{:.0f}"),
    ("ndb_js", "NDB JS", "low", "{:.4f}"),
    ("modes", "classes", "high", "{:.0f}"),
    ("modes_kl", "KL classes", "low", "{:.3f}"),
    ("energy", "energy D²", "low", "{:.3f}"),
    ("mmd", "MMD² ×10³", "low", "{:.2f}"),
    ("sliced", "SW₂", "low", "{:.3f}"),
    ("wasserstein", "W₂", "low", "{:.2f}"),
    ("sinkhorn", "Sinkhorn S^½", "low", "{:.2f}"),
    ("bures", "Bures W₂", "low", "{:.3f}"),
    ("birthday", "closest pair", "high", "{:.2f}"),
]


def subset(x: Tensor, n: int, seed: int) -> Tensor:
    if len(x) <= n:
        return x
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]]


def metrics(reference: dict, sample: dict, sinkhorn_reg: float) -> dict[str, float]:
    """Every metric of ``sample`` against ``reference``: dicts of features, digits, pixels."""
    f_ref, f = reference["features"], sample["features"]
    scores = prdc(f_ref, f, 5)
    bins = ndb(reference["pixels"], sample["pixels"], bins=100, seed=0)
    classes = label_histogram(sample["digits"][:, 0], 10)
    small_ref, small = subset(f_ref, N_TRANSPORT, 0), subset(f, N_TRANSPORT, 1)
    return {
        "n": len(f),
        "fid": frechet_distance(f_ref, f).value,
        "kid": 1e3 * kid(f_ref, f, subsets=100, subset_size=min(1000, len(f)), seed=0).mean,
        **scores,
        "vendi": vendi_score(f),
        "ndb": bins.different_bins,
        "ndb_js": bins.js_divergence,
        "modes": classes.modes_covered,
        "modes_kl": classes.kl_to_uniform,
        "energy": energy_distance(f_ref, f).item(),
        "mmd": 1e3 * mmd(f_ref, f).item(),
        "sliced": sliced_wasserstein(f_ref, f, n_projections=1000, seed=0).item(),
        "wasserstein": wasserstein(small_ref, small).item(),
        "sinkhorn": sinkhorn(small_ref, small, sinkhorn_reg, debiased=True,
                             max_iter=5000).item(),
        "bures": bures_wasserstein(f_ref, f).item(),
        "birthday": min(d for _, _, d in birthday_test(sample["pixels"], s=100, batches=20,
                                                          top=1).closest_pairs),
    }


def describe(images: Tensor) -> dict:
    features, digits = mnist_features_and_labels(images)
    return {"features": features, "digits": digits, "pixels": pixel_features(images)}


def sample_sets(test_images: Tensor, test_labels: Tensor) -> dict[str, Callable[[], Tensor]]:
    """Row name -> the images of that row (built lazily)."""
    unit = to_unit(test_images)
    noise = torch.randn(unit.shape, generator=torch.Generator().manual_seed(0))
    return {
        "test (floor)": lambda: unit,
        f"noise σ={NOISE_STD}": lambda: (unit + NOISE_STD * noise).clamp(0, 1),
        f"blur σ={BLUR_SIGMA}px": lambda: gaussian_blur(unit, [5, 5], [BLUR_SIGMA]).clamp(0, 1),
        "no 9s": lambda: unit[test_labels != 9],
        "3 classes (0-2)": lambda: unit[test_labels <= 2],
        "1 class (1)": lambda: unit[test_labels == 1],
    }


def markdown(rows: dict[str, dict], noise: dict[str, float], reference_vendi: float,
             stacked: dict, seconds: float) -> str:
    floor = rows["test (floor)"]
    header = "| set | N | " + " | ".join(title for _, title, _, _ in COLUMNS) + " |"
    lines = [header, "|---" * (len(COLUMNS) + 2) + "|"]
    for name, row in rows.items():
        cells = []
        for key, _, better, fmt in COLUMNS:
            text = fmt.format(row[key])
            worse = (row[key] - floor[key]) * (1 if better == "low" else -1)
            if name != "test (floor)" and worse <= 2 * noise[key]:
                text += " ∘"  # no worse than the floor, within twice the noise
            cells.append(text)
        lines.append(f"| {name} | {row['n']} | " + " | ".join(cells) + " |")
    lines.append("| noise (floor spread) | | " + " | ".join(
        fmt.format(noise[key]) for key, _, _, fmt in COLUMNS) + " |")
    missed = [title for key, title, better, _ in COLUMNS
              if (rows["no 9s"][key] - floor[key]) * (1 if better == "low" else -1)
              <= 2 * noise[key]]
    return "\n".join([
        "Generated by `python benchmarks/metrics_reference_table.py` "
        f"({seconds / 60:.0f} min on {torch.get_num_threads()} CPU threads); numbers in "
        "docs/results/metrics_table.json.",
        "",
        *lines,
        "",
        "∘: the metric does not get worse than the floor by more than twice its noise (the "
        "largest change of the floor over two other reference subsets). Vendi, classes, KL "
        "classes and the closest pair do not look at the reference, so their noise reads 0 and "
        "∘ only says they did not move the worse way. Reference Vendi score: "
        f"{reference_vendi:.2f}.",
        "",
        "Metrics that do not notice the dropped class (no 9s): " + ", ".join(missed) + ".",
        "",
        f"Stacked MNIST, {stacked['n']} real images from the test set, shipped CNN: "
        f"{stacked['modes_covered']} of 1000 modes covered, KL(p ‖ uniform) = "
        f"{stacked['kl_to_uniform']:.4f} (the triples' own law: {stacked['true_modes_covered']} "
        f"modes, KL {stacked['true_kl_to_uniform']:.4f}).",
    ])


def main() -> None:
    start = time.perf_counter()
    train, test = load_images("mnist", "train"), load_images("mnist", "test")
    references = {}
    for seed in (0, 1, 2):
        index = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
        references[seed] = describe(to_unit(train.images[index[:N_REFERENCE]]))
    # the entropic regularisation: 10% of the mean squared distance between reference features
    # (smaller values need thousands of POT's log-domain iterations)
    small = subset(references[0]["features"], N_TRANSPORT, 0)
    sinkhorn_reg = 0.1 * torch.cdist(small, small).square().mean().item()
    rows, floors = {}, []
    for name, build in sample_sets(test.images, test.labels).items():
        print(f"{name} ...", file=sys.stderr, flush=True)
        sample = describe(build())
        rows[name] = metrics(references[0], sample, sinkhorn_reg)
        if name == "test (floor)":
            floors = [metrics(references[seed], sample, sinkhorn_reg) for seed in (1, 2)]
    noise = {key: max(abs(f[key] - rows["test (floor)"][key]) for f in floors)
             for key, _, _, _ in COLUMNS}
    images, triples = stacked_mnist(test.images, test.labels, 26_000, seed=0)
    found = stacked_mnist_modes(images)
    truth = label_histogram(mode_index(triples), 1000)
    stacked = {"n": found.n, "modes_covered": found.modes_covered,
               "kl_to_uniform": found.kl_to_uniform, "true_modes_covered": truth.modes_covered,
               "true_kl_to_uniform": truth.kl_to_uniform}
    reference_vendi = vendi_score(references[0]["features"])
    seconds = time.perf_counter() - start
    JSON_OUT.write_text(json.dumps({
        "command": "python benchmarks/metrics_reference_table.py",
        "reference": f"{N_REFERENCE} MNIST training images (seeded subsets 0, 1, 2)",
        "features": "FID-MNIST (shipped CNN, 128-d); NDB and closest pair on pixels",
        "sinkhorn_reg": sinkhorn_reg, "transport_points": N_TRANSPORT,
        "rows": rows, "floor_replicates": floors, "noise": noise,
        "reference_vendi": reference_vendi, "stacked_mnist": stacked,
        "seconds": round(seconds, 1)}, indent=2) + "\n")
    write_between_markers(DOC, markdown(rows, noise, reference_vendi, stacked, seconds),
                          "reference-table")
    print(f"wrote {JSON_OUT} and {DOC}")


if __name__ == "__main__":
    main()
