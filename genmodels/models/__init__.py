"""Model kinds: each is a :class:`Model` subclass registered under its config ``kind``."""

from genmodels.models.base import MODELS, Model, Phase, register
from genmodels.models.classifier import Classifier, ClassifierConfig
from genmodels.models.vae import IWAE, VAE, WAE, RadonSobolevAE, SlicedWAE

__all__ = ["IWAE", "MODELS", "VAE", "WAE", "Classifier", "ClassifierConfig", "Model", "Phase",
           "RadonSobolevAE", "SlicedWAE", "register"]
