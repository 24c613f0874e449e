"""Closed forms the experiments are checked against."""

import dataclasses
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


def folded_normal_cdf(q: torch.Tensor | float, mu: torch.Tensor, sigma: float) -> torch.Tensor:
    """P(|N(mu, σ²)| ≤ q) = Φ((q − mu)/σ) − Φ((−q − mu)/σ)."""
    return torch.special.ndtr((q - mu) / sigma) - torch.special.ndtr((-q - mu) / sigma)


def folded_normal_median(mu: torch.Tensor, sigma: float, iterations: int = 60) -> torch.Tensor:
    """The median q of |N(mu, σ²)|: Φ((q − mu)/σ) − Φ((−q − mu)/σ) = 1/2, by bisection on [0, |mu| + 5σ]."""
    low, high = torch.zeros_like(mu), mu.abs() + 5 * sigma
    for _ in range(iterations):
        q = (low + high) / 2
        below = folded_normal_cdf(q, mu, sigma) < 0.5
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
    gain_squared = 0.5  # G² = E ψ'(z)² for ReLU
    return math.sqrt(k) / math.sqrt(2 * math.pi) * h.item() / (2 * gain_squared)


@dataclasses.dataclass(frozen=True)
class StepModel:
    """One hidden layer's linear flipping step τ = |f|/G over a network's inputs, f ~ N(c₀s, Eψ² − c₀²) (docs §1):
    in units of G = √Eψ'², τ ~ |N(mu, sigma²)| with mu = c₀s/G at Gauss–Hermite nodes s (weights sum to 1); the exact
    flip's ‖δ‖ = τ(1 + curvature·τ/(2G)), curvature = ReLU's kink curvature (0 for smooth ψ, to order 1/√d)."""

    mu: torch.Tensor
    weight: torch.Tensor
    sigma: float
    gain: float
    curvature: float

    @classmethod
    @functools.cache
    def of(cls, activation: str, d: int, k: int, nodes: int = 64) -> "StepModel":
        mean, second, slope = gaussian_expectations(activation)
        gain = math.sqrt(slope)
        s, weight = (torch.tensor(v, dtype=torch.float64) for v in np.polynomial.hermite_e.hermegauss(nodes))
        curvature = relu_kink_curvature(d, k) if activation == "relu" else 0.0
        return cls(
            mean * s / gain, weight / weight.sum(), math.sqrt(second - mean * mean) / gain, gain, curvature
        )

    def exact(self, tau: torch.Tensor) -> torch.Tensor:
        """‖δ‖ of the exact flip whose linear step is τ (first order in the curvature)."""
        return tau * (1 + self.curvature * tau / (2 * self.gain))

    def linear(self, delta: float) -> float:
        """τ whose exact flip is delta: the inverse of `exact`."""
        c = self.curvature / (2 * self.gain)
        return delta if c == 0 else (math.sqrt(1 + 4 * c * delta) - 1) / (2 * c)


@functools.cache
def flip_step_medians(activation: str, d: int, k: int, n_inputs: int) -> dict[str, float]:
    """The mean over networks of the exact flip's median ‖δ‖·√d/‖x‖ and median |η| = ‖δ‖/G over n_inputs inputs
    (StepModel; the sample median carries sample_median_bias) (docs §1, "The flipping step")."""
    model = StepModel.of(activation, d, k)
    median = folded_normal_median(model.mu, model.sigma)
    tau = median + sample_median_bias(median, model.mu, model.sigma, n_inputs)
    delta = (model.exact(tau) @ model.weight).item()
    return {"delta": delta, "eta": delta / model.gain}


def pooled_step_quantile(activation: str, d: int, k: int, p: float, iterations: int = 60) -> dict[str, float]:
    """The p-quantile of the exact flip's ‖δ‖·√d/‖x‖ and |η| pooled over networks × inputs (StepModel), what a
    figure's median and quartiles show: the mixture's CDF Σ_s w_s·P(|N(mu_s, σ²)| ≤ τ) = p, by bisection."""
    model = StepModel.of(activation, d, k)
    low, high = 0.0, (model.mu.abs().max() + 8 * model.sigma).item() * 2
    for _ in range(iterations):
        delta = (low + high) / 2
        tau = model.linear(delta)
        below = (folded_normal_cdf(tau, model.mu, model.sigma) @ model.weight).item() < p
        low, high = (delta, high) if below else (low, delta)
    delta = (low + high) / 2
    return {"delta": delta, "eta": delta / model.gain}
