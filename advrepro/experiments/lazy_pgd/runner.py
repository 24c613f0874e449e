"""lazy-pgd: the config and the runner (torch); the paper and the protocol are in the package docstring."""

import dataclasses
import functools
import math
import weakref
from typing import Optional

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from advrepro.attacks import logistic_ascent, pgd_l2
from advrepro.config import require_choice, require_positive
from advrepro.data.mnist import binary_task
from advrepro.device import resolve_dtype
from advrepro.errors import UserError
from advrepro.lazy import (
    LazyConfig,
    LazyNets,
    accuracy,
    concat,
    data_orders,
    init_lazy_nets,
    minibatches,
    sgd_step,
)
from advrepro.nets import Net
from advrepro.progress import bar
from advrepro.replay import replayed

NAME = "lazy-pgd"
PROJECTIONS = ("per_step", "per_epoch")


@dataclasses.dataclass
class LazyPGDConfig(LazyConfig):
    """lazy-pgd's keys (configs/lazy-pgd.yaml); the shared ones are in LazyConfig."""

    radius: Optional[float] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    eps: float = 0.2
    pgd_steps: int = 100
    pgd_step_size: Optional[float] = None  # noqa: UP045
    clip: bool = True
    lr: float = 0.01
    batch_size: int = 32
    patience: int = 20
    min_delta: float = 1e-4
    project: str = "per_step"
    train_subset: int = 0
    runs: int = 1
    cuda_graphs: bool = True

    def __post_init__(self):
        super().__post_init__()
        require_positive(self, "eps", "pgd_steps")
        require_choice(self, "project", PROJECTIONS)
        for key in ("radius", "pgd_step_size"):
            if getattr(self, key) is not None and not getattr(self, key) > 0:
                raise UserError(f"{key} must be positive (or null for its default), got {getattr(self, key)}")
        if self.patience < 0 or self.train_subset < 0:
            raise UserError("patience and train_subset must be ≥ 0 (train_subset 0 = all)")

    @property
    def ball_radius(self) -> float:
        """R: `radius` when set, else C0/√width."""
        return self.radius if self.radius is not None else self.C0 / math.sqrt(self.width)

    @property
    def step_size(self) -> float:
        """α: `pgd_step_size` when set, else 2.5·ε/pgd_steps (the paper's rule, scaled with the step count)."""
        return self.pgd_step_size if self.pgd_step_size is not None else 2.5 * self.eps / self.pgd_steps


def attack(
    net: Net,
    x: Tensor,
    y: Tensor,
    cfg: LazyPGDConfig,
    eps: Tensor | float | None = None,
    step_size: Tensor | float | None = None,
) -> Tensor:
    """The ℓ2 PGD perturbation of cfg for each model's examples x (M, N, d); eps and step_size may be per-model
    tensors (M, 1, 1) when models of several cells are trained as one batch."""
    ascent = logistic_ascent(lambda z: net.input_gradient(z, with_value=False)[1], y)
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
class PerModel:
    """ε, α and R of each model trained together: every run of every cell of a batch (cells differing only in
    ε and R), shaped to broadcast against (models, examples, d) and (models, m)."""

    eps: torch.Tensor  # (M, 1, 1)
    step_size: torch.Tensor  # (M, 1, 1)
    radius: torch.Tensor  # (M,)

    @classmethod
    def of(cls, cfgs: list[LazyPGDConfig], dtype, device) -> "PerModel":
        per_model = lambda f: torch.tensor(
            [f(c) for c in cfgs for _ in range(c.runs)], dtype=dtype, device=device
        )
        return cls(
            per_model(lambda c: c.eps)[:, None, None],
            per_model(lambda c: c.step_size)[:, None, None],
            per_model(lambda c: c.ball_radius),
        )

    def take(self, models: Tensor) -> "PerModel":
        """The settings of the given models (an index tensor)."""
        return PerModel(self.eps[models], self.step_size[models], self.radius[models])


@dataclasses.dataclass
class Trainer:
    """Adversarial training of models that are all still training (train() builds a smaller one when some stop):
    the data, the per-model settings, the robust training hits of the current epoch, and the minibatch step,
    replayed as a CUDA graph on CUDA when cfg.cuda_graphs (advrepro.replay)."""

    nets: LazyNets
    x: Tensor
    y: Tensor
    cfg: LazyPGDConfig
    models: PerModel

    def __post_init__(self):
        self.correct = torch.zeros(len(self.models.radius), dtype=self.x.dtype, device=self.x.device)
        # The step holds the trainer weakly: no reference cycle, so a trainer replaced when models stop frees its
        # graphs and copies of the weights at once, not at the garbage collector's next full pass.
        minibatch = functools.partial(type(self).minibatch, weakref.proxy(self))
        self.step = replayed(minibatch, self.x.device, self.cfg.cuda_graphs)

    def hits(self, xb: Tensor, yb: Tensor) -> None:
        """Adds the minibatch's correctly classified (adversarial) examples to `correct`."""
        self.correct.add_((torch.sign(self.nets.net().forward(xb)) == yb).sum(-1))


class Algorithm1(Trainer):
    """Wang et al. Algorithm 1: per minibatch, PGD on the current weights, one SGD step on the adversarial batch,
    then every neuron projected back onto its lazy ball."""

    def minibatch(self, idx: Tensor) -> None:
        xb, yb = self.x[idx], self.y[idx]
        xb = xb + attack(self.nets.net(), xb, yb, self.cfg, self.models.eps, self.models.step_size)
        self.hits(xb, yb)
        sgd_step(self.nets, xb, yb, self.cfg.lr, with_bound=False)
        self.nets.project(self.models.radius)

    def epoch(self, order: Tensor) -> Tensor:
        """One epoch over each model's `order`; returns its robust training hits."""
        self.correct.zero_()
        for idx in minibatches(order, self.cfg.batch_size):
            self.step(idx)
        return self.correct.clone()


class AdvTrain(Trainer):
    """The published advtrain.py: the adversarial set built once with the epoch's starting weights, SGD over it, and
    the projection once at the end of the epoch."""

    def minibatch(self, xb: Tensor, yb: Tensor) -> None:
        self.hits(xb, yb)
        sgd_step(self.nets, xb, yb, self.cfg.lr, with_bound=False)

    def epoch(self, order: Tensor) -> Tensor:
        """One epoch over each model's `order`; returns its robust training hits."""
        self.correct.zero_()
        xs, ys = self.x[order], self.y[order]
        xs = xs + attack(self.nets.net(), xs, ys, self.cfg, self.models.eps, self.models.step_size)
        for xb, yb in zip(xs.split(self.cfg.batch_size, 1), ys.split(self.cfg.batch_size, 1), strict=True):
            self.step(xb, yb)
        self.nets.project(self.models.radius)
        return self.correct.clone()


TRAINERS = {"per_step": Algorithm1, "per_epoch": AdvTrain}


def train(
    cfgs: list[LazyPGDConfig], models: PerModel, x: torch.Tensor, y: torch.Tensor, device
) -> tuple[LazyNets, dict[str, np.ndarray]]:
    """Adversarial training with `project`'s epoch (Algorithm 1 or advtrain.py) until the code's early stopping
    rule or max_epochs. All runs of all cells in `cfgs` (which differ only in ε and R) train as one batched
    model; run r of every cell starts from the same initialisation and data order as it would alone. A model that
    stops leaves the batch at the end of its epoch (the rest train on as a smaller batch, with its own CUDA graph),
    so it costs nothing more; every step is per model, so the rows are those of each cell alone."""
    cfg, n = cfgs[0], len(y)
    nets = concat(
        [
            init_lazy_nets(c.seed, c.runs, x.shape[1], c.width, True, x.dtype, device, trainable=False)
            for c in cfgs
        ]
    )
    order = data_orders([(c.seed, r) for c in cfgs for r in range(c.runs)], n, device)
    training = torch.arange(len(order), device=device)  # the models still training
    epochs = torch.zeros(len(order), dtype=torch.long, device=device)
    make_trainer = lambda: TRAINERS[cfg.project](nets.take(training), x, y, cfg, models.take(training))
    trainer = make_trainer()
    history, boundary = [], []
    label = f"{len(cfgs)} cells" if len(cfgs) > 1 else f"R={cfg.ball_radius:.3g} ε={cfg.eps:g}"
    progress = bar(range(cfg.max_epochs), cfg, desc=f"{NAME} d={cfg.d} m={cfg.width} {label}")
    for _ in progress:
        epochs[training] += 1
        robust = history[-1].clone() if history else torch.zeros(len(order), dtype=x.dtype, device=device)
        robust[training] = trainer.epoch(order[training]) / n
        nets.put(training, trainer.nets)
        history.append(robust)
        boundary.append(nets.on_boundary(models.radius))
        stopped = should_stop(torch.stack(history), cfg.patience, cfg.min_delta)
        progress.set_postfix(robust_train=f"{robust.mean().item():.3f}", training=len(training))
        if stopped[training].any():  # read once per epoch, as is the bar's mean: the epoch's only host syncs
            training = training[~stopped[training]]
            if not len(training):
                break
            trainer = make_trainer()
    stopped_early = torch.ones(len(order), dtype=torch.bool, device=device)
    stopped_early[training] = False
    record = {
        "epochs": epochs,
        "robust_train_acc": history[-1],
        "final_distance": nets.distance(),
        "boundary_share": boundary[-1],
        "stopped_early": stopped_early,
    }
    record = {k: v.cpu().numpy() for k, v in record.items()}
    for name, series in (("robust_train_history", history), ("boundary_history", boundary)):
        per_model = torch.stack(series, 1).cpu().numpy()  # (models, epochs run by the batch)
        record[name] = np.array(
            [
                ";".join(f"{v:.4f}" for v in values[:n])
                for values, n in zip(per_model, record["epochs"], strict=True)
            ]
        )
    return nets, record


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
    "boundary_share": "share of neurons on their ball's boundary at the end (distance ≥ (1 − 10⁻⁴)·R)",
    "stopped_early": "the early-stopping rule ended training",
    "robust_train_history": "robust training accuracy of each epoch trained, ';'-separated",
    "boundary_history": "boundary_share after each epoch trained, ';'-separated",
    "test_size": "test images (the binomial trials of the accuracies)",
    "clean_test_acc": "clean test accuracy",
    "robust_test_acc": "accuracy under the ℓ2 PGD attack",
    "constant_acc": "test accuracy of the best constant predictor (the majority class's share): an untrained level",
    "inv_sqrt_d": "1/√d",
    "inv_sqrt_width": "1/√m",
}


def run_batch(cfgs: list[LazyPGDConfig], device: torch.device) -> list[pd.DataFrame]:
    """Rows of each cell in `cfgs` (cells that differ only in ε and R), trained and attacked as one batch."""
    cfg = cfgs[0]
    data = binary_task(cfg, cfg.d, True, resolve_dtype(cfg.dtype), device)
    x, y = data["train_x"], data["train_y"]
    models = PerModel.of(cfgs, x.dtype, device)
    nets, record = train(cfgs, models, x, y, device)
    net = nets.net()
    test_x = data["test_x"].expand(len(models.radius), -1, -1)
    test_y = data["test_y"].expand(len(models.radius), -1)
    delta = attack(net, test_x, test_y, cfg, models.eps, models.step_size)
    clean, robust = accuracy(net, test_x, test_y), accuracy(net, test_x + delta, test_y)
    constant = max(test_y[0].eq(1).double().mean().item(), test_y[0].eq(-1).double().mean().item())
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
                    "constant_acc": constant,
                    "inv_sqrt_d": 1 / math.sqrt(c.d),
                    "inv_sqrt_width": 1 / math.sqrt(c.width),
                }
            )
        )
    return frames


def run(cfg: LazyPGDConfig, device: torch.device) -> pd.DataFrame:
    """Rows of one cell, one per run (columns: COLUMNS, `advrepro list --columns`): run_batch of one."""
    return run_batch([cfg], device)[0]


def cost_model(c: dict) -> float:
    """Cost model for estimates: PGD steps on every training example of every epoch up to max_epochs."""
    return c["runs"] * (c["train_subset"] or 12_665) * c["d"] * c["width"] * c["pgd_steps"] * c["max_epochs"]
