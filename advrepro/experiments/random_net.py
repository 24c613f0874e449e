"""Random networks are broken by a single gradient step (Bubeck et al. 2021; Bartlett et al. 2021).

docs/protocols.md §1. For each network f and input x on the √d-sphere: the smallest |η| ≤ eta_max such that
x + η∇f(x), with sign(η) = −sign f(x), has the opposite sign (Bubeck et al., Theorems 1 and 2).
"""

import dataclasses
import math

import numpy as np
import pandas as pd
import torch

from advrepro.claims import Band, claim, reported
from advrepro.config import CommonConfig, require_choice, require_positive
from advrepro.device import resolve_dtype
from advrepro.errors import UserError
from advrepro.experiment import Experiment
from advrepro.flip import bracketed_flip, exact_flip, gradient_ray
from advrepro.nets import ACTIVATIONS, Net, rademacher, sphere
from advrepro.progress import bar
from advrepro.seeding import generator
from advrepro.stats import statistic_estimate, with_cell_keys
from advrepro.theory import random_net_limits

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
        measured = {k: v.cpu().numpy().ravel() for k, v in flip_steps(net, x, cfg).items()}
        network, inp = np.meshgrid(np.arange(first, first + count), np.arange(cfg.n_inputs), indexing="ij")
        frames.append(pd.DataFrame({"network": network.ravel(), "input": inp.ravel(), **measured}))
    rows = pd.concat(frames, ignore_index=True)
    for key in ("d", "width", "depth", "activation"):
        rows.insert(0, key, getattr(cfg, key))
    return rows[list(COLUMNS)]  # the documented columns, in their documented order


LIMIT_TOLERANCE = 0.02  # relative; the neglected finite-width and finite-d terms are O(1/k) and O(1/d)


def per_network(rows: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per network (the independent unit; the inputs are shared): its flip rate, the medians of |η| and
    ‖δ‖ over the inputs it flips, the means of the Gaussian-limit quantities. Depth-1 nets ignore hidden_gain."""
    rows = with_cell_keys(rows, summary, ["hidden_gain"])
    rows["gain"] = rows["hidden_gain"].where(
        rows["depth"] > 1, 0.0
    )  # no hidden layer: the gain plays no part
    return (
        rows.groupby(["activation", "depth", "gain", "d", "width", "cell", "network"])
        .agg(
            flipped=("flipped", "mean"),
            eta=("eta", "median"),
            delta=("delta_norm", "median"),
            f_abs=("f_abs", "mean"),
            grad_norm=("grad_norm", "mean"),
            eta_lin=("eta_lin", "mean"),
        )
        .reset_index()
    )


RELU_GAIN_NOTE = (
    "the only ‖δ‖ row for this depth: ReLU is positively homogeneous, so another hidden gain rescales f and ∇f "
    "alike and moves no flip point; the gain-1 networks' ‖δ‖ is this one wherever the |η| cap keeps the same flips"
)


def flip_claims(networks: pd.DataFrame, eta_max: float) -> list[dict]:
    """Bubeck et al.: one step flips the sign almost always, with |η| ≈ 1 and ‖δ‖ ≈ ‖x‖/√d (= 1 here)."""
    out = []
    for (activation, depth, gain), group in networks.groupby(["activation", "depth", "gain"]):
        label = f"{activation}, depth {depth}" + (f", hidden_gain {gain:g}" if depth > 1 else "")
        key = f"{activation}-L{depth}" + (f"-gain{gain:g}" if depth > 1 else "")
        flipped = statistic_estimate(group["flipped"], "networks")
        statement = f"fraction of (network, input) pairs one step flips with |η| ≤ {eta_max:g} ({label})"
        if depth > 1 and gain < 2:
            out.append(
                reported(
                    NAME,
                    f"flip-rate-{key}",
                    statement=statement,
                    estimate=flipped,
                    why="no claim: with variance 1/fan-in each ReLU layer halves the signal, so |η| grows like "
                    "2^((L−1)/2) and a fixed |η| cap is not scale-free; the claim is made at He gain (2) [inferred]",
                )
            )
        else:
            out.append(
                claim(
                    NAME,
                    f"flip-rate-{key}",
                    statement=statement,
                    prediction="≈ 1 almost always",
                    source="[paper]",
                    band=Band(0.99, 1.0),
                    tolerance_by="ours",
                    estimate=flipped,
                )
            )
        if depth == 1:
            out.append(
                claim(
                    NAME,
                    f"eta-{key}",
                    statement=f"median |η| of the flipping step, averaged over networks ({label})",
                    prediction="|η| ≈ 1",
                    source="[paper]",
                    band=Band(0.5, 2.0),
                    tolerance_by="ours",
                    estimate=statistic_estimate(group["eta"], "networks"),
                )
            )
        if depth > 1 and gain < 2 and activation == "relu":
            continue  # the same measurement as the He-gain row below (RELU_GAIN_NOTE)
        out.append(
            claim(
                NAME,
                f"delta-{key}",
                statement=f"median ‖δ‖·√d/‖x‖ of the flipping step, averaged over networks ({label})",
                prediction="‖δ‖ ≈ ‖x‖/√d (ratio ≈ 1)",
                source="[paper]",
                band=Band(0.5, 2.0),
                tolerance_by="ours",
                estimate=statistic_estimate(group["delta"], "networks"),
                reason=RELU_GAIN_NOTE if depth > 1 and activation == "relu" else "",
            )
        )
    return out


def limit_claims(networks: pd.DataFrame) -> list[dict]:
    """Mean |f|, ‖∇f‖ and η_lin at the largest d and width against their Gaussian limits (advrepro.theory)."""
    out = []
    for activation, group in networks[networks["depth"] == 1].groupby("activation"):
        largest = group[group["d"] == group["d"].max()]
        largest = largest[largest["width"] == largest["width"].max()]
        d, k = int(largest["d"].iloc[0]), int(largest["width"].iloc[0])
        for column, value in random_net_limits(activation).items():
            out.append(
                claim(
                    NAME,
                    f"limit-{column}-{activation}",
                    statement=f"mean {column} at d={d}, width={k} ({activation}, depth 1) against its Gaussian limit",
                    prediction=f"{value:.4f}",
                    source="[derived: closed form]",
                    band=Band(value * (1 - LIMIT_TOLERANCE), value * (1 + LIMIT_TOLERANCE)),
                    tolerance_by=f"ours: ±{LIMIT_TOLERANCE:.0%}, the O(1/k + 1/d) terms",
                    estimate=statistic_estimate(largest[column], "networks"),
                )
            )
    return out


def claims(rows: pd.DataFrame, summary: pd.DataFrame) -> list[dict]:
    """Flip rate, |η| and ‖δ‖ per activation and depth (Bubeck et al.; Bartlett et al.), and the Gaussian limits."""
    networks = per_network(rows, summary)
    return flip_claims(networks, float(summary["eta_max"].max())) + limit_claims(networks)


def canonical(plain: dict) -> dict:
    """Without hidden layers the hidden gain plays no part: depth-1 cells record hidden_gain = 1."""
    return {**plain, "hidden_gain": 1.0} if plain["depth"] == 1 else plain


def cost_model(c: dict) -> float:
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
    cost_model=cost_model,
    columns=COLUMNS,
    rows_version=2,  # 2: batch-invariant readout along rays
    canonical=canonical,
)
