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
from genmodels.nets.unet import SinusoidalEmbedding, TimeMLP, UNet, denoiser

__all__ = ["ConvDecoder", "ConvEncoder", "ConvNet", "MLPDecoder", "MLPEncoder", "MLPNet",
           "SinusoidalEmbedding", "TimeMLP", "UNet", "decoder", "denoiser", "encoder", "mlp"]
