"""Exact log-likelihoods of diffusion and flow-matching models through the probability-flow ODE.

A deterministic flow dx/dt = f(x, t) moves a density by the continuity equation, so along a
trajectory d log p_t(x(t))/dt = −div f(x(t), t): the instantaneous change of variables (Chen et
al. 2018, "Neural ordinary differential equations"; FFJORD, Grathwohl et al. 2019). Integrating
the pair (x, ∫ div f) from the data end t_d to the noise end t_n, where the law is a known
Gaussian, gives

    log p_{t_d}(x(t_d)) = log N(x(t_n); 0, s² I) + ∫_{t_d}^{t_n} div f(x(t), t) dt     (nats).

The divergence is exact (one backward pass per dimension: tests and small d) or Hutchinson's
unbiased estimate E_ε[εᵀ (∂f/∂x) ε] with Rademacher or Gaussian probes ε drawn once per
trajectory (Hutchinson 1989; as in FFJORD). The solvers are fixed-step explicit Runge-Kutta
(Euler, Heun, classical RK4) or the adaptive Dormand-Prince RK45 of
:func:`scipy.integrate.solve_ivp`, which controls the error of the whole flattened batch.

Two parametrisations:

* flow matching (Lipman et al. 2023; Liu et al. 2023): x_t = (1 − t) x_0 + t x_1, noise x_0 at
  t = 0, data x_1 at t = 1, f = v: integrate from t = 1 down to t = 0, prior N(0, I).
* DDPM (Ho et al. 2020) with ε- or v-prediction: its probability-flow ODE (Song et al. 2021,
  "Score-based generative modeling through SDEs") in the DDIM form (Song, Meng & Ermon 2021,
  §4.3) dy/dσ = ε̂(x, t) with y = x / √ᾱ, σ = √((1 − ᾱ)/ᾱ), integrated in x and log σ
  from step 0 to step T − 1, prior N(0, (1 − ᾱ_{T−1}) I): see
  :func:`diffusion_log_likelihood`.

Likelihoods of images are reported in bits per dimension of 8-bit data by
:func:`bits_per_dim` (uniform dequantization, Theis, van den Oord & Bethge 2016), and
:func:`bits_per_dim_of` does all of it for a trained model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from genmodels.errors import InputError

if TYPE_CHECKING:
    from genmodels.models.denoising import DenoisingModel

Velocity = Callable[[Tensor, Tensor], Tensor]  # f(x (N, ...), t (N,)) -> (N, ...)

# explicit Runge-Kutta tableaus: (stage matrix a, weights b, nodes c)
TABLEAUS: dict[str, tuple[list[list[float]], list[float], list[float]]] = {
    "euler": ([[]], [1.0], [0.0]),
    "heun": ([[], [1.0]], [0.5, 0.5], [0.0, 1.0]),  # explicit trapezoid, 2nd order
    "rk4": ([[], [0.5], [0.0, 0.5], [0.0, 0.0, 1.0]], [1 / 6, 1 / 3, 1 / 3, 1 / 6],
            [0.0, 0.5, 0.5, 1.0]),
}
SOLVERS = (*TABLEAUS, "rk45")  # rk45: adaptive Dormand-Prince (scipy), ``steps`` unused
PROBES = ("rademacher", "gaussian")


def ode_log_likelihood(velocity: Velocity, x: Tensor, *, t_data: float, t_noise: float,
                       steps: int = 100, solver: str = "heun", probes: int = 1,
                       exact_trace: bool = False, generator: torch.Generator | None = None,
                       prior_std: float = 1.0, probe_distribution: str = "rademacher",
                       rtol: float = 1e-5, atol: float = 1e-5) -> tuple[Tensor, int]:
    """log p(x) in nats per example (N,) of the flow dx/dt = f(x, t) whose law at ``t_noise``
    is N(0, prior_std² I), for x (N, ...) taken as the state at ``t_data``; and the NFE.
    (prior_std is 1 for flow matching; :func:`diffusion_log_likelihood` passes
    √(1 − ᾱ_{T−1}).)

    Integrates x and ∫ div f dt from ``t_data`` to ``t_noise`` (either order) in ``steps``
    equal steps of ``solver`` (euler: 1 evaluation of f per step, heun: 2, rk4: 4), or
    adaptively (``rk45``, to ``rtol`` and ``atol`` on the flattened batch; its NFE is what it
    took), and returns (log N(x(t_noise); 0, prior_std² I) + ∫ div f dt, NFE). An evaluation
    of f includes its divergence: ``probes`` vector-Jacobian products εᵀ ∂f/∂x with the same
    vectors ε (``probe_distribution``: Rademacher ±1 or standard Gaussian, drawn from
    ``generator``) at every stage of the trajectory, averaged; or with ``exact_trace`` the
    trace of ∂f/∂x by one backward pass per dimension (no probes). f must treat the examples
    of the batch independently (a net in eval mode); it is called with t (N,) filled with the
    current time, under autograd even if the caller is in ``torch.no_grad`` (but not in
    ``torch.inference_mode``, whose tensors cannot be differentiated).
    """
    if steps < 1:
        raise InputError(f"steps = {steps!r}: the ODE needs at least one step")
    if solver not in SOLVERS:
        raise InputError(f"solver = {solver!r}; choose one of: {', '.join(SOLVERS)}")
    if probes < 1:
        raise InputError(f"probes = {probes!r}: Hutchinson's estimator needs at least one probe")
    if probe_distribution not in PROBES:
        raise InputError(f"probe_distribution = {probe_distribution!r}; choose one of: "
                         f"{', '.join(PROBES)}")
    if not prior_std > 0:
        raise InputError(f"prior_std = {prior_std!r} should be > 0")
    eps = (None if exact_trace
           else _draw_probes((probes, *x.shape), probe_distribution, generator, x))

    def rhs(state: Tensor, t: float) -> tuple[Tensor, Tensor]:
        return _flow_and_divergence(velocity, state, t, eps)

    if solver == "rk45":
        x_end, integral, nfe = _solve_adaptive(rhs, x, t_data, t_noise, rtol, atol)
    else:
        x_end, integral, nfe = _solve_fixed(rhs, x, t_data, t_noise, steps, TABLEAUS[solver])
    return _gaussian_log_density(x_end, prior_std) + integral, nfe


def _draw_probes(shape: tuple[int, ...], distribution: str, generator: torch.Generator | None,
                 like: Tensor) -> Tensor:
    """(probes, N, ...) vectors with E[ε εᵀ] = I, drawn on the generator's device."""
    device = generator.device if generator is not None else like.device
    if distribution == "rademacher":
        eps = torch.randint(0, 2, shape, generator=generator, device=device) * 2 - 1
    else:
        eps = torch.randn(shape, generator=generator, device=device)
    return eps.to(like.device, like.dtype)


def _flow_and_divergence(velocity: Velocity, x: Tensor, t: float, eps: Tensor | None
                         ) -> tuple[Tensor, Tensor]:
    """(f(x, t), div f(x, t) (N,)): exact if ``eps`` is None, else the mean of εᵀ ∂f/∂x ε
    over the probes ε = eps[k]."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        f = velocity(x, torch.full((len(x),), t, dtype=x.dtype, device=x.device))
        if eps is None:
            flat = f.flatten(1)
            dims = flat.shape[1]
            divergence = sum(
                torch.autograd.grad(flat[:, i].sum(), x, retain_graph=i < dims - 1)[0]
                .flatten(1)[:, i] for i in range(dims))
        else:
            divergence = sum(
                (torch.autograd.grad(f, x, e, retain_graph=k < len(eps) - 1)[0] * e)
                .flatten(1).sum(1) for k, e in enumerate(eps)) / len(eps)
    return f.detach(), divergence.detach()


def _solve_fixed(rhs: Callable[[Tensor, float], tuple[Tensor, Tensor]], x: Tensor,
                 t0: float, t1: float, steps: int,
                 tableau: tuple[list[list[float]], list[float], list[float]]
                 ) -> tuple[Tensor, Tensor, int]:
    """(x(t1), ∫_{t0}^{t1} div f dt, NFE) by ``steps`` equal explicit Runge-Kutta steps."""
    a, b, c = tableau
    h = (t1 - t0) / steps
    integral = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    for n in range(steps):
        t = t0 + n * h
        ks: list[tuple[Tensor, Tensor]] = []  # (f, div f) at each stage
        for a_i, c_i in zip(a, c, strict=True):
            increment = sum((a_ij * f for a_ij, (f, _) in zip(a_i, ks, strict=True)),
                            torch.zeros_like(x))
            ks.append(rhs(x + h * increment, t + c_i * h))
        x = x + h * sum(b_i * f for b_i, (f, _) in zip(b, ks, strict=True))
        integral = integral + h * sum(b_i * d for b_i, (_, d) in zip(b, ks, strict=True))
    return x, integral, steps * len(b)


def _solve_adaptive(rhs: Callable[[Tensor, float], tuple[Tensor, Tensor]], x: Tensor,
                    t0: float, t1: float, rtol: float, atol: float
                    ) -> tuple[Tensor, Tensor, int]:
    """(x(t1), ∫_{t0}^{t1} div f dt, NFE) by scipy's RK45 on the flattened batch and integral
    (float64 on the host; f in x's dtype on x's device)."""
    n, shape = len(x), x.shape

    def fun(t: float, state: np.ndarray) -> np.ndarray:
        current = torch.from_numpy(state[n:]).to(x.device, x.dtype).view(shape)
        f, divergence = rhs(current, t)
        return np.concatenate([divergence.double().cpu().numpy(),
                               f.double().cpu().numpy().ravel()])

    start = np.concatenate([np.zeros(n), x.detach().double().cpu().numpy().ravel()])
    from scipy.integrate import solve_ivp

    solution = solve_ivp(fun, (t0, t1), start, method="RK45", rtol=rtol, atol=atol)
    if not solution.success:
        raise RuntimeError(f"the probability-flow ODE did not integrate: {solution.message}")
    end = torch.from_numpy(solution.y[:, -1]).to(x.device, x.dtype)
    return end[n:].view(shape), end[:n], int(solution.nfev)


def _gaussian_log_density(z: Tensor, std: float) -> Tensor:
    """log N(z; 0, std² I) per example (N,) in nats."""
    flat = z.flatten(1)
    dims = flat.shape[1]
    return (-0.5 * flat.pow(2).sum(1) / std**2
            - dims * (math.log(std) + 0.5 * math.log(2 * math.pi)))


# --- DDPM -----------------------------------------------------------------------------------
def _log_alphas(alphas_cumprod: Tensor) -> Tensor:
    """log ᾱ_k (T,) in float64 on the host, after checking that ᾱ is a decreasing schedule."""
    a = torch.as_tensor(alphas_cumprod).detach().to("cpu", torch.float64)
    if a.dim() != 1 or len(a) < 2:
        raise InputError(f"alphas_cumprod has shape {tuple(a.shape)}: expected (T,), T >= 2")
    if not ((a > 0) & (a < 1)).all() or not (a[1:] < a[:-1]).all():
        raise InputError("alphas_cumprod should decrease strictly inside (0, 1)")
    return a.log()


def interpolated_alphas_cumprod(alphas_cumprod: Tensor, t: Tensor) -> Tensor:
    """ᾱ at net times t = τ/T for real τ in [0, T − 1] (float64 on the host): log ᾱ
    piecewise-linear in τ between the T knots ᾱ_k = alphas_cumprod[k] (k = 0..T−1, the net
    time of step k being k/T), so that the probability-flow ODE is continuous in time."""
    log_alphas = _log_alphas(alphas_cumprod)
    steps = len(log_alphas)
    tau = (torch.as_tensor(t).detach().to("cpu", torch.float64) * steps).clamp(0, steps - 1)
    k = tau.floor().long().clamp(max=steps - 2)
    w = tau - k
    return ((1 - w) * log_alphas[k] + w * log_alphas[k + 1]).exp()


def _step_of_log_alpha(log_alphas: Tensor, log_alpha: Tensor) -> Tensor:
    """The real step τ in [0, T − 1] where the interpolated log ᾱ equals ``log_alpha``: the
    inverse of :func:`interpolated_alphas_cumprod` (log ᾱ decreases strictly)."""
    k = (torch.searchsorted(-log_alphas, -log_alpha) - 1).clamp(0, len(log_alphas) - 2)
    tau = k + (log_alphas[k] - log_alpha) / (log_alphas[k] - log_alphas[k + 1])
    return tau.clamp(0, len(log_alphas) - 1)


def diffusion_log_likelihood(net: Velocity, alphas_cumprod: Tensor, x: Tensor, *,
                             prediction: str = "epsilon", **options: Any) -> tuple[Tensor, int]:
    """log p_0(x) in nats per example (N,) of a DDPM's probability-flow ODE, and the NFE.

    ``net(x_t, t)`` predicts ε (``prediction="epsilon"``) or v = √ᾱ ε − √(1 − ᾱ) x_0
    (``"v_prediction"``, converted by ε̂ = √ᾱ v + √(1 − ᾱ) x_t) at net time t = τ/T, of the
    chain x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε with the T values ``alphas_cumprod`` at τ = 0..T−1.
    ``options`` are those of :func:`ode_log_likelihood` (steps, solver, probes, exact_trace,
    generator, probe_distribution, rtol, atol).

    The ODE is the DDIM form (Song, Meng & Ermon 2021, §4.3) of the probability-flow ODE:
    with y = x/√ᾱ and σ = √((1 − ᾱ)/ᾱ), dy/dσ = ε̂(√ᾱ y, t). It is integrated in the
    equivalent variables x = √ᾱ y and u = log σ (steps uniform in log-SNR = −2u, as
    DPM-Solver, Lu et al. 2022), where both ends are flat:

        dx/du = √(1 − ᾱ) ε̂(x, t) − (1 − ᾱ) x,   since d log √ᾱ/du = −σ²/(1 + σ²) = −(1 − ᾱ).

    The second term is the rescaling between y and x: its divergence −D(1 − ᾱ) integrates to
    (D/2) log(ᾱ_end/ᾱ_data), the log-det of the change of variables y ↔ x at the two ends, so
    the result is a density in x-space throughout. (Integrated as y in u, y grows like σ at
    large σ and fixed steps lose 20-100× in accuracy; as y in σ, 10-50×.) Between the knots,
    log ᾱ is piecewise-linear in τ (:func:`interpolated_alphas_cumprod`); a σ maps to its τ
    through ᾱ = 1/(1 + σ²), and the net is queried at t = τ/T.

    Ends: the data end is step 0, σ_0 = √(β_0/(1 − β_0)), where the input x is taken as the
    state x_{τ=0} = √ᾱ_0 x_0 + √(1 − ᾱ_0) ε: the result is the density of that marginal. The
    noise end is step T − 1, whose law is taken to be N(0, (1 − ᾱ_{T−1}) I), the law of the
    noise part √(1 − ᾱ) ε exactly (not N(0, I), which would assume ᾱ_{T−1} = 0); what remains
    is the data's part √ᾱ_{T−1} x_0: an error of order √ᾱ_{T−1}·|E x_0|·z nats per dimension
    for a point z standard deviations from the data's mean, and on average minus the KL
    divergence between the two laws, ≈ −ᾱ_{T−1}|E x_0|²/2 (T = 1000: √ᾱ_{T−1} ≈ 6e-3 for
    the linear schedule, 5e-5 for the cosine one).
    """
    if prediction not in ("epsilon", "v_prediction"):
        raise InputError(f"prediction = {prediction!r}; choose one of: epsilon, v_prediction")
    log_alphas = _log_alphas(alphas_cumprod)
    steps = len(log_alphas)
    log_sigmas = 0.5 * torch.expm1(-log_alphas).log()  # log √((1 − ᾱ)/ᾱ), (T,)

    def velocity(x_t: Tensor, u: Tensor) -> Tensor:
        u64 = u.detach().to("cpu", torch.float64)
        log_alpha = -F.softplus(2 * u64)  # log ᾱ = −log(1 + σ²)
        t = _step_of_log_alpha(log_alphas, log_alpha) / steps

        def column(values: Tensor) -> Tensor:
            return values.to(x_t.device, x_t.dtype).view(-1, *(1,) * (x_t.dim() - 1))

        sqrt_alpha = column((0.5 * log_alpha).exp())
        sqrt_one_minus_alpha = column(u64.exp()) * sqrt_alpha  # √(1 − ᾱ) = σ √ᾱ
        eps = net(x_t, t.to(x_t.device, x_t.dtype))
        if prediction == "v_prediction":
            eps = sqrt_alpha * eps + sqrt_one_minus_alpha * x_t
        return sqrt_one_minus_alpha * eps - sqrt_one_minus_alpha.square() * x_t

    return ode_log_likelihood(velocity, x, t_data=float(log_sigmas[0]),
                              t_noise=float(log_sigmas[-1]),
                              prior_std=math.sqrt(1 - float(log_alphas[-1].exp())), **options)


# --- bits per dimension ---------------------------------------------------------------------
def bits_per_dim(log_p_nats: Tensor, dims: int, *, dequantized_8bit: bool,
                 data_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """Bits per dimension −(log p + D log scale)/(D ln 2) of log-densities in nats (N,) of
    D-dimensional data.

    With ``dequantized_8bit``, the data are 8-bit values k ∈ {0..255}, uniformly dequantized to
    v = k + u ∈ [0, 256) and mapped affinely to x = lo + (hi − lo) v/256 in
    ``data_range`` = (lo, hi): the density in 8-bit units is
    log p_v = log p_x + D log((hi − lo)/256), so scale = (hi − lo)/256 (2/256 = 2^−7 for
    [-1, 1]: bpd = −log p_x/(D ln 2) + 7), and E_u[−log₂ p_v(k + u)]/D bounds the discrete
    model's bits per dimension from above (Theis, van den Oord & Bethge 2016). Without, it is
    the continuous density in the data's own units (scale = 1).
    """
    if dims < 1:
        raise InputError(f"dims = {dims!r} should be >= 1")
    lo, hi = data_range
    if not hi > lo:
        raise InputError(f"data_range = {data_range!r}: expected (low, high) with high > low")
    log_scale = math.log((hi - lo) / 256) if dequantized_8bit else 0.0
    return -(log_p_nats + dims * log_scale) / (dims * math.log(2))


def dequantize(images_uint8: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Uniformly dequantized 8-bit images in [-1, 1): x = 2 (k + u)/256 − 1 with
    u ~ U[0, 1) from ``generator`` (float32, on the images' device)."""
    if images_uint8.dtype != torch.uint8:
        raise InputError(f"images of dtype {images_uint8.dtype}: dequantize takes 8-bit images "
                         "(torch.uint8, values 0..255)")
    device = generator.device if generator is not None else images_uint8.device
    u = torch.rand(images_uint8.shape, generator=generator, device=device)
    return 2 * (images_uint8.float() + u.to(images_uint8.device)) / 256 - 1


def bits_per_dim_of(model: DenoisingModel, images_uint8: Tensor, steps: int = 100,
                    probes: int = 1, solver: str = "heun",
                    generator: torch.Generator | None = None, batch_size: int = 64
                    ) -> dict[str, float]:
    """Bits per dimension of 8-bit images (n, C, H, W) under a ``diffusion`` or
    ``flow_matching`` model, through its probability-flow ODE, with Hutchinson's estimator
    (``probes`` Rademacher vectors) and uniform dequantization (both drawn from
    ``generator``), ``batch_size`` images at a time.

    Returns mean (bits/dim, an upper bound in expectation on the discrete model's, up to the
    solver's error), standard_error (of the mean over the images: it includes the
    dequantization and probe noise), n (images) and nfe (evaluations of the net per batch,
    each with ``probes`` backward passes; the mean over batches for ``rk45``).
    """
    from genmodels.models.diffusion import Diffusion
    from genmodels.models.flow import FlowMatching

    if not isinstance(model, (Diffusion, FlowMatching)):
        raise InputError(f"a {type(model).__name__} model has no probability-flow ODE: bits per "
                         "dimension by the ODE take a diffusion or flow_matching model")
    if tuple(images_uint8.shape[1:]) != tuple(model.input_shape) or not len(images_uint8):
        raise InputError(f"images of shape {tuple(images_uint8.shape)}: expected (n, "
                         f"{', '.join(map(str, model.input_shape))}) with n >= 1")
    if batch_size < 1:
        raise InputError(f"batch_size = {batch_size!r} should be >= 1")
    options = {"steps": steps, "solver": solver, "probes": probes, "generator": generator}
    device = next(model.parameters()).device
    dims = images_uint8[0].numel()
    was_training = model.training
    model.eval()
    try:
        bpds, nfes = [], []
        for batch in images_uint8.split(batch_size):
            x = dequantize(batch, generator).to(device)
            if isinstance(model, Diffusion):
                log_p, nfe = diffusion_log_likelihood(
                    model.net, model.noise_schedule.alphas_cumprod, x,
                    prediction=model.config.prediction, **options)
            else:
                log_p, nfe = ode_log_likelihood(model.net, x, t_data=1.0, t_noise=0.0, **options)
            bpds.append(bits_per_dim(log_p, dims, dequantized_8bit=True).double().cpu())
            nfes.append(nfe)
    finally:
        model.train(was_training)
    values = torch.cat(bpds)
    n = len(values)
    return {"mean": float(values.mean()),
            "standard_error": float(values.std() / math.sqrt(n)) if n > 1 else math.nan,
            "n": n, "nfe": sum(nfes) / len(nfes)}


__all__ = ["bits_per_dim", "bits_per_dim_of", "dequantize", "diffusion_log_likelihood",
           "interpolated_alphas_cumprod", "ode_log_likelihood"]
