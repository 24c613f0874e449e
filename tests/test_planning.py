"""The planning rule, --dry-run, where outputs go, and the errors a user can cause (one line, exit 2)."""

import errno
import json
import os
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from advrepro import store
from advrepro.config import parse_overrides
from advrepro.experiments import EXPERIMENTS, get
from advrepro.planning import PRESET_KEYS, adhoc_label, plan, split_for_all
from tests.helpers import ROOT

README = ROOT / "README.md"
SMOKE = ("scale=smoke", "device=cpu", "progress=false")


def readme_run_commands() -> list[list[str]]:
    """Every `advrepro run …` line of the README's code blocks (continuation lines joined, comments dropped)."""
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", README.read_text(), flags=re.S)
    lines = " ".join(blocks).replace("\\\n", " ").splitlines()
    commands = [
        shlex.split(line.split("#")[0])[2:] for line in lines if line.strip().startswith("advrepro run ")
    ]
    return [c for c in commands if c]


def expected_cells(words: list[str]) -> int | None:
    """The rule, from the command alone: None for the preset grids, else the product of the values given."""
    multirun = "-m" in words or "--multirun" in words
    overrides = [w for w in words[1:] if not w.startswith("-")]
    parsed = parse_overrides(overrides, multirun)
    if parsed.keys <= PRESET_KEYS:
        return None
    count = 1
    for axis in parsed.sweeps:
        count *= len(axis)
    return count


@pytest.mark.parametrize("words", readme_run_commands(), ids=lambda w: " ".join(w))
def test_every_readme_example_plans_the_cells_its_command_says(words):
    experiment, multirun = words[0], "-m" in words or "--multirun" in words
    overrides = [w for w in words[1:] if not w.startswith("-")]
    names = list(EXPERIMENTS) if experiment == "all" else [experiment]
    overrides_of = (
        split_for_all([get(n) for n in names], overrides) if experiment == "all" else {experiment: overrides}
    )
    for name, own in overrides_of.items():
        planned = plan(get(name), own, multirun)
        expected = expected_cells([name, *own, *(["-m"] if multirun else [])])
        if expected is None:
            assert planned.preset and planned.cells
        else:
            assert not planned.preset and len(planned.cells) == expected, (name, own)


def test_the_readme_has_examples_of_each_kind():
    kinds = {expected_cells(w) is None for w in readme_run_commands()}
    assert kinds == {True, False}
    assert len(readme_run_commands()) >= 4


@pytest.mark.parametrize(
    ("overrides", "multirun", "cells"),
    [
        ([], False, 10),  # the smoke preset grids
        (["seed=3"], False, 10),  # the seed keeps them
        (["d=300", "width=3000"], False, 1),  # keys: exactly one cell, no preset axis survives
        (["-m", "d=10,20", "width=30,40"], True, 4),
        (["d=10,20"], True, 2),
    ],
)
def test_planning_rule(overrides, multirun, cells):
    request = plan(get("random-net"), [*SMOKE, *[o for o in overrides if o != "-m"]], multirun)
    assert len(request.cells) == cells
    assert request.preset == (cells == 10)
    if not request.preset:  # the scale's budget applies to single cells too
        assert {c.plain["n_networks"] for c in request.cells} == {4}


def test_lazy_pgd_c0_run_is_two_cells():
    request = plan(get("lazy-pgd"), ["d=25", "width=500", "C0=10", "eps=0.05,0.6"], multirun=True)
    assert len(request.cells) == 2
    assert {c.plain["radius"] for c in request.cells} == {None}  # R = C0/√m, not a preset radius


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_dry_run_lists_batches_states_and_cost_and_writes_nothing(cli, results):
    args = ("run", "schmidt-models", *SMOKE, f"results_dir={results}", "--no-plot")
    assert cli(*args).exit_code == 0
    digests = sorted(p.name for p in (results / "runs" / "schmidt-models").iterdir())
    (results / "runs" / "schmidt-models" / digests[0] / "rows.csv").write_text("tampered\n")
    (results / "runs" / "schmidt-models" / digests[1] / "meta.json").unlink()
    before = tree(results)
    result = cli(*args, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert tree(results) == before  # nothing computed or written
    out = result.stdout
    assert "1 corrupted" in out and "1 missing" in out and "roughly" in out and "min" in out
    assert re.search(r"batch 1 \(\d+ cells, trained together\)", out)
    assert f"corrupted {digests[0]}" in out and f"missing   {digests[1]}" in out
    for_all = cli("run", "all", *SMOKE, f"results_dir={results}", "--dry-run")
    assert for_all.exit_code == 0 and all(f"{name}:" in for_all.stdout for name in EXPERIMENTS)
    assert tree(results) == before


def test_adhoc_labels_name_the_keys_given_without_quotes():
    assert (
        adhoc_label(parse_overrides(["classes='0,1'", "norm=l2", "seed=3"], False)) == "classes=0,1_norm=l2"
    )
    assert adhoc_label(parse_overrides(["d=100", "eps=0.1,0.3"], True)) == "d=100_eps=0.1,0.3"


def test_adhoc_runs_reuse_cells_and_leave_the_reference_outputs_alone(cli, results):
    assert cli("run", "random-net", *SMOKE, f"results_dir={results}").exit_code == 0
    reference = {p: p.read_bytes() for p in results.glob("*.csv")} | {
        p: p.read_bytes() for p in (results / "figures").iterdir()
    }
    adhoc = cli(
        "run", "random-net", "-m", *SMOKE, "d=20", "width=50,200", "activation=relu", f"results_dir={results}"
    )
    assert adhoc.exit_code == 0, adhoc.stderr
    assert "(0 computed)" in adhoc.stdout  # the preset grid's cells, reused
    where = results / "adhoc" / "random-net" / "activation=relu_d=20_width=50,200"
    assert f"-> {where}/random-net.csv" in adhoc.stdout
    assert (where / "claims.csv").is_file() and list((where / "figures").glob("*.png"))
    assert len(pd.read_csv(where / "random-net.cells.csv")) == 2
    other_scale = cli(
        "run",
        "random-net",
        "scale=default",
        "device=cpu",
        "progress=false",
        "d=20",
        "--dry-run",
        f"results_dir={results}",
    )
    assert other_scale.exit_code == 0
    assert {p: p.read_bytes() for p in reference} == reference
    assert json.loads((results / store.MARKER).read_text()) == {
        "format": store.FORMAT,
        "reference_scale": "smoke",
    }


def test_another_scales_preset_grids_write_beside_the_reference(results):
    store.mark_results_dir(results, "default", preset=True)
    assert store.outputs_dir(results, "default", True, "") == results
    assert store.outputs_dir(results, "smoke", True, "") == results / "scale-smoke"
    assert (
        store.outputs_dir(results, "smoke", False, "random-net/d=3")
        == results / "adhoc" / "random-net" / "d=3"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("results_dir=/dev/null",), "is not a directory"),
        (("-m", "d=10,20", "hydra/launcher=nonexistent"), "unknown launcher 'nonexistent' (installed:"),
    ],
)
def test_bad_places_end_in_one_line(cli, extra, message):
    result = cli("run", "random-net", *SMOKE, *extra)
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_file_as_results_dir_and_a_foreign_format_are_refused(cli, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n")
    result = cli("run", "random-net", *SMOKE, f"results_dir={afile / 'results'}")
    assert result.exit_code == 2 and "is not a directory" in result.stderr
    old = tmp_path / "old"
    old.mkdir()
    (old / store.MARKER).write_text(json.dumps({"format": 1}))
    result = cli("run", "random-net", *SMOKE, f"results_dir={old}")
    assert result.exit_code == 2 and "holds results format 1" in result.stderr
    assert [p.name for p in old.iterdir()] == [store.MARKER]  # nothing written


def test_a_full_disk_while_writing_a_cell_is_one_line_and_leaves_no_part_of_it(cli, results, monkeypatch):
    real = store.atomic_write_bytes

    def full(path, data):
        if path.name == "meta.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(store, "atomic_write_bytes", full)
    result = cli("run", "schmidt-models", *SMOKE, f"results_dir={results}")
    assert (
        result.exit_code == 2
        and "No space left on device" in result.stderr
        and "Traceback" not in result.stderr
    )
    assert not [p for p in (results / "runs").rglob("*") if p.is_file()]  # no half-written cell
    monkeypatch.setattr(store, "atomic_write_bytes", real)
    assert cli("run", "schmidt-models", *SMOKE, f"results_dir={results}").exit_code == 0  # and it resumes


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere: the permission check cannot fail")
def test_an_unwritable_results_dir_is_refused(cli, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = cli("run", "random-net", *SMOKE, f"results_dir={locked / 'results'}")
    assert result.exit_code == 2 and "is not writable" in result.stderr
    assert not list(locked.iterdir())
