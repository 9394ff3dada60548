"""Networks: plain ``nn.Module`` building blocks, shared by every model kind."""

from genmodels.nets.classifier import ConvNet, MLPNet
from genmodels.nets.mlp import mlp

__all__ = ["ConvNet", "MLPNet", "mlp"]
