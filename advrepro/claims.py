"""One claim mechanism for every experiment: a prediction, a tolerance band, a measured interval, a verdict.

A claim states the paper's value (or one derived from it), tagged [paper] or [derived], and a band around it; the
tolerance is ours wherever the paper gives none, and says so. The measured value carries a 95% bootstrap interval
over independent units (`advrepro.stats`). Verdicts, compared on the interval, not the point:

- agrees: the whole interval lies inside the band;
- differs: the interval lies entirely outside the band;
- inconclusive: the interval straddles an edge (the row says roughly how many times more units would settle it);
- not measured: the measurement could not be made (the row says why);
- reported: a number shown without a claim (the row says why it has none).

Each row has a kind: `claim` (what the paper, or a derivation from it written out in docs/protocols.md, predicts for
the setting measured), `check` (an invariant of our own implementation: training reached its target, the lazy ball
was kept, an exact identity), or `reported`.

Every word survives `pandas.read_csv` with its defaults (no 'n/a', 'NA', 'null').
"""

import dataclasses
import math

from advrepro.stats import Estimate

# ours: a trend claim ("grows with", "falls with", "does not grow") needs a log–log slope, or a per-unit rate, of at
# least this size in the predicted direction, so that a flat measurement cannot agree with a trend.
MIN_EFFECT = 0.05
# ours: a model below this test (clean) accuracy is not trained; its cells are marked and support no claim.
MIN_ACCURACY = 0.95
# ours: the band's half-width on a claimed exponent (a log–log slope) where the paper gives none.
EXPONENT_TOLERANCE = 0.1

VERDICTS = ("agrees", "differs", "inconclusive", "not measured", "reported")
KINDS = ("claim", "check", "reported")
COLUMNS = (
    "experiment",
    "id",
    "kind",
    "claim",
    "prediction",
    "source",
    "tolerance",
    "measured",
    "ci_low",
    "ci_high",
    "units",
    "verdict",
    "reason",
)


@dataclasses.dataclass(frozen=True)
class Band:
    """The values that agree with a claim: [low, high], either end may be infinite."""

    low: float = -math.inf
    high: float = math.inf

    @classmethod
    def around(cls, value: float, tolerance: float) -> "Band":
        return cls(value - tolerance, value + tolerance)

    def __str__(self) -> str:
        if math.isinf(self.low):
            return f"≤ {self.high:.4g}"
        if math.isinf(self.high):
            return f"≥ {self.low:.4g}" if self.low else "> 0"
        return f"[{self.low:.4g}, {self.high:.4g}]"


def trend(direction: int) -> dict:
    """A trend claim's band and whose tolerance it is (claim's `band` and `tolerance_by`): a slope of at least
    MIN_EFFECT up (+1) or down (−1)."""
    band = Band(MIN_EFFECT, math.inf) if direction > 0 else Band(-math.inf, -MIN_EFFECT)
    return {"band": band, "tolerance_by": f"ours: a trend is a slope of at least {MIN_EFFECT:g}"}


def no_growth() -> dict:
    """An upper-bound claim's band ("does not grow"): a slope below MIN_EFFECT, and whose tolerance it is."""
    return {
        "band": Band(-math.inf, MIN_EFFECT),
        "tolerance_by": f"ours: growth below the minimum effect {MIN_EFFECT:g}",
    }


def more_units(estimate: Estimate, band: Band) -> float | None:
    """How many times the current units would likely settle an inconclusive verdict: the interval shrinks like
    1/√units, and its side towards the nearest band edge must fall below the point's distance to that edge (an
    interval need not be symmetric about its point). None at an edge."""
    edge = min((e for e in (band.low, band.high) if math.isfinite(e)), key=lambda e: abs(estimate.value - e))
    gap = abs(estimate.value - edge)
    side = estimate.high - estimate.value if edge > estimate.value else estimate.value - estimate.low
    return None if gap == 0 else max(1.0, (side / gap) ** 2)


def verdict(estimate: Estimate | None, band: Band) -> tuple[str, str]:
    """(verdict, the reason it gives for inconclusive or unmeasured outcomes)."""
    if estimate is None or not estimate.finite:
        return "not measured", ""
    if band.low <= estimate.low and estimate.high <= band.high:
        return "agrees", ""
    if estimate.high < band.low or estimate.low > band.high:
        return "differs", ""
    factor = more_units(estimate, band)
    if factor is None:
        return "inconclusive", "the estimate sits on the band's edge: more units would not settle it"
    return "inconclusive", f"≈{math.ceil(factor)}× the {estimate.units} would likely settle it"


def claim(
    experiment: str,
    id: str,
    *,
    statement: str,
    prediction: str,
    source: str,
    band: Band,
    tolerance_by: str,
    estimate: Estimate | None,
    reason: str = "",
    unmeasured: str = "",
    finding: str = "",
    kind: str = "claim",
) -> dict:
    """One row of claims.csv. `source` tags the prediction ([paper], [derived], …); `tolerance_by` says whose band
    it is (ours, wherever the paper gives none); `reason` explains the outcome; `unmeasured` why nothing was
    measured (used when estimate is None or not finite); `finding` what a `differs` says about the paper at this
    scale and which setting would settle it (used only then)."""
    outcome, why = verdict(estimate, band)
    if outcome == "not measured":
        why = unmeasured or "no finite interval: the measurement is undefined in too many resamples"
    if outcome == "differs":
        why = finding
    return _row(
        experiment,
        id,
        kind,
        statement,
        prediction,
        source,
        f"{band} ({tolerance_by})",
        estimate,
        outcome,
        "; ".join(t for t in (reason, why) if t),
    )


def reported(experiment: str, id: str, *, statement: str, estimate: Estimate | None, why: str) -> dict:
    """A number shown without a claim; `why` says why it has none."""
    return _row(experiment, id, "reported", statement, "", "", "", estimate, "reported", why)


def check(experiment: str, id: str, **fields) -> dict:
    """A claim about our implementation (an invariant it must keep), not about the paper: `claim`'s fields."""
    return claim(experiment, id, **fields, kind="check")


def _row(experiment, id, kind, statement, prediction, source, tolerance, estimate, outcome, reason) -> dict:
    assert outcome in VERDICTS and kind in KINDS
    number = lambda v: float(f"{v:.4g}") if estimate is not None and math.isfinite(v) else math.nan
    return {
        "experiment": experiment,
        "id": id,
        "kind": kind,
        "claim": statement,
        "prediction": prediction,
        "source": source,
        "tolerance": tolerance,
        "measured": number(estimate.value) if estimate else math.nan,
        "ci_low": number(estimate.low) if estimate else math.nan,
        "ci_high": number(estimate.high) if estimate else math.nan,
        "units": estimate.units if estimate else "",
        "verdict": outcome,
        "reason": reason,
    }
