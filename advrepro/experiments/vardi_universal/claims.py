"""vardi-universal: the claims (pandas): which rows each claim rests on, and the paper's predictions against them."""

import numpy as np
import pandas as pd

from advrepro.claims import EXPONENT_TOLERANCE, Band, check, claim, no_growth, reported
from advrepro.experiments.vardi_universal.runner import NAME
from advrepro.stats import at_mode, slope_estimate, statistic_estimate, widest_axis

PANEL_KEYS = ("n", "d", "width")  # the figure's panels (a), (b), (c)
# The theorem's universal δ has ‖δ‖ = O(√(d/(c²n))), c the smaller class's share: a flip counts with
# ‖δ‖ ≤ UNIVERSAL_C·√(d/(c²n)) [ours: the O(·)'s constant taken as 1; 2·√(d/n) for balanced classes].
UNIVERSAL_C = 1.0


def separated(rows: pd.DataFrame) -> pd.Series:
    """Per row: every run of its cell satisfies the theorem's separation condition."""
    return rows.groupby("cell")["separation_ok"].transform("all").astype(bool)


def fixed_panels(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The panels' cells: versus n, d and width with the other two at their most common values (cells outside the
    separation condition), and versus n among the cells that satisfy it (the d with the most n values)."""
    outside, inside = rows[~separated(rows)], rows[separated(rows)]
    out = {axis: at_mode(outside, [k for k in PANEL_KEYS if k != axis]) for axis in PANEL_KEYS}
    out["n, separated"] = widest_axis(inside, "n", ["d", "width"])
    return out


N_OUTSIDE_REASON = (
    "no claim: the theorem's ‖δ‖ = O(√(d/n)) holds only under its separation condition n ≤ (d+1)/(3(max|⟨x_i,x_j⟩|+1)), "
    "which these cells break (at d = 500 it allows n ≤ 3); the slope-n-separated row tests the bound where it holds"
)


def slope_claims(panels: dict[str, pd.DataFrame]) -> list[dict]:
    """‖δ‖ = O(√(d/n)) is an upper bound under the separation condition: there ‖δ‖·√n/√d does not grow with n;
    ‖δ‖/√d does not grow with d; the width plays no part. Outside the condition the n-slope is reported."""
    specs = {  # panel -> (metric, its label, prediction, the band and whose tolerance it is, or None: reported)
        "n, separated": (
            "delta_sqrt_n",
            "‖δ‖·√n/√d",
            "does not grow (‖δ‖ = O(√(d/n)), an upper bound)",
            no_growth(),
        ),
        "d": ("delta_over_sqrt_d", "‖δ‖/√d", "does not grow (‖δ‖/√d = O(1/√n))", no_growth()),
        "width": (
            "delta_over_sqrt_d",
            "‖δ‖/√d",
            "independent of the width",
            {"band": Band.around(0.0, EXPONENT_TOLERANCE), "tolerance_by": f"ours: ±{EXPONENT_TOLERANCE:g}"},
        ),
        "n": ("delta_over_sqrt_d", "‖δ‖/√d", "", None),
    }
    out = []
    for axis, (metric, label, prediction, tolerance) in specs.items():
        frame, variable = panels[axis], axis.split(",")[0]
        frame = frame.assign(delta_sqrt_n=frame["delta_over_sqrt_d"] * np.sqrt(frame["n"]))
        fixed = ", ".join(f"{k}={frame[k].iloc[0]}" for k in PANEL_KEYS if k != variable and len(frame))
        where = " in cells satisfying the separation condition" if "separated" in axis else ""
        statement = f"log–log slope of {label} versus {variable}{where} ({fixed})"
        estimate = slope_estimate(frame, variable, metric, "runs")
        if tolerance is None:
            out.append(
                reported(NAME, f"slope-{axis}", statement=statement, estimate=estimate, why=N_OUTSIDE_REASON)
            )
            continue
        out.append(
            claim(
                NAME,
                f"slope-{axis.replace(', ', '-')}",
                statement=statement,
                prediction=prediction,
                source="[paper]",
                **tolerance,
                estimate=estimate,
                unmeasured=f"fewer than two values of {variable}{where}",
            )
        )
    return out


def claims(rows: pd.DataFrame, summary: pd.DataFrame) -> list[dict]:
    """Training reaches the target; one δ = η·Σ y_i x_i within the theorem's O(√(d/(c²n))) flips all samples (in and
    outside its condition); the n, d and width slopes of ‖δ‖/√d."""
    inside = separated(rows)
    out = [
        check(
            NAME,
            "converged",
            statement="fraction of runs whose training reached the loss target",
            prediction=f"L ≤ {summary['loss_target'].min():g}",
            source="[paper]",
            band=Band(0.99, 1.0),
            tolerance_by="ours",
            estimate=statistic_estimate(rows["converged"], "runs"),
        )
    ]
    one_class = rows["class_share"] == 0  # outside the theorem's premise (both classes a constant fraction)
    within = (
        rows["delta_all_over_sqrt_d"] <= UNIVERSAL_C / (rows["class_share"] * np.sqrt(rows["n"]))
    ).where(~one_class)
    statement = (
        f"fraction of runs where one δ = η·Σ y_i x_i with ‖δ‖ ≤ {UNIVERSAL_C:g}·√(d/(c²n)) flips every sample, c the "
        "smaller class's share (cells {} the separation condition)"
    )

    def left_out(mask: pd.Series) -> str:
        return (
            f"{int(one_class[mask].sum())} runs with one class only left out" if one_class[mask].any() else ""
        )

    out.append(
        claim(
            NAME,
            "universal-satisfying",
            statement=statement.format("satisfying"),
            prediction="every run (Theorem: every KKT point)",
            source="[paper]",
            band=Band(0.99, 1.0),
            tolerance_by="ours",
            estimate=statistic_estimate(within[inside], "runs"),
            reason=left_out(inside),
            unmeasured="no cell satisfying the separation condition",
        )
    )
    out.append(
        reported(
            NAME,
            "universal-outside",
            statement=statement.format("outside"),
            estimate=statistic_estimate(within[~inside], "runs"),
            why="no claim: the theorem says nothing outside its separation condition; shown beside the cells inside it"
            + (f"; {left_out(~inside)}" if one_class[~inside].any() else ""),
        )
    )
    out += slope_claims(fixed_panels(rows))
    ok = rows.groupby("cell")["separation_ok"].all()
    out.append(
        reported(
            NAME,
            "separation-cells",
            statement="fraction of cells satisfying the separation condition n ≤ (d+1)/(3(max|⟨x_i,x_j⟩|+1))",
            estimate=statistic_estimate(ok, "cells"),
            why="no claim: a property of the sampled data, shown so each claim's scope is visible",
        )
    )
    return out
