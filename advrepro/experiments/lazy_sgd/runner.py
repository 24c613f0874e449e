"""lazy-sgd: the config and the runner (torch); the paper and the protocol are in the package docstring."""

import dataclasses
import math

import numpy as np
import pandas as pd
import torch

from advrepro.config import require_choice, require_positive
from advrepro.data.mnist import binary_task
from advrepro.device import resolve_dtype
from advrepro.flip import exact_flip, gradient_ray, walk_flip
from advrepro.lazy import (
    LazyConfig,
    LazyNets,
    accuracy,
    data_orders,
    init_lazy_nets,
    minibatches,
    sgd_step,
)
from advrepro.nets import Net
from advrepro.progress import bar

NAME = "lazy-sgd"
STOPS = ("per_step", "per_epoch")
KEEPS = ("first_outside", "last_inside")
SEARCHES = ("exact", "walk")


@dataclasses.dataclass
class LazySGDConfig(LazyConfig):
    """lazy-sgd's keys (configs/lazy-sgd.yaml); the shared ones are in LazyConfig."""

    normalize: bool = False
    bias: bool = True
    lr: float = 0.1
    batch_size: int = 64
    stop: str = "per_step"
    keep: str = "first_outside"
    search: str = "exact"
    walk_step: float = 0.001
    delta_max: float = 5.0
    misclassified: str = "exclude"
    runs: int = 5

    def __post_init__(self):
        super().__post_init__()
        require_positive(self, "walk_step", "delta_max")
        require_choice(self, "stop", STOPS)
        require_choice(self, "keep", KEEPS)
        require_choice(self, "search", SEARCHES)
        require_choice(self, "misclassified", ("exclude", "zero"))


def train(
    cfg: LazySGDConfig, x: torch.Tensor, y: torch.Tensor, device
) -> tuple[LazyNets, dict[str, np.ndarray]]:
    """Plain SGD (no momentum, no decay), all runs batched; a run stops on leaving the lazy ball.

    Each run's data order is shuffled once (the code shuffles once per seed and walks it every epoch).
    stop=per_step checks the ball after every step (the paper's text), per_epoch once per epoch (the code);
    keep=first_outside keeps the first model outside the ball (the code), last_inside the one before it.
    The exact (2,∞) distance is computed only when an upper bound (last exact distance + the steps' lengths
    since, triangle inequality) could have crossed the radius.
    """
    runs, n = cfg.runs, len(y)
    nets = init_lazy_nets(cfg.seed, runs, x.shape[1], cfg.width, cfg.bias, x.dtype, device, trainable=False)
    order = data_orders([(cfg.seed, r) for r in range(runs)], n, device)
    radius = cfg.C0 / math.sqrt(cfg.width)
    active = torch.ones(runs, dtype=torch.bool, device=device)
    steps = torch.zeros(runs, dtype=torch.long, device=device)
    epochs = torch.zeros(runs, dtype=torch.long, device=device)
    bound = torch.zeros(runs, dtype=x.dtype, device=device)  # ≥ the current (2,∞) distance
    checkpoint = Checkpoint(nets, steps) if cfg.keep == "last_inside" else None

    def check_ball() -> None:
        nonlocal bound
        bound = nets.distance()
        left = active & (bound > radius)
        if checkpoint is not None:
            checkpoint.restore(left)
        active.logical_and_(~left)

    progress = bar(range(cfg.max_epochs), cfg, desc=f"{NAME} d={cfg.d} m={cfg.width} C0={cfg.C0:g}")
    for _ in progress:
        epochs += active
        if checkpoint is not None and cfg.stop == "per_epoch":
            checkpoint.save()
        for idx in minibatches(order, cfg.batch_size):
            if checkpoint is not None and cfg.stop == "per_step":
                checkpoint.save()
            bound += sgd_step(nets, x[idx], y[idx], cfg.lr, active)
            steps += active
            if cfg.stop == "per_step" and (active & (bound > radius)).any():
                check_ball()
                if not active.any():
                    break
        if cfg.stop == "per_epoch" or not active.any():
            check_ball()
        progress.set_postfix(inside=int(active.sum()))
        if not active.any():
            break
    distance = nets.distance()
    record = {
        "steps": steps,
        "epochs": epochs,
        "final_distance": distance,
        "radius": torch.full_like(distance, radius),
        "left_ball": ~active,
    }
    return nets, {k: v.cpu().numpy() for k, v in record.items()}


class Checkpoint:
    """The weights (and step counts) of every run at the last save, to put back for keep=last_inside."""

    def __init__(self, nets: LazyNets, steps: torch.Tensor):
        self.nets, self.steps = nets, steps
        self.saved: list[torch.Tensor] = []

    def tensors(self) -> list[torch.Tensor]:
        return [t for t in (self.nets.W, self.nets.b, self.steps) if t is not None]

    def save(self) -> None:
        self.saved = [t.clone() for t in self.tensors()]

    def restore(self, runs: torch.Tensor) -> None:
        for current, saved in zip(self.tensors(), self.saved, strict=True):
            current[runs] = saved[runs]


def flip_steps(net: Net, x: torch.Tensor, cfg: LazySGDConfig) -> dict[str, torch.Tensor]:
    """Per run and test image: f, ‖∇ₓf‖, its component x̂·∇ₓf along the input (the finite-d law of docs §2) and the
    smallest ‖δ‖ along −sign f(x)·∇f/‖∇f‖ that flips the sign.

    search=exact: breakpoints of the piecewise-linear ray; search=walk: the code's steps of walk_step in ‖δ‖.
    """
    ray = gradient_ray(net, x, unit=True)  # t = ‖δ‖
    if cfg.search == "exact":
        delta = exact_flip(net, ray, cfg.delta_max)
    else:
        delta = walk_flip(ray, cfg.walk_step, cfg.delta_max)
    return {"f": ray.f, "grad_norm": ray.grad_norm, "grad_along_x": along_input(ray.grad, x), "delta": delta}


def along_input(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x̂·g per run and input, x̂ = x/‖x‖: the gradient's component along the input (docs §2)."""
    return (grad * x).sum(-1) / x.norm(dim=-1)


def orthogonal_norm(net: Net, x: torch.Tensor) -> torch.Tensor:
    """‖∇⊥f(x)‖, the norm of the gradient's part orthogonal to x, per run and input: √(‖∇f‖² − (x̂·∇f)²)."""
    grad = net.input_gradient(x, with_value=False)[1]
    return (grad.norm(dim=-1).square() - along_input(grad, x).square()).clamp_min(0).sqrt()


def measure(
    net: Net, init: Net, x: torch.Tensor, y: torch.Tensor, cfg: LazySGDConfig
) -> dict[str, torch.Tensor]:
    """flip_steps over the test set in chunks that fit chunk_mb, and the orthogonal gradient norm of `init` (the same
    networks at initialisation: the finite-d law's paired baseline, docs §2).

    `in_means` marks the points the per-run means average over: the correctly classified ones
    (misclassified=exclude, their δ is NaN), or every point with δ = 0 for the misclassified (zero, the code).
    `flipped`: a correctly classified point that one step of ‖δ‖ ≤ delta_max flips (else δ is NaN).
    """
    runs, m = net.readout.shape
    per_image = 12 * runs * m * x.element_size()
    chunk = max(1, cfg.chunk_mb * 2**20 // per_image)
    parts = [
        {**flip_steps(net, x[i : i + chunk], cfg), "init_grad_perp": orthogonal_norm(init, x[i : i + chunk])}
        for i in range(0, len(x), chunk)
    ]
    out = {k: torch.cat([p[k] for p in parts], dim=1) for k in parts[0]}
    correct = torch.sign(out["f"]) == y
    in_means = correct | (cfg.misclassified == "zero")  # zero: the code's averages over every test point
    delta = torch.where(correct, out["delta"], 0.0 if cfg.misclassified == "zero" else math.nan)
    return {
        "correct": correct,
        "flipped": correct & ~torch.isnan(out["delta"]),
        "in_means": in_means,
        "f_abs": out["f"].abs(),
        "grad_norm": out["grad_norm"],
        "grad_along_x": out["grad_along_x"],
        "init_grad_perp": out["init_grad_perp"],
        "delta_norm": delta,
        "eta": delta / out["grad_norm"],
        "delta_over_x": delta / x.norm(dim=-1),
    }


# The columns of rows.csv (besides `cell`, added on aggregation): name -> meaning.
COLUMNS = {
    "d": "input dimension (s² of the downsampled image)",
    "width": "hidden units m",
    "C0": "lazy radius C0/√m",
    "normalize": "inputs scaled to ‖x‖ = 1 (Figs. 5/6)",
    "bias": "hidden and output biases (Figs. 2/3)",
    "run": "independent training run (initialisation and data order)",
    "index": "test image index within the 0-vs-1 test set",
    "label": "±1 (digit 1 = +1)",
    "correct": "the model classifies the image correctly",
    "flipped": "correct, and one gradient step of ‖δ‖ ≤ delta_max flips it",
    "in_means": "the image enters the per-run means (correct ones; all for misclassified=zero)",
    "f_abs": "|f(x)|",
    "grad_norm": "‖∇ₓf(x)‖",
    "grad_along_x": "x̂·∇ₓf(x), the gradient's component along the input (= f(x)/‖x‖ without biases, where f is "
    "positively homogeneous)",
    "init_grad_perp": "‖∇⊥f₀(x)‖, the gradient's part orthogonal to x of the same run's network at initialisation: "
    "E‖∇⊥f₀‖² = (d − 1)/2, and training adds c = ‖∇f‖² − (x̂·∇f)² − ‖∇⊥f₀‖² (the finite-d law, docs §2)",
    "delta_norm": "‖δ‖ of the smallest flipping step (NaN: none, or excluded; 0: misclassified under zero)",
    "eta": "η = ‖δ‖/‖∇f‖",
    "delta_over_x": "‖δ‖/‖x‖",
    "steps": "SGD steps of the kept model",
    "epochs": "epochs begun",
    "final_distance": "max over neurons of ‖[w_s, b_s] − [w_s, b_s]₀‖ of the kept model",
    "radius": "C0/√m",
    "left_ball": "training ended by leaving the ball (else at max_epochs)",
    "train_acc": "clean training accuracy of the kept model",
    "test_acc": "clean test accuracy of the kept model",
}


def run(cfg: LazySGDConfig, device: torch.device) -> pd.DataFrame:
    """Rows of one cell, one per (run, test image) (columns: COLUMNS, `advrepro list --columns`): train every run,
    then measure the smallest flipping step along the gradient at every test image."""
    dtype = resolve_dtype(cfg.dtype)
    data = binary_task(cfg, cfg.d, cfg.normalize, dtype, device)
    nets, record = train(cfg, data["train_x"], data["train_y"], device)
    net = nets.net()
    record["train_acc"] = accuracy(net, data["train_x"], data["train_y"])
    record["test_acc"] = accuracy(net, data["test_x"], data["test_y"])
    with torch.no_grad():
        measured = measure(net, nets.initial().net(), data["test_x"], data["test_y"], cfg)
        measured = {k: v.cpu().numpy() for k, v in measured.items()}
    n_test = len(data["test_y"])
    runs = np.repeat(np.arange(cfg.runs), n_test)
    rows = pd.DataFrame(
        {
            "d": cfg.d,
            "width": cfg.width,
            "C0": cfg.C0,
            "normalize": cfg.normalize,
            "bias": cfg.bias,
            "run": runs,
            "index": np.tile(np.arange(n_test), cfg.runs),
            "label": np.tile(data["test_y"].cpu().numpy(), cfg.runs),
            **{k: v.ravel() for k, v in measured.items()},
        }
    )
    for key, values in record.items():
        rows[key] = values[runs]
    return rows


def cost_model(c: dict) -> float:
    """Cost model for estimates: SGD steps up to max_epochs (runs leaving the ball early make it an upper bound)."""
    return c["runs"] * c["d"] * c["width"] * c["max_epochs"]
