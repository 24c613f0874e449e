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
from tests.helpers import CASES

GOLDEN = Path(__file__).parent / "data" / "golden"


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
    small = claims_of("lazy-pgd", trained_from=3.0)  # as on MNIST: nothing with R < 1/√m trains
    assert small.loc["small-ball-not-robust", "verdict"] == "not measured"
    assert "no trained model has R < 1/√m" in small.loc["small-ball-not-robust", "reason"]
    assert (
        small.loc["large-ball-robust", "verdict"] == "agrees"
    )  # untrained small balls are not the "fits" side
    assert (table.loc[table.index.str.startswith("recipe"), "verdict"] == "not measured").all()
    assert "untrained" in table.loc[table.index.str.startswith("recipe"), "reason"].iloc[0]
    sgd = claims_of("lazy-sgd", accuracy=0.9)
    fig5 = ["5-slope-delta_over_x", "5-slope-grad_norm", "5-grad-offset-low", "5-grad-offset-high"]
    assert (sgd.loc[fig5, "verdict"] == "not measured").all()
    assert sgd.loc["5-slope-grad_norm", "prediction"].startswith(
        "no range (no trained models): the finite-d law"
    )


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
    # an asymmetric interval: its side towards the edge decides, (0.15 / 0.1)² = 2.25
    assert more_units(estimate(0.9, 0.85, 1.05), Band(0.0, 1.0)) == pytest.approx(2.25)
    assert more_units(estimate(0.1, -0.05, 0.15), Band(0.0, 1.0)) == pytest.approx(2.25)
    assert verdict(estimate(0.6, 0.5, 0.7), Band(0.4, 0.6)) == (
        "inconclusive",
        "the estimate sits on the band's edge: more units would not settle it",
    )


def toy_claim(**fields):
    """A claim row with placeholder texts and the band 0.5 ± 0.1 unless given."""
    defaults = {"statement": "s", "prediction": "p", "source": "[paper]", "band": Band.around(0.5, 0.1)}
    return claim("x", "id", tolerance_by="ours", **{**defaults, **fields})


def test_a_missing_measurement_is_not_measured_with_its_reason():
    row = toy_claim(estimate=None, unmeasured="no crossing")
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


def test_verdict_changes_match_rows_by_experiment_and_id_and_list_only_those_that_differ():
    from advrepro.report import verdict_changes

    def table(*rows):
        return pd.DataFrame(rows, columns=["experiment", "id", "verdict", "measured"])

    cpu = table(("a", "x", "agrees", "1.0"), ("a", "y", "differs", "2.0"), ("b", "x", "inconclusive", "3.0"))
    same, none = verdict_changes(cpu, cpu.iloc[::-1])  # order does not matter
    assert same == "3 of 3 rows have the same verdict" and none.empty
    gpu = table(("b", "x", "inconclusive", "3.1"), ("a", "x", "agrees", "1.1"), ("a", "y", "agrees", "2.1"))
    gpu = pd.concat([gpu, table(("c", "z", "agrees", "4.0"))])
    line, changed = verdict_changes(cpu, gpu)
    assert line == "2 of 4 rows have the same verdict; 2 differ: a/y, c/z"
    assert changed[["verdict_before", "verdict_after"]].values.tolist() == [
        ["differs", "agrees"],
        ["absent", "agrees"],
    ]
    assert changed["measured_after"].tolist() == ["2.1", "4.0"]


def test_kinds_are_claim_check_or_reported_and_reported_rows_have_no_verdict_of_their_own():
    for experiment in CASES:
        table = claims_of(experiment)
        assert set(table["kind"]) <= {"claim", "check", "reported"}
        assert ((table["kind"] == "reported") == (table["verdict"] == "reported")).all()


@pytest.mark.parametrize(("interval", "shown"), [((0.2, 0.15, 0.25), True), ((0.5, 0.45, 0.55), False)])
def test_a_finding_is_given_only_where_the_paper_and_the_measurement_differ(interval, shown):
    row = toy_claim(
        estimate=estimate(*interval), reason="measured on 3 runs", finding="a finding at this scale"
    )
    assert row["reason"].startswith("measured on 3 runs")
    assert ("a finding at this scale" in row["reason"]) == shown


def test_a_crossing_between_cells_of_one_training_run_says_so():
    thin, replicated = claims_of("lazy-pgd", runs=1), claims_of("lazy-pgd")
    assert (
        "the crossing at d=100, 196, 400, 1600 lies between cells with fewer than 3"
        in thin.loc["crossing-slope-left", "reason"]
    )
    # only d = 196 rests on one run: the recipe check's default-budget cells there
    assert "the crossing at d=196 lies between" in replicated.loc["crossing-slope-left", "reason"]
    assert thin.loc["crossing-slope-left", "units"] == "1 run per cell × 2115 test points"
    assert replicated.loc["crossing-slope-left", "units"] == "1–3 runs per cell × 2115 test points"


def test_deep_nets_of_a_smooth_activation_report_their_step():
    """The step is derived for one hidden layer and for ReLU at any depth: deep tanh rows are reported, with why."""
    rows, cells = CASES["random-net"][0]()
    rows.loc[rows["depth"] > 1, "activation"] = "tanh"
    table = pd.DataFrame(get("random-net").claims(rows, cells), columns=list(COLUMNS)).set_index("id")
    for column in ("eta", "delta"):
        row = table.loc[f"{column}-tanh-L2-gain2"]
        assert row["kind"] == "reported" and "ReLU at any depth" in row["reason"]
        assert math.isfinite(row["measured"])
