"""cluster-robustness: the config and the runner (torch); the paper and the protocol are in the package docstring."""

import dataclasses
import math

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from advrepro.attacks import l2_normalize, pgd_l2
from advrepro.claims import MIN_ACCURACY
from advrepro.config import CommonConfig, require_positive
from advrepro.device import resolve_dtype
from advrepro.errors import UserError
from advrepro.optim import descend
from advrepro.prelu import IdealClassifier, PReLUNets
from advrepro.progress import bar
from advrepro.seeding import generator

NAME = "cluster-robustness"
# The attacks, in the order the breakdown lists them; `all` = broken by any of them.
ATTACKS = ("pgd", "restarts", "pairs", "centre", "universal")
PAIR_BLOCK = (
    1024  # rows of the pairwise-distance blocks (fixed, so the minimum's bits never depend on memory)
)


@dataclasses.dataclass
class ClusterConfig(CommonConfig):
    """cluster-robustness's keys (configs/cluster-robustness.yaml, tags and sources in docs/protocols.md §8)."""

    d: int = 1000
    k: int = 10
    k_pos: int = 6
    noise: float = 0.01
    n_train: int = 20_000
    n_test: int = 20_000
    width: int = 2000
    p: int = 1
    init_scale: float = 1e-7
    lr: float = 0.2
    batch_size: int = 100
    epochs: int = 401
    eps_max: float = 1.5
    eps_steps: int = 15
    runs: int = 5
    pgd_steps: int = 2000
    pgd_step_size: float = 0.1
    restarts: int = 1
    dist_starts: int = 10_000
    dist_steps: int = 2000
    dist_step_size: float = 0.01
    dist_samples: int = 10_000
    neurons: int = 20

    def __post_init__(self):
        require_positive(
            self,
            "d",
            "k",
            "k_pos",
            "n_train",
            "n_test",
            "width",
            "p",
            "init_scale",
            "lr",
            "batch_size",
            "epochs",
            "runs",
            "pgd_step_size",
            "dist_starts",
            "dist_step_size",
            "dist_samples",
            "neurons",
        )
        if not 0 < self.k_pos < self.k <= self.d:
            raise UserError(f"need 0 < k_pos < k ≤ d, got k_pos={self.k_pos}, k={self.k}, d={self.d}")
        for key in ("noise", "eps_max", "pgd_steps", "restarts", "dist_steps"):
            if getattr(self, key) < 0:
                raise UserError(f"{key} must be ≥ 0, got {getattr(self, key)}")
        if self.eps_steps < 1:
            raise UserError(f"eps_steps must be ≥ 1 (1 = clean accuracy only), got {self.eps_steps}")

    def radii(self) -> np.ndarray:
        """The attack radii: eps_steps values evenly from 0 to eps_max (prelu_f_dist.py's np.linspace)."""
        return np.linspace(0.0, self.eps_max, self.eps_steps)


def sample_clusters(
    cfg: ClusterConfig, n: int, stream: str, run: int, dtype
) -> tuple[Tensor, Tensor, Tensor]:
    """n points x = e_c + N(0, (α/√d)²I), c uniform on the k centres, y = +1 for the first k_pos (prelu_f_dist.py's
    generate_data): (x (n, d), y (n), c (n))."""
    g = generator(cfg.seed, stream, run)
    centre = torch.randint(0, cfg.k, (n,), generator=g)
    x = torch.randn(n, cfg.d, generator=g, dtype=dtype) * (cfg.noise / math.sqrt(cfg.d))
    x[torch.arange(n), centre] += 1
    return x, torch.where(centre < cfg.k_pos, 1.0, -1.0).to(dtype), centre


def stacked(cfg: ClusterConfig, n: int, stream: str, dtype, device) -> tuple[Tensor, Tensor, Tensor]:
    """sample_clusters for every run, stacked: (R, n, d), (R, n), (R, n)."""
    parts = [sample_clusters(cfg, n, stream, run, dtype) for run in range(cfg.runs)]
    return tuple(torch.stack(t).to(device) for t in zip(*parts, strict=True))


def init_weights(cfg: ClusterConfig, dtype, device) -> tuple[Tensor, Tensor]:
    """W (R, width, d) and v (R, width) drawn N(0, init_scale²) (prelu_torch_modules.py with init_std), one stream
    per run."""
    W, v = [], []
    for run in range(cfg.runs):
        g = generator(cfg.seed, "init", run)
        W.append(torch.randn(cfg.width, cfg.d, generator=g, dtype=dtype) * cfg.init_scale)
        v.append(torch.randn(cfg.width, generator=g, dtype=dtype) * cfg.init_scale)
    return torch.stack(W).to(device), torch.stack(v).to(device)


def exp_loss(nets: PReLUNets, x: Tensor, y: Tensor) -> Tensor:
    """Mean e^{−y f(x)} per network (R,)."""
    return torch.exp(-y * nets.forward(x)).mean(-1)


def train(cfg: ClusterConfig, x: Tensor, y: Tensor, powers: tuple[int, ...]) -> PReLUNets:
    """SGD on the mean exponential loss, every network at once (x: (C·R, n, d), C cells that differ only in their
    data or their power p, R runs each, `powers` the p of each network), the gradient in closed form
    (PReLUNets.exp_loss_gradients); the order reshuffled each epoch (DataLoader shuffle=True) from each run's own
    stream, the same for every cell."""
    copies = x.shape[0] // cfg.runs
    W, v = init_weights(cfg, x.dtype, x.device)
    nets = PReLUNets(W.repeat(copies, 1, 1), v.repeat(copies, 1), powers)
    orders = [generator(cfg.seed, "order", run) for run in range(cfg.runs)]
    rows = torch.arange(x.shape[0], device=x.device)[:, None]
    for _ in bar(range(cfg.epochs), cfg, desc=f"{NAME} k={cfg.k}, {copies} cells as one model"):
        order = torch.stack([torch.randperm(cfg.n_train, generator=g) for g in orders]).repeat(copies, 1)
        order = order.to(x.device)
        shuffled_x, shuffled_y = x[rows, order], y[rows, order]
        for xb, yb in zip(
            shuffled_x.split(cfg.batch_size, dim=1), shuffled_y.split(cfg.batch_size, dim=1), strict=True
        ):
            descend((nets.W, nets.v), nets.exp_loss_gradients(xb, yb)[1:], cfg.lr)
    return nets


def tiled(t: Tensor, times: int) -> Tensor:
    """t (R, N, ...) repeated `times` along N, radius-major: (R, times·N, ...)."""
    return t.repeat(1, times, *[1] * (t.dim() - 2))


def random_starts(cfg: ClusterConfig, restart: int, shape: tuple[int, int, int], indices, dtype) -> Tensor:
    """Points uniform in the unit ball (R, E·N, d), one stream per (run, restart, radius index): the same draws
    however the radii are chunked."""
    R, N, d = shape
    starts = []
    for run in range(R):
        for index in indices:
            g = generator(cfg.seed, "restart", run, restart, int(index))
            u = torch.randn(N, d, generator=g, dtype=dtype)
            starts.append(torch.rand(N, 1, generator=g, dtype=dtype) ** (1 / d) * l2_normalize(u))
    return torch.stack(starts).reshape(R, len(indices) * N, d)


def broken_by(
    cfg: ClusterConfig, nets: PReLUNets, test: tuple, universal: Tensor, radii: np.ndarray, indices
) -> dict[str, Tensor]:
    """Per attack, which test points it misclassifies within the ℓ2 ball of each radius: (R, E, N) for the E
    `radii` (grid positions `indices`), every radius one block of the batch. The analytic moves: pairs (e_j − e_c)/√2
    towards each centre j of the other label, centre (μ_other − μ_own)/√2 between the labels' average centres,
    universal −y·u with u = Σ_i y_i x_i/‖·‖ over the training set (R, d)."""
    x, y, centre = test
    R, N, d = x.shape
    E = len(radii)
    X, Y, C = tiled(x, E), tiled(y, E), tiled(centre, E)
    eps = torch.as_tensor(radii, dtype=x.dtype, device=x.device).repeat_interleave(N)[None, :, None]
    wrong = lambda delta: (Y * nets.forward(X + delta) <= 0).reshape(R, E, N)  # f = 0 is broken

    def ascent(z: Tensor) -> Tensor:
        return -Y[..., None] * nets.input_gradient(z, with_value=False)[1]

    out = {"pgd": wrong(pgd_l2(ascent, X, eps, cfg.pgd_step_size, cfg.pgd_steps, clip=False))}
    out["restarts"] = torch.zeros_like(out["pgd"])
    for restart in range(cfg.restarts):  # ours: a point counts as broken if any iterate breaks it
        delta = eps * random_starts(cfg, restart, (R, N, d), indices, x.dtype).to(x.device)
        out["restarts"] |= wrong(delta)
        for _ in range(cfg.pgd_steps):
            delta = pgd_l2(ascent, X, eps, cfg.pgd_step_size, 1, clip=False, start=delta)
            out["restarts"] |= wrong(delta)
    eye = torch.eye(cfg.k, d, dtype=x.dtype, device=x.device)
    labels = torch.where(torch.arange(cfg.k, device=x.device) < cfg.k_pos, 1.0, -1.0).to(x.dtype)
    out["pairs"] = torch.zeros_like(out["pgd"])
    for j in range(cfg.k):
        other = (labels[j] != Y).reshape(R, E, N)
        out["pairs"] |= other & wrong(eps * (eye[j] - eye[C]) / math.sqrt(2))
    mu_plus = eye[: cfg.k_pos].sum(0) / math.sqrt(cfg.k_pos)
    mu_minus = eye[cfg.k_pos :].sum(0) / math.sqrt(cfg.k - cfg.k_pos)
    out["centre"] = wrong(
        eps * torch.where(Y[..., None] > 0, mu_minus - mu_plus, mu_plus - mu_minus) / math.sqrt(2)
    )
    out["universal"] = wrong(eps * -Y[..., None] * universal[:, None, :])
    return out


def radius_chunk(cfg: ClusterConfig) -> int:
    """How many radii fit the chunk_mb memory budget at once (each holds R·N points and their hidden units, a few
    tensors of each)."""
    per_radius = 8 * cfg.runs * cfg.n_test * (cfg.d + cfg.width) * 4
    return max(1, min(cfg.eps_steps, cfg.chunk_mb * 2**20 // per_radius))


def robust_accuracy(cfg: ClusterConfig, nets: PReLUNets, data: dict) -> list[dict]:
    """Rows (run, eps, attack, robust_acc) for every radius of the grid, `all` = robust to every attack."""
    x_train, y_train, _ = data["train"]
    universal = l2_normalize((y_train[..., None] * x_train).sum(1))
    radii, chunk = cfg.radii(), radius_chunk(cfg)
    masks = []
    for first in bar(range(0, len(radii), chunk), cfg, desc=f"{NAME} attacks p={cfg.p}"):
        indices = np.arange(first, min(first + chunk, len(radii)))
        masks.append(broken_by(cfg, nets, data["test"], universal, radii[indices], indices))
    broken = {attack: torch.cat([m[attack] for m in masks], dim=1) for attack in ATTACKS}  # (R, E, N)
    stacked_masks = torch.stack(list(broken.values()))  # (attacks, R, E, N)
    count = stacked_masks.sum(0)
    alone = {attack: mask & (count == 1) for attack, mask in broken.items()}
    broken["all"], alone["all"] = stacked_masks.any(0), torch.zeros_like(count, dtype=torch.bool)
    share = lambda mask: mask.to(torch.float64).mean(-1).cpu().numpy()  # (R, E)
    rows = []
    for attack, mask in broken.items():
        robust, only = 1 - share(mask), share(alone[attack])
        rows += [
            {
                "run": r,
                "eps": float(eps),
                "attack": attack,
                "robust_acc": robust[r, e],
                "broken_alone": only[r, e],
            }
            for r in range(robust.shape[0])
            for e, eps in enumerate(radii)
        ]
    return rows


def ideal_scale(cfg: ClusterConfig, nets: PReLUNets, ideal: IdealClassifier, dtype, device) -> Tensor:
    """c = E[f F]/E[f²] over fresh data (per run): the multiple of f closest to F in L2 of the data."""
    x = stacked(cfg, cfg.dist_samples, "scale", dtype, device)[0]
    f = nets.forward(x)
    F = ideal.forward_and_gradient(x)[0]
    return (f * F).mean(-1) / (f * f).mean(-1)


def sphere_distance(cfg: ClusterConfig, nets: PReLUNets, ideal: IdealClassifier, scale: Tensor) -> Tensor:
    """max over the unit sphere of |c·f − F| per run, by normalised projected gradient ascent on (c·f − F)² from
    dist_starts Gaussian starts (torch_adv_atk.py's estimate_l_inf_dist): x ← (x + η·g/‖g‖)/‖·‖."""
    dtype, device = nets.W.dtype, nets.W.device
    starts = [
        torch.randn(cfg.dist_starts, cfg.d, generator=generator(cfg.seed, "sphere", run), dtype=dtype)
        for run in range(cfg.runs)
    ]
    x = l2_normalize(torch.stack(starts).to(device))
    c = scale[:, None]

    def gap(z: Tensor) -> tuple[Tensor, Tensor]:
        f, grad_f = nets.input_gradient(z)
        F, grad_F = ideal.forward_and_gradient(z)
        return c * f - F, c[..., None] * grad_f - grad_F

    for _ in range(cfg.dist_steps):
        value, grad = gap(x)
        x = l2_normalize(x + cfg.dist_step_size * l2_normalize(value[..., None] * grad))
    return gap(x)[0].abs().amax(-1)


def neuron_rows(cfg: ClusterConfig, nets: PReLUNets) -> list[dict]:
    """The `neurons` largest contributions |v_j|·‖w_j‖ per run (ties: the smaller index), their share of the total,
    and the cosines of w_j with μ₊, μ₋ and with the best-aligned centre."""
    contribution = nets.contributions()
    order = torch.sort(contribution, dim=-1, descending=True, stable=True).indices[:, : cfg.neurons]
    W = torch.gather(nets.W, 1, order[..., None].expand(-1, -1, cfg.d))
    w = l2_normalize(W)
    cos_centres = w[..., : cfg.k]
    cos_plus = cos_centres[..., : cfg.k_pos].sum(-1) / math.sqrt(cfg.k_pos)
    cos_minus = cos_centres[..., cfg.k_pos :].sum(-1) / math.sqrt(cfg.k - cfg.k_pos)
    best = cos_centres.argmax(-1)  # the first maximal index
    top = torch.gather(contribution, 1, order)
    share = top / contribution.sum(-1, keepdim=True)
    columns = {
        "contribution": top,
        "share": share,
        "cos_mu_plus": cos_plus,
        "cos_mu_minus": cos_minus,
        "centre": best + 1,
        "cos_centre": torch.gather(cos_centres, 2, best[..., None])[..., 0],
    }
    columns = {key: value.cpu().numpy() for key, value in columns.items()}
    return [
        {"run": r, "rank": j + 1, **{key: value[r, j] for key, value in columns.items()}}
        for r in range(cfg.runs)
        for j in range(order.shape[1])
    ]


def half_separation(x: Tensor, y: Tensor) -> Tensor:
    """min over opposite-label pairs of ‖x_i − x_j‖/2 per run: a classifier robust to this radius on the sample
    exists (the 1-nearest-neighbour rule; yang-separation's r). Blocks of PAIR_BLOCK rows."""
    out = []
    for xr, yr in zip(x, y, strict=True):
        pos, neg = xr[yr > 0], xr[yr < 0]
        best = torch.tensor(math.inf, dtype=x.dtype, device=x.device)
        for block in pos.split(PAIR_BLOCK):
            best = torch.minimum(
                best, torch.cdist(block, neg, compute_mode="donot_use_mm_for_euclid_dist").min()
            )
        out.append(best / 2)
    return torch.stack(out)


# The columns of rows.csv (besides `cell`, added on aggregation): name -> meaning.
COLUMNS = {
    "d": "input dimension",
    "k": "clusters (orthogonal centres e_1..e_k)",
    "k_pos": "clusters labelled +1 (the first k_pos)",
    "noise": "α: the within-cluster noise is N(0, (α/√d)²I)",
    "p": "pReLU power (1 = ReLU)",
    "width": "hidden neurons",
    "run": "independent run (data, initialisation, data order, attacks' random starts)",
    "measure": "accuracy (a robust-accuracy row) or neuron (a dominant neuron's row)",
    "train_loss": "final mean exponential loss on the training set",
    "clean_acc": "test accuracy",
    "trained": "clean_acc ≥ MIN_ACCURACY: the only runs the claims use",
    "half_separation": "min ‖x_i − x_j‖/2 over opposite-label training pairs (a robust classifier's radius)",
    "scale": "c = E[f F]/E[f²] over fresh data",
    "distance": "max over the unit sphere of |c·f − F| (F the ideal classifier of this p), by projected ascent",
    "relative_distance": "distance / max |F| on the unit sphere (√max(k₊, k₋) for p = 1, 1 for p ≥ 2)",
    "eps": "accuracy rows: the ℓ2 attack radius",
    "attack": "accuracy rows: pgd (from δ = 0, the published attack: its last iterate judged), restarts (from "
    "random starts: any iterate), pairs ((e_j − e_c)/√2), centre "
    "((μ_other − μ_own)/√2), universal (−y·Σ y_i x_i), or all (robust to every one)",
    "robust_acc": "accuracy rows: share of test points still classified correctly by that attack",
    "broken_alone": "accuracy rows: share of test points that attack broke and no other did (0 for all)",
    "n_test": "test points attacked",
    "rank": "neuron rows: rank by contribution (1 = largest)",
    "contribution": "neuron rows: |v_j|·‖w_j‖",
    "share": "neuron rows: the contribution over the sum of all neurons' contributions",
    "cos_mu_plus": "neuron rows: cosine of w_j with μ₊ (the normalised sum of the +1 centres)",
    "cos_mu_minus": "neuron rows: cosine of w_j with μ₋",
    "centre": "neuron rows: the centre (1..k) w_j is best aligned with",
    "cos_centre": "neuron rows: cosine of w_j with that centre",
}


def measure(cfg: ClusterConfig, nets: PReLUNets, data: dict) -> pd.DataFrame:
    """Rows of one cell (columns: COLUMNS) from its trained networks: per run the clean and robust accuracy under
    every attack at every radius, the distance to the ideal classifier and the dominant neurons."""
    ideal = IdealClassifier(cfg.k, cfg.k_pos, cfg.p)
    dtype, device = nets.W.dtype, nets.W.device
    x, y, _ = data["test"]
    clean = (y * nets.forward(x) > 0).to(torch.float64).mean(-1).cpu().numpy()
    scale = ideal_scale(cfg, nets, ideal, dtype, device)
    distance = sphere_distance(cfg, nets, ideal, scale).cpu().numpy()
    per_run = {
        "train_loss": exp_loss(nets, *data["train"][:2]).cpu().numpy(),
        "clean_acc": clean,
        "trained": clean >= MIN_ACCURACY,
        "half_separation": half_separation(*data["train"][:2]).cpu().numpy(),
        "scale": scale.cpu().numpy(),
        "distance": distance,
        "relative_distance": distance / ideal.sphere_max(),
    }
    accuracy = pd.DataFrame(robust_accuracy(cfg, nets, data)).assign(measure="accuracy", n_test=cfg.n_test)
    neurons = pd.DataFrame(neuron_rows(cfg, nets)).assign(measure="neuron")
    frame = pd.concat([accuracy, neurons], ignore_index=True)
    for key, values in per_run.items():
        frame[key] = values[frame["run"].to_numpy()]
    settings = {key: getattr(cfg, key) for key in ("d", "k", "k_pos", "noise", "p", "width")}
    return frame.assign(**settings)[list(COLUMNS)]


def run_batch(cfgs: list[ClusterConfig], device: torch.device) -> list[pd.DataFrame]:
    """Rows of cells that differ only in the noise α and the power p: their networks train as one batched model
    (each cell with its own data and power), then each cell is measured on its own."""
    dtype = resolve_dtype(cfgs[0].dtype)
    data = [
        {
            split: stacked(cfg, n, split, dtype, device)
            for split, n in (("train", cfg.n_train), ("test", cfg.n_test))
        }
        for cfg in cfgs
    ]
    R = cfgs[0].runs
    with torch.no_grad():
        x = torch.cat([d["train"][0] for d in data])
        y = torch.cat([d["train"][1] for d in data])
        nets = train(cfgs[0], x, y, tuple(cfg.p for cfg in cfgs for _ in range(R)))
        return [
            measure(cfg, nets.select(slice(i * R, (i + 1) * R)), cell)
            for i, (cfg, cell) in enumerate(zip(cfgs, data, strict=True))
        ]


def run(cfg: ClusterConfig, device: torch.device) -> pd.DataFrame:
    """Rows of one cell (columns: COLUMNS, `advrepro list --columns`): run_batch of one."""
    return run_batch([cfg], device)[0]


def cost_model(c: dict) -> float:
    """Cost model for estimates: training steps, attack steps and sphere-ascent steps, each a pass over width × d."""
    attack = c["eps_steps"] * c["n_test"] * ((1 + c["restarts"]) * c["pgd_steps"] + c["k"] + 2)
    work = 3 * c["epochs"] * c["n_train"] + 2 * attack + 2 * c["dist_starts"] * c["dist_steps"]
    return c["runs"] * c["width"] * c["d"] * work
