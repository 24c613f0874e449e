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
