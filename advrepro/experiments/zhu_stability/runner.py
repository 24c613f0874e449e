"""zhu-stability: the config and the runner (torch); the paper and the protocol are in the package docstring."""

import dataclasses
import math
from typing import Optional

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from advrepro.claims import MIN_ACCURACY
from advrepro.config import CommonConfig, require_choice, require_positive
from advrepro.data.mnist import binary_task, require_square
from advrepro.device import resolve_dtype
from advrepro.errors import UserError
from advrepro.lazy import accuracy, data_orders, minibatches
from advrepro.nets import Net
from advrepro.optim import descend
from advrepro.progress import bar
from advrepro.seeding import generator

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
    loss_target: float = 0.03
    max_epochs: int = 30
    train_subset: int = 0
    antialias: bool = False
    data_dir: str = "data"
    download: bool = True

    def __post_init__(self):
        require_positive(
            self, "p", "width", "alpha", "c", "networks", "n_inputs", "lr", "batch_size", "max_epochs"
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
        if self.loss_target < 0:
            raise UserError("loss_target must be ≥ 0 (0 = train for max_epochs epochs)")

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


def training_loss(net: Net, x: Tensor, y: Tensor) -> Tensor:
    """Mean logistic loss log(1 + e^{−y f}) over the training set, per network [inferred loss]."""
    with torch.no_grad():
        return torch.nn.functional.softplus(-y * net.forward(x)).mean(-1)


def train(cfg: ZhuConfig, net: Net, x: Tensor, y: Tensor) -> tuple[Net, Tensor]:
    """Plain SGD on the mean logistic loss, every network batched (autograd over the sum of their losses: each
    network's gradient is its own), to one endpoint: a network stops (its loss is masked out) after the first epoch
    whose training loss is ≤ loss_target, or after max_epochs (loss_target = 0: always max_epochs). Each run
    shuffles once and walks that order. Returns the networks and the epochs each trained."""
    params = [w.clone().requires_grad_(True) for w in [*net.weights, net.readout]]
    order = data_orders([(cfg.seed, r) for r in range(len(net.readout))], len(y), x.device)
    active = torch.ones(len(net.readout), dtype=torch.bool, device=x.device)
    epochs = torch.zeros(len(net.readout), dtype=torch.long, device=x.device)
    progress = bar(range(cfg.max_epochs), cfg, desc=f"{NAME} {cfg.init} L={cfg.depth} m={cfg.width}")
    for _ in progress:
        epochs += active
        for idx in minibatches(order, cfg.batch_size):
            model = Net(params[:-1], params[-1])
            loss = (torch.nn.functional.softplus(-y[idx] * model.forward(x[idx])).mean(-1) * active).sum()
            descend(params, torch.autograd.grad(loss, params), cfg.lr)
        active &= training_loss(Net(params[:-1], params[-1]), x, y) > cfg.loss_target
        if not active.any():
            break
    return Net([w.detach() for w in params[:-1]], params[-1].detach()), epochs


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
    "train_loss": "mean logistic training loss at the end (at initialisation too)",
    "epochs_run": "epochs trained (0 at initialisation): to the loss target, or max_epochs",
    "test_acc": "test accuracy",
    "kappa": "lazy ratio κ = Σ_l ‖X_l − X_l(0)‖_F / Σ_l ‖X_l(0)‖_F (0 at initialisation)",
    "trained": "regime is trained, the training loss reached loss_target and test accuracy ≥ 0.95: the only "
    "trained rows the claims use",
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
    net, epochs = (
        train(cfg, start, x, y)
        if cfg.regime == "trained"
        else (start, torch.zeros(cfg.networks, dtype=torch.long))
    )
    measured = {k: v.mean(-1).cpu().numpy() for k, v in stability(net, inputs).items()}
    test_acc = accuracy(net, data["test_x"], data["test_y"])
    train_loss = training_loss(net, x, y).cpu().numpy()
    reached = train_loss <= cfg.loss_target if cfg.loss_target > 0 else True
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
            "train_loss": train_loss,
            "epochs_run": epochs.cpu().numpy(),
            "test_acc": test_acc,
            "kappa": lazy_ratio(net, start).cpu().numpy(),
            "trained": (cfg.regime == "trained") & reached & (test_acc >= MIN_ACCURACY),
        }
    )


# The paper's trend table: sign of the change of P/ε (width: in the over-parameterised regime; depth: per layer).
def cost_model(c: dict) -> float:
    """Cost model for estimates: the matmuls of every network, per input at initialisation, per SGD example (and
    the loss check) after; with a loss target, training typically stops within a third of max_epochs."""
    per_example = c["width"] * (c["p"] + (c["depth"] - 2) * c["width"] + 1)
    epochs = c["max_epochs"] / 3 if c["loss_target"] > 0 else c["max_epochs"]
    examples = c["n_inputs"] + (4 * epochs * (c["train_subset"] or 12_665) if c["regime"] == "trained" else 0)
    return c["networks"] * per_example * examples
