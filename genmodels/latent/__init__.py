"""Latent-space tools: encode, interpolate, traverse, 2-D maps, class arithmetic, and diverse
sampling by Huber-energy quantization of the latent law. The names are imported when first used
(:mod:`genmodels.lazy`): ``genmodels latent --help`` loads no torch."""

from genmodels.lazy import lazy_exports

EXPORTS = {
    "genmodels.latent.figures": ("image_table", "scatter_codes"),
    "genmodels.latent.quantization": ("TARGET_LAWS", "diverse_samples", "huber_energy_to_target",
                                  "law_sampler", "quantize"),
    "genmodels.latent.tools": ("class_arithmetic", "class_means", "encode_dataset",
                               "interpolate", "latent_map", "lerp", "principal_directions",
                               "slerp", "traverse"),
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
