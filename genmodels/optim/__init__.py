"""Optimisers and learning-rate schedules, by name from ``[train]`` configs."""

from genmodels.optim.factory import OPTIMIZERS, lr_factor, make_optimizer, make_scheduler

__all__ = ["OPTIMIZERS", "lr_factor", "make_optimizer", "make_scheduler"]
