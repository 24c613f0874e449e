"""Sweeps through Hydra's launchers, end to end (subprocesses: a few seconds each)."""

import pandas as pd
import pytest


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["submitit_local", "joblib"])
def test_sweep_through_a_hydra_launcher(cli, results, launcher):
    args = (
        "run",
        "random-net",
        "-m",
        "scale=smoke",
        "device=cpu",
        "progress=false",
        "d=10,20",
        "width=30",
        "activation=relu",
        "depth=1",
        f"hydra/launcher={launcher}",
        f"results_dir={results}",
        "--no-plot",
    )
    if launcher == "joblib":
        args += ("hydra.launcher.n_jobs=2",)
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    assert "(2 computed)" in result.stdout
    cells = pd.read_csv(results / "random-net.cells.csv")
    assert sorted(cells["d"]) == [10, 20]
    assert len(pd.read_csv(results / "random-net.csv")) == 2 * 4 * 8
    if launcher == "submitit_local":
        assert list(
            (results / ".hydra-sweeps").rglob("*_result.pkl")
        )  # the jobs really went through submitit
    again = cli(*args)
    assert "(0 computed)" in again.stdout  # complete cells are skipped before anything is launched
