"""Batched two-layer pReLU networks and the ideal classifiers they approach (Min & Vidal, ICML 2024, eq. (2)).

f(x) = Σ_j v_j · relu(w_j·x)^p / ‖w_j‖^(p−1), no biases; p = 1 is the ReLU network of Frei et al. (2023). A leading
dimension R indexes independent networks, so every run of a cell is one tensor expression. Input gradients are
written out (∇ₓf = Σ_j v_j·p·relu(w_j·x)^(p−1)/‖w_j‖^(p−1)·w_j), checked against autograd in the tests.
"""

import dataclasses
import math

import torch
from torch import Tensor


def prelu(z: Tensor, norms: Tensor, p: int) -> Tensor:
    """relu(z)^p / ‖w‖^(p−1), z (R, N, m), norms (R, m)."""
    if p == 1:
        return torch.relu(z)
    return torch.relu(z).pow(p) / norms[:, None, :].pow(p - 1)


def prelu_slope(z: Tensor, norms: Tensor, p: int) -> Tensor:
    """d/dz of prelu: 1[z > 0] for p = 1, else p·relu(z)^(p−1)/‖w‖^(p−1)."""
    if p == 1:
        return (z > 0).to(z.dtype)
    return p * torch.relu(z).pow(p - 1) / norms[:, None, :].pow(p - 1)


@dataclasses.dataclass
class PReLUNets:
    """R networks: W (R, m, d) the neurons w_j, v (R, m) the output weights, p the power of each (or of all).

    Networks of different powers may share the batch: each power's elementwise steps run on its own networks only
    (`groups`), so every network's bits are those of a batch of its power alone."""

    W: Tensor
    v: Tensor
    p: int | tuple[int, ...]
    groups: dict[int, slice | Tensor] = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        self.p = (self.p,) * len(self.W) if isinstance(self.p, int) else tuple(self.p)
        powers = sorted(set(self.p))
        self.groups = (
            {powers[0]: slice(None)}
            if len(powers) == 1
            else {
                q: torch.tensor([i for i, r in enumerate(self.p) if r == q], device=self.W.device)
                for q in powers
            }
        )

    def select(self, rows: slice) -> "PReLUNets":
        return PReLUNets(self.W[rows], self.v[rows], self.p[rows])

    def by_power(self, fn, z: Tensor, norms: Tensor) -> Tensor:
        """fn(z, norms, p) (prelu or prelu_slope) with each network's own power p."""
        if len(self.groups) == 1:
            return fn(z, norms, self.p[0])
        out = torch.empty_like(z)
        for p, rows in self.groups.items():
            out[rows] = fn(z[rows], norms[rows], p)
        return out

    @property
    def norms(self) -> Tensor:
        return self.W.norm(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        """f(x) for x (R, N, d), one input set per network -> (R, N)."""
        z = torch.matmul(x, self.W.transpose(1, 2))
        h = self.by_power(prelu, z, self.norms)
        return (h * self.v[:, None, :]).sum(-1)  # elementwise and a sum: batch-invariant bits

    def input_gradient(self, x: Tensor, with_value: bool = True) -> tuple[Tensor | None, Tensor]:
        """(f, ∇ₓf) for x (R, N, d); f is None when not `with_value` (an attack's step needs only ∇ₓf)."""
        z = torch.matmul(x, self.W.transpose(1, 2))
        norms = self.norms
        f = (self.by_power(prelu, z, norms) * self.v[:, None, :]).sum(-1) if with_value else None
        return f, torch.matmul(self.by_power(prelu_slope, z, norms) * self.v[:, None, :], self.W)

    def exp_loss_gradients(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(L, ∂L/∂W, ∂L/∂v) of each network's mean exponential loss L = mean_i e^{−y_i f(x_i)}, x (R, B, d).

        With g_i = −y_i e^{−y_i f(x_i)}/B and h_ij = relu(z_ij)^p/‖w_j‖^(p−1): ∂L/∂v_j = Σ_i g_i h_ij and
        ∂L/∂w_j = v_j Σ_i g_i·prelu'(z_ij)·x_i − (p − 1)·v_j·(∂L/∂v_j)·w_j/‖w_j‖² (the norm's share, 0 for p = 1).
        """
        z = torch.matmul(x, self.W.transpose(1, 2))
        norms = self.norms
        h = self.by_power(prelu, z, norms)
        loss_terms = torch.exp(-y * (h * self.v[:, None, :]).sum(-1))
        g = -y * loss_terms / x.shape[1]
        grad_v = (g[..., None] * h).sum(1)
        coefficient = g[..., None] * self.by_power(prelu_slope, z, norms) * self.v[:, None, :]
        grad_W = torch.matmul(coefficient.transpose(1, 2), x)
        for p, rows in self.groups.items():  # the norm's share, 0 for p = 1
            if p == 1:
                continue
            share = (p - 1) * self.v[rows] * grad_v[rows] / norms[rows] ** 2
            grad_W[rows] -= share[..., None] * self.W[rows]
        return loss_terms.mean(-1), grad_W, grad_v

    def contributions(self) -> Tensor:
        """|v_j|·‖w_j‖ per neuron (R, m): the neuron's share of f's scale (f is 1-homogeneous in w_j for every p)."""
        return self.v.abs() * self.norms


@dataclasses.dataclass
class IdealClassifier:
    """Min & Vidal's ideal classifiers on k orthogonal clusters e_1..e_k, the first k_pos labelled +1.

    p = 1: F(x) = √k₊·relu(μ₊·x) − √k₋·relu(μ₋·x), μ± the normalised sums of each label's centres: the direction
    gradient flow on ReLU networks converges to (Frei et al. 2023). p ≥ 2: F^(p)(x) = Σ_c s_c·relu(x_c)^p, s_c the
    centre's label (prelu_f_dist.py's f1 and f2).
    """

    k: int
    k_pos: int
    p: int

    def signs(self, dtype, device) -> Tensor:
        s = torch.full((self.k,), -1.0, dtype=dtype, device=device)
        s[: self.k_pos] = 1.0
        return s

    def forward_and_gradient(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(F(x), ∇F(x)) for x (..., d)."""
        centres = x[..., : self.k]
        s = self.signs(x.dtype, x.device)
        grad = torch.zeros_like(x)
        if self.p == 1:
            k_neg = self.k - self.k_pos
            plus = centres[..., : self.k_pos].sum(-1) / math.sqrt(self.k_pos)  # μ₊·x
            minus = centres[..., self.k_pos :].sum(-1) / math.sqrt(k_neg)  # μ₋·x
            value = math.sqrt(self.k_pos) * torch.relu(plus) - math.sqrt(k_neg) * torch.relu(minus)
            # √k₊·μ₊ has entries 1 on the positive centres; √k₋·μ₋ entries 1 on the negative ones
            grad[..., : self.k_pos] = (plus > 0).to(x.dtype)[..., None]
            grad[..., self.k_pos : self.k] = -(minus > 0).to(x.dtype)[..., None]
            return value, grad
        value = (torch.relu(centres).pow(self.p) * s).sum(-1)
        grad[..., : self.k] = self.p * torch.relu(centres).pow(self.p - 1) * s
        return value, grad

    def sphere_max(self) -> float:
        """max |F| on the unit sphere: √max(k₊, k₋) (at μ±) for p = 1; 1 (at a centre) for p ≥ 2."""
        return math.sqrt(max(self.k_pos, self.k - self.k_pos)) if self.p == 1 else 1.0

    def radius(self) -> float:
        """The ℓ2 distance from a centre to F's decision boundary (docs/protocols.md §8): 1/√k for p = 1 (the
        hyperplane 1 + √k₊u − √k₋w = 0 in (u, w) = (μ₊·δ, μ₋·δ)), √2/2 for p ≥ 2 (halfway to a centre of the
        other label: (1 − t)^p = t^p)."""
        return 1 / math.sqrt(self.k) if self.p == 1 else math.sqrt(2) / 2
