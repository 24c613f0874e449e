"""Determinism: every experiment's rows are the same bytes for 1 or 2 CPU threads, any chunk_mb, and cells computed
in their batch groups or one at a time (what an interrupted-then-resumed run or a hand-picked subset does).

The same harness compares CPU against CUDA in tests/test_gpu.py; here it runs CPU against CPU, so it cannot rot
where no GPU is."""

import pytest

from advrepro.experiments import EXPERIMENTS
from tests.helpers import smoke_cells


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_rows_are_byte_identical_for_threads_chunks_and_batching(tmp_path, mnist_smoke, experiment):
    data = tmp_path / "data"
    reference = smoke_cells(experiment, tmp_path / "a", data, threads=2)
    other = smoke_cells(experiment, tmp_path / "b", data, threads=1, chunk_mb=1, one_cell_at_a_time=True)
    assert reference.keys() == other.keys() and reference
    differ = [digest for digest in reference if reference[digest] != other[digest]]
    assert not differ, f"{len(differ)} of {len(reference)} cells differ"
