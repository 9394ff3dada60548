"""Iris with the NumPy MLP: the course's 4-32-16-3 network trained by minibatch SGD.

    run = train_iris(epochs=100, seed=0)
    print(run.test_accuracy)            # on a stratified, seeded 30% held-out split
    run.predict([[5.1, 3.5, 1.4, 0.2]])  # -> array([0]), setosa
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from genmodels.scratch.mlp import MLP, SGD

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
SPECIES = ("setosa", "versicolor", "virginica")


def load_iris() -> tuple[np.ndarray, np.ndarray]:
    """The shipped Iris CSV (see ``data/README.md``): features (150, 4) in cm, labels (150,)
    with 0 = setosa, 1 = versicolor, 2 = virginica."""
    text = resources.files("genmodels.scratch").joinpath("data/iris.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    features = np.array([[float(row[name]) for name in FEATURES] for row in rows])
    labels = np.array([SPECIES.index(row["species"]) for row in rows])
    return features, labels


def stratified_split(labels: np.ndarray, test_fraction: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices holding out ``test_fraction`` of every class."""
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = round(test_fraction * len(members))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.concatenate(train), np.concatenate(test)


@dataclass
class IrisRun:
    """A trained network with the standardisation of its training features."""

    model: MLP
    mean: np.ndarray  # (4,) feature means of the training split, cm
    std: np.ndarray  # (4,) feature standard deviations of the training split, cm
    losses: list[float]  # mean training cross-entropy of each epoch, nats
    test_accuracy: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Species indices (n,) of raw features (n, 4) in cm."""
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if features.shape[1] != len(FEATURES):
            raise ValueError(f"an Iris flower has {len(FEATURES)} features "
                             f"({', '.join(FEATURES)}); got {features.shape[1]}")
        return self.model.predict((features - self.mean) / self.std)


def train_iris(epochs: int = 100, seed: int = 0, hidden: tuple[int, ...] = (32, 16),
               lr: float = 0.05, batch_size: int = 16, test_fraction: float = 0.3) -> IrisRun:
    """Train a 4-(hidden)-3 MLP by SGD on standardised features; report held-out accuracy."""
    rng = np.random.default_rng(seed)
    features, labels = load_iris()
    train, test = stratified_split(labels, test_fraction, rng)
    mean, std = features[train].mean(axis=0), features[train].std(axis=0)
    x = (features - mean) / std
    model = MLP((len(FEATURES), *hidden, len(SPECIES)), seed=seed)
    optimizer = SGD(lr)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(train)
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            total += model.loss(x[batch], labels[batch]) * len(batch)
            model.backward()
            optimizer.step(model.parameters(), model.gradients())
        losses.append(total / len(order))
    accuracy = float((model.predict(x[test]) == labels[test]).mean())
    return IrisRun(model, mean, std, losses, accuracy)


def save_loss_curve(losses: list[float], path: str | Path) -> Path:
    """Training cross-entropy against the epoch, as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    ax.plot(range(1, len(losses) + 1), losses)
    ax.set(xlabel="epoch", ylabel="training cross-entropy (nats)", yscale="log",
           title="NumPy MLP on Iris")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return Path(path)
