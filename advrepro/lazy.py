"""The lazy-training model of Wang, Ullah, Mianjy, Arora (NeurIPS 2022), batched over runs.

f(x) = (1/√m) Σ_s a_s relu(w_s·x + b_s) + a_0/√m with w_s, b_s ~ N(0, 1) (no 1/d), a_s, a_0 = ±1 frozen
(the published code's fc2). The lazy regime (Definition 2.1): max_s ‖[w_s, b_s] − [w_s, b_s]_0‖ ≤ C0/√m.
"""

import dataclasses
import math

import torch
from torch import Tensor

from advrepro.nets import Net, rademacher
from advrepro.seeding import generator


@dataclasses.dataclass
class LazyNets:
    """R networks: trainable W (R, m, d), b (R, m) or None, their initial values, frozen readout and bias."""

    W: Tensor
    b: Tensor | None
    W0: Tensor
    b0: Tensor | None
    readout: Tensor
    out_bias: Tensor | None

    def net(self) -> Net:
        return Net([self.W], self.readout, "relu", None if self.b is None else [self.b], self.out_bias)

    def linear_preactivation(self, x: Tensor) -> Tensor:
        """W x + b for x (R, B, d) -> (R, B, m)."""
        z = torch.bmm(x, self.W.transpose(1, 2))
        return z if self.b is None else z + self.b[:, None, :]

    def distance(self) -> Tensor:
        """max over neurons of ‖[w_s, b_s] − [w_s, b_s]_0‖₂ per run: the (2,∞) distance from initialisation."""
        sq = (self.W - self.W0).pow(2).sum(-1)
        if self.b is not None:
            sq = sq + (self.b - self.b0).pow(2)
        return sq.max(-1).values.sqrt()

    def project(self, radius: Tensor | float) -> None:
        """Every neuron's [w_s, b_s] back onto the ball of that radius around its initial value (inside: unchanged)."""
        with torch.no_grad():
            sq = (self.W - self.W0).pow(2).sum(-1)
            if self.b is not None:
                sq = sq + (self.b - self.b0).pow(2)
            radius = torch.as_tensor(radius, dtype=sq.dtype, device=sq.device).reshape(-1, 1)
            shrink = torch.clamp(radius / sq.sqrt().clamp_min(1e-30), max=1.0)  # (R, m); 1 inside the ball
            self.W.copy_(self.W0 + shrink[..., None] * (self.W - self.W0))
            if self.b is not None:
                self.b.copy_(self.b0 + shrink * (self.b - self.b0))


def init_lazy_nets(
    seed: int, runs: int, d: int, width: int, bias: bool, dtype, device, trainable: bool = True
) -> LazyNets:
    """Each run's initial network from its own stream (seed, 'init', run); W, b require grad when `trainable`."""
    parts = []
    for run in range(runs):
        g = generator(seed, "init", run)
        W = torch.randn(width, d, generator=g, dtype=dtype)
        b = torch.randn(width, generator=g, dtype=dtype)
        a = rademacher((width,), g, dtype)
        a0 = rademacher((1,), g, dtype)[0]
        parts.append((W, b, a, a0))
    W, b, a, a0 = (torch.stack(p).to(device) for p in zip(*parts, strict=True))
    scale = 1 / math.sqrt(width)
    return LazyNets(
        W=W.clone().requires_grad_(trainable),
        b=b.clone().requires_grad_(trainable) if bias else None,
        W0=W,
        b0=b if bias else None,
        readout=a * scale,
        out_bias=a0 * scale if bias else None,
    )


def logistic_loss(margins: Tensor) -> Tensor:
    """Mean log(1 + e^{−y f}) over the last axis (the code's Logistic_Loss), one value per run."""
    return torch.nn.functional.softplus(-margins).mean(-1)
