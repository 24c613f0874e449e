"""Sweeps through Hydra's launchers, end to end (subprocesses: a few seconds each)."""

import pandas as pd
import pytest

from tests.helpers import outputs_of


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
    out = outputs_of(result, "random-net")
    cells = pd.read_csv(out / "random-net.cells.csv")
    assert sorted(cells["d"]) == [10, 20]
    assert len(pd.read_csv(out / "random-net.csv")) == 2 * 4 * 8
    if launcher == "submitit_local":
        assert list(
            (results / ".hydra-sweeps").rglob("*_result.pkl")
        )  # the jobs really went through submitit
    again = cli(*args)
    assert "(0 computed)" in again.stdout  # complete cells are skipped before anything is launched


@pytest.mark.slow
def test_a_batch_group_is_one_launcher_job_with_the_in_process_rows(cli, tmp_path):
    """schmidt-models trains cells that differ only in ε as one batch: under submitit_local they arrive as one job
    (one submitit result, each cell's meta says it was batched with the other), and the rows equal the in-process
    run's."""
    import json

    args = (
        "run",
        "schmidt-models",
        "-m",
        "scale=smoke",
        "device=cpu",
        "progress=false",
        "d=100",
        "eps=0.1,0.3",
    )
    launched, in_process = tmp_path / "launched", tmp_path / "in-process"
    result = cli(*args, "hydra/launcher=submitit_local", f"results_dir={launched}", "--no-plot")
    assert result.exit_code == 0, result.stderr
    assert "(2 computed)" in result.stdout
    assert len(list((launched / ".hydra-sweeps").rglob("*_result.pkl"))) == 1  # one job for the group
    metas = [json.loads(p.read_text()) for p in (launched / "runs" / "schmidt-models").glob("*/meta.json")]
    assert [m["batched_with"] for m in metas] == [2, 2]
    assert cli(*args, f"results_dir={in_process}", "--no-plot").exit_code == 0
    label = "d=100_eps=0.1,0.3"
    rows = [p / "adhoc" / "schmidt-models" / label / "schmidt-models.csv" for p in (launched, in_process)]
    assert rows[0].read_bytes() == rows[1].read_bytes()
