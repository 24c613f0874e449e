"""schmidt-models: the claims (pandas): which rows each claim rests on, and the paper's predictions against them."""

import math

import numpy as np
import pandas as pd
import torch

from advrepro.claims import MIN_EFFECT, Band, claim, reported
from advrepro.experiments.schmidt_models.runner import NAME
from advrepro.stats import (
    Estimate,
    crossing,
    groups_of,
    loglog_slope,
    percentile_interval,
    resampled_means,
)


def sample_complexity(
    frame: pd.DataFrame, error: str, target: float, seed: int = 0
) -> tuple[float, np.ndarray]:
    """The n where the mean error over draws falls to `target` (log-interpolated on the n grid; 1 when n = 1
    already meets it), and its bootstrap draws resampling the training-set draws."""
    table = frame.pivot_table(index="draw", columns="n", values=error)
    ns, values = table.columns.to_numpy(dtype=float), table.to_numpy()
    boot = resampled_means([values[:, j] for j in range(len(ns))], seed=seed)
    point, draws = crossing(ns, values.mean(0), target), crossing(ns, boot, target)
    already = values.mean(0)[0] <= target
    return (1.0 if already else point), np.where(boot[:, 0] <= target, 1.0, draws)


def needed(
    rows: pd.DataFrame, model: str, threshold: bool = False, error: str = "robust_error"
) -> pd.DataFrame:
    """Per (d, ε): the n needed for ≤ target error, with its 95% interval and bootstrap draws."""
    part = rows[(rows["model"] == model) & (rows["threshold"] == threshold)]
    out = []
    for (d, eps), frame in part.groupby(["d", "eps"]):
        point, draws = sample_complexity(frame, error, TARGET)
        low, high = percentile_interval(draws)
        out.append({"d": d, "eps": eps, "n_needed": point, "low": low, "high": high, "draws": draws})
    return pd.DataFrame(out)


TARGET = 0.01  # the paper's 1% error level


def expected_robust_error(n: np.ndarray, d: float, eps: float, sigma: float) -> np.ndarray:
    """The robust error of ŵ at each n with the coordinate sums at their means (Σg = 0, Σg² = d,
    Σ_j |c + g_j| = d·E|c + g| = d·(c(2Φ(c) − 1) + 2φ(c)), c = √n/σ): the model's own finite-d curve (docs §5)."""
    n = torch.tensor(n, dtype=torch.float64)
    c = n.sqrt() / sigma
    mean_abs = c * (2 * torch.special.ndtr(c) - 1) + 2 * torch.exp(-c.square() / 2) / math.sqrt(2 * math.pi)
    inner, l2 = n * d, (n.square() * d + sigma**2 * n * d).sqrt()
    return torch.special.ndtr((eps * sigma * n.sqrt() * d * mean_abs - inner) / (sigma * l2)).numpy()


def expected_needed(d: float, eps: float, sigma: float, target: float = TARGET) -> float:
    """The n at which expected_robust_error reaches `target` (on a fine n grid): the model's finite-d prediction of
    the sample complexity."""
    n = np.geomspace(1, 1e12, 8000)
    robust = expected_robust_error(n, d, eps, sigma)
    return 1.0 if robust[0] <= target else float(crossing(n, robust, target))


def slope_of_needed(table: pd.DataFrame, axis: str, units: str) -> Estimate | None:
    """Log–log slope of the n needed against `axis`, its interval from the draws' bootstrap."""
    table = table[np.isfinite(table["n_needed"])].sort_values(axis)
    if len(table) < 2:
        return None
    return Estimate.from_draws(
        loglog_slope(table[axis].to_numpy(), table["n_needed"].to_numpy()),
        loglog_slope(table[axis].to_numpy(), np.stack(table["draws"].to_numpy(), 1)),
        units,
        len(table),
    )


def gaussian_claims(rows: pd.DataFrame) -> list[dict]:
    """One sample suffices for standard learning; robust learning needs n ∝ ε²√d."""
    part = rows[rows["model"] == "gaussian"]
    if part.empty:
        return []
    first = part[part["n"] == 1]
    xs, worst = [], None
    if not first.empty:
        xs, groups = groups_of(first, "d", "standard_error")
        worst = Estimate.from_draws(
            float(max(g.mean() for g in groups)),
            resampled_means(groups).max(1),
            f"{min(len(g) for g in groups)} training sets per d",
            sum(len(g) for g in groups),
        )
    out = [
        claim(
            NAME,
            "gaussian-standard-one-sample",
            statement=f"largest standard error at n = 1 over d ∈ {{{', '.join(f'{d:g}' for d in xs)}}} (Gaussian model, "
            f"σ = {part['sigma'].iloc[0] / part['d'].iloc[0] ** 0.25:.3g}·d^(1/4))",
            prediction="≤ 1% from one sample",
            source="[paper]",
            band=Band(0.0, TARGET),
            tolerance_by="the paper's 1%",
            estimate=worst,
            unmeasured="no cell computes n = 1, the one-sample error",
        )
    ]
    table = needed(rows, "gaussian")
    largest_d = sorted(table["d"].unique())[-2:]
    sigma = part.groupby("d")["sigma"].first()
    units = "training sets (bootstrap) per cell"
    between = ", ".join(f"{d:.0e}" for d in largest_d)
    for eps, group in table[table["d"].isin(largest_d)].groupby("eps"):
        model = [expected_needed(d, eps, sigma[d]) for d in largest_d]
        predicted = loglog_slope(largest_d, np.array(model)) if len(largest_d) == 2 else math.nan
        out.append(
            claim(
                NAME,
                f"gaussian-d-exponent-eps{eps:g}",
                statement=f"log–log slope of the n needed for ≤ 1% robust error versus d between d = {between} (ε = {eps:g})",
                prediction=f"{predicted:+.3f}: the model's finite-d slope (n* = {model[0]:.3g} → {model[-1]:.3g}); "
                "½ only as d → ∞",
                source="[derived: docs §5, the closed form with the coordinate sums at their means]",
                band=Band.around(predicted, MIN_EFFECT),
                tolerance_by=f"ours: ±{MIN_EFFECT:g}, n read off the cells' n grid",
                estimate=slope_of_needed(group, "d", units),
                unmeasured="fewer than two d values reach 1% robust error within n_max",
            )
        )
    if len(largest_d) == 2:
        widest = table[table["d"].isin(largest_d) & (table["eps"] == table["eps"].max())]
        out.append(
            reported(
                NAME,
                "gaussian-d-exponent-asymptotic",
                statement=f"log–log slope of the n needed versus d between d = {between} at the largest ε = "
                f"{table['eps'].max():g}, against the paper's n = Θ̃(ε²√d)",
                estimate=slope_of_needed(widest, "d", units),
                why="no claim at this d: the paper's +½ is asymptotic (the needed n is a handful of samples at ε = 0.1); "
                "the d-exponent rows test the model's own finite-d slope",
            )
        )
    top = table[table["d"] == table["d"].max()]
    where = f" at d = {top['d'].iloc[0]:.0e}" if len(top) else ""
    epsilons = np.sort(top["eps"].unique())
    predicted = math.nan
    if len(epsilons) >= 2:
        d = top["d"].iloc[0]
        predicted = loglog_slope(epsilons, np.array([expected_needed(d, e, sigma[d]) for e in epsilons]))
    out.append(
        claim(
            NAME,
            "gaussian-eps-exponent",
            statement=f"log–log slope of the n needed for ≤ 1% robust error versus ε{where}",
            prediction=f"{predicted:+.3f}: the model's finite-d slope; 2 only as d → ∞",
            source="[derived: docs §5, the closed form with the coordinate sums at their means]",
            band=Band.around(predicted, 2 * MIN_EFFECT),
            tolerance_by=f"ours: ±{2 * MIN_EFFECT:g} (twice the d-exponent's: ε-exponents are about four times larger)",
            estimate=slope_of_needed(top, "eps", units),
            unmeasured="fewer than two ε values reach 1% robust error within n_max",
        )
    )
    out.append(
        reported(
            NAME,
            "gaussian-eps-exponent-asymptotic",
            statement=f"log–log slope of the n needed versus ε{where}, against the paper's n = Θ̃(ε²√d)",
            estimate=slope_of_needed(top, "eps", units),
            why="no claim at this d: the paper's 2 is asymptotic; the eps-exponent row tests the model's finite-d slope",
        )
    )
    return out


def bernoulli_claims(rows: pd.DataFrame) -> list[dict]:
    """Thresholding makes one sample enough for every ε < 1 (Thm 10); the linear learner needs more (Thm 31)."""
    out = []
    part = rows[(rows["model"] == "bernoulli") & (rows["n"] == 1) & (rows["eps"] < 1)]
    for threshold, band, text, prediction in (
        (True, Band(0.0, TARGET), "largest", "≤ 1%: one sample suffices (Theorem 10)"),
        (False, Band(TARGET, 1.0), "smallest", "> 1%: one sample is not enough (Theorem 31)"),
    ):
        frame = part[part["threshold"] == threshold]
        xs, groups = groups_of(frame, "eps", "robust_error")
        if not groups:
            continue
        boot = resampled_means(groups)
        pick = np.max if threshold else np.min
        estimate = Estimate.from_draws(
            float(pick([g.mean() for g in groups])),
            pick(boot, 1),
            f"{min(len(g) for g in groups)} training sets per ε",
            sum(len(g) for g in groups),
        )
        learner = "thresholded inputs" if threshold else "the linear learner"
        out.append(
            claim(
                NAME,
                f"bernoulli-{'threshold' if threshold else 'linear'}-one-sample",
                statement=f"{text} robust error at n = 1 over ε ∈ {{{', '.join(f'{e:g}' for e in xs)}}} with {learner} "
                f"(Bernoulli model, d = {frame['d'].iloc[0]:g}, τ = {frame['tau'].iloc[0]:.3g})",
                prediction=prediction,
                source="[paper]",
                band=band,
                tolerance_by="the paper's 1%",
                estimate=estimate,
            )
        )
    return out


def claims(rows: pd.DataFrame, summary: pd.DataFrame) -> list[dict]:
    """Gaussian: one sample for standard learning, n ∝ ε²√d for robust learning (d- and ε-exponents);
    Bernoulli: thresholding needs one sample, the linear learner more."""
    return gaussian_claims(rows) + bernoulli_claims(rows)
