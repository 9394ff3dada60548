"""Inpainting with VAEs, diffusion and flow-matching models: masks, completion methods,
metrics and the 15-digit figure.

    >>> from genmodels.inpaint import make_mask, inpaint
    >>> mask = make_mask("top", len(x), x.shape[-2:])  # 1 = observed; the top half is missing
    >>> completions = inpaint(vae, x, mask, "mwg", samples=10)   # (n, 10, C, H, W)
    >>> completions = inpaint(diffusion, x, mask, "repaint", 10, jump_length=10, resample=10)
    >>> run = run_inpainting(vae, images, labels, "quadrants1", "mwg", n=200, samples=10)
    >>> inpainting_metrics(vae, run, classifier=genmodels.classifier(), k=1000)

Which methods a model takes is declared by its class (:data:`FAMILIES`): a VAE the latent
methods of :mod:`~genmodels.inpaint.methods`, a diffusion or flow-matching model those of
:mod:`~genmodels.inpaint.denoising`. The methods' names and defaults are plain data in
:mod:`~genmodels.inpaint.options`; the names below are imported when first used
(:mod:`genmodels.lazy`), so the command line reads the options without importing torch.
"""

from genmodels.lazy import lazy_exports

EXPORTS = {
    "genmodels.inpaint.completion": ("ALL_METHODS", "FAMILIES", "Family", "family",
                                     "held_out_images", "inpaint", "inpainting_method",
                                     "inpainting_metrics", "run_inpainting"),
    "genmodels.inpaint.denoising": ("DIFFUSION_METHODS", "FLOW_METHODS", "check_images",
                                    "flow_dps", "flow_replacement", "net_evaluations",
                                    "repaint", "repaint_schedule"),
    "genmodels.inpaint.figures": ("fifteen_digits_figure", "inpainting_canvas"),
    "genmodels.inpaint.masks": ("check_mask", "make_mask", "png_mask"),
    "genmodels.inpaint.methods": ("METHODS", "importance_resampling", "latent_map",
                                  "metropolis_within_gibbs", "observed_log_likelihood",
                                  "pseudo_gibbs"),
    "genmodels.inpaint.options": ("MASK_KINDS",),
    "genmodels.inpaint.metrics": ("classifier_accuracy", "completion_class_entropy",
                                  "completion_classes", "conditional_nll", "masked_mse",
                                  "predictive_nll", "true_class_share"),
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
