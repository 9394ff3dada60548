"""Optimisers and learning-rate schedules, by name from ``[train]`` configs.

``python -m genmodels.optim.sgd_mean`` runs the course's mean-estimation example.
"""

from genmodels.optim.factory import (
    OPTIMIZERS,
    KeepLR,
    lr_factor,
    make_optimizer,
    make_scheduler,
)
from genmodels.optim.sgd_g2 import SGDG2

__all__ = ["OPTIMIZERS", "KeepLR", "SGDG2", "lr_factor", "make_optimizer", "make_scheduler"]
