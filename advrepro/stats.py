"""Statistics shared by the claims and the figures.

Point estimates (log–log slopes, crossing points, per-unit means), the panel selection rule ("hold the other keys
at their most common value"), and 95% percentile-bootstrap intervals that resample the independent units of an
experiment (runs, networks; test points through their binomial counts). Everything is vectorised over the
bootstrap draws with numpy, so every claim of `make figures` takes about a second.
"""

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

DRAWS = 2000
LEVEL = 0.95


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A measured value with its 95% interval; `units` says what was resampled, `n` how many of them."""

    value: float
    low: float
    high: float
    units: str
    n: int

    @property
    def finite(self) -> bool:
        return all(math.isfinite(v) for v in (self.value, self.low, self.high))

    @classmethod
    def from_draws(cls, value: float, draws: np.ndarray, units: str, n: int) -> "Estimate":
        """The point `value` with the 95% percentile interval of its bootstrap `draws`."""
        return cls(float(value), *percentile_interval(draws), units, n)

    @classmethod
    def spanning(cls, value: float, draw_sets: Sequence[np.ndarray], units: str, n: int) -> "Estimate":
        """The point `value` with an interval spanning the 95% percentile intervals of several sets of draws (one
        per modelling choice, e.g. per interpolation rule): the choice's uncertainty is part of the interval."""
        lows, highs = np.array([percentile_interval(draws) for draws in draw_sets]).T
        return cls(float(value), float(lows.min()), float(highs.max()), units, n)

    def scaled(self, factor: float) -> "Estimate":
        """The same estimate of factor·(the quantity), e.g. half a distance (factor > 0)."""
        return Estimate(self.value * factor, self.low * factor, self.high * factor, self.units, self.n)


def loglog_slope(x: Sequence[float] | np.ndarray, y: np.ndarray, log_x: bool = True) -> np.ndarray | float:
    """Least-squares slope of log y against log x (against x itself when not log_x: a per-unit growth rate); y may
    carry leading axes (e.g. bootstrap draws)."""
    x = np.asarray(x, dtype=float)
    log_x = np.log(x) if log_x else x
    centred = log_x - log_x.mean()
    log_y = np.log(np.asarray(y, dtype=float))
    slope = (log_y - log_y.mean(-1, keepdims=True)) @ centred / (centred @ centred)
    return float(slope) if np.ndim(slope) == 0 else slope


LINKS = ("linear", "logit")  # interpolation rules between grid values: in y itself, or in log(y / (1 − y))
LOGIT_CLIP = 1e-3  # shares of exactly 0 or 1 sit this far inside (0, 1) on the logit scale


def crossing_steps(y: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Per grid step (last axis, one fewer than y), whether y crosses `level` on it: its ends on either side of the
    level or one on it, and not equal."""
    above = y - level
    return (above[..., :-1] * above[..., 1:] <= 0) & (y[..., :-1] != y[..., 1:])


def crossing(
    x: Sequence[float] | np.ndarray,
    y: np.ndarray,
    level: float = 0.5,
    log_x: bool = True,
    link: str = "linear",
) -> np.ndarray | float:
    """The first x (increasing) where y crosses `level`, interpolated linearly in log x (in x when not log_x, e.g.
    on a grid that starts at 0) and in y (link='linear') or in logit y (link='logit', y a share); NaN where it
    never does.

    y may carry leading axes. Points on y = 0.8, 0.2 at x = 0.1, 1 cross 1/2 at √0.1 (at 0.55 linearly), and so
    do they with the logit link (symmetric about 1/2); 0.9, 0.4 cross at 10^(−1 + log 9/log 13.5) with it.
    """
    x = np.asarray(x, dtype=float)
    position = np.log(x) if log_x else x
    y = np.asarray(y, dtype=float)
    if link == "logit":
        clipped = np.clip(y, LOGIT_CLIP, 1 - LOGIT_CLIP)
        y, level = np.log(clipped / (1 - clipped)), math.log(level / (1 - level))
    if y.shape[-1] < 2:
        return float("nan") if y.ndim == 1 else np.full(y.shape[:-1], np.nan)
    change = crossing_steps(y, level)
    first = change.argmax(-1)[..., None]
    y0, y1 = np.take_along_axis(y, first, -1)[..., 0], np.take_along_axis(y, first + 1, -1)[..., 0]
    x0, x1 = position[first[..., 0]], position[first[..., 0] + 1]
    with np.errstate(
        divide="ignore", invalid="ignore", over="ignore"
    ):  # rows without a crossing: masked below
        found = x0 + (level - y0) * (x1 - x0) / (y1 - y0)
        found = np.exp(found) if log_x else found
    out = np.where(change.any(-1), found, np.nan)
    return float(out) if np.ndim(out) == 0 else out


def at_mode(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The rows whose `keys` take their most common combination (how a panel holds the other keys fixed)."""
    if frame.empty:
        return frame
    values = frame[keys].value_counts().index[0]
    values = values if isinstance(values, tuple) else (values,)
    return frame[(frame[keys] == pd.Series(values, index=keys)).all(axis=1)]


def widest_axis(frame: pd.DataFrame, axis: str, by: list[str]) -> pd.DataFrame:
    """The rows at the combination of `by` with the most distinct values of `axis` (ties: the most rows)."""
    if frame.empty:
        return frame
    spread = frame.groupby(by)[axis].nunique()
    best = frame[frame.set_index(by).index.isin(spread[spread == spread.max()].index)]
    return at_mode(best, by)


def unit_means(rows: pd.DataFrame, keys: list[str], unit: str, metrics: list[str]) -> pd.DataFrame:
    """Mean of each metric per independent unit (e.g. one run's mean over test images), per setting `keys`."""
    return rows.groupby([*keys, unit])[metrics].mean().reset_index()


# UNIT_ORDER: each resampler sorts its units by value before drawing, so that an interval depends on the units' values
# and the seed only, not on the order they arrive in (which can follow cell digests: a new rows_version renames cells).


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def resampled_means(groups: list[np.ndarray], draws: int = DRAWS, seed: int = 0) -> np.ndarray:
    """(draws, groups): per group, the mean of its units resampled with replacement (units stay within a group)."""
    rng = _rng(seed)
    ordered = [np.sort(values) for values in groups]  # UNIT_ORDER
    return np.stack([v[rng.integers(0, len(v), (draws, len(v)))].mean(1) for v in ordered], 1)


def percentile_interval(draws: np.ndarray, max_missing: float = 0.025) -> tuple[float, float]:
    """The 95% percentile interval of bootstrap draws; NaN when more than `max_missing` of them are undefined."""
    draws = np.asarray(draws, dtype=float)
    finite = np.isfinite(draws)
    if finite.mean() < 1 - max_missing:
        return math.nan, math.nan
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(draws[finite], [tail, 100 - tail])
    return float(low), float(high)


def groups_of(frame: pd.DataFrame, x: str, metric: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """The distinct x values (sorted) and, for each, its units' values of `metric` (NaN units dropped)."""
    xs, groups = [], []
    for value, group in frame.groupby(x):
        values = group[metric].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if len(values):
            xs.append(value)
            groups.append(values)
    return np.asarray(xs, dtype=float), groups


def describe_units(groups: list[np.ndarray], unit: str, per: str | None = None) -> tuple[str, int]:
    sizes = sorted({len(g) for g in groups})
    count = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    return (f"{count} {unit} per {per}" if per else f"{count} {unit}"), int(sum(len(g) for g in groups))


def slope_estimate(
    frame: pd.DataFrame, x: str, metric: str, unit: str, seed: int = 0, log_x: bool = True
) -> Estimate | None:
    """Log–log slope of the mean of `metric` (one value per unit) against x (log–linear when not log_x), units
    resampled within each x. None when fewer than two x values have data.
    """
    xs, groups = groups_of(frame, x, metric)
    if len(xs) < 2:
        return None
    value = loglog_slope(xs, np.array([g.mean() for g in groups]), log_x)
    units, n = describe_units(groups, unit, x)
    return Estimate.from_draws(value, loglog_slope(xs, resampled_means(groups, seed=seed), log_x), units, n)


def across_estimate(
    frame: pd.DataFrame, x: str, metric: str, unit: str, statistic: Callable[..., np.ndarray], seed: int = 0
) -> Estimate | None:
    """statistic (np.min, np.max) over the x values of each x's mean of `metric` (one value per unit), units
    resampled within each x. None when no x value has data."""
    xs, groups = groups_of(frame, x, metric)
    if not len(xs):
        return None
    value = statistic(np.array([g.mean() for g in groups]))
    units, n = describe_units(groups, unit, x)
    return Estimate.from_draws(value, statistic(resampled_means(groups, seed=seed), axis=1), units, n)


def statistic_estimate(
    values: np.ndarray, unit: str, statistic: Callable[..., np.ndarray] = np.mean, seed: int = 0
) -> Estimate | None:
    """statistic(values) over independent units, with the bootstrap interval of resampling those units."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    values = np.sort(values)  # UNIT_ORDER
    draws = values[_rng(seed).integers(0, len(values), (DRAWS, len(values)))]
    return Estimate.from_draws(
        statistic(values), statistic(draws, axis=-1), f"{len(values)} {unit}", len(values)
    )


def control_variate_estimate(
    values: np.ndarray, covariates: np.ndarray, known_means: Sequence[float], unit: str, seed: int = 0
) -> Estimate | None:
    """The mean of `values` over independent units, corrected by control variates with exactly known means (the
    regression estimator): mean(y) − β̂·(mean(c) − known_means), β̂ the least-squares coefficients of y on the
    covariates c (units, p). Its expectation is the mean's up to O(1/units); it removes the part of the units'
    spread that the covariates explain. The interval resamples units and refits β̂. None without units."""
    values = np.asarray(values, dtype=float)
    covariates = np.asarray(covariates, dtype=float)
    covariates = covariates[:, None] if covariates.ndim == 1 else covariates
    keep = np.isfinite(values) & np.isfinite(covariates).all(1)
    values, covariates = values[keep], covariates[keep]
    if len(values) == 0:
        return None
    order = np.lexsort((*covariates.T[::-1], values))  # UNIT_ORDER: by value, ties by the covariates
    values, covariates = values[order], covariates[order]

    def corrected(y: np.ndarray, c: np.ndarray) -> np.ndarray:  # (..., units), (..., units, p)
        y_mean, c_mean = y.mean(-1), c.mean(-2)
        yc, cc = y - y_mean[..., None], c - c_mean[..., None, :]
        ct = np.swapaxes(cc, -1, -2)
        beta = (np.linalg.pinv(ct @ cc) @ (ct @ yc[..., None]))[..., 0]  # a constant covariate gets β = 0
        return y_mean - (beta * (c_mean - np.asarray(known_means, dtype=float))).sum(-1)

    pick = _rng(seed).integers(0, len(values), (DRAWS, len(values)))
    return Estimate.from_draws(
        corrected(values, covariates),
        corrected(values[pick], covariates[pick]),
        f"{len(values)} {unit}",
        len(values),
    )


def run_binomial_draws(
    shares: Sequence[np.ndarray], trials: Sequence[np.ndarray], draws: int = DRAWS, seed: int = 0
) -> np.ndarray:
    """(draws, cells): per cell, the mean share over its runs with the runs resampled with replacement and then
    each chosen run's trials (test points) through its binomial count; a cell of one run: its trials alone."""
    rng = _rng(seed)
    out = np.empty((draws, len(shares)))
    for k, (share, n) in enumerate(zip(shares, trials, strict=True)):
        n = np.asarray(n, dtype=np.int64)
        p = np.rint(np.asarray(share, dtype=float) * n) / n
        order = np.lexsort((n, p))  # UNIT_ORDER
        p, n = p[order], n[order]
        pick = rng.integers(0, len(n), (draws, len(n)))
        out[:, k] = (rng.binomial(n[pick], p[pick]) / n[pick]).mean(1)
    return out


def binomial_draws(share: np.ndarray, trials: np.ndarray, draws: int = DRAWS, seed: int = 0) -> np.ndarray:
    """(draws, ...) shares from resampling the trials (test points) behind each observed share."""
    trials = np.asarray(trials, dtype=np.int64)
    counts = np.rint(np.asarray(share, dtype=float) * trials).astype(np.int64)
    return _rng(seed).binomial(trials, counts / trials, size=(draws, *np.shape(share))) / trials


def with_cell_keys(rows: pd.DataFrame, summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """rows with the config `keys` of their cell (from the per-cell frame) as columns."""
    missing = [k for k in keys if k not in rows.columns]
    return rows.merge(summary[["cell", *missing]], on="cell", how="left") if missing else rows.copy()
