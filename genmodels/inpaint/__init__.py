"""Inpainting with VAEs: masks, completion methods, metrics and the 15-digit figure.

    >>> from genmodels.inpaint import make_mask, inpaint
    >>> mask = make_mask("top", n=len(x))             # 1 = observed; the top half is missing
    >>> completions = inpaint(vae, x, mask, "mwg", samples=10)   # (n, 10, C, 28, 28)
"""

from __future__ import annotations

import torch
from torch import Tensor

from genmodels.config import ConfigError, DataConfig
from genmodels.inpaint.figures import fifteen_digits_figure, inpainting_canvas
from genmodels.inpaint.masks import MASK_KINDS, check_mask, make_mask, png_mask
from genmodels.inpaint.methods import (
    METHODS,
    importance_resampling,
    inpaint,
    latent_map,
    metropolis_within_gibbs,
    observed_log_likelihood,
    pseudo_gibbs,
)
from genmodels.inpaint.metrics import (
    classifier_accuracy,
    completion_class_entropy,
    completion_classes,
    conditional_nll,
    masked_mse,
    true_class_share,
)
from genmodels.models import VAE


def held_out_images(config: DataConfig, root: str | None = None,
                    seed: int = 0) -> tuple[Tensor, Tensor]:
    """A run's held-out images (N, C, 28, 28) as floats in the view its model trained on, and
    their labels (N,). Binary views give one fixed draw (``static_binarize`` with ``seed``)."""
    from genmodels.data import static_binarize, to_symmetric, to_unit
    from genmodels.data.build import IMAGE_DATASETS, dataset_tensors

    if config.name not in (*IMAGE_DATASETS, "stacked_mnist"):
        raise ConfigError(f"data.name = {config.name!r} holds no images to inpaint")
    _, (images, labels) = dataset_tensors(config, root, seed)
    if config.view == "symmetric":
        return to_symmetric(images), labels
    if config.view == "dynamic_binary":
        return static_binarize(images, seed), labels
    return to_unit(images), labels  # unit, or static_binary (drawn by dataset_tensors)


def run_inpainting(model: VAE, images: Tensor, labels: Tensor, mask_kind: str, method: str,
                   n: int = 15, samples: int = 10, seed: int = 0, **options) -> dict:
    """Inpaint ``n`` images drawn (seeded) from ``images`` (N, C, 28, 28), in the model's data
    range, with ``samples`` completions each.

    Returns CPU tensors ``inputs`` (n, C, H, W: the truth with missing pixels set to 0),
    ``mask`` (n, 1, H, W; 1 = observed), ``completions`` (n, S, C, H, W), ``labels`` (n,) and
    ``truth`` (n, C, H, W), plus ``method``, ``mask_kind`` and ``seed``.
    """
    from genmodels.utils import seed_everything

    seed_everything(seed)
    index = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    device = next(model.parameters()).device
    truth = images[index].to(device)
    mask = make_mask(mask_kind, len(truth), truth.shape[-1], seed).to(device)
    completions = inpaint(model, truth, mask, method, samples, **options)
    return {"inputs": (truth * mask).cpu(), "mask": mask.cpu(), "completions": completions.cpu(),
            "labels": labels[index].cpu(), "truth": truth.cpu(), "method": method,
            "mask_kind": mask_kind, "seed": seed}


__all__ = [
    "MASK_KINDS",
    "METHODS",
    "check_mask",
    "classifier_accuracy",
    "completion_class_entropy",
    "completion_classes",
    "conditional_nll",
    "fifteen_digits_figure",
    "held_out_images",
    "importance_resampling",
    "inpaint",
    "inpainting_canvas",
    "latent_map",
    "make_mask",
    "masked_mse",
    "metropolis_within_gibbs",
    "observed_log_likelihood",
    "png_mask",
    "pseudo_gibbs",
    "run_inpainting",
    "true_class_share",
]
