"""Neural networks from scratch in NumPy: layers with hand-written backpropagation, SGD, Adam,
Iris.

``genmodels scratch iris`` trains the course's 4-32-16-3 network and plots its loss; the 1-D
exercise ŷ = w₂ x² + w₁ x + b checks hand-derived gradients against torch autograd.
"""

from genmodels.scratch.iris import IrisRun, fit_mlp, load_iris, save_loss_curve, train_iris
from genmodels.scratch.mlp import MLP, SGD, Adam, Dense, ReLU, SoftmaxCrossEntropy
from genmodels.scratch.polynomial import polynomial_grads_numpy, polynomial_grads_torch

__all__ = ["MLP", "SGD", "Adam", "Dense", "IrisRun", "ReLU", "SoftmaxCrossEntropy", "fit_mlp",
           "load_iris", "polynomial_grads_numpy", "polynomial_grads_torch", "save_loss_curve",
           "train_iris"]
