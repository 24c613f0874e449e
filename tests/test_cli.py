"""The CLI end to end on tiny configs: run, resume, --force, plot, config, list, bad input."""

import importlib.metadata
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from advrepro import store
from advrepro.claims import VERDICTS
from advrepro.experiments import get
from advrepro.report import BENCH_BEGIN, BENCH_END, README_BEGIN, README_END
from tests.helpers import ROOT, assert_columns_documented, outputs_of

SMOKE = ("scale=smoke", "device=cpu", "progress=false")


def one_cell(results) -> tuple[str, ...]:
    """`advrepro run` of one small random-net cell in `results`, without figures."""
    return (
        "run",
        "random-net",
        *SMOKE,
        f"results_dir={results}",
        "d=20",
        "width=50",
        "activation=relu",
        "depth=1",
        "--no-plot",
    )


def cell_dirs(results: Path, experiment="random-net") -> list[Path]:
    return sorted((results / "runs" / experiment).iterdir())


def test_run_writes_cells_aggregates_claims_and_figures(smoke_runs):
    results = smoke_runs("random-net")[0]  # `advrepro run random-net scale=smoke device=cpu progress=false`
    cells = cell_dirs(results)
    assert len(cells) == 10  # the smoke grids: 2 d × 2 widths × 2 activations + 2 depths
    meta = json.loads((cells[0] / "meta.json").read_text())
    for key in ("seed", "versions", "device", "git_commit", "wall_time_s", "started", "finished"):
        assert key in meta
    assert meta["versions"]["torch"] == importlib.metadata.version("torch") == torch.__version__.split("+")[0]
    assert meta["device"].startswith("cpu:") and meta["seed"] == 0 and meta["git_commit"]
    assert "gpu_peak_gib" not in meta  # recorded on CUDA only (tests/test_gpu.py)
    assert_columns_documented(results, "random-net")
    rows = pd.read_csv(results / "random-net.csv")
    assert len(rows) == 8 * 4 * 8 + 2 * 4 * 8
    found = rows[rows["flipped"]]
    assert (found["eta"] <= 20).all() and (
        found["delta_norm"] - found["eta"] * found["grad_norm"]
    ).abs().max() < 1e-5
    claims = pd.read_csv(results / "claims.csv")  # pandas' defaults: every verdict word survives
    claims = claims[claims["experiment"] == "random-net"]
    assert len(claims) and set(claims["verdict"]) <= set(VERDICTS)
    assert claims["verdict"].notna().all() and claims["id"].is_unique
    for name in get("random-net").figures:
        assert (results / "figures" / f"{name}.png").stat().st_size > 10_000
        assert (results / "figures" / f"{name}.pdf").is_file()


def test_resume_skips_complete_cells_and_force_recomputes(cli, results):
    args = one_cell(results)
    assert cli(*args).exit_code == 0
    (cell,) = cell_dirs(results)
    stamp = (cell / "meta.json").stat().st_mtime_ns
    again = cli(*args)
    assert "(0 computed)" in again.stdout
    assert (cell / "meta.json").stat().st_mtime_ns == stamp
    forced = cli(*args, "--force")
    assert "(1 computed)" in forced.stdout
    assert (cell / "meta.json").stat().st_mtime_ns != stamp


def test_unchanged_rerun_keeps_aggregates_and_figures_and_a_change_redoes_them(cli, results):
    args = ("run", "random-net", *SMOKE, f"results_dir={results}")
    assert cli(*args).exit_code == 0
    aggregate, figure = results / "random-net.csv", results / "figures" / "random-net_eta_vs_width.png"
    written = {p: p.stat().st_mtime_ns for p in (aggregate, figure)}
    assert cli(*args).exit_code == 0
    assert {p: p.stat().st_mtime_ns for p in written} == written  # nothing rewritten
    figure.unlink()
    aggregate.write_text("tampered\n")
    assert cli(*args).exit_code == 0
    assert figure.is_file() and len(pd.read_csv(aggregate)) == 8 * 4 * 8 + 2 * 4 * 8
    before = aggregate.read_bytes()
    # another set of cells (the seed keeps the preset grids)
    assert cli(*args, "seed=1", "--no-plot").exit_code == 0
    assert aggregate.read_bytes() != before and len(pd.read_csv(aggregate)) == 8 * 4 * 8 + 2 * 4 * 8


def test_interrupted_or_corrupted_cell_is_not_taken_as_complete(cli, results, monkeypatch):
    args = one_cell(results)
    experiment = get("random-net")

    def interrupted(cfg, device):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(experiment), "run", property(lambda self: interrupted), raising=False)
    result = cli(*args)
    assert result.exit_code == 130 and "resume" in result.stderr
    assert not any((results / "runs").rglob("meta.json"))
    monkeypatch.undo()
    assert cli(*args).exit_code == 0
    (cell,) = cell_dirs(results)
    good = (cell / "rows.csv").read_bytes()
    damages = {
        "truncated rows": ("rows.csv", good[: len(good) // 2]),
        "plausible but wrong rows": ("rows.csv", b"d,width\n1,2\n"),
        "meta.json not JSON": ("meta.json", b"{not json"),
    }
    for damage, (name, data) in damages.items():
        (cell / name).write_bytes(data)
        assert store.read_meta(cell) is None, damage
        assert "(1 computed)" in cli(*args).stdout, damage
        assert (cell / "rows.csv").read_bytes() == good, damage  # same seed, same numbers
        assert store.read_meta(cell) is not None, damage  # complete again


def test_multirun_sweeps_the_product(cli, results):
    result = cli(
        "run",
        "random-net",
        "-m",
        *SMOKE,
        f"results_dir={results}",
        "d=10,20",
        "width=30,40",
        "activation=relu",
        "depth=1",
        "--no-plot",
    )
    assert result.exit_code == 0, result.stderr
    cells = pd.read_csv(outputs_of(result, "random-net") / "random-net.cells.csv")
    assert sorted(zip(cells["d"], cells["width"], strict=True)) == [(10, 30), (10, 40), (20, 30), (20, 40)]


def test_plot_redraws_from_csv_only(cli, results):
    cli("run", "random-net", *SMOKE, f"results_dir={results}", "--no-plot")
    assert not (results / "figures").exists()
    result = cli("plot", "random-net", "--results-dir", str(results))
    assert result.exit_code == 0 and (results / "figures" / "random-net_eta_vs_width.png").is_file()


def test_config_shows_provenance_tags(cli):
    result = cli("config", "random-net", "d=300")
    assert result.exit_code == 0
    assert "[paper]" in result.stdout and "[inferred]" in result.stdout
    line = next(line for line in result.stdout.splitlines() if line.startswith("d:"))
    assert "300" in line and "[override]" in line


def test_list_and_help(cli):
    assert "random-net" in cli("list").stdout
    for command in ("run", "plot", "config", "list", "bench"):
        assert cli(command, "--help").exit_code == 0


def bad_inputs_in_the_readme() -> list[tuple[list[str], str]]:
    """The README's "Bad input" table as (arguments, message), for its `advrepro run` rows that hold on any machine
    and in any results_dir (not those marked "(no GPU)", "(offline)" or that name a results_dir, whose errors
    tests/test_planning.py makes); a row's "(or `KEY=VALUE`)" alternative is tested separately."""
    section = (ROOT / "README.md").read_text().split("### Bad input", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `advrepro (run [^`]*)`(?: \(or `[^`]*`\))? \| (.*) \|$", section, re.MULTILINE)
    return [(command.split(), message) for command, message in rows if "results_dir=" not in command]


@pytest.mark.parametrize(
    ("args", "message"),
    [*bad_inputs_in_the_readme(), (["run", "random-net", "width=-5"], "width must be positive, got -5")],
)
def test_bad_input_exits_2_with_the_readmes_one_line_and_writes_nothing(cli, results, args, message):
    result = cli(*args, f"results_dir={results}")
    assert result.exit_code == 2
    assert result.stderr == f"advrepro: error: {message}\n"  # one line, no traceback, as the README shows it
    assert not results.exists()


def test_the_readme_table_of_bad_inputs_is_read():
    assert len(bad_inputs_in_the_readme()) >= 14


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_exits_2(cli, results):
    result = cli("run", "random-net", "device=cuda", f"results_dir={results}")
    assert result.exit_code == 2 and "no CUDA GPU" in result.stderr
    assert not results.exists()


def test_report_embeds_figures_claims_and_inferred_values(cli, results):
    cli("run", "random-net", *SMOKE, f"results_dir={results}")
    result = cli("report", "--results-dir", str(results))
    assert result.exit_code == 0, result.stderr
    markdown = (results / "REPORT.md").read_text()
    assert "![random-net_eta_vs_width](figures/random-net_eta_vs_width.png)" in markdown
    assert "| claim | prediction | tolerance | measured [95% CI] | verdict | why |" in markdown
    assert "[inferred]" in markdown
    assert "Claims (results/claims.csv):" in result.stdout  # the one-screen summary
    readme = results / "README.md"
    readme.write_text(f"intro\n{README_BEGIN}\nstale\n{README_END}\noutro\n")
    assert cli("report", "--results-dir", str(results), "--readme", str(readme)).exit_code == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "stale" not in text
    assert "| experiment | kind | claim | prediction |" in text
    pd.DataFrame(
        [{"benchmark": "b", "setting": "s", "method": "fast way", "seconds": 0.25, "same_answer": True}]
    ).to_csv(
        results / "bench.csv", index=False
    )  # with bench.csv, its table is written between its own markers
    readme.write_text(
        f"intro\n{README_BEGIN}\n{README_END}\nmiddle\n{BENCH_BEGIN}\nstale\n{BENCH_END}\noutro\n"
    )
    assert cli("report", "--results-dir", str(results), "--readme", str(readme)).exit_code == 0
    text = readme.read_text()
    assert "| b | s | fast way | seconds = 0.25, same_answer = True |" in text and "stale" not in text
    assert "middle" in text and "| experiment | kind | claim | prediction |" in text
    readme.write_text("no markers\n")
    result = cli("report", "--results-dir", str(results), "--readme", str(readme))
    assert result.exit_code == 2 and "has no markers" in result.stderr and "claims:begin" in result.stderr
    (results / "bench.csv").unlink()
    page = (results / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "<table" in page
    estimate = cli("config", "random-net", "scale=smoke", f"results_dir={results}").stdout
    assert "runs 10 cells (the preset grids of scale=smoke), roughly" in estimate  # from the measured cells


def test_run_all_gives_each_experiment_the_keys_it_has(cli, results):
    from advrepro.experiments import EXPERIMENTS
    from advrepro.planning import split_for_all

    split = split_for_all(
        list(EXPERIMENTS.values()), ["scale=smoke", "data_dir=/x", "activation=tanh", "n=7"]
    )
    assert split["random-net"] == ["scale=smoke", "activation=tanh"]
    assert split["lazy-sgd"] == split["lazy-pgd"] == ["scale=smoke", "data_dir=/x"]
    assert split["vardi-universal"] == ["scale=smoke", "n=7"]
    result = cli("run", "all", "foo=1", f"results_dir={results}")
    assert (
        result.exit_code == 2
        and "no experiment has the key of foo=1" in result.stderr
        and not results.exists()
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: cuda is a valid device here")
def test_bench_on_cuda_without_a_gpu_is_one_line_and_exit_2(cli, tmp_path):
    result = cli("bench", "--device", "cuda", "--quick", "--results-dir", str(tmp_path))
    assert result.exit_code == 2 and "no CUDA GPU is available" in result.stderr
    assert "Traceback" not in result.stderr and not any(tmp_path.iterdir())


def test_figures_are_redrawn_when_any_module_they_depend_on_changes(cli, results, tmp_path, monkeypatch):
    from advrepro import sources

    files = sources.sources(get("random-net").package)
    names = {p.relative_to(Path(__file__).resolve().parent.parent).as_posix() for p in files}
    package = {
        f"advrepro/experiments/random_net/{f}" for f in ("__init__.py", "runner.py", "claims.py", "figure.py")
    }
    assert package | {"advrepro/stats.py", "advrepro/plotting.py", "advrepro/claims.py"} <= names
    other_packages = [n for n in names if n.count("/") == 3 and n.startswith("advrepro/experiments/")]
    assert sorted(other_packages) == sorted(package)  # no other experiment's code
    shared = tmp_path / "stats.py"  # stands for a shared module the figure code imports
    shared.write_text("# version 1\n")
    monkeypatch.setattr(sources, "sources", lambda package: [*files, shared])
    args = ("run", "random-net", *SMOKE, f"results_dir={results}")
    figure = results / "figures" / "random-net_eta_vs_width.png"
    assert cli(*args).exit_code == 0
    drawn = figure.stat().st_mtime_ns
    assert cli(*args).exit_code == 0 and figure.stat().st_mtime_ns == drawn  # nothing changed: not redrawn
    shared.write_text("# version 2\n")
    assert cli(*args).exit_code == 0 and figure.stat().st_mtime_ns != drawn


def test_claims_csv_does_not_depend_on_the_order_the_experiments_ran_in(tmp_path):
    from advrepro.claims import COLUMNS
    from advrepro.experiments import EXPERIMENTS

    def claims_of(name: str) -> pd.DataFrame:
        return pd.DataFrame(
            [{**dict.fromkeys(COLUMNS, "x"), "experiment": name, "id": f"{name}-{i}"} for i in (1, 2)]
        )

    runs = {
        "a": ["vardi-universal", "lazy-sgd", "random-net"],
        "b": ["random-net", "vardi-universal", "lazy-sgd"],
    }
    for label, names in runs.items():
        for name in [*names, names[0]]:  # and the first again, as a rerun
            store.update_claims(tmp_path / label, name, claims_of(name), order=list(EXPERIMENTS))
    written = {label: (tmp_path / label / "claims.csv").read_bytes() for label in runs}
    assert written["a"] == written["b"]
    listed = pd.read_csv(tmp_path / "a" / "claims.csv")["experiment"].drop_duplicates().tolist()
    assert listed == [name for name in EXPERIMENTS if name in listed] and len(listed) == 3
