"""`advrepro new NAME` writes an experiment package that runs and passes the generic tests as created: checked in a
copy of the checkout, where the generated files and its claim cases are the only change (the registry finds the
package)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from advrepro.errors import UserError
from advrepro.scaffold import scaffold
from tests.helpers import ROOT


def checkout_copy(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    for part in ("advrepro", "configs", "tests"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root)
    return root


@pytest.mark.slow
def test_a_new_experiment_passes_the_generic_tests_as_created(tmp_path):
    root = checkout_copy(tmp_path)
    written = scaffold("toy-margin", "A toy margin", root)
    package = root / "advrepro" / "experiments" / "toy_margin"
    assert set(written) == {
        root / "configs" / "toy-margin.yaml",
        *(package / f for f in ("__init__.py", "runner.py", "claims.py", "figure.py")),
        root / "tests" / "test_toy_margin.py",
        root / "tests" / "helpers.py",
    }
    env = {**os.environ, "PYTHONPATH": str(root), "ADVREPRO_CONFIG_DIR": str(root / "configs")}
    tests = ["tests/test_every_experiment.py", "tests/test_claims.py", "tests/test_defaults.py"]
    tests += ["tests/test_determinism.py", "tests/test_claims_on_subsets.py", "tests/test_toy_margin.py"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-k", "toy", *tests],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " 10 passed" in result.stdout  # the generic tests' toy-margin cases and its own three
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", *(str(p) for p in written if p.suffix == ".py")],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_names_and_clashes_are_refused_in_one_line(tmp_path):
    root = checkout_copy(tmp_path)
    with pytest.raises(UserError, match="lowercase"):
        scaffold("Bad_Name", "", root)
    with pytest.raises(UserError, match="exists already"):
        scaffold("vardi-universal", "", root)
    helpers = root / "tests" / "helpers.py"
    helpers.write_text(helpers.read_text().replace("# advrepro new: builders above\n", ""))
    with pytest.raises(UserError, match="lost its line"):
        scaffold("fresh-one", "", root)
    assert not (
        root / "configs" / "fresh-one.yaml"
    ).exists()  # nothing written when a registration cannot be made


def test_cli_new_refuses_an_existing_experiment(cli):
    result = cli("new", "lazy-sgd")
    assert result.exit_code == 2 and "exists already" in result.output
