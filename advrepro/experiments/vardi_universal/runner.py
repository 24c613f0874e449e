"""vardi-universal: the config and the runner (torch); the paper and the protocol are in the package docstring."""

import dataclasses
import logging
import math

import numpy as np
import pandas as pd
import torch

from advrepro.config import CommonConfig, require_choice, require_positive
from advrepro.device import resolve_dtype
from advrepro.errors import UserError
from advrepro.flip import piecewise_value, relu_ray_pieces, segment_roots
from advrepro.nets import Net, rademacher, sphere
from advrepro.optim import descend
from advrepro.progress import bar
from advrepro.seeding import generator

NAME = "vardi-universal"
log = logging.getLogger(__name__)
LOSSES = ("exp", "logistic")
INITS = ("pytorch", "normal")


@dataclasses.dataclass
class VardiConfig(CommonConfig):
    """vardi-universal's keys (configs/vardi-universal.yaml, tags and sources in docs/protocols.md §4)."""

    dtype: str = "float64"
    d: int = 500
    n: int = 50
    width: int = 100
    loss: str = "exp"
    loss_target: float = 1e-30
    lr0: float = 0.01
    max_steps: int = 20_000
    batch_size: int = 0
    init: str = "pytorch"
    runs: int = 5
    max_delta_ratio: float = 2.0

    def __post_init__(self):
        require_positive(
            self, "d", "n", "width", "loss_target", "lr0", "max_steps", "runs", "max_delta_ratio"
        )
        require_choice(self, "loss", LOSSES)
        require_choice(self, "init", INITS)
        if self.batch_size < 0:
            raise UserError(f"batch_size must be ≥ 0 (0 = full batch), got {self.batch_size}")


def log_mean_loss(margins: torch.Tensor, loss: str) -> torch.Tensor:
    """log((1/n) Σ_i ℓ(m_i)) per run, stable far below float64's smallest loss: ℓ = e^{−m} or log(1 + e^{−m})."""
    if loss == "exp":
        log_terms = -margins
    else:  # log softplus(−m) = −m − e^{−m}/2 + … once e^{−m} is negligible
        softplus = torch.nn.functional.softplus(-margins)
        log_terms = torch.where(margins > 30, -margins, torch.log(softplus.clamp_min(1e-300)))
    return torch.logsumexp(log_terms, dim=-1) - math.log(margins.shape[-1])


def init_params(cfg: VardiConfig, run: int, dtype) -> list[torch.Tensor]:
    """W (k, d), b (k), a (k): PyTorch's nn.Linear default U(±1/√fan_in), or N(0, 1/fan_in) with b = 0."""
    g = generator(cfg.seed, "init", run)
    k, d = cfg.width, cfg.d
    if cfg.init == "pytorch":
        uniform = lambda shape, fan_in: (
            (torch.rand(shape, generator=g, dtype=dtype) * 2 - 1) / math.sqrt(fan_in)
        )
        return [uniform((k, d), d), uniform((k,), d), uniform((k,), k)]
    return [
        torch.randn(k, d, generator=g, dtype=dtype) / math.sqrt(d),
        torch.zeros(k, dtype=dtype),
        torch.randn(k, generator=g, dtype=dtype) / math.sqrt(k),
    ]


def train(cfg: VardiConfig, x: torch.Tensor, y: torch.Tensor, device) -> tuple[Net, dict[str, np.ndarray]]:
    """Gradient flow on log L, discretised: θ ← θ − lr0·∇L/L (lr_t = lr0/L_t; docs/protocols.md §4 [inferred]).

    All runs train together (leading dimension: runs); a run stops once its loss is ≤ loss_target.
    """
    dtype = x.dtype
    W, b, a = (
        torch.stack(p).to(device).requires_grad_()
        for p in zip(*(init_params(cfg, r, dtype) for r in range(cfg.runs)), strict=True)
    )
    runs, n = y.shape
    active = torch.ones(runs, dtype=torch.bool, device=device)
    steps = torch.zeros(runs, dtype=torch.long, device=device)
    finite = torch.ones(runs, dtype=torch.bool, device=device)
    batches = generator(cfg.seed, "batches")
    full = cfg.batch_size == 0 or cfg.batch_size >= n
    log_target = math.log(cfg.loss_target)

    def log_loss_on(idx) -> torch.Tensor:
        z = torch.baddbmm(b[:, None, :], x[:, idx], W.transpose(1, 2))
        return log_mean_loss(y[:, idx] * (torch.relu(z) * a[:, None, :]).sum(-1), cfg.loss)

    full_log_loss = log_loss_on(slice(None))
    progress = bar(range(cfg.max_steps), cfg, desc=f"{NAME} d={cfg.d} n={cfg.n} k={cfg.width}")
    for step in progress:
        if full:  # the loss after the last step is this step's: one forward pass per step, not two
            log_loss = full_log_loss
        else:
            log_loss = log_loss_on(torch.randperm(n, generator=batches)[: cfg.batch_size].to(device))
        descend((W, b, a), torch.autograd.grad(log_loss[active].sum(), (W, b, a)), cfg.lr0)
        steps += active
        with torch.set_grad_enabled(full):
            full_log_loss = log_loss_on(slice(None))
        with torch.no_grad():
            finite &= torch.isfinite(full_log_loss)
            active &= finite & (full_log_loss > log_target)
        if step % 50 == 0:
            progress.set_postfix(log10_loss=f"{full_log_loss.max().item() / math.log(10):.1f}")
        if not active.any():
            break
    full_log_loss = full_log_loss.detach()
    if not finite.all():
        log.warning("%s: %d of %d runs hit a non-finite loss (lower lr0)", NAME, int((~finite).sum()), runs)
    if active.any():
        log.warning(
            "%s: %d of %d runs stopped at max_steps=%d before loss ≤ %g",
            NAME,
            int(active.sum()),
            runs,
            cfg.max_steps,
            cfg.loss_target,
        )
    net = Net([W.detach()], a.detach(), "relu", [b.detach()])
    theta_sq = W.detach().pow(2).sum((1, 2)) + b.detach().pow(2).sum(1) + a.detach().pow(2).sum(1)
    margins = y * net.forward(x)
    record = {
        "steps": steps,
        "final_log10_loss": full_log_loss / math.log(10),
        "converged": finite & ~active,
        "min_margin": margins.min(1).values / theta_sq,  # f is 2-homogeneous in θ = (W, b, a)
    }
    return net, {k: v.cpu().numpy() for k, v in record.items()}


def universal_perturbation(net: Net, x: torch.Tensor, y: torch.Tensor, t_max: torch.Tensor) -> dict:
    """δ = η·u, u = Σ_i y_i x_i. Exact along each ray x_i − η·y_i·u (piecewise linear in η).

    Per run: η* = max_i (smallest η flipping sample i) (the paper's number), the fraction flipped at η*, and the
    smallest η flipping all samples at once (≥ η*; one of the samples' entry points into their flipped sets).
    """
    u = (y[..., None] * x).sum(1)  # (runs, d)
    z = net.linear(0, x)  # (runs, n, k)
    v = -y[..., None] * torch.matmul(u[:, None, :], net.weights[0].transpose(1, 2))  # W(−y_i u)
    knots, values, slopes = relu_ray_pieces(z, v, net.readout[:, None, :], 0.0, t_max[:, None])
    entries = segment_roots(knots, values, slopes, y)  # where y_i f enters (−∞, 0]: (runs, n, k+1)
    eta_i = entries.nan_to_num(math.inf).min(-1).values  # (runs, n)
    eta_star = eta_i.max(1).values  # inf when some sample never flips up to t_max
    just_after = lambda t: t * (1 + 1e-9) + 1e-12
    at_star = piecewise_value(
        knots,
        values,
        slopes,
        just_after(eta_star.clamp(max=t_max))[:, None, None].expand(*y.shape, 1).contiguous(),
    ).squeeze(-1)
    frac = torch.where(torch.isfinite(eta_star), (y * at_star < 0).to(x.dtype).mean(1), math.nan)
    candidates = entries.reshape(len(y), -1)
    candidates = (
        torch.where(candidates >= eta_star[:, None] * (1 - 1e-12), candidates, math.inf).sort(-1).values
    )
    keep = max(1, int(torch.isfinite(candidates).sum(-1).max()))
    candidates = candidates[:, :keep]  # (runs, C)
    t = just_after(candidates.clamp(max=t_max[:, None]))[:, None, :].expand(-1, y.shape[1], -1).contiguous()
    flipped_all = ((y[..., None] * piecewise_value(knots, values, slopes, t)) < 0).all(1) & torch.isfinite(
        candidates
    )
    first = flipped_all.to(torch.int8).argmax(-1, keepdim=True)
    eta_all = torch.where(flipped_all.any(-1), candidates.gather(-1, first).squeeze(-1), math.inf)
    nan_inf = lambda t: torch.where(torch.isinf(t), math.nan, t)
    return {
        "u_norm": u.norm(dim=-1),
        "eta_star": nan_inf(eta_star),
        "frac_flipped": frac,
        "eta_all": nan_inf(eta_all),
    }


def separation(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """max_{i≠j} |⟨x_i, x_j⟩| per run and the theorem's condition n ≤ (d+1)/(3(max|⟨x_i,x_j⟩| + 1))."""
    gram = torch.matmul(x, x.transpose(1, 2)).abs()
    gram.diagonal(dim1=1, dim2=2).zero_()
    max_inner = gram.amax((1, 2))
    n, d = x.shape[1], x.shape[2]
    return max_inner, n <= (d + 1) / (3 * (max_inner + 1))


def sample_data(cfg: VardiConfig, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Per run: n points uniform on the √d-sphere (runs, n, d) and uniform ±1 labels (runs, n), from the cell's seed."""
    x = torch.stack(
        [
            sphere(cfg.n, cfg.d, math.sqrt(cfg.d), generator(cfg.seed, "data", r), dtype)
            for r in range(cfg.runs)
        ]
    )
    y = torch.stack([rademacher((cfg.n,), generator(cfg.seed, "labels", r), dtype) for r in range(cfg.runs)])
    return x, y


# The columns of rows.csv (besides `cell`, added on aggregation): name -> meaning.
COLUMNS = {
    "d": "input dimension",
    "n": "training samples",
    "width": "hidden ReLU units",
    "run": "independent run (data, labels, initialisation)",
    "steps": "gradient steps taken",
    "final_log10_loss": "log₁₀ of the final mean loss",
    "converged": "the loss reached loss_target",
    "min_margin": "min_i y_i f(x_i)/‖θ‖² (f is 2-homogeneous)",
    "final_loss": "the final mean loss",
    "max_inner": "max_{i≠j} |⟨x_i, x_j⟩|",
    "separation_ok": "n ≤ (d+1)/(3(max|⟨x_i,x_j⟩|+1)), the theorem's condition",
    "eta_star": "η*: the largest over samples of the smallest η flipping that sample along −y_i·Σ y_j x_j",
    "frac_flipped": "share of samples flipped at η*",
    "eta_all": "smallest η flipping every sample at once (NaN: none within max_delta_ratio·√d)",
    "class_share": "c, the smaller class's share of the n samples (the theorem's balance constant)",
    "delta_norm": "‖δ‖ = η*·‖Σ y_i x_i‖",
    "delta_over_sqrt_d": "‖δ‖/√d = ‖δ‖/‖x‖ at η*",
    "delta_all_over_sqrt_d": "the same at eta_all",
}


def run(cfg: VardiConfig, device: torch.device) -> pd.DataFrame:
    """Rows of one cell, one per run (columns: COLUMNS, `advrepro list --columns`): train every run to the loss
    target, then η*, the share flipped at η* and the universal η_all along δ = η·Σ y_i x_i."""
    dtype = resolve_dtype(cfg.dtype)
    x, y = (t.to(device) for t in sample_data(cfg, dtype))
    net, record = train(cfg, x, y, device)
    with torch.no_grad():
        u_norm = (y[..., None] * x).sum(1).norm(dim=-1)
        found = universal_perturbation(net, x, y, cfg.max_delta_ratio * math.sqrt(cfg.d) / u_norm)
        max_inner, separated = separation(x)
    found = {k: v.cpu().numpy() for k, v in found.items()}
    delta = found["eta_star"] * found["u_norm"]
    return pd.DataFrame(
        {
            "d": cfg.d,
            "n": cfg.n,
            "width": cfg.width,
            "run": np.arange(cfg.runs),
            **record,
            "final_loss": 10.0 ** record["final_log10_loss"],
            "max_inner": max_inner.cpu().numpy(),
            "separation_ok": separated.cpu().numpy(),
            "eta_star": found["eta_star"],
            "frac_flipped": found["frac_flipped"],
            "eta_all": found["eta_all"],
            "class_share": torch.minimum((y > 0).sum(1), (y < 0).sum(1)).cpu().numpy() / cfg.n,
            "delta_norm": delta,
            "delta_over_sqrt_d": delta / math.sqrt(cfg.d),
            "delta_all_over_sqrt_d": found["eta_all"] * found["u_norm"] / math.sqrt(cfg.d),
        }
    )


def cost_model(c: dict) -> float:
    """Cost model for estimates: one full-batch step (the number of steps to 1e-30 varies little)."""
    return c["runs"] * c["n"] * c["d"] * c["width"]
