"""Batched fully connected scalar networks with closed-form input gradients.

f(x) = c · ψ(z_L) + c0,  z_1 = W_1 x + b_1,  z_{l+1} = W_{l+1} ψ(z_l) + b_{l+1}.
A leading dimension B indexes independent networks, so many networks are evaluated in one tensor expression.
This one class is the random networks of Bubeck et al. (2021) and Bartlett et al. (2021), the lazy-trained
networks of Wang et al. (2022) and the trained networks of Vardi et al. (2022).
"""

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor

SQRT_2PI = math.sqrt(2 * math.pi)


def _gelu_prime(z: Tensor) -> Tensor:
    return 0.5 * (1 + torch.erf(z / math.sqrt(2))) + z * torch.exp(-0.5 * z * z) / SQRT_2PI


# ψ and ψ' in closed form.
ACTIVATIONS = {
    "relu": (torch.relu, lambda z: (z > 0).to(z.dtype)),
    "tanh": (torch.tanh, lambda z: 1 - torch.tanh(z) ** 2),
    "softplus": (F.softplus, torch.sigmoid),
    "gelu": (F.gelu, _gelu_prime),
}


@dataclasses.dataclass
class Net:
    """B networks. weights[0]: (B, k, d), weights[l>0]: (B, k, k); biases like (B, k) or None; readout c: (B, k)."""

    weights: list[Tensor]
    readout: Tensor
    activation: str = "relu"
    biases: list[Tensor | None] | None = None
    out_bias: Tensor | None = None

    @property
    def psi(self):
        return ACTIVATIONS[self.activation][0]

    @property
    def psi_prime(self):
        return ACTIVATIONS[self.activation][1]

    def _bias(self, layer: int) -> Tensor | None:
        return None if self.biases is None else self.biases[layer]

    def linear(self, layer: int, h: Tensor, bias: bool = True) -> Tensor:
        """W_l h (+ b_l): h (B, N, fan_in) or, for layer 0, (N, d) shared by all networks -> (B, N, k)."""
        z = torch.matmul(h, self.weights[layer].transpose(-1, -2))
        b = self._bias(layer)
        return z + b[:, None, :] if bias and b is not None else z

    def hidden(self, z1: Tensor) -> Tensor:
        """The last hidden layer's activations ψ(z_L) from first-layer pre-activations z1: (B, N, k) -> (B, N, k)."""
        h = self.psi(z1)
        for layer in range(1, len(self.weights)):
            h = self.psi(self.linear(layer, h))
        return h

    def head(self, z1: Tensor) -> Tensor:
        """f from first-layer pre-activations z1: (B, N, k) -> (B, N)."""
        f = (self.hidden(z1) * self.readout[:, None, :]).sum(-1)
        return f if self.out_bias is None else f + self.out_bias[:, None]

    def forward(self, x: Tensor) -> Tensor:
        """f(x) for x (N, d) shared by all networks or (B, N, d), one input set per network -> (B, N)."""
        return self.head(self.linear(0, x))

    def input_gradient(self, x: Tensor, with_value: bool = True) -> tuple[Tensor | None, Tensor, Tensor]:
        """(f, ∇ₓf, z1) by the chain rule written out: ∇ₓf = W_1ᵀ(ψ'(z_1) ⊙ W_2ᵀ(… ψ'(z_L) ⊙ c)); f is None when not
        `with_value` (an attack's step needs only ∇ₓf).

        For one hidden layer this is Bubeck et al.'s ∇f(x) = Σ_l c_l ψ'(w_l·x) w_l.
        """
        zs = [self.linear(0, x)]
        for layer in range(1, len(self.weights)):
            zs.append(self.linear(layer, self.psi(zs[-1])))
        f = None
        if with_value:
            f = (self.psi(zs[-1]) * self.readout[:, None, :]).sum(-1)
            f = f if self.out_bias is None else f + self.out_bias[:, None]
        back = self.readout[:, None, :] * self.psi_prime(zs[-1])
        for layer in range(len(self.weights) - 1, 0, -1):
            back = torch.matmul(back, self.weights[layer]) * self.psi_prime(zs[layer - 1])
        return f, torch.matmul(back, self.weights[0]), zs[0]

    def select(self, index: Tensor) -> "Net":
        """The networks `index` of the batch."""
        pick = lambda t: None if t is None else t[index]
        biases = None if self.biases is None else [pick(b) for b in self.biases]
        return Net(
            [w[index] for w in self.weights],
            self.readout[index],
            self.activation,
            biases,
            pick(self.out_bias),
        )

    def along_ray(self, z1: Tensor, direction: Tensor):
        """f(x + t·u) as a function of t, from z1 = W_1x + b_1 (B, N, k) and directions u (B, N, d).

        Pre-activations along the ray are z1 + t·W_1u, so each trial t costs O(k) with one hidden layer.
        Returns (v, f_of_t) with v = W_1u (B, N, k) and f_of_t(t, rays): t (R, G) for the flat ray indices
        `rays` (R,) into B·N -> (R, G). One hidden layer: only those rays are evaluated; deeper: the networks
        holding them.
        """
        B, N, k = z1.shape
        v = self.linear(0, direction, bias=False)
        flat_z1, flat_v = z1.reshape(B * N, k), v.reshape(B * N, k)

        def f_of_t(t: Tensor, rays: Tensor) -> Tensor:
            nets = rays // N
            z = torch.addcmul(flat_z1[rays, None, :], t[..., None], flat_v[rays, None, :])  # (R, G, k)
            if len(self.weights) == 1:
                f = (self.psi(z) * self.readout[nets, None, :]).sum(-1)  # batch-invariant, unlike a bmm
                return f if self.out_bias is None else f + self.out_bias[nets, None]
            # Deeper: pack each network's active rays side by side (rays are sorted) and run those networks.
            used, which, counts = nets.unique_consecutive(return_inverse=True, return_counts=True)
            slot = torch.arange(len(rays), device=rays.device) - (counts.cumsum(0) - counts)[which]
            grid = torch.zeros(len(used), int(counts.max()), t.shape[1], k, dtype=z.dtype, device=z.device)
            grid[which, slot] = z
            f = self.select(used).head(grid.reshape(len(used), -1, k)).reshape(len(used), grid.shape[1], -1)
            return f[which, slot]

        return v, f_of_t


def sphere(n: int, d: int, radius: float, generator: torch.Generator, dtype=torch.float32) -> Tensor:
    """n points uniform on the sphere of the given radius in R^d."""
    x = torch.randn(n, d, generator=generator, dtype=dtype)
    return radius * x / x.norm(dim=1, keepdim=True)


def rademacher(shape, generator: torch.Generator, dtype=torch.float32) -> Tensor:
    return torch.randint(0, 2, shape, generator=generator).to(dtype) * 2 - 1
