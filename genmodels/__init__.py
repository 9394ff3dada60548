"""genmodels: generative models of images in PyTorch (VAEs, GANs, inpainting, metrics)."""

from genmodels.config import Config, ConfigError, load_config
from genmodels.io import classifier, load

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "classifier", "load", "load_config"]
