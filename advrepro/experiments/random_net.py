"""Random networks are broken by a single gradient step (Bubeck et al. 2021; Bartlett et al. 2021).

protocols.md §1. For each network f and input x on the √d-sphere: the smallest |η| ≤ eta_max such that
x + η∇f(x), with sign(η) = −sign f(x), has the opposite sign (Bubeck et al., Theorems 1 and 2).
"""

import dataclasses
import math

import numpy as np
import pandas as pd
import torch

from advrepro.config import CommonConfig, require_choice, require_positive
from advrepro.device import resolve_dtype
from advrepro.errors import UserError
from advrepro.experiment import Experiment, claim
from advrepro.flip import exact_relu_root, refine, scan
from advrepro.nets import ACTIVATIONS, Net, rademacher, sphere
from advrepro.progress import bar
from advrepro.seeding import generator
from advrepro.theory import random_net_limits

NAME = "random-net"
SEARCHES = ("auto", "exact", "bracket")


@dataclasses.dataclass
class RandomNetConfig(CommonConfig):
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


def single_step(net: Net, x: torch.Tensor, cfg: RandomNetConfig) -> dict[str, torch.Tensor]:
    """Per (network, input): |f|, ‖∇f‖, the smallest flipping |η| and the linear prediction |f|/‖∇f‖²."""
    f, grad, z1 = net.input_gradient(x)
    direction = -torch.sign(f)[..., None] * grad  # δ = η∇f with sign(η) = −sign f(x)
    v, f_of_t = net.along_ray(z1, direction)
    if cfg.search == "exact" or (cfg.search == "auto" and cfg.piecewise_linear):
        eta = exact_relu_root(z1, v, net.readout[:, None, :], 0.0, cfg.eta_max)
    else:
        eta_lin = (
            f.abs() / grad.norm(dim=-1) ** 2
        )  # the root of the linearisation: where the grid starts mattering
        step = (cfg.bracket_step * eta_lin).clamp(min=cfg.eta_max / 4096)
        lo, hi = scan(f_of_t, f, step, cfg.eta_max)
        eta = refine(f_of_t, f, lo, hi, cfg.rtol)
    grad_norm = grad.norm(dim=-1)
    return {
        "f_abs": f.abs(),
        "grad_norm": grad_norm,
        "eta": eta,
        "delta_norm": eta * grad_norm,
        "eta_lin": f.abs() / grad_norm**2,
        "flipped": ~torch.isnan(eta),
    }


def run(cfg: RandomNetConfig, device: torch.device) -> pd.DataFrame:
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
        measured = {k: v.cpu().numpy().ravel() for k, v in single_step(net, x, cfg).items()}
        network, inp = np.meshgrid(np.arange(first, first + count), np.arange(cfg.n_inputs), indexing="ij")
        frames.append(pd.DataFrame({"network": network.ravel(), "input": inp.ravel(), **measured}))
    rows = pd.concat(frames, ignore_index=True)
    for key in ("d", "width", "depth", "activation"):
        rows.insert(0, key, getattr(cfg, key))
    return rows[
        [
            "d",
            "width",
            "depth",
            "activation",
            "network",
            "input",
            "f_abs",
            "grad_norm",
            "eta",
            "delta_norm",
            "eta_lin",
            "flipped",
        ]
    ]


def claims(rows: pd.DataFrame, cells: pd.DataFrame) -> list[dict]:
    out = []
    eta_max = cells["eta_max"].max()
    for (activation, depth), group in rows.groupby(["activation", "depth"]):
        label = f"{activation}, depth {depth}"
        frac = group["flipped"].mean()
        out.append(
            claim(
                NAME,
                f"fraction of (network, input) pairs flipped by one step with |η| ≤ {eta_max:g} "
                f"({label}; verdict: ≥ 0.99)",
                "≈ 1 almost always",
                float(frac),
                bool(frac >= 0.99),
            )
        )
        # Deeper bias-free ReLU nets rescale η with the per-layer scale (homogeneity), not ‖δ‖: compare η at depth 1.
        measures = (("eta", "median |η|"),) if depth == 1 else ()
        for col, what in (*measures, ("delta_norm", "median ‖δ‖ (= ‖x‖/√d scale)")):
            median = group[col].median()
            out.append(
                claim(
                    NAME,
                    f"{what} ({label}; verdict: within [0.5, 2])",
                    "≈ 1",
                    float(median),
                    bool(0.5 <= median <= 2),
                )
            )
    shallow = rows[rows["depth"] == 1]
    for activation, group in shallow.groupby("activation"):
        largest = group[(group["d"] == group["d"].max())]
        largest = largest[largest["width"] == largest["width"].max()]
        d, k = int(largest["d"].iloc[0]), int(largest["width"].iloc[0])
        for col, value in random_net_limits(activation).items():
            measured = largest[col].mean()
            out.append(
                claim(
                    NAME,
                    f"mean {col} at d={d}, width={k} vs its Gaussian limit ({activation}; "
                    f"verdict: within 5%)",
                    f"{value:.4f} [closed form]",
                    float(measured),
                    bool(abs(measured / value - 1) < 0.05),
                )
            )
    return out


def work(c: dict) -> float:
    """Cost model for estimates: sampling W plus the matmuls per (network, input)."""
    return c["n_networks"] * c["width"] * (c["d"] + c["n_inputs"] * (c["d"] + (c["depth"] - 1) * c["width"]))


EXPERIMENT = Experiment(
    name=NAME,
    title="Random networks: one gradient step flips the sign",
    reproduces="Bubeck, Cherapanamjeri, Gidel, Tachet des Combes (NeurIPS 2021) §experiments; "
    "Bartlett, Bubeck, Cherapanamjeri (NeurIPS 2021) deep ReLU nets",
    figures=("random-net_eta_vs_width", "random-net_delta_vs_d", "random-net_depth"),
    config_class=RandomNetConfig,
    run=run,
    claims=claims,
    figure_module="advrepro.figures.random_net",
    work=work,
)
