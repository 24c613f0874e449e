"""ℓ2 PGD as small composable steps (after MadryLab robustness's AttackerStep: step, then project).

Written for this tool: the common attack libraries clamp to [0,1] images or need two or more logits, while these
models have one scalar output and inputs on the unit sphere (see README, "Why these dependencies").
"""

from collections.abc import Callable

import torch
from torch import Tensor


def l2_normalize(g: Tensor) -> Tensor:
    """g / ‖g‖ per example (last axis); zero where g = 0."""
    return g / g.norm(dim=-1, keepdim=True).clamp_min(1e-30)


def project_l2_ball(delta: Tensor, eps: Tensor | float) -> Tensor:
    """The nearest point of the ε-ball: δ·min(1, ε/‖δ‖) (the code's δ *= ε / max(‖δ‖, ε)); δ itself inside the ball,
    also at ε = 0 (where the code's 0/0 would give NaN)."""
    norm = delta.norm(dim=-1, keepdim=True)
    return torch.where(norm > eps, delta * (eps / norm), delta)


def clip_box(x: Tensor, delta: Tensor, low: float = 0.0, high: float = 1.0) -> Tensor:
    """δ such that x + δ lies in the box [low, high]^d."""
    return (x + delta).clamp(low, high) - x


def pgd_l2(
    ascent: Callable[[Tensor], Tensor],
    x: Tensor,
    eps: Tensor | float,
    step_size: Tensor | float,
    steps: int,
    clip: bool,
    start: Tensor | None = None,
) -> Tensor:
    """Projected normalised-gradient ascent from δ = 0 (or `start`, a random restart): δ ← Π_ε(clip(δ + α·g/‖g‖)),
    g = ascent(x + δ).

    Wang et al. (2022) Algorithm 1 and advtrain.py's pgd_l2 (step, clip to [0,1], project); torch_adv_atk.py's l2
    step (Min & Vidal 2024) is the same without the clip.
    """
    delta = torch.zeros_like(x) if start is None else start
    for _ in range(steps):
        delta = delta + step_size * l2_normalize(ascent(x + delta))
        if clip:
            delta = clip_box(x, delta)
        delta = project_l2_ball(delta, eps)
    return delta


def logistic_ascent(gradient: Callable[[Tensor], Tensor], y: Tensor) -> Callable[[Tensor], Tensor]:
    """Ascent direction of the logistic loss log(1 + e^{−y f(x)}): −y·σ(−y f)·∇f, whose normalised form is that of
    −y·∇f (σ > 0), used directly so that σ's underflow cannot zero it (and f is not needed)."""
    return lambda x: -y[..., None] * gradient(x)
