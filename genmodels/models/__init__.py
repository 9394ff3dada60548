"""Model kinds: each is a :class:`Model` subclass registered under its config ``kind``."""

from genmodels.models.base import MODELS, Model, Phase, register
from genmodels.models.classifier import Classifier, ClassifierConfig

__all__ = ["MODELS", "Classifier", "ClassifierConfig", "Model", "Phase", "register"]
