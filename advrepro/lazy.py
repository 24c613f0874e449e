"""The lazy-training core of Wang, Ullah, Mianjy, Arora (NeurIPS 2022) that lazy-sgd and lazy-pgd share.

f(x) = (1/√m) Σ_s a_s relu(w_s·x + b_s) + a_0/√m with w_s, b_s ~ N(0, 1) (no 1/d), a_s, a_0 = ±1 frozen
(the published code's fc2). The lazy regime (Definition 2.1): max_s ‖[w_s, b_s] − [w_s, b_s]_0‖ ≤ C0/√m.
Here: the config keys both experiments have, the model batched over runs, the shuffled minibatches and the
closed-form SGD step (the 0-vs-1 MNIST task is `advrepro.data.mnist.binary_task`). docs/protocols.md §2–3.
"""

import dataclasses
import math
from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor

from advrepro.config import CommonConfig, require_positive
from advrepro.data.mnist import require_square
from advrepro.nets import Net, rademacher
from advrepro.seeding import generator


@dataclasses.dataclass
class LazyConfig(CommonConfig):
    """Keys of both lazy experiments (configs/lazy.yaml); each experiment's YAML sets lr, batch_size and runs."""

    d: int = 784
    width: int = 1000
    C0: float = 10.0
    lr: float = 0.1
    batch_size: int = 64
    max_epochs: int = 1000
    antialias: bool = False
    data_dir: str = "data"
    download: bool = True
    runs: int = 1

    def __post_init__(self):
        require_positive(self, "d", "width", "C0", "lr", "batch_size", "max_epochs", "runs")
        require_square(self.d)


def data_orders(streams: Iterable[tuple[int, int]], n: int, device) -> Tensor:
    """One permutation of the n training examples per model, from its (seed, run) stream: (models, n).

    Drawn once per run and walked every epoch, as the published code shuffles once per seed."""
    return torch.stack(
        [torch.randperm(n, generator=generator(seed, "shuffle", run)) for seed, run in streams]
    ).to(device)


def minibatches(order: Tensor, batch_size: int) -> tuple[Tensor, ...]:
    """Consecutive minibatches of each model's order: index tensors (models, ≤ batch_size)."""
    return order.split(batch_size, dim=1)


@dataclasses.dataclass
class LazyNets:
    """M models: trainable W (M, m, d), b (M, m) or None, their initial values, frozen readout and bias."""

    W: Tensor
    b: Tensor | None
    W0: Tensor
    b0: Tensor | None
    readout: Tensor
    out_bias: Tensor | None

    def take(self, models: Tensor) -> "LazyNets":
        """A copy of the given models (an index tensor): the models still training, when some have stopped."""
        parts = (getattr(self, f.name) for f in dataclasses.fields(self))
        return LazyNets(*(None if t is None else t[models] for t in parts))

    def put(self, models: Tensor, part: "LazyNets") -> None:
        """Writes the trained weights of `part` (from take(models)) back into those models."""
        with torch.no_grad():
            self.W[models] = part.W
            if self.b is not None:
                self.b[models] = part.b

    def initial(self) -> "LazyNets":
        """The same models at initialisation (W0, b0; nothing copied)."""
        return LazyNets(self.W0, self.b0, self.W0, self.b0, self.readout, self.out_bias)

    def net(self) -> Net:
        return Net([self.W], self.readout, "relu", None if self.b is None else [self.b], self.out_bias)

    def linear_preactivation(self, x: Tensor) -> Tensor:
        """W x + b for x (M, B, d) -> (M, B, m)."""
        z = torch.bmm(x, self.W.transpose(1, 2))
        return z if self.b is None else z + self.b[:, None, :]

    def moved_sq(self) -> Tensor:
        """‖[w_s, b_s] − [w_s, b_s]_0‖² per model and neuron (M, m): how far each neuron moved from initialisation."""
        sq = (self.W - self.W0).pow(2).sum(-1)
        return sq if self.b is None else sq + (self.b - self.b0).pow(2)

    def distance(self) -> Tensor:
        """max over neurons of ‖[w_s, b_s] − [w_s, b_s]_0‖₂ per run: the (2,∞) distance from initialisation."""
        return self.moved_sq().max(-1).values.sqrt()

    def on_boundary(self, radius: Tensor | float, rtol: float = 1e-4) -> Tensor:
        """Per model, the share of neurons on their ball's boundary: distance from initialisation ≥ (1 − rtol)·R."""
        sq = self.moved_sq()
        radius = torch.as_tensor(radius, dtype=sq.dtype, device=sq.device).reshape(-1, 1)
        return (sq >= ((1 - rtol) * radius).square()).to(sq.dtype).mean(-1)

    def project(self, radius: Tensor | float) -> None:
        """Every neuron outside the ball of that radius (one per model) around its initial [w_s, b_s] back onto it.
        Neurons inside keep their bits: W0 + 1·(W − W0) would round them."""
        with torch.no_grad():
            sq = self.moved_sq()
            radius = torch.as_tensor(radius, dtype=sq.dtype, device=sq.device).reshape(-1, 1)
            outside = sq > radius.square()  # (M, m)
            shrink = radius / sq.sqrt().clamp_min(1e-30)
            self.W.copy_(
                torch.where(outside[..., None], self.W0 + shrink[..., None] * (self.W - self.W0), self.W)
            )
            if self.b is not None:
                self.b.copy_(torch.where(outside, self.b0 + shrink * (self.b - self.b0), self.b))


def concat(parts: list[LazyNets]) -> LazyNets:
    """The models of several LazyNets as one batch (cells trained together)."""
    return LazyNets(*(torch.cat([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(LazyNets)))


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


def accuracy(net: Net, x: Tensor, y: Tensor) -> np.ndarray:
    """Share of examples with sign f(x) = y, per model (x: (N, d) shared or (models, N, d))."""
    with torch.no_grad():
        return (torch.sign(net.forward(x)) == y).to(x.dtype).mean(-1).cpu().numpy()


def sgd_step(
    nets: LazyNets, x: Tensor, y: Tensor, lr: float, active: Tensor | None = None, with_bound: bool = True
) -> Tensor | None:
    """One SGD step on the mean logistic loss with the gradient in closed form, W updated in place by one bmm.

    ∂L/∂w_s = Σ_i C_is x_i, C_is = −y_i σ(−y_i f(x_i)) a_s 1[z_is > 0] / B; models not `active` (default: all
    are) do not move.
    Returns max_s ‖Δ[w_s, b_s]‖ per model, from the Gram matrix: ‖Σ_i C_is x_i‖² = (Cᵀ K C)_ss, K = X Xᵀ (None when
    not `with_bound`: lazy-pgd projects instead).
    """
    z = nets.linear_preactivation(x)  # (M, B, m)
    f = (torch.relu(z) * nets.readout[:, None, :]).sum(-1)  # not a batched matrix-vector product: its bits
    f = f if nets.out_bias is None else f + nets.out_bias[:, None]  # depend on how many models share the call
    dloss_df = -y * torch.sigmoid(-y * f) / x.shape[1]
    dloss_df = dloss_df if active is None else dloss_df * active[:, None]
    C = dloss_df[..., None] * nets.readout[:, None, :] * (z > 0)  # (M, B, m)
    with torch.no_grad():
        nets.W.baddbmm_(C.transpose(1, 2), x, alpha=-lr)
        grad_b = None if nets.b is None else C.sum(1)
        if grad_b is not None:
            nets.b.sub_(grad_b, alpha=lr)
        if not with_bound:
            return None
        step_sq = (torch.bmm(x, x.transpose(1, 2)) @ C * C).sum(1)  # ‖Δw_s‖² / lr²
        step_sq = step_sq if grad_b is None else step_sq + grad_b**2
    return lr * step_sq.max(-1).values.sqrt()
