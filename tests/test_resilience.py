"""Interrupted runs (SIGINT, SIGTERM), concurrent sweeps and damaged files: results equal an uninterrupted run's."""

import io
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from advrepro import store
from advrepro.experiments import EXPERIMENTS

RUN = [
    sys.executable,
    "-c",
    "from advrepro.cli import main; main()",
    "run",
    "random-net",
    "scale=smoke",
    "device=cpu",
    "progress=false",
    "--no-plot",
]


# 8 cells of 0.04–0.15 s each (the smoke grid's take 10 ms, all done within a poll): a signal sent within 0.05 s of
# a cell's completion lands inside one of the next
SLOW_SWEEP = ("-m", "d=20,50", "width=500,1000", "activation=relu,tanh", "n_networks=50", "n_inputs=32")


def advrepro(results: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*RUN, f"results_dir={results}", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finished(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return out


@pytest.fixture(scope="module")
def slow_reference(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("slow-reference") / "results"
    finished(advrepro(results, *SLOW_SWEEP))
    return results


def aggregates(results: Path) -> Path:
    """Where the command put random-net.csv (the top level for the preset grids, adhoc/… for a sweep)."""
    return next(p.parent for p in sorted(results.rglob("random-net.csv")) if "runs" not in p.parts)


def assert_same_results(results: Path, reference: Path):
    results, reference = aggregates(results), aggregates(reference)
    for name in ("random-net.csv", "random-net.cells.csv"):
        got, want = pd.read_csv(results / name), pd.read_csv(reference / name)
        if name.endswith("cells.csv"):
            got, want = (
                f.drop(columns=["wall_time_s", "git_commit", "device"]) for f in (got, want)
            )  # provenance
        pd.testing.assert_frame_equal(
            got.sort_values("cell", kind="stable").reset_index(drop=True),
            want.sort_values("cell", kind="stable").reset_index(drop=True),
        )
    assert (results / "random-net.csv").read_bytes() == (reference / "random-net.csv").read_bytes()
    assert not list(results.rglob("*.tmp")), "a temporary file survived"


@pytest.mark.slow
@pytest.mark.parametrize("groups_at_once", [1, 2])
def test_interrupted_runs_resume_to_the_uninterrupted_result(tmp_path, slow_reference, groups_at_once):
    """Ctrl-C (SIGINT), then a kill (SIGTERM), each just after a cell completes (inside one of the next), then a rerun;
    with groups_at_once=2 the interrupt also abandons a group computing in a worker thread (exit 130, not an abort)."""
    rng = random.Random(7)
    results = tmp_path / "results"
    total = len(list((slow_reference / "runs" / "random-net").iterdir()))
    sweep = (*SLOW_SWEEP, f"groups_at_once={groups_at_once}")
    for signum in (signal.SIGINT, signal.SIGTERM):
        before = complete_cells(results)
        process = advrepro(results, *sweep)
        deadline = time.monotonic() + 120
        while complete_cells(results) == before and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.05))  # inside one of the next cells
        process.send_signal(signum)
        process.communicate(timeout=120)
        assert process.returncode in (130, -signum), f"{signum!r} did not stop the run: {process.returncode}"
        assert before < complete_cells(results) < total, "the interrupt did not land mid-run"
        for meta in results.rglob("meta.json"):
            assert store.read_meta(meta.parent) is not None  # whatever looks complete is complete
    finished(advrepro(results, *sweep))
    assert_same_results(results, slow_reference)


def complete_cells(results: Path) -> int:
    directory = results / "runs" / "random-net"
    return sum(store.read_meta(d) is not None for d in directory.iterdir()) if directory.is_dir() else 0


@pytest.mark.slow
def test_two_processes_sweeping_the_same_cells_do_not_clobber_each_other(tmp_path, slow_reference):
    results = tmp_path / "results"
    first, second = advrepro(results, *SLOW_SWEEP), advrepro(results, *SLOW_SWEEP)  # both plan every cell
    finished(first), finished(second)
    assert_same_results(results, slow_reference)
    for cell in (results / "runs" / "random-net").iterdir():
        assert store.read_meta(cell) is not None


REPO = Path(__file__).resolve().parent.parent
PROVENANCE = ["wall_time_s", "git_commit", "device"]


def make_figures(results: Path) -> subprocess.Popen:
    """`make figures` itself (all experiments at scale=smoke into `results`), in its own process group as a shell
    would start it, so that a signal can go to make and everything below it, as Ctrl-C does."""
    return subprocess.Popen(
        ["make", "-s", "-C", str(REPO), "figures", f"RESULTS={results}", "SCALE=smoke"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def outputs(results: Path) -> dict[str, object]:
    """Every aggregate CSV (provenance columns dropped from the per-cell tables), claims.csv and figure, by name."""
    found: dict[str, object] = {}
    for path in sorted(results.glob("*.csv")):
        frame = pd.read_csv(path)
        found[path.name] = frame.drop(columns=[c for c in PROVENANCE if c in frame]).to_csv(index=False)
    for path in sorted((results / "figures").iterdir()):
        if path.suffix in (".png", ".pdf", ".txt"):
            found[f"figures/{path.name}"] = path.read_bytes()
    return found


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("make") is None or not (REPO / ".venv" / "bin" / "advrepro").exists(),
    reason="needs make and the repository's .venv (made by `make test`)",
)
def test_interrupted_make_figures_reruns_to_the_same_csvs_and_figures(tmp_path, smoke_runs):
    """Ctrl-C during `make figures SCALE=smoke`, then a rerun: the same CSVs and figures as the uninterrupted
    `advrepro run all scale=smoke` of the smoke_runs fixture (in-process, its own MNIST directory)."""
    results = tmp_path / "results"
    process = make_figures(results)
    deadline = time.monotonic() + 120
    while not any(results.rglob("meta.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the first cell is written (however long the start took)
    time.sleep(random.Random(7).uniform(0.0, 6.0))  # then somewhere in the sweep: it takes about 30 s here
    os.killpg(process.pid, signal.SIGINT)  # to make and everything below it, as Ctrl-C does
    process.communicate(timeout=300)
    assert process.returncode != 0, "make figures finished before the interrupt: the test interrupted nothing"
    assert any(results.rglob("meta.json")) and not (results / "REPORT.md").exists()  # stopped mid-sweep
    process = make_figures(results)
    _, err = process.communicate(timeout=900)
    assert process.returncode == 0, err
    for experiment in EXPERIMENTS:
        smoke_runs(experiment)
    want, got = outputs(smoke_runs.directory), outputs(results)
    assert sorted(got) == sorted(want) and len(want) > 10
    assert [name for name in want if got[name] != want[name]] == []
    assert not list(results.rglob("*.tmp")), "a temporary file survived"


def test_an_interrupt_silences_every_bar_but_the_cells_count():
    """After Ctrl-C with groups_at_once > 1, the abandoned groups' bars are erased and draw nothing more (they would
    be redrawn under the interrupt's message); the cells bar still draws."""
    from tqdm.auto import tqdm

    from advrepro.progress import silence

    cells_out, group_out = io.StringIO(), io.StringIO()
    cells = tqdm(total=4, file=cells_out, mininterval=0, desc="cells")
    group = tqdm(total=30, file=group_out, mininterval=0, desc="group", leave=False)
    group.update(1)
    drawn = group_out.getvalue()
    silence(keep=cells)
    assert group.disable and not cells.disable
    erased = group_out.getvalue()[len(drawn) :]
    assert erased and "group" not in erased, "the group's bar was not erased"
    group.update(5)
    group.close()
    assert group_out.getvalue() == drawn + erased, "a silenced bar drew again"
    cells.update(1)
    assert "1/4" in cells_out.getvalue()
    cells.close()
