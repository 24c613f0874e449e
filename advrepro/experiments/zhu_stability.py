"""Width helps, depth hurts, initialisation decides (Zhu, Liu, Chrysos, Cevher, NeurIPS 2022).

docs/protocols.md §7. Bias-free fully connected ReLU networks f(a) = X_L σ(X_{L−1} … σ(X_1 a)) / α of depth L (L
weight matrices) and width m, X_1 ~ N(0, β₁²), hidden X_l ~ N(0, β²), X_L ~ N(0, β_L²). Perturbation stability
P(f, ε) = E_{a, â}|∇f(a)ᵀ(a − â)| with â uniform in the ℓ2 ε-ball around a and ‖a‖ = 1. For a fixed gradient g,
E|gᵀu| over u uniform in the ε-ball is ε‖g‖·E|u₁|, so P/ε = E_a‖∇f(a)‖·E|u₁| in closed form (`ball_abs_moment`).
Measured at initialisation (an expectation over networks) and after training on 0-vs-1 MNIST with ‖a‖ = 1.
"""

import dataclasses
import math
from typing import Optional

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from advrepro.claims import MIN_ACCURACY, MIN_EFFECT, Band, check, claim, reported, trend
from advrepro.config import CommonConfig, require_choice, require_positive
from advrepro.data.mnist import binary_task, require_square
from advrepro.device import resolve_dtype
from advrepro.errors import UserError
from advrepro.experiment import Experiment
from advrepro.lazy import accuracy, data_orders, minibatches
from advrepro.nets import Net
from advrepro.progress import bar
from advrepro.seeding import generator
from advrepro.stats import (
    Estimate,
    describe_units,
    resampled_means,
    slope_estimate,
    statistic_estimate,
    unit_means,
    with_cell_keys,
)

NAME = "zhu-stability"
INITS = ("lecun", "he", "ntk", "small")
REGIMES = ("init", "trained")


@dataclasses.dataclass
class ZhuConfig(CommonConfig):
    """zhu-stability's keys (configs/zhu-stability.yaml, tags and sources in docs/protocols.md §7)."""

    p: int = 784
    width: int = 256
    depth: int = 4
    init: str = "he"
    beta1_sq: Optional[float] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    beta_sq: Optional[float] = None  # noqa: UP045
    betaL_sq: Optional[float] = None  # noqa: UP045
    alpha: float = 1.0
    c: float = 1.75
    regime: str = "init"
    networks: int = 10
    n_inputs: int = 500
    lr: float = 0.1
    batch_size: int = 64
    epochs: int = 3
    train_subset: int = 0
    antialias: bool = False
    data_dir: str = "data"
    download: bool = True

    def __post_init__(self):
        require_positive(
            self, "p", "width", "alpha", "c", "networks", "n_inputs", "lr", "batch_size", "epochs"
        )
        require_choice(self, "init", INITS)
        require_choice(self, "regime", REGIMES)
        if self.depth < 2:
            raise UserError(
                f"depth counts weight matrices (input, hidden, output) and must be ≥ 2, got {self.depth}"
            )
        require_square(self.p, "p")
        if self.train_subset < 0:
            raise UserError("train_subset must be ≥ 0 (0 = all)")

    def variances(self) -> tuple[float, float, float]:
        """(β₁², β², β_L²): the keys when set, else the init's row of the paper's table (small: all m^(−2c))."""
        m, p = self.width, self.p
        rows = {
            "lecun": (1 / p, 1 / m, 1 / m),
            "he": (2 / p, 2 / m, 2 / m),
            "ntk": (2 / m, 2 / m, 1.0),
            "small": (m ** (-2 * self.c),) * 3,
        }
        given = (self.beta1_sq, self.beta_sq, self.betaL_sq)
        return tuple(g if g is not None else r for g, r in zip(given, rows[self.init], strict=True))


def init_networks(cfg: ZhuConfig, count: int, dtype, device) -> Net:
    """`count` networks, each from its own stream (seed, 'network', index): L weight matrices, no biases."""
    beta1_sq, beta_sq, betaL_sq = cfg.variances()
    weights, readouts = [], []
    for index in range(count):
        g = generator(cfg.seed, "network", index)
        layers = [torch.randn(cfg.width, cfg.p, generator=g, dtype=dtype) * math.sqrt(beta1_sq)]
        layers += [
            torch.randn(cfg.width, cfg.width, generator=g, dtype=dtype) * math.sqrt(beta_sq)
            for _ in range(cfg.depth - 2)
        ]
        weights.append(layers)
        readouts.append(torch.randn(cfg.width, generator=g, dtype=dtype) * math.sqrt(betaL_sq) / cfg.alpha)
    return Net(
        weights=[torch.stack(w).to(device) for w in zip(*weights, strict=True)],
        readout=torch.stack(readouts).to(device),
    )


def ball_abs_moment(p: int) -> float:
    """E|u₁| for u uniform in the unit ball of R^p: 2Γ(p/2 + 1) / ((p + 1)√π Γ((p + 1)/2)) (≈ √(2/(πp)))."""
    return 2 * math.exp(math.lgamma(p / 2 + 1) - math.lgamma((p + 1) / 2)) / ((p + 1) * math.sqrt(math.pi))


def stability(net: Net, a: Tensor) -> dict[str, Tensor]:
    """Per network and input (‖a‖ = 1): P/ε = ‖∇f(a)‖·E|u₁| in closed form, ‖∇f(a)‖ and |f(a)|."""
    with torch.no_grad():
        f, grad, _ = net.input_gradient(a)
    grad_norm = grad.norm(dim=-1)
    return {"p_over_eps": grad_norm * ball_abs_moment(a.shape[-1]), "grad_norm": grad_norm, "f_abs": f.abs()}


def lazy_ratio(net: Net, start: Net) -> Tensor:
    """κ = Σ_l ‖X_l(t) − X_l(0)‖_F / Σ_l ‖X_l(0)‖_F per network (the paper's lazy ratio)."""
    now, then = [*net.weights, net.readout], [*start.weights, start.readout]
    moved = sum((w - w0).flatten(1).norm(dim=1) for w, w0 in zip(now, then, strict=True))
    return moved / sum(w0.flatten(1).norm(dim=1) for w0 in then)


def train(cfg: ZhuConfig, net: Net, x: Tensor, y: Tensor) -> Net:
    """Plain SGD on the mean logistic loss log(1 + e^{−y f}) [inferred], every network batched (autograd over the
    sum of their losses: each network's gradient is its own). Each run shuffles once and walks that order."""
    params = [w.clone().requires_grad_(True) for w in [*net.weights, net.readout]]
    order = data_orders([(cfg.seed, r) for r in range(len(net.readout))], len(y), x.device)
    progress = bar(range(cfg.epochs), cfg, desc=f"{NAME} {cfg.init} L={cfg.depth} m={cfg.width}")
    for _ in progress:
        for idx in minibatches(order, cfg.batch_size):
            model = Net(params[:-1], params[-1])
            loss = torch.nn.functional.softplus(-y[idx] * model.forward(x[idx])).mean(-1).sum()
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for w, g in zip(params, grads, strict=True):
                    w.sub_(cfg.lr * g)
    return Net([w.detach() for w in params[:-1]], params[-1].detach())


# The columns of rows.csv (besides `cell`, added on aggregation): name -> meaning.
COLUMNS = {
    "init": "initialisation: lecun, he, ntk (the paper's table) or small (β = m^(−c), the non-lazy setting)",
    "depth": "L, weight matrices (L − 1 hidden ReLU layers)",
    "width": "m, hidden units per layer",
    "regime": "init (at initialisation) or trained (after SGD on 0-vs-1 MNIST)",
    "network": "index of the network (one independent unit: an initialisation, and its training run)",
    "p_over_eps": "P(f, ε)/ε = mean over inputs of ‖∇f(a)‖·E|u₁| (closed form; independent of ε)",
    "grad_norm": "mean over inputs of ‖∇ₐf(a)‖",
    "f_abs": "mean over inputs of |f(a)|",
    "n_inputs": "test inputs a (‖a‖ = 1) the means run over",
    "train_acc": "training accuracy (0-vs-1 MNIST; at initialisation too)",
    "test_acc": "test accuracy",
    "kappa": "lazy ratio κ = Σ_l ‖X_l − X_l(0)‖_F / Σ_l ‖X_l(0)‖_F (0 at initialisation)",
    "trained": "regime is trained and test accuracy ≥ 0.95: the only trained rows the claims use",
}


def run(cfg: ZhuConfig, device: torch.device) -> pd.DataFrame:
    """Rows of one cell, one per network (columns: COLUMNS, `advrepro list --columns`): P/ε over n_inputs test
    inputs at initialisation, or after training every network on 0-vs-1 MNIST."""
    dtype = resolve_dtype(cfg.dtype)
    data = binary_task(cfg, cfg.p, True, dtype, device)
    x, y = data["train_x"], data["train_y"]
    pick = torch.randperm(len(data["test_y"]), generator=generator(cfg.seed, "inputs"))[: cfg.n_inputs]
    inputs = data["test_x"][pick.to(device)]
    start = init_networks(cfg, cfg.networks, dtype, device)
    net = train(cfg, start, x, y) if cfg.regime == "trained" else start
    measured = {k: v.mean(-1).cpu().numpy() for k, v in stability(net, inputs).items()}
    test_acc = accuracy(net, data["test_x"], data["test_y"])
    return pd.DataFrame(
        {
            "init": cfg.init,
            "depth": cfg.depth,
            "width": cfg.width,
            "regime": cfg.regime,
            "network": np.arange(cfg.networks),
            **measured,
            "n_inputs": len(inputs),
            "train_acc": accuracy(net, x, y),
            "test_acc": test_acc,
            "kappa": lazy_ratio(net, start).cpu().numpy(),
            "trained": (cfg.regime == "trained") & (test_acc >= MIN_ACCURACY),
        }
    )


# The paper's trend table: sign of the change of P/ε (width: in the over-parameterised regime; depth: per layer).
DEPTH_TREND = {"lecun": "down", "he": "up", "ntk": "up"}


MIN_NETWORKS = 3  # ours: a trained cell with fewer trained networks supports no trend
VALUE_TOLERANCE = 0.05  # ours: relative, on the mean P/ε at initialisation against its derived value
RESCALING_TOLERANCE = 1e-4  # ours: float32 rounding of an exact identity


def init_value(init: str, p: int, depth: int) -> float:
    """P/ε at initialisation [derived, docs §7]: √2·E|u₁| under He (E‖∇f‖² = 2 at every width and depth); with
    the same draws LeCun is He scaled by 2^(−1/2) in each of its L weight matrices, and NTK is He·√(p/2)."""
    he = math.sqrt(2) * ball_abs_moment(p)
    return {"he": he, "lecun": he * 2 ** (-depth / 2), "ntk": he * math.sqrt(p / 2)}[init]


def init_claims(rows: pd.DataFrame) -> list[dict]:
    """At initialisation the paper's trend table does not apply (it bounds trained, lazy networks); what holds follows
    from ReLU homogeneity with the same draws: He's value, LeCun and NTK as exact rescalings of it, no width trend,
    and depth slopes −½·ln 2 per layer (LeCun) and 0 (He, NTK)."""
    own = rows[rows["regime"] == "init"]
    he = own[own["init"] == "he"]
    if he.empty:
        return []
    he = he.assign(
        ratio=he["p_over_eps"] / [init_value("he", p, L) for p, L in zip(he["p"], he["depth"], strict=True)]
    )
    cells = [g["ratio"].to_numpy() for _, g in he.groupby(["width", "depth"])]
    per_cell = he.groupby(["width", "depth"])["ratio"].mean()
    value = Estimate.from_draws(
        float(np.mean([c.mean() for c in cells])),
        resampled_means(cells).mean(1),
        describe_units(cells, "networks", "cell")[0],
        len(he),
    )
    out = [
        claim(
            NAME,
            "value-he-init",
            statement="mean over (width, depth) cells of P/ε ÷ √2·E|u₁| (he, init)",
            prediction="1: P/ε = √2·E|u₁| at every width and depth",
            source="[derived: docs §7]",
            band=Band.around(1.0, VALUE_TOLERANCE),
            tolerance_by=f"ours: ±{VALUE_TOLERANCE:.0%}",
            estimate=value,
            reason="per cell (width, depth): "
            + ", ".join(f"({w}, {L}): {r:.3f}" for (w, L), r in per_cell.items()),
        )
    ]
    keys = ["depth", "width", "network"]
    paired = own.merge(he[[*keys, "p_over_eps"]], on=keys, suffixes=("", "_he"))
    paired = paired[paired["init"].isin(["lecun", "ntk"])]
    if len(paired):
        expected = [
            init_value(i, p, L) / init_value("he", p, L)
            for i, p, L in zip(paired["init"], paired["p"], paired["depth"], strict=True)
        ]
        deviation = (paired["p_over_eps"] / paired["p_over_eps_he"] / expected - 1).abs()
        out.append(
            check(
                NAME,
                "rescaling-init",
                statement="largest relative deviation of LeCun's and NTK's P/ε from He's rescaled, network by network (init)",
                prediction="0: LeCun = He·2^(−L/2), NTK = He·√(p/2) with the same draws",
                source="[derived: ReLU homogeneity]",
                band=Band(0.0, RESCALING_TOLERANCE),
                tolerance_by="ours: float32 rounding",
                estimate=statistic_estimate(deviation, "networks", np.max),
            )
        )
    middle = sorted(he["depth"].unique())[len(he["depth"].unique()) // 2]
    per_network = unit_means(he[he["depth"] == middle], ["width"], "network", ["p_over_eps"])
    out.append(
        claim(
            NAME,
            "width-init",
            statement=f"slope of log P/ε against log width (he, init, depth {middle}; LeCun and NTK are its rescalings)",
            prediction="0: no width trend at initialisation",
            source="[derived: docs §7]",
            band=Band.around(0.0, MIN_EFFECT),
            tolerance_by=f"ours: ±{MIN_EFFECT:g}, the minimum effect",
            estimate=slope_estimate(per_network, "width", "p_over_eps", "networks"),
            unmeasured="fewer than two widths",
        )
    )
    widest = own[own["width"] == own["width"].max()]
    for init, slope, text in (
        ("lecun", -0.5 * math.log(2), "−½·ln 2 = −0.347 per layer"),
        ("he", 0.0, "0 (NTK: the same)"),
    ):
        per_network = unit_means(widest[widest["init"] == init], ["depth"], "network", ["p_over_eps"])
        out.append(
            claim(
                NAME,
                f"depth-{init}-init",
                statement=f"slope of log P/ε against depth ({init}, init, width {widest['width'].max()})",
                prediction=text,
                source="[derived: docs §7]",
                band=Band.around(slope, MIN_EFFECT),
                tolerance_by=f"ours: ±{MIN_EFFECT:g}, the minimum effect",
                estimate=slope_estimate(per_network, "depth", "p_over_eps", "networks", log_x=False),
                unmeasured="fewer than two depths",
            )
        )
    return out


def usable(rows: pd.DataFrame, regime: str) -> pd.DataFrame:
    """Rows a claim may rest on: every network at initialisation; trained networks (test accuracy ≥ 0.95) after."""
    own = rows[rows["regime"] == regime]
    return own if regime == "init" else own[own["trained"].astype(bool)]


def trend_claim(rows: pd.DataFrame, init: str, regime: str, axis: str) -> dict:
    """The width trend (over the two largest widths, at the middle depth) or the depth trend (at the largest
    width) of log P/ε for one initialisation and regime, resampling networks."""
    all_rows = rows[(rows["regime"] == regime) & (rows["init"] == init)]
    own = usable(rows, regime)
    own = own[own["init"] == init]
    left_out = len(all_rows) - len(own)
    if axis == "width":
        depths = sorted(all_rows["depth"].unique())
        fixed = depths[len(depths) // 2] if depths else 0
        widths = sorted(all_rows["width"].unique())[-2:]
        frame = own[(own["depth"] == fixed) & own["width"].isin(widths)]
        where, prediction, band = (
            f"depth {fixed}, widths {', '.join(map(str, widths))}",
            "< 0: width helps",
            "down",
        )
    else:
        fixed = all_rows["width"].max() if len(all_rows) else 0
        frame = own[own["width"] == fixed]
        where = f"width {fixed}"
        band = DEPTH_TREND[init]
        prediction = "< 0 per layer: depth helps" if band == "down" else "> 0 per layer: depth hurts"
    counts = frame.groupby(axis)["network"].nunique()
    thin = counts[counts < MIN_NETWORKS]
    frame = frame[~frame[axis].isin(thin.index)]
    per_network = unit_means(frame, [axis], "network", ["p_over_eps"])
    estimate = slope_estimate(per_network, axis, "p_over_eps", "networks", log_x=axis == "width")
    notes = [f"{left_out} untrained networks left out (test accuracy < {MIN_ACCURACY:g})"] if left_out else []
    if regime == "trained" and len(frame):
        notes.append(
            f"trained for a fixed {frame['epochs'].iloc[0]} epochs of SGD on {frame['train_subset'].iloc[0] or 12_665} "
            "images [ours, the budget], not to a common loss: a flat or reversed trend may be the budget's, not the "
            "network's; a loss-target endpoint or scale=paper (20 epochs on every image, a GPU job) settles it"
        )
    if len(thin):
        notes.append(
            f"{axis} "
            + ", ".join(f"{x} ({n} trained)" for x, n in thin.items())
            + f" left out: a cell needs {MIN_NETWORKS} trained networks"
        )
    return claim(
        NAME,
        f"{axis}-{init}-{regime}",
        statement=f"slope of log P/ε against {'log width' if axis == 'width' else 'depth'} ({init}, {regime}, {where})",
        prediction=prediction,
        source="[paper]",
        **trend(-1 if band == "down" else 1),
        estimate=estimate,
        reason="; ".join(notes),
        unmeasured=f"fewer than two {axis} values with usable networks",
    )


def claims(rows: pd.DataFrame, summary: pd.DataFrame) -> list[dict]:
    """At initialisation, what ReLU homogeneity gives (init_claims); after training, the paper's trend table (width
    helps when over-parameterised; depth helps under LeCun, hurts under He and NTK); the lazy ratio κ."""
    rows = with_cell_keys(rows, summary, ["p", "epochs", "train_subset"])
    out = init_claims(rows) + [
        trend_claim(rows, init, "trained", axis)
        for init in DEPTH_TREND
        if ((rows["regime"] == "trained") & (rows["init"] == init)).any()
        for axis in ("width", "depth")
    ]
    trained = rows[rows["regime"] == "trained"]
    for init in INITS:
        own = trained[trained["init"] == init]
        if len(own):
            out.append(
                reported(
                    NAME,
                    f"kappa-{init}",
                    statement=f"median lazy ratio κ of the trained {init} networks (all widths and depths); "
                    f"{int(own['trained'].sum())} of {len(own)} reach test accuracy {MIN_ACCURACY:g}",
                    estimate=statistic_estimate(own["kappa"], "networks", np.median),
                    why="no claim: the paper gives κ for its non-lazy experiment only; small is β = m^(−c), the "
                    "non-lazy setting, lecun/he/ntk the lazy ones",
                )
            )
    small = trained[trained["init"] == "small"]
    if len(small):
        out.append(
            reported(
                NAME,
                "p-over-eps-small",
                statement="median P/ε of the trained non-lazy networks (init=small, β = m^(−c), two layers)",
                estimate=statistic_estimate(small["p_over_eps"], "networks", np.median),
                why="no claim: the paper's non-lazy bound P ≤ Õ(n/m^(c+1.5)) has unknown constants; compare with the lazy "
                "inits' P/ε in the figure",
            )
        )
    return out


def cost_model(c: dict) -> float:
    """Cost model for estimates: the matmuls of every network, per input at initialisation, per SGD example after."""
    per_example = c["width"] * (c["p"] + (c["depth"] - 2) * c["width"] + 1)
    examples = c["n_inputs"] + (
        3 * c["epochs"] * (c["train_subset"] or 12_665) if c["regime"] == "trained" else 0
    )
    return c["networks"] * per_example * examples


EXPERIMENT = Experiment(
    name=NAME,
    title="Perturbation stability against width, depth and initialisation: width helps, depth hurts, init decides",
    reproduces="Zhu, Liu, Chrysos, Cevher, 'Robustness in deep learning: the good (width), the bad (depth), and the "
    "ugly (initialization)' (NeurIPS 2022), the trend table and the FCNN figures",
    figures=(f"{NAME}_width", f"{NAME}_kappa"),
    config_class=ZhuConfig,
    run=run,
    claims=claims,
    figure_module="advrepro.figures.zhu_stability",
    cost_model=cost_model,
    columns=COLUMNS,
)
