"""The 1-D exercise: ŷ = w₂ x² + w₁ x + b with L = (ŷ − y)², gradients by hand and by autograd.

By the chain rule, with r = ŷ − y: ∂L/∂w₂ = 2 r x², ∂L/∂w₁ = 2 r x, ∂L/∂b = 2 r. On arrays
of examples the loss and the gradients are averaged.
"""

from __future__ import annotations

import numpy as np
import torch


def polynomial_grads_numpy(x: np.ndarray, y: np.ndarray, w2: float, w1: float,
                           b: float) -> tuple[float, np.ndarray]:
    """Mean loss and its hand-derived gradient (∂L/∂w₂, ∂L/∂w₁, ∂L/∂b), for x, y of shape (n,)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    residual = w2 * x**2 + w1 * x + b - y
    grads = np.array([np.mean(2 * residual * x**2), np.mean(2 * residual * x),
                      np.mean(2 * residual)])
    return float(np.mean(residual**2)), grads


def polynomial_grads_torch(x: np.ndarray, y: np.ndarray, w2: float, w1: float,
                           b: float) -> tuple[float, np.ndarray]:
    """The same mean loss and gradient by torch autograd, in float64."""
    x, y = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    weights = torch.tensor([w2, w1, b], dtype=torch.float64, requires_grad=True)
    loss = ((weights[0] * x**2 + weights[1] * x + weights[2] - y) ** 2).mean()
    loss.backward()
    return loss.item(), weights.grad.numpy()
