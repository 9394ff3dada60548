"""Inpainting with diffusion and flow-matching models (issue 25): RePaint, flow replacement and
DPS on Gaussian 1×2×2 images with their closed-form optimal nets (against the exact law of
RePaint's chain and against the conditional law), exact observed pixels, the command line on
tiny trained checkpoints, and the errors users can make."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from genmodels.checks import ConfigError
from genmodels.cli import main
from genmodels.config import config_from_dict
from genmodels.errors import InputError
from genmodels.inpaint import (
    DIFFUSION_METHODS,
    FLOW_METHODS,
    inpaint,
    make_mask,
    net_evaluations,
    repaint_schedule,
)
from genmodels.models import MODELS
from genmodels.schedulers import NoiseSchedule

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def build(kind: str, shape=(1, 2, 2), **options):
    config = config_from_dict({"model": {"kind": kind, "channels": [8], "time_dim": 8,
                                         "attention": False, **options}})
    return MODELS[kind](config.model, shape)


# --- Gaussian images and their optimal nets ----------------------------------------------------
MU = torch.tensor([0.3, 0.0, -0.2, 0.1], dtype=torch.float64)  # pixels in reading order
SD = torch.tensor([0.15, 0.3, 0.2, 0.25], dtype=torch.float64)  # |μ| + 3.3σ < 1: no clamping
TRUTH = (MU + 1.5 * SD).float().view(1, 1, 2, 2)  # observed values, 1.5 σ above the mean


def covariance(rho: float) -> Tensor:
    """Σ = diag(σ) R diag(σ), R with ``rho`` off the diagonal (0: independent pixels)."""
    correlation = torch.full((4, 4), rho, dtype=torch.float64)
    correlation.fill_diagonal_(1.0)
    return SD[:, None] * correlation * SD[None]


class GaussianNet(nn.Module):
    """The exact minimiser of the training loss for images x ~ N(μ, Σ) (flattened, D = 4).

    Diffusion, x_t = √ᾱ x + √(1−ᾱ) ε: with C = ᾱΣ + (1−ᾱ)I and r = C⁻¹(x_t − √ᾱ μ),
    E[ε | x_t] = √(1−ᾱ) r, E[x | x_t] = μ + √ᾱ Σ r, v = √ᾱ ε − √(1−ᾱ) x.
    Flow, x_t = (1−t) x_0 + t x_1: with C = (1−t)² I + t² Σ,
    E[x_1 − x_0 | x_t] = μ + (tΣ − (1−t)I) C⁻¹ (x_t − tμ)."""

    def __init__(self, target: str, cov: Tensor, schedule: NoiseSchedule | None = None) -> None:
        super().__init__()
        self.target, self.cov, self.schedule = target, cov, schedule

    def forward(self, x: Tensor, time: Tensor) -> Tensor:
        z, eye = x.flatten(1).double(), torch.eye(4, dtype=torch.float64)
        if self.target == "velocity":
            t = float(time[0])
            gain = torch.linalg.solve((1 - t) ** 2 * eye + t**2 * self.cov,
                                      t * self.cov - (1 - t) * eye)  # symmetric matrices
            out = MU + (z - t * MU) @ gain
        else:
            a = float(self.schedule.alphas_cumprod[round(float(time[0]) * self.schedule.timesteps)])
            r = torch.linalg.solve(a * self.cov + (1 - a) * eye, (z - math.sqrt(a) * MU).T).T
            out = math.sqrt(1 - a) * r
            if self.target == "v_prediction":
                out = math.sqrt(a) * out - math.sqrt(1 - a) * (MU + math.sqrt(a) * r @ self.cov)
        return out.to(x.dtype).view_as(x)


def gaussian_model(kind: str, rho: float = 0.0, **options):
    """A diffusion or flow model of 1×2×2 images whose net is the optimal one for N(μ, Σ)."""
    model = build(kind, **options)
    target = "velocity" if kind == "flow_matching" else model.config.prediction
    model.net = GaussianNet(target, covariance(rho), getattr(model, "noise_schedule", None))
    return model


def missing_pixels(completions: Tensor, mask: Tensor) -> list[Tensor]:
    """Per pixel j, its values in the completions (n, S, 1, 2, 2) of the images where it is
    missing, pooled."""
    values = completions.flatten(2).double()  # (n, S, 4)
    missing = mask.flatten(1) == 0  # (n, 4)
    return [values[missing[:, j], :, j].flatten() for j in range(4)]


def assert_law(values: Tensor, mean: float, std: float, bias_mean: float = 0.0,
               bias_std: float = 0.0) -> None:
    """Mean and std of draws within 4 Monte Carlo standard errors of (``mean``, ``std``), plus
    the allowed biases (× std)."""
    count = len(values)
    assert abs(float(values.mean()) - mean) <= 4 * std / count**0.5 + bias_mean * std, \
        (float(values.mean()), mean)
    assert abs(float(values.std()) - std) <= 4 * std / (2 * count) ** 0.5 + bias_std * std, \
        (float(values.std()), std)


# --- RePaint --------------------------------------------------------------------------------
def test_repaint_schedule_is_the_papers():
    """get_schedule_jump of the RePaint code (n_sample = 1), written out: from level 6 down to
    −1 with jumps of j = 2 at levels 4, 2, 0, each stretch run r = 3 times."""
    assert repaint_schedule(7, 2, 3) == [6, 5, 4, 6, 5, 4, 6, 5, 4, 3, 2, 4, 3, 2, 4, 3, 2, 1,
                                         0, 2, 1, 0, 2, 1, 0, -1]
    assert repaint_schedule(4, 1, 1) == [3, 2, 1, 0, -1]  # r = 1: no resampling
    assert repaint_schedule(5, 10, 10) == [4, 3, 2, 1, 0, -1]  # j ≥ steps: nowhere to jump
    model = build("diffusion")
    assert net_evaluations(model, "repaint", {"steps": 7, "jump_length": 2, "resample": 3}) \
        == 7 + (3 - 1) * 2 * 3


def repaint_law(model, steps: int, jump_length: int, resample: int, rho: float,
                observed: Tensor) -> tuple[Tensor, Tensor]:
    """The exact law (mean, covariance) of RePaint's final state on the Gaussian images, by
    the moment recursion of its linear-Gaussian steps (in float64): the merge sets the
    observed pixels to an independent N(√ᾱ y, (1−ᾱ) I); a DDPM step x' = c0 x̂_0 + c1 x +
    √β̃ z with x̂_0 = μ + √ᾱ Σ C⁻¹ (x − √ᾱ μ); a jump x' = √ρ x + √(1−ρ) z, ρ = ᾱ'/ᾱ."""
    schedule, cov, eye = model.noise_schedule, covariance(rho), torch.eye(4, dtype=torch.float64)
    stride = schedule.timesteps // steps
    alpha_bar = schedule.alphas_cumprod.double()

    def bar(level: int) -> float:
        return 1.0 if level < 0 else float(alpha_bar[level * stride])

    y, obs = TRUTH.flatten().double(), observed.flatten().bool()
    mean, var = torch.zeros(4, dtype=torch.float64), eye.clone()
    levels = repaint_schedule(steps, jump_length, resample)
    for level, following in zip(levels[:-1], levels[1:], strict=True):
        a, a_next = bar(level), bar(following)
        if following > level:
            ratio = a_next / a
            mean, var = math.sqrt(ratio) * mean, ratio * var + (1 - ratio) * eye
            continue
        mean = torch.where(obs, math.sqrt(a) * y, mean)
        var = var * (~obs[:, None] & ~obs[None]) + torch.diag(obs * (1 - a))
        gain = math.sqrt(a) * cov @ torch.linalg.inv(a * cov + (1 - a) * eye)
        c0 = math.sqrt(a_next) * (1 - a / a_next) / (1 - a)
        c1 = math.sqrt(a / a_next) * (1 - a_next) / (1 - a)
        step = c0 * gain + c1 * eye
        mean = step @ mean + c0 * (MU - math.sqrt(a) * gain @ MU)
        var = step @ var @ step.T + (1 - a_next) / (1 - a) * (1 - a / a_next) * eye
    return mean, var


@pytest.mark.parametrize(("kind", "prediction", "rho", "steps"), [
    ("top", "epsilon", 0.8, 10), ("quadrants1", "v_prediction", 0.8, 100),
    ("center", "epsilon", 0.0, 100)])
def test_repaint_follows_the_exact_law_of_its_chain(kind, prediction, rho, steps):
    """Merges, forward-noised truth, jumps and DDPM steps, as a whole: the completions' mean
    and std per missing pixel within 4 Monte Carlo standard errors of the moment recursion's
    (20,000 draws; correlated pixels too, where the observed ones matter; 10 steps make the
    noise level of each merge count)."""
    model = gaussian_model("diffusion", rho, prediction=prediction)
    mask = make_mask(kind, 1, 2)
    torch.manual_seed(0)
    completions = inpaint(model, TRUTH, mask, "repaint", 20_000, steps=steps, jump_length=3,
                          resample=3)
    mean, var = repaint_law(model, steps, 3, 3, rho, mask)
    for j, values in enumerate(missing_pixels(completions, mask)):
        if len(values):
            assert_law(values, float(mean[j]), float(var[j, j].sqrt()))


def test_repaint_gives_independent_missing_pixels_their_law():
    """Independent pixels: the conditional law of a missing pixel is its marginal N(μ_j, σ_j²).
    1000 steps (the whole chain), j = 10, r = 2, random masks on 4 images, 4,000 completions
    each: mean within 4 standard errors, std within 4 standard errors + 2.5 % (the DDPM
    "fixed_small" variance ignores Var[x_0 | x_t]: by :func:`repaint_law` this chain's std is
    0.9 % to 1.8 % low for σ from 0.3 to 0.15, its mean exact)."""
    model = gaussian_model("diffusion")
    mask = make_mask("random:0.5", 4, 2, seed=1)
    truth = TRUTH.expand(4, -1, -1, -1)
    torch.manual_seed(1)
    completions = inpaint(model, truth, mask, "repaint", 4000, steps=1000, jump_length=10,
                          resample=2)
    assert all(len(values) for values in missing_pixels(completions, mask))
    for j, values in enumerate(missing_pixels(completions, mask)):
        assert_law(values, float(MU[j]), float(SD[j]), bias_std=0.025)


# --- flow matching ------------------------------------------------------------------------------
@pytest.mark.parametrize("method", sorted(FLOW_METHODS))
@pytest.mark.parametrize("kind", ["top", "left", "quadrants1", "quadrants3", "random:0.5"])
def test_flow_methods_give_independent_missing_pixels_their_law(method, kind):
    """Independent pixels, 100 Heun steps, 4 images × 5,000 completions: each missing pixel
    N(μ_j, σ_j²) within 4 standard errors + 0.5 % (Heun's error at 100 steps is about 0.1 %).
    DPS's guidance has no component on a missing pixel here (x̂_1's observed pixels do not
    depend on it), so it must leave its law alone."""
    model = gaussian_model("flow_matching")
    mask = make_mask(kind, 4, 2, seed=2)
    torch.manual_seed(2)
    completions = inpaint(model, TRUTH.expand(4, -1, -1, -1), mask, method, 5000, steps=100)
    for j, values in enumerate(missing_pixels(completions, mask)):
        if len(values):
            assert_law(values, float(MU[j]), float(SD[j]), bias_mean=0.005, bias_std=0.005)


def replacement_law(steps: int, rho: float, observed: Tensor) -> tuple[Tensor, Tensor]:
    """The exact law (mean, covariance) of flow replacement with Heun steps on the Gaussian
    images: every state is affine in the starting noise, x = A x_0 + b (float64). Replacing
    at t sets the observed rows to (1 − t) x_0 + t y; the optimal velocity is affine,
    v = μ + K_t (x − tμ); Heun from (replaced) x_k: x̃ = x_k + h v_k, replaced at t + h,
    x_{k+1} = x_k + h/2 (v_k + v(x̃)). The law of A x_0 + b is N(b, A Aᵀ)."""
    cov, eye = covariance(rho), torch.eye(4, dtype=torch.float64)
    y, obs, h = TRUTH.flatten().double(), observed.flatten().bool(), 1 / steps

    def replaced(state: tuple[Tensor, Tensor], t: float) -> tuple[Tensor, Tensor]:
        a, b = state
        return torch.where(obs[:, None], (1 - t) * eye, a), torch.where(obs, t * y, b)

    def velocity(state: tuple[Tensor, Tensor], t: float) -> tuple[Tensor, Tensor]:
        gain = torch.linalg.solve((1 - t) ** 2 * eye + t**2 * cov, t * cov - (1 - t) * eye)
        return gain @ state[0], MU + gain @ (state[1] - t * MU)

    state = (eye, torch.zeros(4, dtype=torch.float64))
    for k in range(steps):
        t = k * h
        start = replaced(state, t)
        v_start = velocity(start, t)
        predicted = replaced((start[0] + h * v_start[0], start[1] + h * v_start[1]), t + h)
        v_end = velocity(predicted, t + h)
        state = tuple(x + h / 2 * (v0 + v1) for x, v0, v1 in zip(start, v_start, v_end,
                                                                   strict=True))
    return state[1], state[0] @ state[0].T


@pytest.mark.parametrize("kind", ["top", "quadrants3"])
def test_flow_replacement_follows_the_exact_law_of_its_ode(kind):
    """Correlated pixels (ρ = 0.8), 5 Heun steps: the completions' mean and std per missing
    pixel within 4 Monte Carlo standard errors of :func:`replacement_law` (20,000 draws)."""
    model = gaussian_model("flow_matching", 0.8, solver="heun")
    mask = make_mask(kind, 1, 2)
    torch.manual_seed(4)
    completions = inpaint(model, TRUTH, mask, "replace", 20_000, steps=5)
    mean, var = replacement_law(5, 0.8, mask)
    for j, values in enumerate(missing_pixels(completions, mask)):
        if len(values):
            assert_law(values, float(mean[j]), float(var[j, j].sqrt()))


def conditional_mean_bias(completions: Tensor, mask: Tensor, rho: float) -> Tensor:
    """(mean of the completions − E[x_miss | x_obs]) / std[x_miss | x_obs] per missing pixel."""
    cov, obs = covariance(rho), mask.flatten().bool()
    cross = cov[~obs][:, obs] @ torch.linalg.inv(cov[obs][:, obs])
    mean = MU[~obs] + cross @ (TRUTH.flatten().double()[obs] - MU[obs])
    std = (cov[~obs][:, ~obs] - cross @ cov[obs][:, ~obs]).diagonal().sqrt()
    return (completions[0].flatten(1).double()[:, ~obs].mean(0) - mean) / std


def test_resampling_and_guidance_move_towards_the_conditional():
    """Correlated pixels (ρ = 0.8, top row missing, the observed ones 1.5 σ above their mean:
    E[x_miss | x_obs] is 2.48 conditional stds above the unconditional mean): RePaint's
    resampling (r = 10 against r = 1, plain replacement) and DPS's guidance (against flow
    replacement) bring the missing pixels' mean closer to it. Measured (4,000 draws; bias in
    conditional stds, per missing pixel): RePaint r = 1 −0.71, −0.98; r = 10 −0.23, −0.30;
    flow replacement −1.12, −1.40; DPS (ζ = 0.1, 20 Heun steps) −0.03, −0.09."""
    mask = make_mask("top", 1, 2)
    biases = {}
    for name, kind, method, options in (
            ("replacement", "diffusion", "repaint", {"jump_length": 10, "resample": 1}),
            ("resampled", "diffusion", "repaint", {"jump_length": 10, "resample": 10}),
            ("flow", "flow_matching", "replace", {}),
            ("dps", "flow_matching", "dps", {"step_size": 0.1})):
        torch.manual_seed(3)
        completions = inpaint(gaussian_model(kind, 0.8), TRUTH, mask, method, 4000,
                              steps=100 if kind == "diffusion" else 20, **options)
        biases[name] = conditional_mean_bias(completions, mask, 0.8)
    assert (biases["replacement"] < -0.5).all() and (biases["flow"] < -0.9).all()
    assert (biases["resampled"].abs() < 0.5 * biases["replacement"].abs()).all()
    assert (biases["dps"].abs() < 0.25 * biases["flow"].abs()).all()


# --- any model: observed pixels, codes, net evaluations -----------------------------------------
METHODS = {"repaint": ("diffusion", {"steps": 4, "jump_length": 1, "resample": 2}),
           "replace": ("flow_matching", {"steps": 3}),
           "dps": ("flow_matching", {"steps": 3, "step_size": 0.3})}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_observed_pixels_are_exact_and_codes_are_the_starting_noise(method):
    kind, options = METHODS[method]
    model = build(kind, (1, 8, 8), channels=[8, 16], sampler="ddim") if kind == "diffusion" \
        else build(kind, (1, 8, 8), channels=[8, 16], solver="heun")
    torch.manual_seed(0)  # the output layer starts at zero: give the net a non-zero output
    torch.nn.init.normal_(model.net.out[-1].weight, std=0.3)
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    mask = make_mask("random:0.5", 3, 8)
    calls = []
    hook = model.net.register_forward_hook(lambda *_: calls.append(1))
    torch.manual_seed(1)
    completions, codes = inpaint(model, x, mask, method, 2, return_latents=True, **options)
    hook.remove()
    assert completions.shape == (3, 2, 1, 8, 8) and torch.isfinite(completions).all()
    observed = mask.bool()[:, None].expand_as(completions)
    assert torch.equal(completions[observed], x[:, None].expand_as(completions)[observed])
    assert completions.min() >= -1 and completions.max() <= 1
    assert not torch.equal(completions[:, 0], completions[:, 1])  # two different draws
    assert len(calls) == net_evaluations(model, method, options)
    if method == "repaint":
        assert codes.shape == (3, 2, 0)  # fresh noise at every step: no code
    else:
        torch.manual_seed(1)
        torch.testing.assert_close(codes, torch.randn(6, 1, 8, 8).view(3, 2, 64))
    torch.manual_seed(1)
    assert torch.equal(inpaint(model, x, mask, method, 2, **options), completions)


# --- the command line on tiny trained checkpoints ----------------------------------------------
TINY = ["data.subset=256", "model.channels=[8,16]", "model.time_dim=16", "data.view=symmetric",
        "train.max_steps=3", "train.batch_size=32", "train.progress=false",
        "model.sample_steps=2", "data.validation=true", "data.validation_size=64"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_root) -> dict[str, str]:
    """A diffusion and a flow-matching run, trained 3 steps by `genmodels train` (held-out
    split: 64 validation images, which keeps the final evaluation short)."""
    folder = tmp_path_factory.mktemp("denoising_runs")
    paths = {}
    for kind, config in (("diffusion", "diffusion_mnist"), ("flow_matching", "flow_mnist")):
        paths[kind] = str(folder / kind)
        assert main(["train", f"configs/{config}.toml", "--out", paths[kind], "--data-root",
                     data_root, *TINY]) == 0
    return paths


@pytest.mark.parametrize(("kind", "method", "evaluations", "code_size"), [
    ("diffusion", "repaint", 3, 0), ("flow_matching", "replace", 6, 784)])
def test_inpaint_command_on_trained_checkpoints(runs, kind, method, evaluations, code_size,
                                                tmp_path, data_root, capsys, monkeypatch):
    from genmodels import progress

    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)  # every update is a line
    save, report, out = tmp_path / "out.pt", tmp_path / "out.json", tmp_path / "fig.png"
    assert main(["inpaint", runs[kind], "--mask", "top", "--n", "2", "--samples", "2",
                 "--steps", "3", "--save", str(save), "--json", str(report), "--out", str(out),
                 "--data-root", data_root]) == 0
    captured = capsys.readouterr()
    assert "inpainting (2 digits): 100%" in captured.err  # net evaluations: 3 DDPM, 3 × 2 Heun
    assert f"{evaluations}/{evaluations}" in captured.err
    assert "no predictive or conditional NLL (left out" in captured.out
    saved = torch.load(save, weights_only=True)
    assert set(saved) == {"inputs", "mask", "completions", "codes", "labels", "truth", "method",
                          "mask_kind", "seed"}
    assert (saved["method"], saved["mask_kind"], saved["seed"]) == (method, "top", 0)
    assert saved["completions"].shape == (2, 2, 1, 28, 28)
    assert saved["codes"].shape == (2, 2, code_size)
    assert saved["labels"].shape == (2,) and saved["truth"].shape == (2, 1, 28, 28)
    assert torch.equal(saved["mask"], make_mask("top", 2, 28))
    assert saved["truth"].min() >= -1 and saved["truth"].min() < 0  # the symmetric view
    assert torch.equal(saved["inputs"], saved["truth"] * saved["mask"])
    observed = saved["mask"][:, None].bool().expand_as(saved["completions"])
    truth = saved["truth"][:, None].expand_as(saved["completions"])
    assert torch.equal(saved["completions"][observed], truth[observed])
    numbers = json.loads(report.read_text())
    assert numbers["method"] == method and numbers["n"] == 2 and numbers["samples"] == 2
    for name in ("masked_mse", "accuracy", "true_class_share", "class_entropy"):
        assert math.isfinite(numbers[name])
    assert numbers["predictive_nll"] is None and numbers["conditional_nll"] is None
    assert "no latent codes" in numbers["nll_note"] and numbers["importance_samples"] is None
    assert numbers["options"] == {"steps": 3}
    assert out.exists()


def test_inpaint_command_takes_each_methods_options(runs, tmp_path, data_root, capsys,
                                                   monkeypatch):
    from genmodels import progress

    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)
    common = ["--n", "1", "--samples", "2", "--out", str(tmp_path / "f.png"), "--data-root",
              data_root, "--json", str(tmp_path / "n.json")]
    assert main(["inpaint", runs["diffusion"], "--method", "repaint", "--steps", "3",
                 "--jump-length", "1", "--resample", "2", *common]) == 0
    assert "5/5" in capsys.readouterr().err  # 3 steps + (2 − 1) × 1 × 2 jumps
    assert main(["inpaint", runs["flow_matching"], "--method", "dps", "--steps", "2",
                 "--step-size", "0.2", *common]) == 0
    assert "4/4" in capsys.readouterr().err
    numbers = json.loads((tmp_path / "n.json").read_text())
    assert numbers["method"] == "dps" and numbers["options"] == {"steps": 2, "step_size": 0.2}


# --- errors -------------------------------------------------------------------------------------
def test_bad_inpainting_inputs_raise_one_clear_error():
    diffusion, flow = build("diffusion", (1, 8, 8)), build("flow_matching", (1, 8, 8))
    vae = MODELS["vae"](config_from_dict({"model": {"kind": "vae", "latent_dim": 2,
                                                    "hidden": [8]}}).model)
    x, mask = torch.zeros(2, 1, 8, 8), make_mask("top", 2, 8)
    with pytest.raises(InputError, match=r"'mwg' is for a VAE; the methods that apply to a "
                                         r"diffusion model \(Diffusion\) are: repaint$"):
        inpaint(diffusion, x, mask, "mwg")
    with pytest.raises(InputError, match=r"flow-matching model \(FlowMatching\) are: replace, "
                                         "dps$"):
        inpaint(flow, x, mask, "repaint")
    with pytest.raises(InputError, match="'dps' is for a flow-matching model; the methods "
                                         "that apply to a VAE .* are: map, pseudo_gibbs, mwg"):
        inpaint(vae, torch.zeros(2, 1, 28, 28), make_mask("top", 2, 28), "dps")
    with pytest.raises(InputError, match="unknown inpainting method 'paint'; valid methods "
                                         "are: repaint$"):
        inpaint(diffusion, x, mask, "paint")
    for method, options, message in (
            ("repaint", {"steps": 0}, "steps should be positive, got 0"),
            ("repaint", {"jump_length": 0}, "jump_length should be positive"),
            ("repaint", {"resample": -1}, "resample should be positive"),
            ("replace", {"steps": -2}, "steps should be positive"),
            ("dps", {"step_size": -0.1}, "step_size .* should be a number >= 0")):
        with pytest.raises(ValueError, match=message):
            inpaint(diffusion if method == "repaint" else flow, x, mask, method, 2, **options)
    with pytest.raises(ConfigError, match=r"steps = 2000 should be an int >= 1 and <= 1000"):
        inpaint(diffusion, x, mask, "repaint", steps=2000)
    with pytest.raises(ValueError, match="does not fit images"):
        inpaint(flow, x, make_mask("top", 3, 8))
    with pytest.raises(ValueError, match=r"should lie in \[-1.0, 1.0\]"):
        inpaint(flow, x + 1.5, mask)
    with pytest.raises(ValueError, match=r"expected \(n, 1, 8, 8\)"):
        inpaint(flow, torch.zeros(2, 1, 4, 4), make_mask("top", 2, 4))
    with pytest.raises(ValueError, match="S of completions per image should be positive"):
        inpaint(diffusion, x, mask, samples=0)
    points = MODELS["flow_matching"](config_from_dict({"model": {
        "kind": "flow_matching", "net": "mlp", "hidden": [8]}}).model)
    with pytest.raises(InputError, match=r"needs images; this flow_matching model generates "
                                         r"points of shape \(2,\)"):
        inpaint(points, torch.zeros(2, 2), torch.ones(2, 1, 1, 2))
    classifier = MODELS["classifier"](config_from_dict({"model": {
        "kind": "classifier", "net": "mlp", "hidden": [8]}}).model)
    with pytest.raises(TypeError, match="needs a VAE; Classifier has no encode, decode"):
        inpaint(classifier, x, mask)
    assert set(DIFFUSION_METHODS) == {"repaint"} and set(FLOW_METHODS) == {"replace", "dps"}


def test_bad_command_lines_exit_2_with_one_line(runs, tmp_path, data_root, capsys):
    wide = tmp_path / "wide.png"
    Image.fromarray(np.zeros((28, 30), np.uint8)).save(wide)
    out = ["--out", str(tmp_path / "f.png"), "--data-root", data_root]
    for kind, flags, error in (
            ("diffusion", ["--method", "mwg"],
             "'mwg' is for a VAE; the methods that apply to a diffusion model (Diffusion) "
             "are: repaint"),
            ("flow_matching", ["--method", "repaint"], "are: replace, dps"),
            ("diffusion", ["--steps", "0"], "argument --steps should be a positive integer"),
            ("diffusion", ["--jump-length", "0"], "argument --jump-length should be a positive"),
            ("diffusion", ["--resample", "x"], "argument --resample should be an integer"),
            ("flow_matching", ["--method", "dps", "--step-size", "-1"],
             "argument --step-size should be a number >= 0, got -1"),
            ("diffusion", ["--steps", "5000"], "steps = 5000 should be an int >= 1 and <= 1000"),
            ("flow_matching", ["--proposals", "5", "--jump-length", "2"],
             "--proposals, --jump-length does not apply to --method replace (it takes --steps)"),
            ("diffusion", ["--final", "sample"], "--final does not apply to --method repaint"),
            ("flow_matching", ["--mask", f"png:{wide}"], "give a picture of that size")):
        assert main(["inpaint", runs[kind], *flags, *out]) == 2, flags
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert lines[0].startswith("genmodels inpaint: error: ") and error in lines[0], err
    assert not (tmp_path / "f.png").exists()
    ring = tmp_path / "ring"  # a flow of 2-D points
    assert main(["train", "configs/flow_ring.toml", "--out", str(ring), "train.max_steps=2",
                 "data.toy_size=512", "model.hidden=[16]", "model.sample_steps=2",
                 "train.progress=false"]) == 0
    capsys.readouterr()
    assert main(["inpaint", str(ring), *out]) == 2
    assert "holds a flow_matching model of points (2,); inpainting needs images" in \
        capsys.readouterr().err
