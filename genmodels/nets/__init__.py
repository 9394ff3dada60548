"""Networks: plain ``nn.Module`` building blocks, shared by every model kind."""

from genmodels.nets.autoencoder import (
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
    decoder,
    encoder,
)
from genmodels.nets.classifier import ConvNet, MLPNet
from genmodels.nets.mlp import mlp

__all__ = ["ConvDecoder", "ConvEncoder", "ConvNet", "MLPDecoder", "MLPEncoder", "MLPNet",
           "decoder", "encoder", "mlp"]
