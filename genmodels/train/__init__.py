"""The common training loop, its checkpoints and its optimisers."""

from genmodels.optim import OPTIMIZERS, make_optimizer
from genmodels.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from genmodels.train.run_dir import RunDirectoryError
from genmodels.train.trainer import Callback, NonFiniteLossError, Trainer

__all__ = ["OPTIMIZERS", "Callback", "CheckpointError", "NonFiniteLossError", "RunDirectoryError",
           "Trainer",
           "load_checkpoint", "make_optimizer", "save_checkpoint"]
