"""Inpainting with VAEs: masks, completion methods, metrics and the 15-digit figure.

    >>> from genmodels.inpaint import make_mask, inpaint
    >>> mask = make_mask("top", len(x), x.shape[-2:])  # 1 = observed; the top half is missing
    >>> completions = inpaint(vae, x, mask, "mwg", samples=10)   # (n, 10, C, H, W)
    >>> run = run_inpainting(vae, images, labels, "quadrants1", "mwg", n=200, samples=10)
    >>> inpainting_metrics(vae, run, classifier=genmodels.classifier(), k=1000)
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
    ImageClassifier,
    classifier_accuracy,
    completion_class_entropy,
    completion_classes,
    conditional_nll,
    masked_mse,
    predictive_nll,
    true_class_share,
)
from genmodels.models import VAE


def held_out_images(config: DataConfig, root: str | None = None,
                    seed: int = 0) -> tuple[Tensor, Tensor | None]:
    """A run's held-out images (N, C, H, W) as floats in the view its model trained on, and
    their labels (N,) (None for unlabelled data). Binary views give one fixed draw
    (``static_binarize`` with ``seed``)."""
    from genmodels.data import static_binarize, to_symmetric, to_unit
    from genmodels.data.build import TOY_DATASETS, dataset_tensors

    if config.name in TOY_DATASETS:
        raise ConfigError(f"data.name = {config.name!r} holds no images to inpaint")
    _, held_out = dataset_tensors(config, root, seed)
    images, labels = held_out[0], held_out[1] if len(held_out) > 1 else None
    if config.view == "symmetric":
        return to_symmetric(images), labels
    if config.view == "dynamic_binary":
        return static_binarize(images, seed), labels
    return to_unit(images), labels  # unit, or static_binary (drawn by dataset_tensors)


def run_inpainting(model: VAE, images: Tensor, labels: Tensor | None, mask_kind: str, method: str,
                   n: int = 15, samples: int = 10, seed: int = 0, **options) -> dict:
    """Inpaint ``n`` images drawn (seeded) from ``images`` (N, C, H, W), in the model's data
    range, with ``samples`` completions each.

    Returns CPU tensors ``inputs`` (n, C, H, W: the truth with missing pixels set to 0),
    ``mask`` (n, 1, H, W; 1 = observed), ``completions`` (n, S, C, H, W), ``codes`` (n, S, D:
    the latent states behind the completions), ``labels`` (n,) and ``truth`` (n, C, H, W),
    plus ``method``, ``mask_kind`` and ``seed``.
    """
    from genmodels.utils import seed_everything

    seed_everything(seed)
    index = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    device = next(model.parameters()).device
    truth = images[index].to(device)
    mask = make_mask(mask_kind, len(truth), tuple(truth.shape[-2:]), seed).to(device)
    completions, codes = inpaint(model, truth, mask, method, samples, return_latents=True,
                                 **options)
    return {"inputs": (truth * mask).cpu(), "mask": mask.cpu(), "completions": completions.cpu(),
            "codes": codes.cpu(), "truth": truth.cpu(),
            "labels": None if labels is None else labels[index].cpu(),
            "method": method, "mask_kind": mask_kind, "seed": seed}


def inpainting_metrics(model: VAE, run: dict, classifier: ImageClassifier | None = None,
                       k: int = 1000) -> dict:
    """Every number of one :func:`run_inpainting` result, as a JSON-ready dict:

    - ``masked_mse``: squared error per missing pixel of the completions (data range units);
    - ``accuracy``, ``true_class_share``, ``class_entropy`` (nats): what ``classifier`` (e.g.
      ``genmodels.classifier()``, 1-channel digits) sees in the completions mapped to [0, 1];
      None without a classifier or for several channels;
    - ``predictive_nll``: mean over images of −log (1/S) Σ_s p(x_miss | z_s) at the codes
      behind the completions (nats per image, :func:`predictive_nll`), and its standard error;
    - ``conditional_nll``: mean over images of the model's −log p(x_miss | x_obs) importance-
      sampled with ``k`` codes (nats per image, :func:`conditional_nll`; None for k = 0), its
      p(x_obs) proposal built from the encoder at the run's completions, and its standard error;
    - ``missing_pixels``: mean number of missing pixels per image.

    The likelihood scores need binary images for a Bernoulli model; with grey levels they are
    None and ``nll_note`` says why. Raises ValueError for k < 0.
    """
    if k < 0:
        raise ValueError(f"the number k of importance samples should be positive (0 = skip), "
                         f"got {k}")
    device = next(model.parameters()).device
    truth, mask = run["truth"].to(device), run["mask"].to(device)
    completions = run["completions"]
    numbers: dict = {"mask": run["mask_kind"], "method": run["method"], "n": len(truth),
                     "samples": completions.shape[1],
                     "missing_pixels": float((1 - run["mask"]).flatten(1).sum(1).mean()),
                     "masked_mse": masked_mse(completions, run["truth"], run["mask"])}
    numbers |= dict.fromkeys(("accuracy", "true_class_share", "class_entropy"))
    if classifier is not None and completions.shape[2] == 1:
        unit = completions if run["truth"].min() >= 0 else (completions + 1) / 2
        unit, labels = unit.clamp(0, 1).to(device), run["labels"].to(device)
        numbers |= {"accuracy": classifier_accuracy(unit, labels, classifier),
                    "true_class_share": true_class_share(unit, labels, classifier),
                    "class_entropy": completion_class_entropy(unit, classifier)}
    names = ("predictive_nll", "predictive_nll_se", "conditional_nll", "conditional_nll_se")
    numbers |= dict.fromkeys(names)
    if model.config.likelihood == "bernoulli" and not ((truth == 0) | (truth == 1)).all():
        numbers["nll_note"] = "grey-level images have no probability under a Bernoulli model"
        return numbers
    scores = {"predictive_nll": predictive_nll(model, truth, mask, run["codes"])}
    if k > 0:
        scores["conditional_nll"] = conditional_nll(model, truth, mask, k,
                                                    completions=completions.to(device))
    for name, values in scores.items():
        numbers[name] = float(values.mean())
        numbers[f"{name}_se"] = float(values.std() / len(values) ** 0.5) if len(values) > 1 \
            else None
    return numbers


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
    "inpainting_metrics",
    "latent_map",
    "make_mask",
    "masked_mse",
    "metropolis_within_gibbs",
    "observed_log_likelihood",
    "png_mask",
    "predictive_nll",
    "pseudo_gibbs",
    "run_inpainting",
    "true_class_share",
]
