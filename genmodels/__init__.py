"""genmodels: generative models of images in PyTorch (VAEs, GANs, inpainting, metrics)."""

import os

# MKL may change the number of threads of a matrix product at run time (MKL_DYNAMIC), and its
# float32 products then differ in the last bits, so two runs of one config could drift apart.
# Strict CNR mode makes ?gemm bitwise reproducible whatever the thread count, at no measurable
# cost (docs/trainer.md). MKL reads this on its first call; a value set by the user is kept.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

from genmodels.config import Config, ConfigError, load_config
from genmodels.lazy import lazy_exports

__version__ = "0.1.0"

# load and classifier import torch when first used: `genmodels --help` stays fast
__getattr__, __dir__ = lazy_exports(__name__, {"genmodels.io": ("classifier", "load")})

__all__ = ["Config", "ConfigError", "classifier", "load", "load_config"]
