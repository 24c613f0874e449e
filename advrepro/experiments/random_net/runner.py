"""random-net: the config and the runner (torch); the paper and the protocol are in the package docstring."""

import dataclasses
import math

import numpy as np
import pandas as pd
import torch

from advrepro.config import CommonConfig, require_choice, require_positive
from advrepro.device import resolve_dtype
from advrepro.errors import UserError
from advrepro.flip import bracketed_flip, exact_flip, gradient_ray
from advrepro.nets import ACTIVATIONS, Net, rademacher, sphere
from advrepro.progress import bar
from advrepro.seeding import generator

NAME = "random-net"
SEARCHES = ("auto", "exact", "bracket")


@dataclasses.dataclass
class RandomNetConfig(CommonConfig):
    """random-net's keys (configs/random-net.yaml, tags and sources in docs/protocols.md §1)."""

    d: int = 100
    width: int = 1000
    depth: int = 1
    activation: str = "relu"
    n_networks: int = 100
    n_inputs: int = 100
    eta_max: float = 20.0
    hidden_gain: float = 1.0
    search: str = "auto"
    bracket_step: float = 0.125
    rtol: float = 1e-6

    def __post_init__(self):
        require_positive(
            self,
            "d",
            "width",
            "depth",
            "n_networks",
            "n_inputs",
            "eta_max",
            "hidden_gain",
            "bracket_step",
            "rtol",
            "chunk_mb",
        )
        require_choice(self, "activation", ACTIVATIONS)
        require_choice(self, "search", SEARCHES)
        if self.search == "exact" and not self.piecewise_linear:
            raise UserError("search=exact needs activation=relu and depth=1 (use search=bracket or auto)")

    @property
    def piecewise_linear(self) -> bool:
        """The ray x + t·u meets f piecewise linearly with sortable breakpoints: one hidden ReLU layer."""
        return self.activation == "relu" and self.depth == 1


def sample_networks(cfg: RandomNetConfig, first: int, count: int, dtype: torch.dtype) -> Net:
    """Networks first..first+count−1: W_1 ~ N(0, I/d) rows, hidden W_l ~ N(0, gain/width), a_l = ±1, c = a/√k.

    Each network has its own seeded stream, so chunking and device never change the draws.
    """
    k, weights, readouts = cfg.width, [], []
    for b in range(first, first + count):
        g = generator(cfg.seed, "network", b)
        layers = [torch.randn(k, cfg.d, generator=g, dtype=dtype) / math.sqrt(cfg.d)]
        layers += [
            torch.randn(k, k, generator=g, dtype=dtype) * math.sqrt(cfg.hidden_gain / k)
            for _ in range(cfg.depth - 1)
        ]
        weights.append(layers)
        readouts.append(rademacher((k,), g, dtype) / math.sqrt(k))
    return Net(
        weights=[torch.stack(w) for w in zip(*weights, strict=True)],
        readout=torch.stack(readouts),
        activation=cfg.activation,
    )


def networks_per_chunk(cfg: RandomNetConfig, dtype: torch.dtype) -> int:
    """How many networks fit the chunk_mb memory budget at once."""
    k, n, size = cfg.width, cfg.n_inputs, torch.finfo(dtype).bits // 8
    per_network = size * (k * cfg.d + (cfg.depth - 1) * k * k + 24 * n * k + 2 * n * cfg.d)
    return max(1, min(cfg.n_networks, cfg.chunk_mb * 2**20 // per_network))


def flip_steps(net: Net, x: torch.Tensor, cfg: RandomNetConfig) -> dict[str, torch.Tensor]:
    """Per (network, input): |f|, ‖∇f‖, the smallest flipping |η| and the linear prediction |f|/‖∇f‖²."""
    ray = gradient_ray(net, x, unit=False)  # t = |η|: δ = η∇f with sign(η) = −sign f(x)
    f, grad_norm = ray.f, ray.grad_norm
    if cfg.search == "exact" or (cfg.search == "auto" and cfg.piecewise_linear):
        eta = exact_flip(net, ray, cfg.eta_max)
    else:
        eta_lin = f.abs() / grad_norm**2  # the root of the linearisation: where the grid starts mattering
        eta = bracketed_flip(
            ray, (cfg.bracket_step * eta_lin).clamp(min=cfg.eta_max / 4096), cfg.eta_max, cfg.rtol
        )
    return {
        "f_abs": f.abs(),
        "grad_norm": grad_norm,
        "eta": eta,
        "delta_norm": eta * grad_norm,
        "eta_lin": f.abs() / grad_norm**2,
        "flipped": ~torch.isnan(eta),
    }


def control_variates(net: Net, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per network, the offset s and, for one hidden layer, v = ‖Σ_l c_l w_l‖² (c = a/√k, the readout; w_l, the rows
    of W₁), the claims' control variates: E s² = E v = 1 exactly, at any d and k (docs §1). One hidden layer:
    s = Σ_l c_l‖w_l‖, its mean output over the sphere up to a constant. Deeper: s = Σ_l c_l m_l/(Σ_l c_l² m_l²)^½, m_l
    the last hidden unit's mean over the inputs x; E[s² | W, x] = 1 since the readout signs are independent ±1.
    Summed in float64 on the CPU by numpy's einsum, in a fixed order (no BLAS, no threads): the same bits for any
    chunk or thread count. v is NaN for deeper networks."""
    readouts = net.readout.double().cpu().numpy()
    if len(net.weights) > 1:
        hidden = net.hidden(net.linear(0, x)).double().cpu().numpy()
        means = [np.einsum("nk->k", h) / len(x) for h in hidden]
        s = [(c * m).sum() / np.sqrt((c * c * m * m).sum()) for c, m in zip(readouts, means, strict=True)]
        return np.array(s), np.full(len(readouts), np.nan)
    s, v = [], []
    for c, w in zip(readouts, net.weights[0].cpu().numpy(), strict=True):
        s.append((c * np.sqrt(np.einsum("ld,ld->l", w, w, dtype=np.float64))).sum())
        v.append(np.square(np.einsum("l,ld->d", c, w, dtype=np.float64)).sum())
    return np.array(s), np.array(v)


# The columns of rows.csv (besides `cell`, added on aggregation): name -> meaning.
COLUMNS = {
    "d": "input dimension",
    "width": "hidden units k per layer",
    "depth": "hidden ReLU (or ψ) layers",
    "activation": "ψ",
    "network": "index of the random network in the cell",
    "input": "index of the input x (uniform on the √d-sphere, shared by the cell's networks)",
    "f_abs": "|f(x)|",
    "grad_norm": "‖∇ₓf(x)‖",
    "eta": "smallest |η| ≤ eta_max with sign f(x + η∇f) ≠ sign f(x), sign η = −sign f(x); NaN: none",
    "delta_norm": "‖δ‖ = |η|·‖∇f‖ of that step (= ‖δ‖·√d/‖x‖, since ‖x‖ = √d)",
    "eta_lin": "|f|/‖∇f‖²: the root of the linearisation",
    "flipped": "a step with |η| ≤ eta_max flips the sign",
    "offset_s": "the network's offset s = Σ_l c_l‖w_l‖ (c = a/√k); deeper: Σ_l c_l m_l/(Σ_l c_l² m_l²)^½, m_l the "
    "last hidden unit's mean over the inputs: E s² = 1",
    "linear_v": "the network's v = ‖Σ_l c_l w_l‖², its linear part's size: E v = 1; NaN for depth > 1",
}


def run(cfg: RandomNetConfig, device: torch.device) -> pd.DataFrame:
    """Rows of one cell, one per (network, input) (columns: COLUMNS, `advrepro list --columns`): random networks
    in chunks that fit chunk_mb, each input's smallest flipping gradient step."""
    dtype = resolve_dtype(cfg.dtype)
    x = sphere(cfg.n_inputs, cfg.d, math.sqrt(cfg.d), generator(cfg.seed, "inputs"), dtype).to(device)
    chunk = networks_per_chunk(cfg, dtype)
    frames = []
    for first in bar(range(0, cfg.n_networks, chunk), cfg, desc=f"{NAME} d={cfg.d} k={cfg.width}"):
        count = min(chunk, cfg.n_networks - first)
        net = sample_networks(cfg, first, count, dtype)
        net = dataclasses.replace(
            net, weights=[w.to(device) for w in net.weights], readout=net.readout.to(device)
        )
        offset_s, linear_v = control_variates(net, x)
        measured = {k: v.cpu().numpy().ravel() for k, v in flip_steps(net, x, cfg).items()}
        network, inp = np.meshgrid(np.arange(first, first + count), np.arange(cfg.n_inputs), indexing="ij")
        covariates = {"offset_s": offset_s.repeat(cfg.n_inputs), "linear_v": linear_v.repeat(cfg.n_inputs)}
        frames.append(
            pd.DataFrame({"network": network.ravel(), "input": inp.ravel(), **measured, **covariates})
        )
    rows = pd.concat(frames, ignore_index=True)
    for key in ("d", "width", "depth", "activation"):
        rows.insert(0, key, getattr(cfg, key))
    return rows[list(COLUMNS)]  # the documented columns, in their documented order


def canonical(plain: dict) -> dict:
    """Without hidden layers the hidden gain plays no part: depth-1 cells record hidden_gain = 1."""
    return {**plain, "hidden_gain": 1.0} if plain["depth"] == 1 else plain


def cost_model(c: dict) -> float:
    """Cost model for estimates: sampling W plus the matmuls per (network, input)."""
    return c["n_networks"] * c["width"] * (c["d"] + c["n_inputs"] * (c["d"] + (c["depth"] - 1) * c["width"]))
