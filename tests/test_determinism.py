"""Determinism: every experiment's rows are the same bytes for 1 or 2 CPU threads, any chunk_mb, cells computed in
their batch groups, two groups at a time (groups_at_once=2), or one cell at a time (what an interrupted-then-resumed
run or a hand-picked subset does).

The same harness compares CPU against CUDA in tests/test_gpu.py; here it runs CPU against CPU, so it cannot rot
where no GPU is."""

import pytest
import torch

from advrepro import store
from advrepro.experiments import EXPERIMENTS
from tests.helpers import smoke_cells


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_rows_are_byte_identical_for_threads_chunks_and_batching(tmp_path, smoke_runs, experiment):
    results, _, summary, _ = smoke_runs(
        experiment
    )  # batch groups together, two at a time, this process's threads and chunk_mb
    threads = (
        2 if torch.get_num_threads() == 1 else 1
    )  # another thread count (one per xdist worker, see conftest)
    other = smoke_cells(
        experiment, tmp_path, smoke_runs.data_dir, threads=threads, chunk_mb=1, one_cell_at_a_time=True
    )
    assert sorted(other) == sorted(summary["cell"])
    differ = [
        d for d in other if other[d] != (store.cell_dir(results, experiment, d) / "rows.csv").read_bytes()
    ]
    assert not differ, f"{len(differ)} of {len(other)} cells differ"
