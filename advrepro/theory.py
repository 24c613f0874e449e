"""Closed forms the experiments are checked against."""

import math

import torch

from advrepro.nets import ACTIVATIONS


def gaussian_moments(activation: str) -> tuple[float, float]:
    """(E ψ(z)², E ψ'(z)²) for z ~ N(0, 1): midpoint rule on [−12, 12], cells split at 0 (exact to ~1e-9 for kinks)."""
    n, half_width = 240_000, 12.0
    dz = 2 * half_width / n
    z = -half_width + dz * (torch.arange(n, dtype=torch.float64) + 0.5)
    weight = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) * dz
    psi, psi_prime = ACTIVATIONS[activation]
    return (psi(z) ** 2 @ weight).item(), (psi_prime(z) ** 2 @ weight).item()


def random_net_limits(activation: str) -> dict[str, float]:
    """Large-width, large-d limits for f(x) = k^{-1/2} Σ a_l ψ(w_l·x), w_l ~ N(0, I/d), ‖x‖ = √d.

    f → N(0, Eψ²) so E|f| = √(2Eψ²/π); ‖∇f‖² = k⁻¹ Σ ψ'(w_l·x)²‖w_l‖² → Eψ'²; η_lin = |f|/‖∇f‖².
    ReLU: E|f| = 0.5642, ‖∇f‖ = 0.7071, η_lin = 1.128 (docs/protocols.md §1).
    """
    second, slope = gaussian_moments(activation)
    mean_abs_f = math.sqrt(2 * second / math.pi)
    return {"f_abs": mean_abs_f, "grad_norm": math.sqrt(slope), "eta_lin": mean_abs_f / slope}
