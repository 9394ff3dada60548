"""The NumPy MLP on Iris over many seeded splits, and the cross-validation that chose its defaults.

    python benchmarks/iris_splits.py          # train_iris() on the splits of seeds 0-29
    python benchmarks/iris_splits.py --cv     # + 5-fold CV inside each training split, a grid

Each seed draws a stratified split holding out 30% (45 test flowers, one error = 2.2%), the
weights and the shuffles. ``--cv`` scores every setting of a small grid (input whitening, L2
weight decay, epochs) by 5-fold cross-validation on each seed's 105 training flowers alone:
the input transform is fitted on the four training folds, the fifth is predicted. The pick is
the setting of the best mean CV accuracy (ties: lower CV cross-entropy); the test accuracies
of the grid are printed beside it for the record, and took no part in the choice.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from genmodels.scratch.iris import (
    fit_mlp,
    input_transform,
    load_iris,
    stratified_split,
    train_iris,
)

GRID = {"whiten": (False, True), "weight_decay": (0.0, 0.01, 0.03, 0.1), "epochs": (100, 200)}


def cross_validate(seed: int, folds: int = 5, whiten: bool = True, **fit) -> tuple[int, float]:
    """Correct predictions and summed cross-entropy (nats) over the folds of seed's training
    split; its test flowers are never looked at."""
    features, labels = load_iris()
    train, _ = stratified_split(labels, 0.3, np.random.default_rng(seed))
    rng = np.random.default_rng((seed, 1))
    by_class = [rng.permutation(train[labels[train] == k]) for k in np.unique(labels)]
    parts = [np.concatenate([members[i::folds] for members in by_class]) for i in range(folds)]
    correct, nats = 0, 0.0
    for i, held in enumerate(parts):
        fit_on = np.concatenate([part for j, part in enumerate(parts) if j != i])
        mean, transform = input_transform(features[fit_on], whiten)
        x = (features - mean) @ transform
        model, _ = fit_mlp(x[fit_on], labels[fit_on], np.random.default_rng((seed, 2, i)),
                           seed, **fit)
        correct += int((model.predict(x[held]) == labels[held]).sum())
        nats += model.loss(x[held], labels[held]) * len(held)
    return correct, nats


def summary(accuracies: list[float]) -> str:
    a = np.asarray(accuracies)
    return (f"mean {a.mean():.4f}  min {a.min():.4f}  max {a.max():.4f}  median "
            f"{np.median(a):.4f}  >= 0.95 on {(a >= 0.95).mean():.0%} of the splits")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=30, help="splits of seeds 0..N-1")
    p.add_argument("--cv", action="store_true", help="also run the cross-validated grid")
    args = p.parse_args()
    seeds = range(args.seeds)

    start = time.perf_counter()
    accuracies = [train_iris(seed=seed).test_accuracy for seed in seeds]
    elapsed = time.perf_counter() - start
    print(f"train_iris() defaults, splits of seeds 0-{args.seeds - 1} ({elapsed:.1f} s):")
    print(f"  seed 0 {accuracies[0]:.4f}  {summary(accuracies)}")
    print("  " + " ".join(f"{a:.3f}" for a in accuracies))
    if not args.cv:
        return

    n_train = len(stratified_split(load_iris()[1], 0.3, np.random.default_rng(0))[0])
    print(f"\n5-fold CV inside the training splits ({n_train} flowers each), lr 0.01, batch 16:")
    rows = []
    for whiten, weight_decay, epochs in itertools.product(*GRID.values()):
        start = time.perf_counter()
        scores = [cross_validate(seed, whiten=whiten, weight_decay=weight_decay, epochs=epochs)
                  for seed in seeds]
        cv_accuracy = sum(c for c, _ in scores) / (n_train * len(scores))
        cv_nats = sum(n for _, n in scores) / (n_train * len(scores))
        test = [train_iris(seed=seed, whiten=whiten, weight_decay=weight_decay,
                           epochs=epochs).test_accuracy for seed in seeds]
        rows.append((cv_accuracy, -cv_nats, whiten, weight_decay, epochs))
        print(f"  whiten {whiten!s:5}  weight_decay {weight_decay:<5}  epochs {epochs}:  CV "
              f"accuracy {cv_accuracy:.4f}  CV cross-entropy {cv_nats:.4f}  | test "
              f"{summary(test)}  ({time.perf_counter() - start:.0f} s)", flush=True)
    _, _, whiten, weight_decay, epochs = max(rows)
    print(f"pick by CV: whiten={whiten}, weight_decay={weight_decay}, epochs={epochs}")


if __name__ == "__main__":
    main()
