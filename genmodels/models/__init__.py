"""Model kinds: each is a :class:`Model` subclass registered under its config ``kind``."""

from genmodels.models.base import (
    MODELS,
    ConditionalSampler,
    IterativeSampler,
    LatentVariableModel,
    LikelihoodModel,
    Model,
    Phase,
    Sampler,
    TemperedSampler,
    register,
)
from genmodels.models.classifier import Classifier, ClassifierConfig
from genmodels.models.conditional import CVAE, ConditionalGAN, MaskedCVAE
from genmodels.models.diffusion import Diffusion, DiffusionConfig
from genmodels.models.flow import FlowMatching, FlowMatchingConfig
from genmodels.models.gan import GAN, GANConfig
from genmodels.models.vae import IWAE, VAE, WAE, RadonSobolevAE, SlicedWAE
from genmodels.models.vamp import VampPriorVAE

__all__ = ["CVAE", "GAN", "IWAE", "MODELS", "VAE", "WAE", "Classifier", "ClassifierConfig",
           "ConditionalGAN", "ConditionalSampler", "Diffusion", "DiffusionConfig", "FlowMatching",
           "FlowMatchingConfig", "GANConfig", "IterativeSampler", "LatentVariableModel",
           "LikelihoodModel", "MaskedCVAE", "Model", "Phase", "RadonSobolevAE", "Sampler",
           "SlicedWAE", "TemperedSampler", "VampPriorVAE", "register"]
