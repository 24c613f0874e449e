"""Adversarial training inside the lazy ball (Wang, Ullah, Mianjy, Arora, NeurIPS 2022, §5.2, Algorithm 1, Fig. 4).

docs/protocols.md §3. Train the lazy two-layer net on ℓ2-PGD adversarial examples, projecting every neuron back onto
the ball of radius R around its initialisation; report robust test accuracy against the same attack.
"""

import dataclasses
import math
from typing import NamedTuple, Optional

import numpy as np
import pandas as pd
import torch

from advrepro.attacks import logistic_ascent, pgd_l2
from advrepro.claims import Band, claim, reported
from advrepro.config import CommonConfig, require_choice, require_positive
from advrepro.data.mnist import binary_mnist, load_mnist
from advrepro.device import resolve_dtype
from advrepro.errors import UserError
from advrepro.experiment import Experiment
from advrepro.experiments.lazy_sgd import sgd_step
from advrepro.lazy import LazyNets, init_lazy_nets
from advrepro.nets import Net
from advrepro.progress import bar
from advrepro.seeding import generator
from advrepro.stats import (
    Estimate,
    at_mode,
    binomial_draws,
    crossing,
    loglog_slope,
    percentile_interval,
    statistic_estimate,
)

NAME = "lazy-pgd"
PROJECTIONS = ("per_step", "per_epoch")


@dataclasses.dataclass
class LazyPGDConfig(CommonConfig):
    d: int = 784
    width: int = 1000
    C0: float = 10.0
    radius: Optional[float] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    eps: float = 0.2
    pgd_steps: int = 100
    pgd_step_size: Optional[float] = None  # noqa: UP045
    clip: bool = True
    lr: float = 0.01
    batch_size: int = 32
    max_epochs: int = 1000
    patience: int = 20
    min_delta: float = 1e-4
    project: str = "per_step"
    train_subset: int = 0
    antialias: bool = False
    data_dir: str = "data"
    download: bool = True
    runs: int = 1

    def __post_init__(self):
        require_positive(
            self, "d", "width", "C0", "eps", "pgd_steps", "lr", "batch_size", "max_epochs", "runs"
        )
        require_choice(self, "project", PROJECTIONS)
        for key in ("radius", "pgd_step_size"):
            if getattr(self, key) is not None and not getattr(self, key) > 0:
                raise UserError(f"{key} must be positive (or null for its default), got {getattr(self, key)}")
        if self.patience < 0 or self.train_subset < 0:
            raise UserError("patience and train_subset must be ≥ 0 (train_subset 0 = all)")
        if round(self.d**0.5) ** 2 != self.d or self.d > 784:
            raise UserError(f"d must be s² for an s×s downsampled image with s ≤ 28, got {self.d}")

    @property
    def ball_radius(self) -> float:
        """R: `radius` when set, else C0/√width."""
        return self.radius if self.radius is not None else self.C0 / math.sqrt(self.width)

    @property
    def step_size(self) -> float:
        """α: `pgd_step_size` when set, else 2.5·ε/pgd_steps (the paper's rule, scaled with the step count)."""
        return self.pgd_step_size if self.pgd_step_size is not None else 2.5 * self.eps / self.pgd_steps


def attack(
    net: Net, x: torch.Tensor, y: torch.Tensor, cfg: LazyPGDConfig, eps=None, step_size=None
) -> torch.Tensor:
    """The ℓ2 PGD perturbation of cfg for each model's examples x (M, N, d); eps and step_size may be per-model
    tensors (M, 1, 1) when models of several cells are trained as one batch."""
    ascent = logistic_ascent(lambda z: net.input_gradient(z)[:2], y)
    eps = cfg.eps if eps is None else eps
    return pgd_l2(ascent, x, eps, cfg.step_size if step_size is None else step_size, cfg.pgd_steps, cfg.clip)


def should_stop(history: torch.Tensor, patience: int, min_delta: float) -> torch.Tensor:
    """advtrain.py's rule on robust training accuracy history (epochs, runs): from the third epoch on, an epoch
    that does not improve on the previous one by more than min_delta counts; stop after patience + 1 in a row."""
    if len(history) < 3:
        return torch.zeros(history.shape[1:], dtype=torch.bool, device=history.device)
    stalled = (history[2:] - history[1:-1]) <= min_delta
    trailing = stalled.flip(0).to(torch.int64).cumprod(0).sum(0)
    return trailing > patience


@dataclasses.dataclass
class Members:
    """The models trained together: every run of every cell of a batch (cells differing only in ε and R)."""

    eps: torch.Tensor  # (M, 1, 1)
    step_size: torch.Tensor  # (M, 1, 1)
    radius: torch.Tensor  # (M,)

    @classmethod
    def of(cls, cfgs: list[LazyPGDConfig], dtype, device) -> "Members":
        per_model = lambda f: torch.tensor(
            [f(c) for c in cfgs for _ in range(c.runs)], dtype=dtype, device=device
        )
        return cls(
            per_model(lambda c: c.eps)[:, None, None],
            per_model(lambda c: c.step_size)[:, None, None],
            per_model(lambda c: c.ball_radius),
        )


def train(
    cfgs: list[LazyPGDConfig], members: Members, x: torch.Tensor, y: torch.Tensor, device
) -> tuple[LazyNets, dict[str, np.ndarray]]:
    """Algorithm 1: per minibatch, PGD on the current weights, an SGD step on the adversarial batch, then the
    projection onto the lazy ball (project=per_step). project=per_epoch is advtrain.py: the adversarial set is built
    once per epoch with the epoch's starting weights and the projection is applied once per epoch.

    All runs of all cells in `cfgs` (which differ only in ε and R) train as one batched model; run r of every cell
    starts from the same initialisation and data order as it would alone."""
    cfg, n = cfgs[0], len(y)
    parts = [
        init_lazy_nets(c.seed, c.runs, x.shape[1], c.width, True, x.dtype, device, trainable=False)
        for c in cfgs
    ]
    nets = LazyNets(*(torch.cat([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(LazyNets)))
    order = torch.stack(
        [torch.randperm(n, generator=generator(c.seed, "shuffle", r)) for c in cfgs for r in range(c.runs)]
    ).to(device)
    models = len(order)
    active = torch.ones(models, dtype=torch.bool, device=device)
    epochs = torch.zeros(models, dtype=torch.long, device=device)
    history = []
    cells = f"{len(cfgs)} cells" if len(cfgs) > 1 else f"R={cfg.ball_radius:.3g} ε={cfg.eps:g}"
    progress = bar(range(cfg.max_epochs), cfg, desc=f"{NAME} d={cfg.d} m={cfg.width} {cells}")
    for _ in progress:
        epochs += active
        if cfg.project == "per_epoch":
            adversarial = x[order] + attack(
                nets.net(), x[order], y[order], cfg, members.eps, members.step_size
            )
        correct = torch.zeros(models, dtype=x.dtype, device=device)
        for start in range(0, n, cfg.batch_size):
            idx = order[:, start : start + cfg.batch_size]
            xb, yb = x[idx], y[idx]
            if cfg.project == "per_epoch":
                xb = adversarial[:, start : start + cfg.batch_size]
            else:
                xb = xb + attack(nets.net(), xb, yb, cfg, members.eps, members.step_size)
            correct += (torch.sign(nets.net().forward(xb)) == yb).sum(-1)
            sgd_step(nets, xb, yb, cfg.lr, active)
            if cfg.project == "per_step":
                nets.project(members.radius)
        if cfg.project == "per_epoch":
            nets.project(members.radius)
        history.append(torch.where(active, correct / n, history[-1] if history else correct / n))
        active &= ~should_stop(torch.stack(history), cfg.patience, cfg.min_delta)
        progress.set_postfix(robust_train=f"{history[-1].mean().item():.3f}")
        if not active.any():
            break
    record = {
        "epochs": epochs,
        "robust_train_acc": history[-1],
        "final_distance": nets.distance(),
        "stopped_early": ~active,
    }
    return nets, {k: v.cpu().numpy() for k, v in record.items()}


# The columns of rows.csv (besides `cell`, added on aggregation): name -> meaning.
COLUMNS = {
    "d": "input dimension",
    "width": "hidden units m",
    "radius": "R, the lazy-ball radius",
    "eps": "ε, the ℓ2 attack radius (inputs have ‖x‖ = 1)",
    "run": "independent training run",
    "train_size": "training images used",
    "pgd_steps": "PGD steps of the attack",
    "max_epochs": "epoch budget",
    "epochs": "epochs trained",
    "robust_train_acc": "robust training accuracy of the last epoch",
    "final_distance": "max over neurons of the distance from initialisation",
    "stopped_early": "the early-stopping rule ended training",
    "test_size": "test images (the binomial trials of the accuracies)",
    "clean_test_acc": "clean test accuracy",
    "robust_test_acc": "accuracy under the ℓ2 PGD attack",
    "inv_sqrt_d": "1/√d",
    "inv_sqrt_width": "1/√m",
}


def run_batch(cfgs: list[LazyPGDConfig], device: torch.device) -> list[pd.DataFrame]:
    """Rows of each cell in `cfgs` (cells that differ only in ε and R), trained and attacked as one batch."""
    cfg = cfgs[0]
    dtype = resolve_dtype(cfg.dtype)
    data = binary_mnist(load_mnist(cfg.data_dir, cfg.download), cfg.d, True, cfg.antialias, dtype=dtype)
    data = {k: v.to(device) for k, v in data.items()}
    x, y = data["train_x"], data["train_y"]
    if cfg.train_subset:
        keep = torch.randperm(len(y), generator=generator(cfg.seed, "subset"))[: cfg.train_subset].to(device)
        x, y = x[keep], y[keep]
    members = Members.of(cfgs, dtype, device)
    nets, record = train(cfgs, members, x, y, device)
    net = nets.net()
    test_x = data["test_x"].expand(len(members.radius), -1, -1)
    test_y = data["test_y"].expand(len(members.radius), -1)
    delta = attack(net, test_x, test_y, cfg, members.eps, members.step_size)
    with torch.no_grad():
        clean = (torch.sign(net.forward(test_x)) == test_y).to(dtype).mean(-1).cpu().numpy()
        robust = (torch.sign(net.forward(test_x + delta)) == test_y).to(dtype).mean(-1).cpu().numpy()
    frames, first = [], 0
    for c in cfgs:
        own = slice(first, first + c.runs)
        first += c.runs
        frames.append(
            pd.DataFrame(
                {
                    "d": c.d,
                    "width": c.width,
                    "radius": c.ball_radius,
                    "eps": c.eps,
                    "run": np.arange(c.runs),
                    "train_size": len(y),
                    "pgd_steps": c.pgd_steps,
                    "max_epochs": c.max_epochs,
                    **{k: v[own] for k, v in record.items()},
                    "test_size": len(data["test_y"]),
                    "clean_test_acc": clean[own],
                    "robust_test_acc": robust[own],
                    "inv_sqrt_d": 1 / math.sqrt(c.d),
                    "inv_sqrt_width": 1 / math.sqrt(c.width),
                }
            )
        )
    return frames


def run(cfg: LazyPGDConfig, device: torch.device) -> pd.DataFrame:
    return run_batch([cfg], device)[0]


class Panel(NamedTuple):
    """One panel of Fig. 4: robust accuracy over (across, threshold) with the `fixed` keys held at their mode."""

    across: str  # the axis along the panel: d or width
    threshold: str  # the axis whose crossing of 1/2 is measured: eps or radius
    fixed: list[str]
    symbol: str
    prediction: str


PANELS = {
    "left": Panel("d", "eps", ["width", "radius"], "ε", "−1/2: sharp drop near ε ≈ 1/√d"),
    "right": Panel("width", "radius", ["d", "eps"], "R", "−1/2: transition near R ≈ 1/√m"),
}
MIN_ACCURACY = 0.95  # ours: a cell below this clean accuracy is not trained and supports no claim
EXPONENT_TOLERANCE = 0.1  # ours: on the log–log slope of the crossing point


def panel_rows(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each panel's cells: its fixed keys at their most common values, then the most common training budget
    (train_size, pgd_steps, max_epochs), so that panels with different budgets never mix."""
    budget = ["train_size", "pgd_steps", "max_epochs"]
    return {name: at_mode(at_mode(rows, panel.fixed), budget) for name, panel in PANELS.items()}


def crossing_claim(name: str, frame: pd.DataFrame) -> dict:
    """Slope of log(threshold where robust test accuracy crosses 1/2) against log(across), over trained cells;
    test points resampled through their binomial counts (one run per cell at the default scale)."""
    panel = PANELS[name]
    cells = frame.groupby([panel.across, panel.threshold]).agg(
        robust=("robust_test_acc", "mean"), clean=("clean_test_acc", "mean"), trials=("test_size", "sum")
    )
    untrained = cells[cells["clean"] < MIN_ACCURACY]
    cells = cells[cells["clean"] >= MIN_ACCURACY]
    xs, points, draws, missing = [], [], [], []
    for value, group in cells.groupby(level=0):
        thresholds = group.index.get_level_values(1).to_numpy(dtype=float)
        point = crossing(thresholds, group["robust"].to_numpy())
        if np.isnan(point):
            missing.append(f"{value:g}")
            continue
        xs.append(value)
        points.append(point)
        draws.append(
            crossing(thresholds, binomial_draws(group["robust"].to_numpy(), group["trials"].to_numpy()))
        )
    notes = []
    if len(untrained):
        notes.append(
            f"{len(untrained)} of {len(untrained) + len(cells)} cells excluded as untrained (clean "
            f"accuracy < {MIN_ACCURACY:g}, lowest {untrained['clean'].min():.2f})"
        )
    if missing:
        notes.append(f"no crossing of 1/2 among trained cells at {panel.across}={', '.join(missing)}")
    estimate = None
    if len(xs) >= 2:
        low, high = percentile_interval(loglog_slope(xs, np.stack(draws, 1)))
        estimate = Estimate(
            loglog_slope(xs, np.array(points)),
            low,
            high,
            f"{int(cells['trials'].min())} test points per cell (binomial)",
            int(cells["trials"].sum()),
        )
    fixed = ", ".join(f"{k}={frame[k].iloc[0]:g}" for k in panel.fixed)
    return claim(
        NAME,
        f"crossing-slope-{name}",
        f"log–log slope of the {panel.symbol} where robust test accuracy crosses 1/2 versus "
        f"{panel.across} (Fig. 4 {name}, {fixed})",
        panel.prediction,
        "[paper]",
        Band.around(-0.5, EXPONENT_TOLERANCE),
        f"ours: ±{EXPONENT_TOLERANCE:g}",
        estimate,
        "; ".join(notes),
        unmeasured=f"fewer than two {panel.across} values with a crossing",
    )


def claims(rows: pd.DataFrame, cells: pd.DataFrame) -> list[dict]:
    """The crossing point's scaling in each Fig. 4 panel, and how well the models trained."""
    out = [crossing_claim(name, frame) for name, frame in panel_rows(rows).items()]
    out.append(
        reported(
            NAME,
            "clean-accuracy",
            "mean clean test accuracy over all models",
            statistic_estimate(rows["clean_test_acc"], "models"),
            f"no claim: the paper states none; cells below {MIN_ACCURACY:g} are excluded from the claims",
        )
    )
    return out


def work(c: dict) -> float:
    """Cost model for estimates: PGD steps on every training example of every epoch up to max_epochs."""
    return c["runs"] * (c["train_subset"] or 12_665) * c["d"] * c["width"] * c["pgd_steps"] * c["max_epochs"]


EXPERIMENT = Experiment(
    name=NAME,
    title="Adversarial training inside the lazy ball fails beyond ε ≈ 1/√d or below R ≈ 1/√m",
    reproduces="Wang, Ullah, Mianjy, Arora, 'Adversarial robustness is at odds with lazy training' (NeurIPS 2022), "
    "§5.2, Algorithm 1, Figure 4",
    figures=(f"{NAME}_fig4",),
    config_class=LazyPGDConfig,
    run=run,
    claims=claims,
    figure_module="advrepro.figures.lazy_pgd",
    work=work,
    columns=COLUMNS,
    batch_keys=("eps", "radius", "C0"),
    run_batch=run_batch,
)
