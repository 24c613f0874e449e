"""schmidt-models: the config and the runner (torch); the paper and the protocol are in the package docstring."""

import dataclasses
import math
from typing import Optional

import numpy as np
import pandas as pd
import torch

from advrepro.config import CommonConfig, require_choice, require_positive
from advrepro.errors import UserError
from advrepro.progress import bar
from advrepro.seeding import derive_seed, generator

NAME = "schmidt-models"
MODELS = ("gaussian", "bernoulli")


@dataclasses.dataclass
class SchmidtConfig(CommonConfig):
    """One (model, d, ε) cell: errors of the learner ŵ = Σ y_i x_i for every n of a geometric grid up to n_max,
    over `draws` independent training sets."""

    dtype: str = "float64"

    model: str = "gaussian"
    d: int = 1000
    eps: float = 0.1
    sigma_scale: float = 0.6
    tau_scale: float = 0.8
    tau: Optional[float] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    threshold: bool = False
    n: Optional[int] = None  # noqa: UP045
    n_max: Optional[int] = None  # noqa: UP045
    n_points: int = 40
    draws: int = 100

    def __post_init__(self):
        require_choice(self, "model", MODELS)
        require_positive(self, "d", "eps", "sigma_scale", "tau_scale", "n_points", "draws")
        for key in ("n", "n_max"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise UserError(f"{key} must be ≥ 1 (or null for its default), got {getattr(self, key)}")
        if self.tau is not None and not 0 < self.tau < 0.5:
            raise UserError(f"tau must be in (0, 1/2) (or null for tau_scale·d^(−1/4)), got {self.tau}")
        if self.threshold and self.model != "bernoulli":
            raise UserError("threshold=true needs model=bernoulli (the paper thresholds binary inputs)")
        if self.model == "bernoulli" and not self.flip_bias < 0.5:
            raise UserError(f"tau = tau_scale·d^(−1/4) must be < 1/2, got {self.flip_bias:.3g}")

    @property
    def sigma(self) -> float:
        """σ = sigma_scale·d^{1/4}: with sigma_scale 0.6 one sample gives < 1% standard error at every d."""
        return self.sigma_scale * self.d**0.25

    @property
    def flip_bias(self) -> float:
        """τ: `tau` when set, else tau_scale·d^{−1/4} (with tau_scale 0.8 one sample gives ≈ 1% standard error)."""
        return self.tau if self.tau is not None else self.tau_scale * self.d**-0.25

    @property
    def n_grid(self) -> np.ndarray:
        """Integer training-set sizes: `n` alone when set, else geometric from 1 to n_max (default max(64, ⌈4ε²√d⌉),
        or ⌈4ε²/τ⁴⌉ for the Bernoulli model: a few times the paper's sample complexities)."""
        if self.n is not None:
            return np.array([self.n], dtype=np.int64)
        if self.n_max is not None:
            top = self.n_max
        elif self.model == "gaussian":
            top = max(64, math.ceil(4 * self.eps**2 * math.sqrt(self.d)))
        else:
            top = max(64, math.ceil(4 * self.eps**2 / self.flip_bias**4))
        return np.unique(np.round(np.geomspace(1, top, self.n_points)).astype(np.int64))


def gaussian_statistics(cfg: SchmidtConfig, ns: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    """⟨ŵ,θ*⟩, ‖ŵ‖₂ and ‖ŵ‖₁ for each draw (rows) and n (columns), float64, one g ~ N(0, I_d) per draw."""
    n = torch.as_tensor(ns, dtype=torch.float64, device=device)
    sigma, d = cfg.sigma, cfg.d
    c = n.sqrt() / sigma
    out = {
        k: torch.empty(cfg.draws, len(ns), dtype=torch.float64, device=device) for k in ("inner", "l2", "l1")
    }
    for draw in bar(range(cfg.draws), cfg, desc=f"{NAME} gaussian d={d}"):
        g = torch.randn(d, generator=generator(cfg.seed, "gaussian", draw), dtype=torch.float64).to(device)
        s1, s2 = g.sum(), g.square().sum()
        abs_sum = sum_abs_shifted(g, c)
        out["inner"][draw] = n * d + sigma * n.sqrt() * s1
        out["l2"][draw] = (n**2 * d + 2 * n * sigma * n.sqrt() * s1 + sigma**2 * n * s2).sqrt()
        out["l1"][draw] = sigma * n.sqrt() * abs_sum
    return out


def sum_abs_shifted(g: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Σ_j |c + g_j| for every c at once: with g sorted, k = #{g_j < −c} and prefix sums P,
    the sum is c(d − 2k) + P_d − 2P_k (O(d log d) once, then O(log d) per c)."""
    ordered = g.sort().values
    prefix = torch.cat([ordered.new_zeros(1), ordered.cumsum(0)])
    k = torch.searchsorted(ordered, -c)
    return c * (len(g) - 2 * k) + prefix[-1] - 2 * prefix[k]


def gaussian_errors(cfg: SchmidtConfig, stats: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(standard, ℓ∞-ε robust) errors of sign⟨ŵ, x⟩ on the Gaussian model, exactly."""
    scale = cfg.sigma * stats["l2"]
    return torch.special.ndtr(-stats["inner"] / scale), torch.special.ndtr(
        (cfg.eps * stats["l1"] - stats["inner"]) / scale
    )


def bernoulli_statistics(cfg: SchmidtConfig, ns: np.ndarray) -> dict[str, np.ndarray]:
    """Σŵ_j, Σŵ_j² and Σ|ŵ_j| for each draw and n: the histogram of the coordinates ŵ_j = 2k − n, k ~ Bin(n, ½+τ),
    is one multinomial draw over the n + 1 values (each n from its own seeded stream)."""
    p = 0.5 + cfg.flip_bias
    out = {k: np.empty((cfg.draws, len(ns))) for k in ("sum", "sq", "l1")}
    for j, n in enumerate(ns):
        k = np.arange(n + 1)
        log_pmf = (
            np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k])
            + k * math.log(p)
            + (n - k) * math.log1p(-p)
        )
        pmf = np.exp(log_pmf - log_pmf.max())
        counts = np.random.default_rng(derive_seed(cfg.seed, "bernoulli", int(n))).multinomial(
            cfg.d, pmf / pmf.sum(), size=cfg.draws
        )
        w = (2 * k - n).astype(float)
        out["sum"][:, j], out["sq"][:, j], out["l1"][:, j] = counts @ w, counts @ w**2, counts @ np.abs(w)
    return out


def bernoulli_errors(cfg: SchmidtConfig, stats: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(standard, robust) errors on the Bernoulli model: normal approximation of the margin over the d coordinates;
    thresholded inputs make the robust error the standard one for ε < 1 (and 1 beyond)."""
    ndtr = lambda z: torch.special.ndtr(torch.from_numpy(z)).numpy()
    tau = cfg.flip_bias
    mean, spread = 2 * tau * stats["sum"], np.sqrt((1 - 4 * tau**2) * stats["sq"])
    standard = ndtr(-mean / spread)
    if cfg.threshold:
        return standard, standard if cfg.eps < 1 else np.ones_like(standard)
    return standard, ndtr((cfg.eps * stats["l1"] - mean) / spread)


# The columns of rows.csv (besides `cell`, added on aggregation): name -> meaning.
COLUMNS = {
    "model": "gaussian or bernoulli",
    "d": "input dimension",
    "eps": "ℓ∞ attack radius",
    "threshold": "the classifier reads sign(x + Δ) (Bernoulli only)",
    "sigma": "σ of the Gaussian model (NaN for Bernoulli)",
    "tau": "τ of the Bernoulli model (NaN for Gaussian)",
    "n": "training samples",
    "draw": "independent training set",
    "standard_error": "test error of sign⟨ŵ, x⟩ (probability)",
    "robust_error": "ℓ∞-ε robust test error (probability)",
}


def run_batch(cfgs: list[SchmidtConfig], device: torch.device) -> list[pd.DataFrame]:
    """Rows (n, draw) of each cell; cells differing only in ε (and n_max) share the same draws of ŵ."""
    cfg = cfgs[0]
    ns = np.unique(np.concatenate([c.n_grid for c in cfgs]))
    stats = gaussian_statistics(cfg, ns, device) if cfg.model == "gaussian" else bernoulli_statistics(cfg, ns)
    frames = []
    for c in cfgs:
        if c.model == "gaussian":
            standard, robust = (t.cpu().numpy() for t in gaussian_errors(c, stats))
        else:
            standard, robust = bernoulli_errors(c, stats)
        columns = np.isin(ns, c.n_grid)
        frames.append(
            pd.DataFrame(
                {
                    "model": c.model,
                    "d": c.d,
                    "eps": c.eps,
                    "threshold": c.threshold,
                    "sigma": c.sigma if c.model == "gaussian" else math.nan,
                    "tau": c.flip_bias if c.model == "bernoulli" else math.nan,
                    "n": np.tile(ns[columns], c.draws),
                    "draw": np.repeat(np.arange(c.draws), columns.sum()),
                    "standard_error": standard[:, columns].ravel(),
                    "robust_error": robust[:, columns].ravel(),
                }
            )
        )
    return frames


def run(cfg: SchmidtConfig, device: torch.device) -> pd.DataFrame:
    """Rows of one cell: model, d, eps, threshold, sigma, tau; n (training-set size), draw (training set), and
    standard_error, robust_error: the exact test errors (probabilities) of that draw's ŵ."""
    return run_batch([cfg], device)[0]


def cost_model(c: dict) -> float:
    """Cost model for estimates: draws × (d per Gaussian draw, summed over the n grid; n for Bernoulli)."""
    return c["draws"] * c["n_points"] * (c["d"] if c["model"] == "gaussian" else 1000)
