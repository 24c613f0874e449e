"""CUDA: every experiment at scale=smoke on the GPU gives the CPU's results within a stated tolerance.

Marked `gpu` and skipped where torch sees no CUDA device; on a GPU box run `make test-gpu` (pytest -m gpu). A tensor
left on the wrong device fails loudly (torch refuses to mix devices), so a clean run also checks placement.
The harness (tests.helpers.smoke_cells) is the one tests/test_determinism.py runs CPU against CPU in every suite.
"""

import io
import json

import numpy as np
import pandas as pd
import pytest
import torch

from advrepro.experiments import EXPERIMENTS
from tests.helpers import smoke_cells

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU (run `make test-gpu` on a GPU box)"
    ),
]

# Float32 kernels differ between devices (summation order, TF32 off by default in torch): agreement is asked of
# the bulk of the values, not of every one, since a value near a decision boundary (a flip, a crossing) may move.
RTOL, SHARE = 1e-3, 0.99


def agree(cpu: pd.Series, gpu: pd.Series) -> float:
    """Share of rows where the two devices agree: equal for non-numbers, within RTOL (and 1e-6 absolute) else."""
    if not pd.api.types.is_numeric_dtype(cpu) or pd.api.types.is_bool_dtype(cpu):
        return float((cpu.astype(str) == gpu.astype(str)).mean())
    a, b = cpu.to_numpy(float), gpu.to_numpy(float)
    return float(np.mean(np.isclose(a, b, rtol=RTOL, atol=1e-6, equal_nan=True)))


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_every_experiment_on_cuda_matches_the_cpu(tmp_path, mnist_data_dir, experiment):
    cells = {
        device: smoke_cells(experiment, tmp_path / device, mnist_data_dir, device=device)
        for device in ("cpu", "cuda")
    }
    for device in cells:
        for digest in cells[device]:
            meta = json.loads((tmp_path / device / "runs" / experiment / digest / "meta.json").read_text())
            assert meta["device"].startswith(device)
            assert ("gpu_peak_gib" in meta) == (device == "cuda")  # the process's peak GPU allocation
            assert device == "cpu" or meta["gpu_peak_gib"] > 0
    cpu, gpu = (pd.concat([pd.read_csv(io.BytesIO(rows)) for rows in cells[d].values()]) for d in cells)
    assert list(cpu.columns) == list(gpu.columns) and len(cpu) == len(gpu)
    shares = {column: agree(cpu[column], gpu[column]) for column in cpu.columns}
    assert min(shares.values()) >= SHARE, {k: v for k, v in shares.items() if v < SHARE}


def test_lazy_pgd_replayed_as_cuda_graphs_gives_the_eager_rows(tmp_path, mnist_data_dir):
    """The same kernels in the same order: cuda_graphs on (the default) and off give the same rows, within the
    cross-device tolerance (tests/test_replay.py checks the replay logic on the CPU, bit for bit)."""
    cells = {
        graphs: smoke_cells(
            "lazy-pgd", tmp_path / str(graphs), mnist_data_dir, device="cuda", cuda_graphs=graphs
        )
        for graphs in (True, False)
    }
    assert sorted(cells[True]) == sorted(cells[False])  # cuda_graphs is not part of a cell's identity
    replayed, eager = (
        pd.concat([pd.read_csv(io.BytesIO(b)) for b in cells[g].values()]) for g in (True, False)
    )
    shares = {column: agree(eager[column], replayed[column]) for column in eager.columns}
    assert min(shares.values()) >= SHARE, {k: v for k, v in shares.items() if v < SHARE}


def test_lazy_pgd_batch_groups_at_once_on_their_own_streams_give_the_rows_of_one_after_another(
    tmp_path, mnist_data_dir
):
    """groups_at_once=3: three batch groups in threads, each on a CUDA stream of its own, each capturing its CUDA
    graphs while the others replay theirs (tests/test_determinism.py checks the CPU's rows byte for byte)."""
    from advrepro import execution
    from tests.helpers import smoke_plan

    one_by_one = smoke_cells("lazy-pgd", tmp_path / "one", mnist_data_dir, device="cuda")
    planned = smoke_plan("lazy-pgd", tmp_path / "three", mnist_data_dir, device="cuda", groups_at_once=3)
    execution.execute(planned)
    rows = lambda results, digests: pd.concat(
        [pd.read_csv(results / "runs" / "lazy-pgd" / d / "rows.csv") for d in sorted(digests)]
    )
    at_once, after = rows(tmp_path / "three", one_by_one), rows(tmp_path / "one", one_by_one)
    shares = {column: agree(after[column], at_once[column]) for column in after.columns}
    assert min(shares.values()) >= SHARE, {k: v for k, v in shares.items() if v < SHARE}


def test_the_training_benchmarks_run_on_cuda_with_the_devices_matmul_ceiling(tmp_path):
    from advrepro.bench import run_all

    table = run_all(quick=True, results_dir=tmp_path, device=torch.device("cuda"))
    assert (tmp_path / "bench-cuda.csv").is_file() and not (tmp_path / "bench.csv").exists()
    training = table[table["benchmark"] == "adversarial_training"]
    assert (training["pgd_substeps_per_second"] > 0).all() and (training["share_of_matmul_peak"] > 0).all()
    assert (
        training["method"].str.contains("CUDA graph").any() and training["method"].str.contains("eager").any()
    )
