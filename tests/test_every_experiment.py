"""What every registered experiment must do, so that a new paper cannot land without it: its smoke grid runs through
the command line (`advrepro run NAME scale=smoke`: cells, aggregates, claims.csv, figures), every column it writes is
documented, its declared figures are the ones drawn from the aggregates, its claim ids are unique and every claim has
a case in tests/test_claims.py that makes it agree and one that makes it differ. The experiments' own tests check
their rows' content on the same runs (the `smoke_runs` fixture)."""

import pandas as pd
import pytest

from advrepro.claims import COLUMNS
from advrepro.experiments import EXPERIMENTS, get
from tests.helpers import CASES, assert_columns_documented


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_smoke_rows_are_documented_drawn_and_claimed(smoke_runs, experiment):
    results, rows, summary, _ = smoke_runs(experiment)
    assert len(rows) and len(summary) == rows["cell"].nunique()
    assert_columns_documented(results, experiment)
    written = pd.read_csv(results / "claims.csv")
    assert (written["experiment"] == experiment).any()
    drawn = {p.name for p in (results / "figures").glob(f"{experiment}_*") if p.suffix in (".png", ".pdf")}
    declared = {f"{name}.{ext}" for name in get(experiment).figures for ext in ("png", "pdf")}
    assert drawn and drawn <= declared  # a figure is drawn where its cells exist (smoke has not all of them)
    claims = pd.DataFrame(get(experiment).claims(rows, summary), columns=list(COLUMNS))
    assert claims["id"].is_unique and len(claims)


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_every_experiment_has_two_way_claim_cases(experiment):
    assert experiment in CASES, f"{experiment} has no synthetic-rows cases in tests/helpers.py::CASES"
