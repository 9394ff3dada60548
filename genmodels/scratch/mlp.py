"""A multilayer perceptron in NumPy with hand-written backpropagation.

The layers follow the course's column convention: a batch is a matrix whose n columns are the
examples, X of shape (features, n). Each layer's ``backward`` takes ∂L/∂(its output) and
returns ∂L/∂(its input), storing the gradients of its own parameters:

- :class:`Dense`, Y = W X + b: dW = dY Xᵀ, db = dY (summed over the batch), dX = Wᵀ dY;
- :class:`ReLU`, Y = max(X, 0): the gradient passes where Y > 0;
- :class:`SoftmaxCrossEntropy`, L = mean of −log S[label] with S = softmax(Y): ∂L/∂Y = S − P,
  P the one-hot labels (divided by n for the mean).

An L2 penalty (λ/2) Σ‖W‖² on the weight matrices (not the biases) adds λ W to each dW
(``MLP.backward(weight_decay=λ)``). :class:`SGD` and :class:`Adam` update the arrays in place.

:class:`MLP` takes rows (n, features), as NumPy and PyTorch data usually come, and transposes
once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Dense:
    """Y = W X + b with W of shape (out, in) and b of shape (out,).

    He initialisation, W ~ N(0, 2/in), b = 0: it keeps the mean square of the activations from
    layer to layer through a ReLU, which zeroes half of them (Glorot's 2/(in + out) is for
    tanh-like units; measured on Iris, the two train to the same accuracy).
    """

    def __init__(self, in_features: int, out_features: int, rng: np.random.Generator) -> None:
        self.W = rng.normal(0.0, np.sqrt(2.0 / in_features), size=(out_features, in_features))
        self.b = np.zeros(out_features)
        self.dW, self.db = np.zeros_like(self.W), np.zeros_like(self.b)

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X (in, n) -> Y (out, n)."""
        self.X = X
        return self.W @ X + self.b[:, None]

    def backward(self, dY: np.ndarray) -> np.ndarray:
        """dY (out, n) -> dX (in, n); sets dW (out, in) and db (out,)."""
        self.dW = dY @ self.X.T
        self.db = dY.sum(axis=1)
        return self.W.T @ dY

    def parameters(self) -> list[np.ndarray]:
        return [self.W, self.b]

    def gradients(self) -> list[np.ndarray]:
        return [self.dW, self.db]


class ReLU:
    """Y = max(X, 0), elementwise."""

    def forward(self, X: np.ndarray) -> np.ndarray:
        self.Y = np.maximum(X, 0.0)
        return self.Y

    def backward(self, dY: np.ndarray) -> np.ndarray:
        return dY * (self.Y > 0)

    def parameters(self) -> list[np.ndarray]:
        return []

    def gradients(self) -> list[np.ndarray]:
        return []


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(Y) against integer labels, in nats."""

    def forward(self, Y: np.ndarray, labels: np.ndarray) -> float:
        """Y: logits (classes, n); labels: (n,) integers in [0, classes)."""
        shifted = Y - Y.max(axis=0, keepdims=True)  # the same softmax, without overflow
        log_S = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))
        self.S = np.exp(log_S)
        self.P = np.zeros_like(Y)
        self.P[labels, np.arange(Y.shape[1])] = 1.0
        return float(-(log_S * self.P).sum() / Y.shape[1])

    def backward(self) -> np.ndarray:
        """∂L/∂Y = (S − P) / n, shape (classes, n)."""
        return (self.S - self.P) / self.S.shape[1]


class MLP:
    """Dense-ReLU-...-Dense classifier with widths ``sizes``, e.g. (4, 32, 16, 3) for Iris."""

    def __init__(self, sizes: Sequence[int], seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.sizes = list(sizes)
        self.layers: list[Dense | ReLU] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            self.layers.append(Dense(n_in, n_out, rng))
            if i < len(sizes) - 2:
                self.layers.append(ReLU())
        self.criterion = SoftmaxCrossEntropy()

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (n, features) -> logits (n, classes)."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"the network takes {self.sizes[0]} features per example, as rows "
                             f"of an (n, {self.sizes[0]}) array; got shape {x.shape}")
        X = x.T
        for layer in self.layers:
            X = layer.forward(X)
        return X.T

    def loss(self, x: np.ndarray, labels: np.ndarray) -> float:
        """Mean cross-entropy (nats) of the batch x (n, features), labels (n,)."""
        return self.criterion.forward(self.forward(x).T, labels)

    def backward(self, weight_decay: float = 0.0) -> None:
        """Gradients of the last :meth:`loss` plus (weight_decay/2) Σ‖W‖² into every Dense
        layer's dW, db (the biases are not decayed)."""
        dY = self.criterion.backward()
        for layer in reversed(self.layers):
            dY = layer.backward(dY)
            if weight_decay and isinstance(layer, Dense):
                layer.dW = layer.dW + weight_decay * layer.W

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted classes (n,)."""
        return self.forward(x).argmax(axis=1)

    def parameters(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.parameters()]

    def gradients(self) -> list[np.ndarray]:
        return [g for layer in self.layers for g in layer.gradients()]


class SGD:
    """θ ← θ − lr ∇L, in place."""

    def __init__(self, lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"SGD needs a learning rate > 0, got lr={lr}")
        self.lr = lr

    def step(self, parameters: list[np.ndarray], gradients: list[np.ndarray]) -> None:
        for p, g in zip(parameters, gradients, strict=True):
            p -= self.lr * g


class Adam:
    """Adam (Kingma & Ba 2015), in place: with g the gradient and t the step count,
    m ← β₁ m + (1 − β₁) g, v ← β₂ v + (1 − β₂) g², θ ← θ − lr m̂ / (√v̂ + ε), where
    m̂ = m / (1 − β₁ᵗ) and v̂ = v / (1 − β₂ᵗ) undo the bias of the zero start."""

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        if not lr > 0:
            raise ValueError(f"Adam needs a learning rate > 0, got lr={lr}")
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.t = 0
        self.m: list[np.ndarray] = []
        self.v: list[np.ndarray] = []

    def step(self, parameters: list[np.ndarray], gradients: list[np.ndarray]) -> None:
        if not self.m:
            self.m = [np.zeros_like(p) for p in parameters]
            self.v = [np.zeros_like(p) for p in parameters]
        self.t += 1
        correction1, correction2 = 1 - self.beta1**self.t, 1 - self.beta2**self.t
        for p, g, m, v in zip(parameters, gradients, self.m, self.v, strict=True):
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            p -= self.lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)
