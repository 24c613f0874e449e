"""Claims on any sweep: for any subset of an experiment's cells (one cell, a -m sweep, a preset grid) every claim
is computed or says `not measured` with its reason; never an exception."""

import numpy as np
import pandas as pd
import pytest

from advrepro.claims import COLUMNS, VERDICTS
from advrepro.experiments import EXPERIMENTS, get


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_claims_of_every_single_cell_and_random_subsets_are_rows(smoke_runs, experiment):
    _, rows, summary, _ = smoke_runs(experiment)
    cells = list(summary["cell"])
    rng = np.random.default_rng(0)
    sizes = rng.integers(2, len(cells) + 1, 8) if len(cells) > 1 else []
    subsets = [[cell] for cell in cells] + [list(rng.choice(cells, size=s, replace=False)) for s in sizes]
    for subset in subsets:
        claims = pd.DataFrame(
            get(experiment).claims(
                rows[rows["cell"].isin(subset)].reset_index(drop=True),
                summary[summary["cell"].isin(subset)].reset_index(drop=True),
            ),
            columns=list(COLUMNS),
        )
        assert claims["verdict"].isin(VERDICTS).all() and claims["id"].is_unique, subset
        unexplained = claims["verdict"].isin(["not measured", "reported"]) & (
            claims["reason"].fillna("") == ""
        )
        assert not unexplained.any(), claims.loc[unexplained, "id"].tolist()
