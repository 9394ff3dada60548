"""The common training loop, its checkpoints and its optimisers."""

from genmodels.optim import OPTIMIZERS, make_optimizer
from genmodels.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from genmodels.train.trainer import Callback, NonFiniteLossError, Trainer

__all__ = ["OPTIMIZERS", "Callback", "CheckpointError", "NonFiniteLossError", "Trainer",
           "load_checkpoint", "make_optimizer", "save_checkpoint"]
