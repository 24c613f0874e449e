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


def relu_offset_share(depth: int) -> float:
    """The share of a wide ReLU network's output variance that its offset (its mean over the inputs) carries: the
    arc-cosine kernel's correlation map ρ ↦ (√(1 − ρ²) + (π − arccos ρ)ρ)/π (Cho & Saul 2009) iterated `depth` times
    from ρ = 0, the correlation of two random inputs on the sphere to order 1/√d (docs §1, "The flipping step").
    One layer: 1/π = (Eψ)²/Eψ²; 0.49, 0.60, 0.68 for 2–4 layers at He gain."""
    rho = 0.0
    for _ in range(depth):
        rho = (math.sqrt(1 - rho * rho) + (math.pi - math.acos(rho)) * rho) / math.pi
    return rho


def _kink_self_term(a: torch.Tensor, sigma: float) -> torch.Tensor:
    """h = E[Y|Y|], Y ~ N(a, σ²): (a² + σ²)(2Φ(a/σ) − 1) + 2aσφ(a/σ)."""
    ratio = a / sigma
    return (a * a + sigma * sigma) * (2 * torch.special.ndtr(ratio) - 1) + 2 * a * sigma * _normal_pdf(ratio)


@functools.cache
def relu_kink_curvature(d: int, k: int, depth: int = 1) -> float:
    """The mean curvature f'' of a ReLU net along its gradient ray, against the flip (docs §1, "The flipping step"),
    summed over its layers j = 1..L: units whose kink the ray crosses, each b = ∇g·∇f/G = (β·1[g > 0]·‖∇g‖² + ξ)/G
    with the self term β, the unit's coefficient in f, and ξ ~ N(0, σ_j²) from the other units of its layer,
    σ_j² = (k − 1)/(2k)·(1/d + 2(j − 1)/k) (the gradients of two units of layer j: 1/d at the first, + 2/k per He
    layer); f''_j = k·φ(0)·E[|β|·h(|β|, σ_j)]/(2G²), G² = 1/2, h = E[Y|Y|] for Y ~ N(|β|, σ_j²) (_kink_self_term).
    The top layer's |β| = 1/√k (the readout); a lower layer's is backpropagated, |β| ~ |N(0, 1/k)|. One layer:
    √k·φ(0)·h/(2G²), h → 4aσφ(0) for k ≫ d and a² for k ≪ d, a = 1/√k. Deeper: the bend where the ray starts (each
    layer's pre-activations taken as linear along the ray; the crossings' interaction, second order in τ, left out)."""
    gain_squared = 0.5  # G² = E ψ'(z)² for ReLU (at He gain in every layer)
    n, top = 4000, 12.0  # the half-normal |β|·√k by the midpoint rule on (0, 12)
    z = (torch.arange(n, dtype=torch.float64) + 0.5) * (top / n)
    weight = 2 * _normal_pdf(z) * (top / n)
    total = 0.0
    for layer in range(1, depth + 1):
        sigma = math.sqrt((k - 1) / (2 * k) * (1 / d + 2 * (layer - 1) / k))
        if layer == depth:
            beta = torch.tensor(1 / math.sqrt(k), dtype=torch.float64)
            total += (beta * _kink_self_term(beta, sigma)).item()
        else:
            beta = z / math.sqrt(k)
            total += (beta * _kink_self_term(beta, sigma) @ weight).item()
    return k / math.sqrt(2 * math.pi) * total / (2 * gain_squared)


@dataclasses.dataclass(frozen=True)
class StepModel:
    """The linear flipping step τ = |f|/G over one network's inputs, f ~ N(√ν·s, Eψ² − ν) with the network's offset
    s ~ N(0, 1) and offset variance ν = (Eψ)² for one hidden layer, ρ_L·Eψ² for L ReLU layers (relu_offset_share)
    (docs §1): in units of G = √Eψ'², τ ~ |N(mu, sigma²)| with mu = √ν·s/G at Gauss–Hermite nodes s (weights sum
    to 1); the exact flip's ‖δ‖ (`exact`) bends with ReLU's kink curvature (0 for smooth ψ, to order 1/√d). ReLU nets
    deeper than one layer are taken at He gain (their ‖δ‖ is the same at any gain: ReLU is homogeneous)."""

    mu: torch.Tensor
    weight: torch.Tensor
    sigma: float
    gain: float
    curvature: float

    @classmethod
    @functools.cache
    def of(cls, activation: str, d: int, k: int, depth: int = 1, nodes: int = 64) -> "StepModel":
        if depth > 1 and activation != "relu":
            raise ValueError(
                f"the flipping step is derived for one hidden layer, or ReLU at any depth: {activation}"
            )
        mean, second, slope = gaussian_expectations(activation)
        offset = mean * mean if depth == 1 else relu_offset_share(depth) * second
        gain = math.sqrt(slope)
        s, weight = (torch.tensor(v, dtype=torch.float64) for v in np.polynomial.hermite_e.hermegauss(nodes))
        curvature = relu_kink_curvature(d, k, depth) if activation == "relu" else 0.0
        return cls(
            math.sqrt(offset) * s / gain,
            weight / weight.sum(),
            math.sqrt(second - offset) / gain,
            gain,
            curvature,
        )

    def exact(self, tau: torch.Tensor) -> torch.Tensor:
        """‖δ‖ of the exact flip whose linear step is τ, where f bends against the flip with constant curvature f'':
        the smaller root of G‖δ‖ − f''‖δ‖²/2 = Gτ, 2τ/(1 + √(1 − 2f''τ/G)); where f turns back before it flips
        (2f''τ > G), its turning point G/f''."""
        if self.curvature:
            tau = tau.clamp(max=self.gain / (2 * self.curvature))  # past it, no root: the turning point
        return 2 * tau / (1 + torch.sqrt((1 - 2 * self.curvature * tau / self.gain).clamp(min=0)))

    def linear(self, delta: float) -> float:
        """τ whose exact flip is delta: the inverse of `exact`, τ = ‖δ‖ − f''‖δ‖²/(2G) up to the turning point."""
        if self.curvature:
            delta = min(delta, self.gain / self.curvature)
        return delta - self.curvature * delta * delta / (2 * self.gain)


@functools.cache
def flip_step_medians(activation: str, d: int, k: int, n_inputs: int, depth: int = 1) -> dict[str, float]:
    """The mean over networks of the exact flip's median ‖δ‖·√d/‖x‖ and median |η| = ‖δ‖/G over n_inputs inputs
    (StepModel; the sample median carries sample_median_bias) (docs §1, "The flipping step"), and `bend`, the share
    of ‖δ‖ that the curvature adds to the linear step."""
    model = StepModel.of(activation, d, k, depth)
    median = folded_normal_median(model.mu, model.sigma)
    tau = median + sample_median_bias(median, model.mu, model.sigma, n_inputs)
    delta = (model.exact(tau) @ model.weight).item()
    return {"delta": delta, "eta": delta / model.gain, "bend": 1 - (tau @ model.weight).item() / delta}


def pooled_step_quantile(
    activation: str, d: int, k: int, p: float, depth: int = 1, iterations: int = 60
) -> dict[str, float]:
    """The p-quantile of the exact flip's ‖δ‖·√d/‖x‖ and |η| pooled over networks × inputs (StepModel), what a
    figure's median and quartiles show: the mixture's CDF Σ_s w_s·P(|N(mu_s, σ²)| ≤ τ) = p, by bisection."""
    model = StepModel.of(activation, d, k, depth)
    low, high = 0.0, (model.mu.abs().max() + 8 * model.sigma).item() * 2
    for _ in range(iterations):
        delta = (low + high) / 2
        tau = model.linear(delta)
        below = (folded_normal_cdf(tau, model.mu, model.sigma) @ model.weight).item() < p
        low, high = (delta, high) if below else (low, delta)
    delta = (low + high) / 2
    return {"delta": delta, "eta": delta / model.gain}
