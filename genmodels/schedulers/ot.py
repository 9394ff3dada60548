"""Minibatch optimal-transport coupling of noise and data for flow matching (OT-CFM, Tong et
al. 2023; Pooladian et al. 2023)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from genmodels.errors import InputError


def ot_pairing(x0: Tensor, x1: Tensor) -> Tensor:
    """The permutation ``perm`` (N,) of the noise rows ``x0`` that pairs them with the data
    rows ``x1`` at least total squared Euclidean cost:

        perm = argmin_π Σ_j ‖x0[π(j)] − x1[j]‖²,

    the exact minibatch OT plan between the two uniform empirical measures (``ot.emd`` of
    POT: with N points on each side its optimal vertex is a permutation matrix, scaled by
    1/N). Train on the pairs (x0[perm], x1). x0, x1 (N, …) of one shape; perm int64 on
    x0's device."""
    if x0.shape != x1.shape or x0.dim() < 1:
        raise InputError(f"ot_pairing: x0 of shape {tuple(x0.shape)} and x1 of shape "
                         f"{tuple(x1.shape)} should have one shape (N, ...)")
    n = len(x0)
    noise = x0.detach().reshape(n, -1).cpu().double().numpy()  # (N, D)
    data = x1.detach().reshape(n, -1).cpu().double().numpy()  # (N, D)
    import ot  # POT imports scikit-learn: seconds, paid only when pairing is on

    plan = ot.emd(np.full(n, 1 / n), np.full(n, 1 / n), ot.dist(noise, data))  # (N, N)
    perm = plan.argmax(axis=0)  # (N,): the noise row sent to each data row
    if len(np.unique(perm)) != n:
        raise RuntimeError("ot_pairing: ot.emd returned a plan that is not a permutation")
    return torch.from_numpy(perm).to(device=x0.device, dtype=torch.int64)


__all__ = ["ot_pairing"]
