"""Closed forms the experiments are checked against."""

import functools
import math

import numpy as np
import torch

from advrepro.nets import ACTIVATIONS


def gaussian_moments(activation: str) -> tuple[float, float]:
    """(E ψ(z)², E ψ'(z)²) for z ~ N(0, 1) (gaussian_expectations)."""
    _, second, slope = gaussian_expectations(activation)
    return second, slope


def gaussian_expectations(activation: str) -> tuple[float, float, float]:
    """(E ψ(z), E ψ(z)², E ψ'(z)²) for z ~ N(0, 1): midpoint rule on [−12, 12], cells split at 0 (exact to ~1e-9
    for kinks)."""
    n, half_width = 240_000, 12.0
    dz = 2 * half_width / n
    z = -half_width + dz * (torch.arange(n, dtype=torch.float64) + 0.5)
    weight = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) * dz
    psi, psi_prime = ACTIVATIONS[activation]
    return (psi(z) @ weight).item(), (psi(z) ** 2 @ weight).item(), (psi_prime(z) ** 2 @ weight).item()


def random_net_limits(activation: str) -> dict[str, float]:
    """Large-width, large-d limits for f(x) = k^{-1/2} Σ a_l ψ(w_l·x), w_l ~ N(0, I/d), ‖x‖ = √d.

    f → N(0, Eψ²) so E|f| = √(2Eψ²/π); ‖∇f‖² = k⁻¹ Σ ψ'(w_l·x)²‖w_l‖² → Eψ'²; η_lin = |f|/‖∇f‖².
    ReLU: E|f| = 0.5642, ‖∇f‖ = 0.7071, η_lin = 1.128 (docs/protocols.md §1).
    """
    second, slope = gaussian_moments(activation)
    mean_abs_f = math.sqrt(2 * second / math.pi)
    return {"f_abs": mean_abs_f, "grad_norm": math.sqrt(slope), "eta_lin": mean_abs_f / slope}


def _normal_pdf(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def folded_normal_median(mu: torch.Tensor, sigma: float, iterations: int = 60) -> torch.Tensor:
    """The median q of |N(mu, σ²)|: Φ((q − mu)/σ) − Φ((−q − mu)/σ) = 1/2, by bisection on [0, |mu| + 5σ]."""
    low, high = torch.zeros_like(mu), mu.abs() + 5 * sigma
    for _ in range(iterations):
        q = (low + high) / 2
        below = torch.special.ndtr((q - mu) / sigma) - torch.special.ndtr((-q - mu) / sigma) < 0.5
        low, high = torch.where(below, q, low), torch.where(below, high, q)
    return (low + high) / 2


def sample_median_bias(q: torch.Tensor, mu: torch.Tensor, sigma: float, n: int) -> torch.Tensor:
    """E[median of n draws of |N(mu, σ²)|] − q, q its median, to O(1/n): −p'(q)/(8(n + 2)p(q)³), p the folded
    density (the sample quantile's expansion, David & Nagaraja, Order Statistics §4.6)."""
    a, b = (q - mu) / sigma, (q + mu) / sigma
    density = (_normal_pdf(a) + _normal_pdf(b)) / sigma
    slope = -(a * _normal_pdf(a) + b * _normal_pdf(b)) / sigma**2
    return -slope / (8 * (n + 2) * density**3)


def relu_kink_curvature(d: int, k: int) -> float:
    """The mean curvature f'' of a one-layer ReLU net along its gradient ray, against the flip (docs §1, "The flipping
    step"): units whose kink the ray crosses, each b_l = w_l·∇f/G = (c_l·1[w_l·x > 0]·‖w_l‖² + ξ_l)/G with the self
    term a = 1/√k and ξ_l ~ N(0, σ²), σ² = (k − 1)/(2kd); f'' = √k·φ(0)·h/(2G²), G² = 1/2, where
    h = (a² + σ²)(2Φ(a/σ) − 1) + 2aσφ(a/σ) (4aσφ(0) for k ≫ d, a² for k ≪ d)."""
    a, sigma = 1 / math.sqrt(k), math.sqrt((k - 1) / (2 * k * d))
    ratio = torch.tensor(a / sigma, dtype=torch.float64)
    h = (a * a + sigma * sigma) * (2 * torch.special.ndtr(ratio) - 1) + 2 * a * sigma * _normal_pdf(ratio)
    return math.sqrt(k) / math.sqrt(2 * math.pi) * h.item() / (2 * 0.5)


@functools.cache
def flip_step_medians(activation: str, d: int, k: int, n_inputs: int, nodes: int = 64) -> dict[str, float]:
    """The mean over networks of the exact flip's median ‖δ‖·√d/‖x‖ and median |η| over n_inputs inputs, for one
    hidden layer (docs §1, "The flipping step"). Per network, over its inputs, f ~ N(c₀s, Eψ² − c₀²) (c₀ = Eψ,
    s ~ N(0, 1) the network's offset; Gauss–Hermite nodes) and ‖∇f‖ = G = √Eψ'², so the linear step's ‖δ‖ is
    τ = |f|/G; its median over n inputs carries sample_median_bias; ReLU's kinks bend f against the flip
    (relu_kink_curvature), ‖δ‖ = τ(1 + f''τ/(2G)) to first order; smooth ψ bend it at order 1/d only; |η| = ‖δ‖/G."""
    mean, second, slope = gaussian_expectations(activation)
    gain = math.sqrt(slope)
    s, weight = (torch.tensor(v, dtype=torch.float64) for v in np.polynomial.hermite_e.hermegauss(nodes))
    weight = weight / weight.sum()
    mu, sigma = mean * s / gain, math.sqrt(second - mean * mean) / gain  # f/G over one network's inputs
    median = folded_normal_median(mu, sigma)
    tau = median + sample_median_bias(median, mu, sigma, n_inputs)
    curvature = relu_kink_curvature(d, k) if activation == "relu" else 0.0
    delta = (tau * (1 + curvature * tau / (2 * gain))) @ weight
    return {"delta": delta.item(), "eta": delta.item() / gain}
