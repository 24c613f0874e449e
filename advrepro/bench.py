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
    from advrepro.experiments.vardi_universal import VardiConfig, sample_data, train

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
    x, y = sample_data(cfg, torch.float64)
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


def matmul_peak(dtype=torch.float32, size: int = 2048) -> float:
    """This machine's measured matmul rate (FLOP/s): the yardstick for the training benchmarks."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    seconds, _ = timed(lambda: a @ b, repeats=5)
    return 2 * size**3 / seconds


def bench_lazy_training(quick: bool = False) -> list[dict]:
    """lazy-sgd's SGD step at d=784, width=10000, batch 64: examples/s and the share of the matmul peak."""
    from advrepro.experiments.lazy_sgd import sgd_step
    from advrepro.lazy import init_lazy_nets

    d, width, batch, steps = (196, 1000, 64, 20) if quick else (784, 10_000, 64, 50)
    nets = init_lazy_nets(0, 1, d, width, True, torch.float32, torch.device("cpu"), trainable=False)
    x = torch.rand(1, batch, d)
    y = torch.sign(torch.randn(1, batch))
    active = torch.ones(1, dtype=torch.bool)
    seconds, _ = timed(lambda: [sgd_step(nets, x, y, 0.1, active) for _ in range(steps)], repeats=2)
    flops = steps * 2 * (2 * batch * d * width)  # forward Wx and the in-place update bmm dominate
    peak = matmul_peak()
    return [
        {
            "benchmark": "lazy_training",
            "setting": f"d={d} width={width} batch={batch} float32",
            "method": "closed-form SGD step",
            "seconds": round(seconds, 4),
            "examples_per_second": round(steps * batch / seconds, 1),
            "share_of_matmul_peak": round(flops / seconds / peak, 3),
            "matmul_peak_gflops": round(peak / 1e9, 1),
        }
    ]


def bench_pgd(quick: bool = False) -> list[dict]:
    """ℓ2 PGD steps per second on the full binary-MNIST-sized test set (2,115 points) at d=784, width=1000."""
    from advrepro.experiments.lazy_pgd import LazyPGDConfig, attack
    from advrepro.lazy import init_lazy_nets

    n, d, width, steps = (500, 196, 200, 5) if quick else (2_115, 784, 1_000, 20)
    net = init_lazy_nets(0, 1, d, width, True, torch.float32, torch.device("cpu"), trainable=False).net()
    x = torch.rand(1, n, d)
    x = x / x.norm(dim=-1, keepdim=True)
    y = torch.sign(torch.randn(1, n))
    cfg = LazyPGDConfig(d=d, width=width, eps=0.2, pgd_steps=steps)
    seconds, _ = timed(lambda: attack(net, x, y, cfg), repeats=2)
    return [
        {
            "benchmark": "pgd",
            "setting": f"test points={n} d={d} width={width}",
            "method": "l2 PGD (closed-form ∇ₓ)",
            "seconds": round(seconds, 4),
            "pgd_steps_per_second": round(steps / seconds, 1),
        }
    ]


def bench_separation(quick: bool = False) -> list[dict]:
    """Exact nearest other-class ℓ∞ distances on MNIST digits: the bit-level pruned search of yang-separation against
    brute-force torch.cdist(p=inf), same queries and references, in one run (byte-equal answers checked)."""
    from advrepro.data.images import load_images
    from advrepro.separation import nearest_linf

    data = load_images("mnist", "data", download=False)
    queries, refs = (200, 2_000) if quick else (1_000, 20_000)
    q, ql = data["test_x"][:queries], data["test_y"][:queries]
    r, rl = data["train_x"][:refs], data["train_y"][:refs]

    def brute():
        distances = torch.cdist(q.float(), r.float(), p=float("inf"))
        distances[ql[:, None] == rl[None, :]] = torch.inf
        return distances.min(1).values

    pruned_seconds, (best, _, evaluated) = timed(lambda: nearest_linf(q, ql, r, rl), repeats=1)
    brute_seconds, expected = timed(brute, repeats=1)
    same = bool(torch.equal(best.float(), expected))
    setting = f"MNIST test queries={queries} train refs={refs}"
    return [
        {
            "benchmark": "separation",
            "setting": setting,
            "method": "bit-level proofs + exact check (ours)",
            "seconds": round(pruned_seconds, 4),
            "ratio_to_brute_force": round(pruned_seconds / brute_seconds, 3),
            "exact_pairs_share": round(evaluated / (queries * refs), 4),
            "same_answer": same,
        },
        {
            "benchmark": "separation",
            "setting": setting,
            "method": "torch.cdist(p=inf), every pair",
            "seconds": round(brute_seconds, 4),
            "ratio_to_brute_force": 1.0,
            "exact_pairs_share": 1.0,
            "same_answer": same,
        },
    ]


def bench_schmidt(quick: bool = False) -> list[dict]:
    """Gaussian-model errors of ŵ for 40 training-set sizes from one O(d log d) draw, against drawing ŵ = Σ y_i x_i
    explicitly for each n (O(n·d) per size), at one d, in one run."""
    from advrepro.experiments.schmidt_models import SchmidtConfig, gaussian_statistics

    d = 10_000 if quick else 100_000
    cfg = SchmidtConfig(d=d, eps=0.5, draws=1, progress=False)
    ns = cfg.n_grid
    closed_seconds, _ = timed(lambda: gaussian_statistics(cfg, ns, torch.device("cpu")), repeats=3)

    def explicit():
        g = torch.Generator().manual_seed(0)
        out = []
        for n in ns.tolist():
            y = torch.randint(0, 2, (n,), generator=g).double() * 2 - 1
            x = y[:, None] + cfg.sigma * torch.randn(n, d, generator=g, dtype=torch.float64)
            w = (y[:, None] * x).sum(0)
            out.append((w.sum(), w.norm(), w.abs().sum()))
        return out

    explicit_seconds, _ = timed(explicit, repeats=1)
    setting = f"d={d} n up to {ns.max()} ({len(ns)} sizes), one draw"
    return [
        {
            "benchmark": "schmidt",
            "setting": setting,
            "method": method,
            "seconds": round(seconds, 4),
            "ratio_to_closed_form": round(seconds / closed_seconds, 2),
        }
        for method, seconds in (
            ("closed form, one g per draw (ours)", closed_seconds),
            ("explicit training sets", explicit_seconds),
        )
    ]


BENCHMARKS = (
    bench_flip_search,
    bench_vardi_training,
    bench_lazy_training,
    bench_pgd,
    bench_separation,
    bench_schmidt,
)


def run_all(quick: bool = False, results_dir: Path = Path("results")) -> pd.DataFrame:
    table = pd.DataFrame([row for bench in BENCHMARKS for row in bench(quick)])
    store.atomic_write_csv(Path(results_dir) / "bench.csv", table)
    return table
