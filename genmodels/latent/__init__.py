"""Latent-space tools: encode, interpolate, traverse, 2-D maps, class arithmetic, and diverse
sampling by Huber-energy quantization of the latent law."""

from genmodels.latent.figures import image_table, scatter_codes
from genmodels.latent.quantize import (
    TARGET_LAWS,
    diverse_samples,
    huber_energy_to_target,
    law_sampler,
    quantize,
)
from genmodels.latent.tools import (
    class_arithmetic,
    class_means,
    encode_dataset,
    interpolate,
    latent_map,
    lerp,
    principal_directions,
    slerp,
    traverse,
)

__all__ = ["TARGET_LAWS", "class_arithmetic", "class_means",
           "diverse_samples",
           "encode_dataset", "huber_energy_to_target", "image_table", "interpolate",
           "latent_map", "lerp", "principal_directions", "law_sampler", "quantize",
           "scatter_codes", "slerp", "traverse"]
