"""Inpainting: mask geometry, exactness of the observed pixels, and the samplers against the
exact conditional p(x_miss | x_obs) of a tiny model computed by numerical integration."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from genmodels.config import config_from_dict
from genmodels.inpaint import (
    METHODS,
    check_mask,
    classifier_accuracy,
    completion_class_entropy,
    conditional_nll,
    fifteen_digits_figure,
    held_out_images,
    inpaint,
    inpainting_canvas,
    inpainting_metrics,
    latent_map,
    make_mask,
    masked_mse,
    predictive_nll,
    run_inpainting,
    true_class_share,
)
from genmodels.models import MODELS, vae

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def make(kind: str = "vae", **model):
    return MODELS[kind](config_from_dict({"model": {"kind": kind, **model}}).model)


def binary_images(n: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, 1, 28, 28), 0.3),
                           generator=torch.Generator().manual_seed(seed))


# --- masks --------------------------------------------------------------------------------------
def observed_grid(rows: slice, cols: slice) -> np.ndarray:
    grid = np.zeros((28, 28))
    grid[rows, cols] = 1
    return grid


EVERYTHING = slice(None)
EXPECTED_OBSERVED = {  # written by hand; the quadrants follow the Pyro CVAE tutorial
    "top": observed_grid(slice(14, 28), EVERYTHING),
    "bottom": observed_grid(slice(0, 14), EVERYTHING),
    "left": observed_grid(EVERYTHING, slice(14, 28)),
    "right": observed_grid(EVERYTHING, slice(0, 14)),
    "quadrants1": observed_grid(slice(14, 28), slice(0, 14)),
    "quadrants2": observed_grid(EVERYTHING, slice(0, 14)),
    "quadrants3": 1 - observed_grid(slice(14, 28), slice(14, 28)),
    "center": 1 - observed_grid(slice(7, 21), slice(7, 21)),
}
OBSERVED_FRACTION = {"top": 0.5, "bottom": 0.5, "left": 0.5, "right": 0.5, "quadrants1": 0.25,
                     "quadrants2": 0.5, "quadrants3": 0.75, "center": 0.75}


@pytest.mark.parametrize("kind", sorted(EXPECTED_OBSERVED))
def test_fixed_masks(kind):
    mask = make_mask(kind, 4, 28)
    assert mask.shape == (4, 1, 28, 28) and mask.dtype == torch.float32
    for image in mask:
        np.testing.assert_array_equal(image[0].numpy(), EXPECTED_OBSERVED[kind])
    assert float(mask.mean()) == OBSERVED_FRACTION[kind]


def test_random_pixel_masks():
    mask = make_mask("random:0.3", 200, 28, seed=1)
    assert abs(1 - float(mask.mean()) - 0.3) < 0.01
    assert not torch.equal(mask[0], mask[1])  # one draw per image
    assert torch.equal(mask, make_mask("random:0.3", 200, 28, seed=1))
    assert not torch.equal(mask, make_mask("random:0.3", 200, 28, seed=2))


def test_rectangle_masks():
    mask = make_mask("rectangles", 50, 28, seed=3)
    missing = 1 - mask.flatten(1).mean(1)
    assert (missing > 0).all() and (missing <= 3 * 14 * 14 / 784).all()
    assert torch.equal(mask, make_mask("rectangles", 50, 28, seed=3))
    assert len({tuple(m.flatten().tolist()) for m in mask}) == 50
    rows_hit = (mask[:, 0] == 0).any(2)  # each rectangle is at least 4 pixels high
    assert (rows_hit.sum(1) >= 4).all()


@pytest.mark.parametrize("kind", ["top", "left", "center", "quadrants3", "random:0.5",
                                  "rectangles"])
def test_masks_of_any_image_size(kind):
    """Masks take (H, W): the halves split each side at its middle, and a square size gives
    the same masks as the side alone."""
    mask = make_mask(kind, 3, (32, 48), seed=1)
    assert mask.shape == (3, 1, 32, 48)
    if kind == "top":
        assert mask[:, :, :16].sum() == 0 and mask[:, :, 16:].min() == 1
    if kind == "left":
        assert mask[..., :24].sum() == 0 and mask[..., 24:].min() == 1
    if kind == "center":
        assert mask[..., 8:24, 12:36].sum() == 0 and mask.sum() == 3 * (32 * 48 - 16 * 24)
    assert torch.equal(make_mask(kind, 3, (28, 28), seed=1), make_mask(kind, 3, 28, seed=1))


def write_png(path, pixels: np.ndarray, mode: str = "L") -> str:
    picture = Image.fromarray(pixels.astype(np.uint8))
    picture.convert(mode).save(path)
    return f"png:{path}"


def test_png_masks(tmp_path):
    top_missing = np.full((28, 28), 255)
    top_missing[:14] = 0
    kind = write_png(tmp_path / "top.png", top_missing)
    assert torch.equal(make_mask(kind, 3, 28), make_mask("top", 3, 28))
    big = np.kron(top_missing, np.ones((2, 2)))  # 56×56 RGB: resized to 28×28
    assert torch.equal(make_mask(write_png(tmp_path / "big.png", big, "RGB"), 2, 28),
                       make_mask("top", 2, 28))
    with pytest.raises(ValueError, match="28×28: give a picture of that size or aspect ratio"):
        make_mask(write_png(tmp_path / "wide.png", np.zeros((28, 30))), 1, 28)
    wide = np.full((32, 48), 255)  # H×W = 32×48 images: the bottom half missing
    wide[16:] = 0
    mask = make_mask(write_png(tmp_path / "wide_ok.png", np.kron(wide, np.ones((2, 2)))), 2,
                     (32, 48))
    assert torch.equal(mask, make_mask("bottom", 2, (32, 48)))
    with pytest.raises(ValueError, match="all observed"):
        make_mask(write_png(tmp_path / "white.png", np.full((28, 28), 255)), 1, 28)
    with pytest.raises(ValueError, match="not found"):
        make_mask(f"png:{tmp_path / 'absent.png'}", 1, 28)


def test_bad_masks():
    with pytest.raises(ValueError, match="valid kinds are: top, bottom.*random:P.*png:PATH"):
        make_mask("diagonal", 2, 28)
    for kind in ("random:1.5", "random:0", "random:half"):
        with pytest.raises(ValueError, match="random:P"):
            make_mask(kind, 2, 28)
    with pytest.raises(ValueError, match="positive"):
        make_mask("top", 0, 28)
    x = binary_images(2)
    with pytest.raises(ValueError, match=r"does not fit images of shape \(2, 1, 28, 28\)"):
        check_mask(make_mask("top", 3, 28), x)
    with pytest.raises(ValueError, match=r"float tensor \(N, 1, H, W\)"):
        check_mask(make_mask("top", 2, 28)[:, 0], x)
    with pytest.raises(ValueError, match="only 0"):
        check_mask(make_mask("top", 2, 28) * 0.5, x)
    with pytest.raises(ValueError, match=r"image\(s\) \[1\] is all observed"):
        check_mask(torch.cat([make_mask("top", 1, 28), torch.ones(1, 1, 28, 28)]), x)
    with pytest.raises(ValueError, match="all missing"):
        check_mask(torch.zeros(2, 1, 28, 28), x)


# --- every method keeps the observed pixels ---------------------------------------------------
FAST_OPTIONS = {"map": {"steps": 3}, "pseudo_gibbs": {"steps": 3}, "mwg": {"steps": 3},
                "importance": {"k": 20}}
MODELS_TO_INPAINT = {
    "bernoulli": lambda: make("vae", latent_dim=2, hidden=[16]),
    "gaussian": lambda: make("vae", latent_dim=2, hidden=[16], likelihood="gaussian",
                             sigma=0.2),
    "deterministic": lambda: make("wae_mmd", latent_dim=2, hidden=[16]),
}


@pytest.mark.parametrize("model_name", sorted(MODELS_TO_INPAINT))
@pytest.mark.parametrize("method", sorted(METHODS))
def test_observed_pixels_are_kept_exactly(method, model_name):
    torch.manual_seed(0)
    model = MODELS_TO_INPAINT[model_name]()
    x = torch.rand(3, 1, 28, 28)
    mask = make_mask("random:0.5", 3, 28)
    completions = inpaint(model, x, mask, method, samples=4, **FAST_OPTIONS[method])
    assert completions.shape == (3, 4, 1, 28, 28)
    observed = mask.bool()[:, None].expand_as(completions)
    assert torch.equal(completions[observed], x[:, None].expand_as(completions)[observed])
    assert torch.isfinite(completions).all()
    langevin = inpaint(model, x, mask, "map", samples=2, steps=2, langevin=True)
    assert torch.equal(langevin[observed[:, :2]], x[:, None].expand_as(langevin)[observed[:, :2]])


def test_final_mean_gives_the_likelihood_mean():
    model = make("vae", latent_dim=2, hidden=[16])
    x, mask = binary_images(2), make_mask("center", 2, 28)
    for method in ("pseudo_gibbs", "mwg", "importance"):
        draws = inpaint(model, x, mask, method, samples=3, **FAST_OPTIONS[method])
        means = inpaint(model, x, mask, method, samples=3, final="mean", **FAST_OPTIONS[method])
        missing = ~mask.bool()[:, None].expand_as(draws)
        assert set(draws[missing].unique().tolist()) <= {0.0, 1.0}  # Bernoulli draws
        assert ((means[missing] > 0) & (means[missing] < 1)).all()  # probabilities


def test_bad_inpainting_inputs():
    model = make("vae", latent_dim=2, hidden=[8])
    x, mask = binary_images(2), make_mask("top", 2, 28)
    with pytest.raises(ValueError, match="S of completions per image should be positive"):
        inpaint(model, x, mask, samples=0)
    with pytest.raises(ValueError, match="k of importance samples should be positive"):
        inpaint(model, x, mask, "importance", k=0)
    with pytest.raises(ValueError, match="steps should be positive"):
        inpaint(model, x, mask, "mwg", steps=0)
    with pytest.raises(ValueError, match="final = 'median'"):
        inpaint(model, x, mask, "pseudo_gibbs", final="median")
    with pytest.raises(ValueError, match="prior_share"):
        inpaint(model, x, mask, "importance", prior_share=1.0)
    with pytest.raises(ValueError, match="valid methods are: map, pseudo_gibbs, mwg, importance"):
        inpaint(model, x, mask, "gibbs")
    with pytest.raises(TypeError, match="unexpected keyword argument 'k'"):
        inpaint(model, x, mask, "mwg", k=10)
    with pytest.raises(TypeError, match="needs a VAE; Classifier has no encode, decode"):
        inpaint(make("classifier", net="mlp", hidden=[8]), x, mask)
    with pytest.raises(ValueError, match="does not fit images"):
        inpaint(model, x, make_mask("top", 3, 28))
    with pytest.raises(ValueError, match=r"should lie in \[0.0, 1.0\]"):
        inpaint(model, x * 2, mask)
    with pytest.raises(ValueError, match="needs binary images"):
        conditional_nll(model, x * 0.5, mask)
    with pytest.raises(ValueError, match="k of importance samples should be positive"):
        conditional_nll(model, x, mask, k=0)
    with pytest.raises(ValueError, match="start = 'grey'; choose one of: black, noise"):
        inpaint(model, x, mask, "mwg", start="grey")
    with pytest.raises(ValueError, match="all missing"):
        inpaint(model, x, torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="all observed"):
        conditional_nll(model, x, torch.ones(2, 1, 28, 28))
    codes = torch.zeros(2, 3, 2)
    with pytest.raises(ValueError, match="needs binary images"):
        predictive_nll(model, x * 0.5, mask, codes)
    for bad in (torch.zeros(2, 3), torch.zeros(3, 3, 2), torch.zeros(2, 0, 2),
                torch.zeros(2, 3, 5)):
        with pytest.raises(ValueError, match=r"codes should be \(n, S, D\) = \(2, S, 2\)"):
            predictive_nll(model, x, mask, bad)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_codes_behind_the_completions(method):
    """return_latents gives the codes whose likelihood mean fills the final="mean" completions,
    and the same completions as without it."""
    model = make("vae", latent_dim=2, hidden=[16])
    x, mask = binary_images(2), make_mask("center", 2, 28)
    options = {**FAST_OPTIONS[method], **({} if method == "map" else {"final": "mean"})}
    torch.manual_seed(0)
    completions, codes = inpaint(model, x, mask, method, samples=3, return_latents=True,
                                 **options)
    torch.manual_seed(0)
    assert torch.equal(completions, inpaint(model, x, mask, method, samples=3, **options))
    assert codes.shape == (2, 3, 2)
    with torch.no_grad():
        means = model.decode(codes).mean
    missing = ~mask.bool()[:, None].expand_as(completions)
    torch.testing.assert_close(completions[missing], means[missing])


# --- a tractable model: the exact conditional by numerical integration ------------------------
INFORMATIVE = torch.tensor([290, 291, 292, 293, 294, 295])  # row 10, columns 10-15
OBSERVED, MISSING = INFORMATIVE[:3], INFORMATIVE[3:]
WEIGHTS = torch.tensor([2.0, -1.5, 1.0, 2.5, -2.0, 1.5])
BIASES = torch.tensor([0.5, 0.0, -0.5, 0.0, 0.3, 0.0])
CONFIGURATIONS = torch.tensor([[c >> 2 & 1, c >> 1 & 1, c & 1] for c in range(8)]).double()


def tractable_vae():
    """latent_dim 1, Bernoulli decoder logits = w z + b: six pixels depend on z (weights
    WEIGHTS), the others have logit -4 whatever z. The encoder is a Normal of std 0.8 whose mean
    0.4 + 0.8 (x_293 - x_294) reads two of the pixels that will be missing: a usable proposal,
    not the posterior. Returns the model, one image (n=1) and its mask (3 pixels missing)."""
    model = make("vae", latent_dim=1, hidden=[])
    with torch.no_grad():
        decoder, encoder = model.decoder.net[0], model.encoder.net[0]
        decoder.weight.zero_()
        decoder.bias.fill_(-4.0)
        decoder.weight[INFORMATIVE, 0] = WEIGHTS
        decoder.bias[INFORMATIVE] = BIASES
        encoder.weight.zero_()
        encoder.bias.copy_(torch.tensor([0.4, math.log(0.8**2)]))
        encoder.weight[0, MISSING[:2]] = torch.tensor([0.8, -0.8])
    x = torch.zeros(1, 1, 28, 28)
    x.view(-1)[OBSERVED] = torch.tensor([1.0, 0.0, 1.0])
    mask = torch.ones(1, 1, 28, 28)
    mask.view(-1)[MISSING] = 0
    return model, x, mask


def exact_conditional(x: torch.Tensor) -> torch.Tensor:
    """(8,) p(x_miss = c | x_obs) ∝ ∫ p(x_obs, c | z) N(z; 0, 1) dz, trapezoid rule on
    [-6, 6] (2001 points). Pixels that ignore z give a constant factor, which cancels."""
    z = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    logits = z[:, None] * WEIGHTS.double() + BIASES.double()  # (grid, 6)
    pixels = torch.cat([x.view(-1)[OBSERVED].double().expand(8, -1), CONFIGURATIONS], 1)
    log_lik = (pixels[:, None] * F.logsigmoid(logits) + (1 - pixels[:, None])
               * F.logsigmoid(-logits)).sum(2)  # (8, grid)
    joint = torch.trapezoid(torch.exp(log_lik - z**2 / 2) / math.sqrt(2 * math.pi), z, dim=1)
    return joint / joint.sum()


def configuration_shares(completions: torch.Tensor) -> torch.Tensor:
    """(8,) empirical law of the three missing pixels over all completions (n, S, 1, 28, 28)."""
    bits = completions.flatten(2)[..., MISSING].reshape(-1, 3).long()
    codes = bits[:, 0] * 4 + bits[:, 1] * 2 + bits[:, 2]
    return torch.bincount(codes, minlength=8).double() / len(codes)


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    return 0.5 * float((p - q).abs().sum())


def test_exact_conditional_is_a_proper_law():
    _, x, _ = tractable_vae()
    exact = exact_conditional(x)
    assert torch.isclose(exact.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert exact.min() > 0.02 and exact.max() < 0.6  # no configuration negligible or certain


def test_metropolis_within_gibbs_targets_the_exact_conditional():
    model, x, mask = tractable_vae()
    torch.manual_seed(0)
    completions = inpaint(model, x, mask, "mwg", samples=4000, steps=30)
    assert total_variation(configuration_shares(completions), exact_conditional(x)) < 0.05


def test_pseudo_gibbs_is_biased_with_an_inexact_encoder():
    model, x, mask = tractable_vae()
    torch.manual_seed(0)
    completions = inpaint(model, x, mask, "pseudo_gibbs", samples=4000, steps=30)
    assert total_variation(configuration_shares(completions), exact_conditional(x)) > 0.08


def test_importance_resampling_approaches_the_exact_conditional():
    model, x, mask = tractable_vae()
    torch.manual_seed(0)
    completions = inpaint(model, x, mask, "importance", samples=4000, k=20_000)
    assert total_variation(configuration_shares(completions), exact_conditional(x)) < 0.05


def test_conditional_nll_is_exact(monkeypatch):
    model, x, mask = tractable_vae()
    images = x.repeat(8, 1, 1, 1)  # the same observed pixels, each missing configuration
    images.view(8, -1)[:, MISSING] = CONFIGURATIONS.float()
    monkeypatch.setattr(vae, "IMAGES_PER_CHUNK", 30_000)  # several chunks: streaming reduction
    torch.manual_seed(0)
    nll = conditional_nll(model, images, mask.expand(8, -1, -1, -1).clone(), k=20_000)
    torch.testing.assert_close(nll.double(), -exact_conditional(x).log(), rtol=0, atol=0.05)


def test_conditional_nll_with_completions_is_exact(monkeypatch):
    """The same with p(x_obs) importance-sampled from the encoder at MwG completions."""
    model, x, mask = tractable_vae()
    images = x.repeat(8, 1, 1, 1)
    images.view(8, -1)[:, MISSING] = CONFIGURATIONS.float()
    monkeypatch.setattr(vae, "IMAGES_PER_CHUNK", 30_000)
    torch.manual_seed(0)
    completions = inpaint(model, x, mask, "mwg", samples=5, steps=30).expand(8, -1, -1, -1, -1)
    nll = conditional_nll(model, images, mask.expand(8, -1, -1, -1).clone(), k=20_000,
                          completions=completions)
    torch.testing.assert_close(nll.double(), -exact_conditional(x).log(), rtol=0, atol=0.05)
    with pytest.raises(ValueError, match=r"completions should be \(n, S, C, H, W\)"):
        conditional_nll(model, images, mask.expand(8, -1, -1, -1).clone(),
                        completions=completions[:, 0])


def test_predictive_nll_by_hand():
    model, x, mask = tractable_vae()
    codes = torch.tensor([[[-1.0], [0.5]]])  # (n=1, S=2, D=1)
    logits = codes[0] * WEIGHTS[3:] + BIASES[3:]  # (2, 3): the missing pixels' logits
    truth = x.view(-1)[MISSING]  # all 0
    log_p = (truth * F.logsigmoid(logits) + (1 - truth) * F.logsigmoid(-logits)).sum(1)
    expected = math.log(2) - torch.logsumexp(log_p, 0)
    torch.testing.assert_close(predictive_nll(model, x, mask, codes), expected[None])


def test_predictive_nll_of_mwg_codes_approaches_the_exact_conditional():
    """The codes of many MwG chains are draws from p(z | x_obs): the mixture of their
    likelihoods is p(x_miss | x_obs), whatever the missing pixels' true values."""
    model, x, mask = tractable_vae()
    torch.manual_seed(0)
    _, codes = inpaint(model, x, mask, "mwg", samples=4000, steps=30, return_latents=True)
    images = x.repeat(8, 1, 1, 1)
    images.view(8, -1)[:, MISSING] = CONFIGURATIONS.float()
    scores = predictive_nll(model, images, mask.expand(8, -1, -1, -1).clone(),
                            codes.expand(8, -1, -1))
    torch.testing.assert_close(scores.double(), -exact_conditional(x).log(), rtol=0, atol=0.1)


def test_mwg_predicts_better_than_pseudo_gibbs():
    """Expected predictive NLL under the exact conditional, Σ_c p(c | x_obs) · score(c): the
    exact law minimises it (Gibbs' inequality), so exact MwG beats biased pseudo-Gibbs."""
    model, x, mask = tractable_vae()
    images = x.repeat(8, 1, 1, 1)
    images.view(8, -1)[:, MISSING] = CONFIGURATIONS.float()
    masks = mask.expand(8, -1, -1, -1).clone()
    scores = {}
    for method in ("mwg", "pseudo_gibbs"):
        torch.manual_seed(0)
        _, codes = inpaint(model, x, mask, method, samples=4000, steps=30, return_latents=True)
        law = (-predictive_nll(model, images, masks, codes.expand(8, -1, -1))).exp()
        scores[method] = float((exact_conditional(x) * -law.log()).sum())  # cross-entropy
    assert scores["mwg"] < scores["pseudo_gibbs"]


# --- latent MAP and Langevin --------------------------------------------------------------------
def linear_gaussian_decoder(weight: float = 0.1):
    """g(z) = W z + b (Gaussian likelihood, no sigmoid): E(z) is quadratic, its minimiser and
    the law exp(-E / 2λ) are Gaussian in closed form."""
    model = make("vae", latent_dim=2, hidden=[], likelihood="gaussian", sigmoid_mean=False)
    generator = torch.Generator().manual_seed(0)
    w = 0.05 * torch.randn(784, 2, generator=generator)
    b = 0.1 * torch.randn(784, generator=generator)
    with torch.no_grad():
        model.decoder.net[0].weight.copy_(w)
        model.decoder.net[0].bias.copy_(b)
    x = (torch.tensor([[1.0, -2.0]]) @ w.T + b + 0.05 * torch.randn(784, generator=generator))
    x = x.clamp(-1, 1).view(1, 1, 28, 28)
    mask = make_mask("left", 1, 28)
    observed = mask.view(-1).bool()
    w_obs = w[observed]
    precision = w_obs.T @ w_obs / weight + torch.eye(2)  # of exp(-E / 2λ)
    mean = torch.linalg.solve(precision, w_obs.T @ (x.view(-1) - b)[observed] / weight)
    return model, x, mask, mean, torch.linalg.inv(precision)


def test_latent_map_finds_the_closed_form_minimiser():
    model, x, mask, minimiser, _ = linear_gaussian_decoder()
    torch.manual_seed(0)
    codes = latent_map(model, x, mask, samples=5, steps=300, lr=0.05, weight=0.1)
    assert codes.shape == (1, 5, 2)
    torch.testing.assert_close(codes[0], minimiser.expand(5, -1), rtol=0, atol=0.01)


def test_langevin_samples_the_gaussian_posterior():
    model, x, mask, mean, covariance = linear_gaussian_decoder()
    step = 0.01
    torch.manual_seed(0)
    codes = latent_map(model, x, mask, samples=500, steps=100, weight=0.1, langevin=True,
                       step_size=step)[0]
    torch.testing.assert_close(codes.mean(0), mean, rtol=0, atol=0.05)
    # unadjusted Langevin on a Gaussian of precision A is stationary at (A (I - εA/2))⁻¹
    precision = torch.linalg.inv(covariance)
    stationary = torch.linalg.inv(precision @ (torch.eye(2) - step / 2 * precision))
    ratio = codes.std(0) / stationary.diagonal().sqrt()
    torch.testing.assert_close(ratio, torch.ones(2), rtol=0, atol=0.1)


def test_latent_map_lowers_the_masked_energy():
    torch.manual_seed(0)
    model = make("vae", latent_dim=3, hidden=[32])
    with torch.no_grad():
        model.decoder.net[-1].weight.mul_(10)  # outputs that depend on z
    x, mask = binary_images(2), make_mask("bottom", 2, 28)

    def energy(z):  # by hand: ‖m ⊙ (x − sigmoid(decoder(z)))‖² + λ‖z‖²
        mean = torch.sigmoid(model.decoder.net(z.reshape(-1, 3))).view(2, -1, 1, 28, 28)
        return (mask[:, None] * (x[:, None] - mean)).pow(2).flatten(2).sum(2) \
            + 0.1 * z.pow(2).sum(2)

    with torch.no_grad():
        start = energy(torch.randn(2, 8, 3))
        found = energy(latent_map(model, x, mask, samples=8, steps=100, weight=0.1))
    assert float(found.max()) < float(start.median(1).values.min())
    assert float(found.mean()) < 0.9 * float(start.mean())


# --- metrics on hand-made tensors ---------------------------------------------------------------
def brightness_classifier(images: torch.Tensor) -> torch.Tensor:
    """Logits of class round(10 · mean brightness): a classifier whose answers are known."""
    classes = (images.flatten(1).mean(1) * 10).round().long()
    return F.one_hot(classes, 11).float()


def test_classification_metrics():
    classes = torch.tensor([[1, 1, 2, 2], [3, 3, 3, 3]])
    completions = (classes / 10).view(2, 4, 1, 1, 1).expand(2, 4, 1, 28, 28)
    labels = torch.tensor([2, 5])
    assert classifier_accuracy(completions, labels, brightness_classifier) == 2 / 8
    assert true_class_share(completions, labels, brightness_classifier) == 1 / 2
    assert math.isclose(completion_class_entropy(completions, brightness_classifier),
                        math.log(2) / 2, rel_tol=1e-6)
    # 300 completions go through the classifier in batches; each keeps its own class
    many = torch.arange(300).remainder(11).view(50, 6)  # (n, S) classes 0..10
    images = (many / 10).view(50, 6, 1, 1, 1).expand(50, 6, 1, 28, 28)
    assert classifier_accuracy(images, many[:, 0], brightness_classifier) == \
        float((many == many[:, :1]).float().mean())


def test_masked_mse():
    truth = torch.zeros(2, 1, 28, 28)
    mask = torch.stack([make_mask("top", 1, 28)[0], make_mask("center", 1, 28)[0]])
    completions = torch.full((2, 3, 1, 28, 28), 7.0)  # observed pixels are ignored...
    completions[0, :, :, :14] = 0.5  # ... image 0: error 0.25 on all its missing pixels
    completions[1, :, :, 7:21, 7:21] = torch.tensor([0.0, 1.0, 2.0]).view(3, 1, 1, 1)
    assert math.isclose(masked_mse(completions, truth, mask), (0.25 + 5 / 3) / 2, rel_tol=1e-6)


# --- figure and the whole run -------------------------------------------------------------------
def test_canvas_layout():
    n, samples = 2, 3
    truth = torch.rand(n, 1, 28, 28)
    mask = make_mask("top", n, 28)
    completions = torch.rand(n, samples, 1, 28, 28)
    canvas = inpainting_canvas(truth * mask, mask, completions, truth)
    assert canvas.shape == (3, 2 + 30 * n, 2 + 30 * (samples + 2))

    def tile(row, col):
        return canvas[:, 2 + 30 * row:30 + 30 * row, 2 + 30 * col:30 + 30 * col]

    assert (tile(1, 0)[:, :14] == 0.5).all()  # erased pixels drawn grey
    torch.testing.assert_close(tile(1, 0)[:, 14:], truth[1, :, 14:].expand(3, -1, -1))
    torch.testing.assert_close(tile(0, 2), completions[0, 1].expand(3, -1, -1))
    torch.testing.assert_close(tile(1, samples + 1), truth[1].expand(3, -1, -1))


def test_run_inpainting_and_figure(tmp_path, data_root):
    config = config_from_dict({"model": {"kind": "vae"},
                               "data": {"view": "dynamic_binary", "root": data_root}})
    images, labels = held_out_images(config.data, seed=0)
    assert images.shape == (10_000, 1, 28, 28) and set(images[:50].unique().tolist()) == {0, 1}
    model = make("vae", latent_dim=2, hidden=[16])
    run = run_inpainting(model, images, labels, "quadrants2", "mwg", n=15, samples=4, seed=0,
                         steps=3)
    assert run["completions"].shape == (15, 4, 1, 28, 28) and run["mask"].shape == (15, 1, 28, 28)
    assert torch.equal(run["inputs"], run["truth"] * run["mask"])
    index = torch.randperm(10_000, generator=torch.Generator().manual_seed(0))[:15]
    assert torch.equal(run["truth"], images[index]) and torch.equal(run["labels"], labels[index])
    assert run["codes"].shape == (15, 4, 2)
    numbers = inpainting_metrics(model, run, brightness_classifier, k=20)
    assert numbers["mask"] == "quadrants2" and numbers["method"] == "mwg"
    assert numbers["n"] == 15 and numbers["samples"] == 4 and numbers["missing_pixels"] == 392
    assert numbers["masked_mse"] == masked_mse(run["completions"], run["truth"], run["mask"])
    assert 0 <= numbers["accuracy"] <= numbers["true_class_share"] <= 1
    assert 0 <= numbers["class_entropy"] <= math.log(4)
    for name in ("predictive_nll", "conditional_nll"):
        assert numbers[name] > 0 and 0 < numbers[f"{name}_se"] < numbers[name]
    torch.testing.assert_close(
        numbers["predictive_nll"],
        float(predictive_nll(model, run["truth"], run["mask"], run["codes"]).mean()))
    skipped = inpainting_metrics(model, run, k=0)
    assert skipped["conditional_nll"] is None and skipped["accuracy"] is None
    assert skipped["predictive_nll"] == numbers["predictive_nll"]
    grey = inpainting_metrics(model, {**run, "truth": run["truth"] * 0.5}, k=20)
    assert grey["predictive_nll"] is None and "grey-level" in grey["nll_note"]
    with pytest.raises(ValueError, match="should be positive"):
        inpainting_metrics(model, run, k=-1)
    path = fifteen_digits_figure(run["inputs"], run["mask"], run["completions"], run["truth"],
                                 tmp_path / "figure" / "inpaint.png", labels=run["labels"])
    with Image.open(path) as picture:
        assert picture.height > 1.5 * picture.width  # 15 rows of 6 columns


def test_inpaint_cli(tmp_path, data_root, capsys):
    from conftest import tiny_config

    from genmodels.cli import main
    from genmodels.train import Trainer

    config = tiny_config(model={"kind": "vae", "latent_dim": 4, "hidden": [32]},
                         data={"view": "dynamic_binary"}, train={"max_steps": 5})
    Trainer(config, tmp_path / "run", data_root=data_root).fit()
    out, save = tmp_path / "fig.png", tmp_path / "run.pt"
    report = tmp_path / "numbers" / "run.json"
    assert main(["inpaint", str(tmp_path / "run"), "--mask", "quadrants2", "--method", "mwg",
                 "--n", "4", "--samples", "3", "--steps", "5", "--out", str(out), "--save",
                 str(save), "--nll", "20", "--json", str(report),
                 "--data-root", data_root]) == 0
    saved = torch.load(save, weights_only=True)
    assert out.exists() and saved["completions"].shape == (4, 3, 1, 28, 28)
    observed = saved["mask"][:, None].bool().expand_as(saved["completions"])
    truth = saved["truth"][:, None].expand_as(saved["completions"])
    assert torch.equal(saved["completions"][observed], truth[observed])
    printed = capsys.readouterr().out
    assert "classifier accuracy" in printed and "conditional NLL" in printed
    numbers = json.loads(report.read_text())
    assert numbers["n"] == 4 and numbers["samples"] == 3 and numbers["importance_samples"] == 20
    for name in ("masked_mse", "accuracy", "true_class_share", "class_entropy",
                 "predictive_nll", "conditional_nll"):
        assert math.isfinite(numbers[name])
    assert f"conditional NLL -log p(x_miss|x_obs) {numbers['conditional_nll']:.2f}" in printed
    assert main(["inpaint", "genmodels/weights/mnist_cnn", "--data-root", data_root]) == 2
    assert "needs a VAE" in capsys.readouterr().err
    run = str(tmp_path / "run")
    for flags, error in ((["--samples", "0"], "argument --samples should be a positive integer"),
                         (["--nll", "-1"], "--nll should be"),
                         (["--method", "importance", "--proposals", "0"],
                          "argument --proposals should be a positive integer"),
                         (["--mask", "random:2"], "random:P")):
        assert main(["inpaint", run, *flags, "--out", str(out), "--data-root", data_root]) == 2
        assert error in capsys.readouterr().err
