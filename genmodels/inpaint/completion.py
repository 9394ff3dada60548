"""The inpainting entry points: which methods a model's class takes (:data:`FAMILIES`),
:func:`inpaint`, and the runs and numbers of the 15-digit figure (:func:`run_inpainting`,
:func:`inpainting_metrics`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from genmodels.config import ConfigError, DataConfig
from genmodels.errors import InputError
from genmodels.inpaint.denoising import DIFFUSION_METHODS, FLOW_METHODS, check_images
from genmodels.inpaint.masks import check_mask, make_mask
from genmodels.inpaint.methods import METHODS, check_positive
from genmodels.inpaint.metrics import (
    ImageClassifier,
    classifier_accuracy,
    completion_class_entropy,
    conditional_nll,
    masked_mse,
    predictive_nll,
    true_class_share,
)
from genmodels.inpaint.options import DEFAULT_METHODS
from genmodels.models import VAE, Diffusion, FlowMatching, Model

Method = Callable[..., Tensor | tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class Family:
    """The inpainting methods of the models of one class, the check of the images they take,
    and the method ``genmodels inpaint`` uses when given none (:data:`DEFAULT_METHODS`)."""

    model_class: type[Model]
    name: str  # "a VAE": how messages name such a model
    methods: dict[str, Method]
    check: Callable[[Model, Tensor], None]

    @property
    def default(self) -> str:
        return DEFAULT_METHODS[self.name]


FAMILIES = (
    Family(VAE, "a VAE", METHODS, lambda model, x: model.check(x)),
    Family(Diffusion, "a diffusion model", DIFFUSION_METHODS, check_images),
    Family(FlowMatching, "a flow-matching model", FLOW_METHODS, check_images),
)
ALL_METHODS = tuple(name for kind in FAMILIES for name in kind.methods)


def family(model: Model) -> Family:
    """The :class:`Family` of ``model``'s class; TypeError for a model that cannot inpaint."""
    for candidate in FAMILIES:
        if isinstance(model, candidate.model_class):
            return candidate
    raise TypeError(f"inpainting needs a VAE; {type(model).__name__} has no encode, decode, "
                    "prior and proposal, nor is it a diffusion or flow-matching model")


def inpaint(model: Model, x: Tensor, mask: Tensor, method: str | None = None, samples: int = 10,
            **options) -> Tensor | tuple[Tensor, Tensor]:
    """S completions (n, S, C, H, W) of images ``x`` (n, C, H, W) whose pixels are observed
    where ``mask`` (n, 1, H, W) is 1, by ``method`` (default: the model's family's, see
    :data:`FAMILIES`); ``options`` go to the method, and ``return_latents=True`` also returns
    the codes (n, S, D) behind the completions.

    ``x`` lies in the model's data range: a VAE's ([0, 1], or [-1, 1] for a Gaussian
    likelihood without sigmoid; binary images for a Bernoulli likelihood to make p(x_miss |
    x_obs) a probability), [-1, 1] for diffusion and flow models. Raises TypeError for a model
    that cannot inpaint, ValueError for bad inputs and for a method of another family (the
    message lists the methods that apply).
    """
    kind = family(model)
    method = inpainting_method(model, method)
    check_positive("the number S of completions per image", samples)
    kind.check(model, x)
    check_mask(mask, x)
    return kind.methods[method](model, x, mask.to(x.device), samples, **options)


def inpainting_method(model: Model, method: str | None = None) -> str:
    """``method``, or the default of ``model``'s family when None; InputError (a ValueError)
    for a method that does not apply to the model, listing those that do."""
    kind = family(model)
    if method is None:
        return kind.default
    if method not in kind.methods:
        valid = ", ".join(kind.methods)
        owner = next((other.name for other in FAMILIES if method in other.methods), None)
        if owner is None:
            raise InputError(f"unknown inpainting method {method!r}; valid methods are: {valid}")
        raise InputError(f"inpainting method {method!r} is for {owner}; the methods that "
                         f"apply to {kind.name} ({type(model).__name__}) are: {valid}")
    return method


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


def run_inpainting(model: Model, images: Tensor, labels: Tensor | None, mask_kind: str,
                   method: str | None = None, n: int = 15, samples: int = 10, seed: int = 0,
                   **options) -> dict:
    """Inpaint ``n`` images drawn (seeded) from ``images`` (N, C, H, W), in the model's data
    range, with ``samples`` completions each, by ``method`` (default: the model's family's).

    Returns CPU tensors ``inputs`` (n, C, H, W: the truth with missing pixels set to 0),
    ``mask`` (n, 1, H, W; 1 = observed), ``completions`` (n, S, C, H, W), ``codes`` (n, S, D:
    a VAE's latent states behind the completions; a flow's starting noise, flattened; empty,
    D = 0, for RePaint), ``labels`` (n,) and ``truth`` (n, C, H, W), plus ``method`` (the
    one used), ``mask_kind`` and ``seed``.
    """
    from genmodels.utils import seed_everything

    method = inpainting_method(model, method)
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


def inpainting_metrics(model: Model, run: dict, classifier: ImageClassifier | None = None,
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

    The likelihood scores go through a VAE's codes and need binary images for a Bernoulli
    model: for other models and for grey levels they are None and ``nll_note`` says why.
    Raises ValueError for k < 0.
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
    if not isinstance(model, VAE):
        numbers["nll_note"] = (f"left out: they score the missing pixels through a VAE's "
                               f"p(x_miss | z), and {family(model).name} has no latent codes")
        return numbers
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


