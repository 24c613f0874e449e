"""Benchmarks (never timed tests): each returns rows measured in one run, so ratios are comparable."""

import math
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from advrepro import store


def timed(fn: Callable, repeats: int = 3):
    """(best wall time over `repeats`, last result)."""
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_flip_search(quick: bool = False) -> list[dict]:
    """Exact breakpoint search vs the papers' 0.001 walk in ‖δ‖ (up to 5) vs grid + Illinois refinement."""
    from advrepro.experiments.random_net import RandomNetConfig, sample_networks
    from advrepro.flip import exact_relu_root, refine, scan
    from advrepro.nets import sphere
    from advrepro.seeding import generator

    cfg = RandomNetConfig(
        d=100 if quick else 1000, width=200 if quick else 1000, n_networks=4 if quick else 20
    )
    net = sample_networks(cfg, 0, cfg.n_networks, torch.float32)
    x = sphere(cfg.n_inputs, cfg.d, math.sqrt(cfg.d), generator(0, "inputs"))
    f, grad, z1 = net.input_gradient(x)
    unit = -torch.sign(f)[..., None] * grad / grad.norm(dim=-1, keepdim=True)  # t = ‖δ‖ along this ray
    v, f_of_t = net.along_ray(z1, unit)
    t_max = 5.0
    methods = {
        "exact breakpoints": lambda: exact_relu_root(z1, v, net.readout[:, None, :], 0.0, t_max),
        "walk 0.001 (papers' code)": lambda: scan(f_of_t, f, 0.001, t_max)[1],
        "grid 0.05 + Illinois": lambda: refine(f_of_t, f, *scan(f_of_t, f, 0.05, t_max), rtol=1e-6),
    }
    results = {name: timed(fn) for name, fn in methods.items()}
    base_time, base = results["exact breakpoints"]
    setting = f"d={cfg.d} width={cfg.width} rays={f.numel()}"
    return [
        {
            "benchmark": "flip_search",
            "setting": setting,
            "method": name,
            "seconds": round(seconds, 4),
            "ratio_to_exact": round(seconds / base_time, 2),
            "max_abs_diff_delta": float((answer - base).abs().nan_to_num(0).max()),
            "same_flipped_set": bool(torch.equal(torch.isnan(answer), torch.isnan(base))),
        }
        for name, (seconds, answer) in results.items()
    ]


def bench_vardi_training(quick: bool = False) -> list[dict]:
    """Training steps per second of vardi-universal (all runs batched, float64, full batch)."""
    from advrepro.experiments.vardi_universal import VardiConfig, train
    from advrepro.nets import rademacher, sphere
    from advrepro.seeding import generator

    cfg = VardiConfig(
        d=100 if quick else 500,
        n=20 if quick else 100,
        width=100,
        runs=5,
        progress=False,
        dtype="float64",
        max_steps=50 if quick else 300,
        loss_target=1e-300,
        lr0=1e-4,
    )
    x = torch.stack(
        [sphere(cfg.n, cfg.d, math.sqrt(cfg.d), generator(0, "data", r), torch.float64) for r in range(5)]
    )
    y = torch.stack([rademacher((cfg.n,), generator(0, "labels", r), torch.float64) for r in range(5)])
    seconds, (_, record) = timed(lambda: train(cfg, x, y, torch.device("cpu")), repeats=1)
    steps = int(record["steps"].max())
    return [
        {
            "benchmark": "vardi_training",
            "setting": f"d={cfg.d} n={cfg.n} width={cfg.width} runs=5 float64",
            "method": "full-batch lr0/L steps",
            "seconds": round(seconds, 4),
            "steps_per_second": round(steps / seconds, 1),
        }
    ]


BENCHMARKS = (bench_flip_search, bench_vardi_training)


def run_all(quick: bool = False, results_dir: Path = Path("results")) -> pd.DataFrame:
    table = pd.DataFrame([row for bench in BENCHMARKS for row in bench(quick)])
    store.atomic_write_csv(Path(results_dir) / "bench.csv", table)
    return table
