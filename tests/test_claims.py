"""Every claim can come out either way: on synthetic rows where it holds it says `agrees`, where it fails `differs`.

Also the verdict rule itself, and one golden file: a fixed rows.csv gives a fixed claims.csv.
"""

import math
import os
from pathlib import Path

import pandas as pd
import pytest

from advrepro.claims import COLUMNS, VERDICTS, Band, claim, more_units, verdict
from advrepro.experiments import get
from advrepro.stats import Estimate
from tests.helpers import (
    lazy_pgd_rows,
    lazy_sgd_rows,
    random_net_rows,
    schmidt_rows,
    vardi_rows,
    yang_rows,
    zhu_rows,
)

GOLDEN = Path(__file__).parent / "data" / "golden"

# For each experiment: claim id (prefix) -> (keyword arguments where it holds, where it fails).
CASES = {
    "random-net": (
        random_net_rows,
        {
            "flip-rate": ({"flip": 1.0}, {"flip": 0.5}),
            "eta-": ({"eta": 1.0}, {"eta": 5.0}),
            "delta-": ({"delta": 1.0}, {"delta": 5.0}),
            "limit-": ({"limit_factor": 1.0}, {"limit_factor": 1.2}),
        },
    ),
    "lazy-sgd": (
        lazy_sgd_rows,
        {
            "2-slope-grad_norm": ({"grad_ratio": 0.0}, {"grad_ratio": -0.5}),
            "5-slope-delta_over_x": ({"delta": -0.5}, {"delta": 0.0}),
            "2-slope-delta_over_x": ({"delta": -0.5}, {"delta": 0.0}),
            "5-grad-offset-low": ({"grad_offset": 15.0}, {"grad_offset": -10.0}),
            "5-grad-offset-high": ({"grad_offset": 15.0}, {"grad_offset": 150.0}),
            "3-C0-": ({"c0": 0.3}, {"c0": -0.3}),
            "6-C0-": ({"c0": 0.3}, {"c0": -0.3}),
            "2-accuracy": ({"accuracy": 0.99}, {"accuracy": 0.9}),
            "5-accuracy": ({"accuracy": 0.99}, {"accuracy": 0.9}),
            "2-overshoot": ({"overshoot": 0.001}, {"overshoot": 0.05}),
            "5-overshoot": ({"overshoot": 0.001}, {"overshoot": 0.05}),
            "2-flip-rate": ({"flip": 1.0}, {"flip": 0.5}),
            "5-flip-rate": ({"flip": 1.0}, {"flip": 0.5}),
        },
    ),
    "vardi-universal": (
        vardi_rows,
        {
            "converged": ({"converged": 1.0}, {"converged": 0.5}),
            "universal-": ({"universal": 1.0}, {"universal": 0.3}),
            "slope-n": ({"n_exp": -0.5}, {"n_exp": 0.0}),
            "slope-d": ({"d_exp": 0.0}, {"d_exp": 0.5}),
            "slope-width": ({"width_exp": 0.0}, {"width_exp": 0.5}),
        },
    ),
    "lazy-pgd": (
        lazy_pgd_rows,
        {
            "crossing-slope": ({"exponent": -0.5}, {"exponent": 0.0}),
            "crossing-C0": ({"c0_exponent": 1.0}, {"c0_exponent": 0.0}),
            "small-ball-not-robust": ({"level": 2.0}, {"level": 0.3}),
            "large-ball-robust": ({"level": 1.0}, {"level": 0.01}),
            "recipe-crossing": ({"recipe_step": 0.5}, {"recipe_step": 2.5}),
        },
    ),
    "schmidt-models": (
        schmidt_rows,
        {
            "gaussian-standard-one-sample": ({"one_sample": 0.005}, {"one_sample": 0.05}),
            "gaussian-d-exponent": ({"follow_model": True}, {"follow_model": False, "d_exp": 0.0}),
            "gaussian-eps-exponent": (
                {"follow_model": False, "eps_exp": 2.0},
                {"follow_model": False, "eps_exp": 1.0},
            ),
            "bernoulli-threshold": ({"threshold_error": 0.005}, {"threshold_error": 0.05}),
            "bernoulli-linear": ({"linear_error": 0.2}, {"linear_error": 0.001}),
        },
    ),
    "zhu-stability": (
        zhu_rows,
        {
            "width-": ({"width_slope": -0.3}, {"width_slope": 0.0}),
            "width-init": ({"init_width_slope": 0.0}, {"init_width_slope": 0.3}),
            "value-he-init": ({"init_factor": 1.0}, {"init_factor": 1.3}),
            "rescaling-init": ({"rescaling_error": 0.0}, {"rescaling_error": 0.1}),
            "depth-lecun-init": ({"init_depth": 0.0}, {"init_depth": 0.2}),
            "depth-he-init": ({"init_depth": 0.0}, {"init_depth": 0.2}),
            "depth-lecun": ({"lecun_depth": -0.3}, {"lecun_depth": 0.3}),
            "depth-he": ({"he_depth": 0.3}, {"he_depth": 0.0}),
            "depth-ntk": ({"ntk_depth": 0.3}, {"ntk_depth": -0.3}),
        },
    ),
    "yang-separation": (
        yang_rows,
        {
            "mnist-train-train": ({"train_min": 0.737}, {"train_min": 0.8}),
            "mnist-test-train": ({"test_min": 0.812}, {"test_min": 0.7}),
            "mnist-radius": ({"train_min": 0.737}, {"train_min": 0.15}),
        },
    ),
}


def claims_of(experiment: str, **kwargs) -> pd.DataFrame:
    builder = CASES[experiment][0]
    table = pd.DataFrame(get(experiment).claims(*builder(**kwargs)), columns=list(COLUMNS))
    assert set(table["verdict"]) <= set(VERDICTS)
    return table.set_index("id")


def case_of(experiment: str, claim_id: str):
    """The longest matching id prefix's case (so '2-slope-eta-derived' is not taken for '2-slope-eta')."""
    cases = CASES[experiment][1]
    matching = [prefix for prefix in cases if claim_id.startswith(prefix)]
    return cases[max(matching, key=len)] if matching else None


@pytest.mark.parametrize("experiment", list(CASES))
def test_every_claim_agrees_where_it_holds_and_differs_where_it_fails(experiment):
    held = claims_of(experiment)
    claimed = held[held["verdict"] != "reported"]
    assert len(claimed) >= 2
    for claim_id in claimed.index:
        case = case_of(experiment, claim_id)
        assert case is not None, f"{experiment} claim {claim_id} has no test case"
        holds, fails = case
        assert claims_of(experiment, **holds).loc[claim_id, "verdict"] == "agrees", claim_id
        assert claims_of(experiment, **fails).loc[claim_id, "verdict"] == "differs", claim_id


@pytest.mark.parametrize("experiment", list(CASES))
def test_rows_without_a_claim_say_why(experiment):
    table = claims_of(experiment)
    for _, row in table[table["verdict"].isin(["reported", "not measured", "inconclusive"])].iterrows():
        assert len(row["reason"]) > 10


def test_verdict_words_survive_read_csv_defaults(tmp_path):
    table = claims_of("vardi-universal")
    table.to_csv(tmp_path / "claims.csv")
    assert pd.read_csv(tmp_path / "claims.csv")["verdict"].tolist() == table["verdict"].tolist()


def test_lazy_sgd_models_that_never_left_the_ball_are_not_evidence():
    table = claims_of("lazy-sgd", c0=0.3)
    assert "C0=50: 3 of 3 models never left the ball" in table.loc["3-C0-grad_norm", "reason"]
    assert "C0=50: 3 of 3 models the same model as a smaller C0" not in table.loc["3-C0-grad_norm", "reason"]
    # C0 = 50 alone would reverse the trend: its models sit at the same point as a smaller ball's
    assert table.loc["3-C0-grad_norm", "verdict"] == "agrees"


def test_models_equal_to_a_smaller_balls_are_counted_once():
    table = claims_of("lazy-sgd", same_steps=True)
    assert "C0=5: 3 of 3 models the same model as a smaller C0" in table.loc["3-C0-eta", "reason"]
    assert table.loc["3-C0-eta", "verdict"] == "not measured"  # one distinct model left: no trend to measure


def test_untrained_models_support_no_claim():
    table = claims_of("lazy-pgd", clean=0.5)
    claimed = table.index.str.startswith("crossing") & (table["verdict"] != "reported")
    assert claimed.sum() == 3 and (table.loc[claimed, "verdict"] == "not measured").all()
    assert "untrained" in table.loc["crossing-slope-left", "reason"]
    small = claims_of("lazy-pgd", level=6.0, trained_from=3.0)  # as on MNIST: nothing with R < 1/√m trains
    assert small.loc["small-ball-not-robust", "verdict"] == "not measured"
    assert "no trained model has R < 1/√m" in small.loc["small-ball-not-robust", "reason"]
    assert (
        small.loc["large-ball-robust", "verdict"] == "agrees"
    )  # untrained small balls are not the "fits" side
    assert (table.loc[table.index.str.startswith("recipe"), "verdict"] == "not measured").all()
    assert "untrained" in table.loc[table.index.str.startswith("recipe"), "reason"].iloc[0]
    sgd = claims_of("lazy-sgd", accuracy=0.9)
    fig5 = ["5-slope-delta_over_x", "5-grad-offset-low", "5-grad-offset-high"]
    assert (sgd.loc[fig5, "verdict"] == "not measured").all()


def estimate(value, low, high):
    return Estimate(value, low, high, "5 runs", 5)


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ((0.5, 0.45, 0.55), "agrees"),
        ((0.2, 0.15, 0.25), "differs"),
        ((0.7, 0.65, 0.75), "differs"),
        ((0.58, 0.5, 0.66), "inconclusive"),
        ((math.nan, math.nan, math.nan), "not measured"),
    ],
)
def test_verdict_compares_the_interval_with_the_band(interval, expected):
    assert verdict(estimate(*interval), Band.around(0.5, 0.1))[0] == expected


def test_inconclusive_says_how_many_more_units_would_settle_it():
    # half-width 0.08, distance to the edge 0.6 − 0.58 = 0.02: the interval must shrink 4× → 16× the units
    assert more_units(estimate(0.58, 0.5, 0.66), Band(0.4, 0.6)) == pytest.approx(16)
    assert "≈16× the 5 runs" in verdict(estimate(0.58, 0.5, 0.66), Band(0.4, 0.6))[1]
    assert verdict(estimate(0.6, 0.5, 0.7), Band(0.4, 0.6)) == (
        "inconclusive",
        "the estimate sits on the band's edge: more units would not settle it",
    )


def test_a_missing_measurement_is_not_measured_with_its_reason():
    row = claim("x", "id", "s", "p", "[paper]", Band(0, 1), "ours", None, unmeasured="no crossing")
    assert row["verdict"] == "not measured" and row["reason"] == "no crossing"


def test_golden_rows_give_the_golden_claims():
    """A tiny fixed rows.csv gives a fixed claims.csv (ADVREPRO_UPDATE_GOLDEN=1 rewrites it after a deliberate
    change of a claim; review the diff)."""
    rows, cells = (pd.read_csv(GOLDEN / f"vardi-universal.{part}.csv") for part in ("rows", "cells"))
    got = pd.DataFrame(get("vardi-universal").claims(rows, cells), columns=list(COLUMNS))
    path = GOLDEN / "vardi-universal.claims.csv"
    if os.environ.get("ADVREPRO_UPDATE_GOLDEN"):
        got.to_csv(path, index=False)
    assert got.to_csv(index=False) == path.read_text()


def test_the_summary_counts_claims_and_checks_apart_and_lists_what_differs():
    from advrepro.report import summary

    table = claims_of("vardi-universal", converged=0.5).reset_index()  # the convergence check fails
    text = summary(table.astype(str).replace("nan", ""))
    claims, checks = (int((table["kind"] == kind).sum()) for kind in ("claim", "check"))
    assert f"{claims} claims of the papers, {checks} checks of our implementation (1 differs)" in text
    assert "- vardi-universal (check): fraction of runs whose training reached the loss target" in text


def test_kinds_are_claim_check_or_reported_and_reported_rows_have_no_verdict_of_their_own():
    for experiment in CASES:
        table = claims_of(experiment)
        assert set(table["kind"]) <= {"claim", "check", "reported"}
        assert ((table["kind"] == "reported") == (table["verdict"] == "reported")).all()
