"""The plain gradient step of every experiment trained by (S)GD with autograd or closed-form gradients."""

from collections.abc import Iterable

import torch
from torch import Tensor


def descend(params: Iterable[Tensor], grads: Iterable[Tensor], lr: float) -> None:
    """θ ← θ − lr·g for each (θ, g), in place; each g is scaled in place and so consumed. The same bits as θ − lr·g,
    without a temporary of θ's size (400 MB a step at vardi-universal's d = 10⁵); θ.sub_(g, alpha=lr) would round
    differently (a fused multiply-add)."""
    with torch.no_grad():
        for theta, g in zip(params, grads, strict=True):
            theta.sub_(g.mul_(lr))
