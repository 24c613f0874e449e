"""Benchmarks (never timed tests): each returns rows measured in one run, so ratios are comparable."""

import dataclasses
import math
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from advrepro import store
from advrepro.concurrency import at_once

CPU = torch.device("cpu")
GROUPS_AT_ONCE = 4  # the CUDA rows' batch groups trained one after another, then at once


def timed(fn: Callable, repeats: int = 3, device: torch.device = CPU):
    """(best wall time over `repeats`, last result); on a GPU the queued kernels are waited for inside the clock."""
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    best, result = math.inf, None
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        result = fn()
        synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result


def published_walk(net, x: torch.Tensor, step: float, t_max: float) -> float:
    """The published procedure for one point (Wang et al.'s ntk_normal.py): ∇f by autograd, then steps of `step` in
    ‖δ‖ along −sign f·∇f/‖∇f‖, a full forward pass at each, until the sign flips (NaN if not by t_max)."""
    x = x.clone().requires_grad_(True)
    f = net.forward(x[None])[0, 0]
    (grad,) = torch.autograd.grad(f, x)
    u = -torch.sign(f) * grad / grad.norm()
    with torch.no_grad():
        for j in range(1, int(round(t_max / step)) + 1):
            if torch.sign(net.forward((x + j * step * u)[None])[0, 0]) != torch.sign(f):
                return j * step
    return math.nan


def bench_flip_search(quick: bool = False) -> list[dict]:
    """Exact breakpoint search against the 0.001 walk in ‖δ‖ (up to 5), in advrepro's form (all rays at once, each
    trial O(width) from cached pre-activations) and in the published form (one point at a time, a full forward
    pass per trial, on a sample of the rays), and against grid + Illinois refinement; per-ray times in one run."""
    from advrepro.experiments.random_net.runner import RandomNetConfig, sample_networks
    from advrepro.flip import bracketed_flip, exact_flip, gradient_ray, walk_flip
    from advrepro.nets import Net, sphere
    from advrepro.seeding import generator

    cfg = RandomNetConfig(
        d=100 if quick else 1000, width=200 if quick else 1000, n_networks=4 if quick else 20
    )
    net = sample_networks(cfg, 0, cfg.n_networks, torch.float32)
    x = sphere(cfg.n_inputs, cfg.d, math.sqrt(cfg.d), generator(0, "inputs"))
    ray = gradient_ray(net, x, unit=True)  # t = ‖δ‖
    t_max, rays = 5.0, ray.f.numel()
    methods = {
        "exact breakpoints": lambda: exact_flip(net, ray, t_max),
        "walk 0.001 on cached pre-activations (advrepro's walk, O(width) per trial)": lambda: walk_flip(
            ray, 0.001, t_max
        ),
        "grid 0.05 + Illinois": lambda: bracketed_flip(ray, 0.05, t_max, rtol=1e-6),
    }
    results = {name: (*timed(fn), rays) for name, fn in methods.items()}
    first = Net([net.weights[0][:1]], net.readout[:1])  # network 0, the sampled points of its rays
    sample = 2 if quick else 5
    results[
        f"walk 0.001, one point at a time, full forward passes (the published procedure; {sample} rays)"
    ] = (
        *timed(
            lambda: torch.tensor([published_walk(first, x[i], 0.001, t_max) for i in range(sample)]),
            repeats=1,
        ),
        sample,
    )
    base_time, base, _ = results["exact breakpoints"]
    per_ray, reference = base_time / rays, base.reshape(-1)  # network 0's rays come first
    return [
        {
            "benchmark": "flip_search",
            "setting": f"d={cfg.d} width={cfg.width} rays={rays}",
            "method": name,
            "seconds": round(seconds, 4),
            "seconds_per_ray": float(f"{seconds / count:.3g}"),
            "ratio_to_exact": round(seconds / count / per_ray, 2),
            "max_abs_diff_delta": float((flat - reference[: flat.numel()]).abs().nan_to_num(0).max()),
            "same_flipped_set": bool(torch.equal(torch.isnan(flat), torch.isnan(reference[: flat.numel()]))),
        }
        for name, (seconds, answer, count) in results.items()
        for flat in [answer.reshape(-1)]
    ]


def bench_vardi_training(quick: bool = False) -> list[dict]:
    """Training steps per second of vardi-universal (all runs batched, float64, full batch)."""
    from advrepro.experiments.vardi_universal.runner import VardiConfig, sample_data, train

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


def matmul_peak(device: torch.device = CPU, dtype=torch.float32) -> float:
    """The device's measured fp32 matmul rate (FLOP/s), in the same run: the ceiling of the training benchmarks."""
    size = 2048 if device.type == "cpu" else 8192
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    seconds, _ = timed(lambda: a @ b, repeats=5, device=device)
    return 2 * size**3 / seconds


def bench_lazy_training(quick: bool = False, device: torch.device = CPU) -> list[dict]:
    """lazy-sgd's SGD step at d=784, width=10000, batch 64: examples/s and the share of the matmul peak."""
    from advrepro.lazy import init_lazy_nets, sgd_step

    d, width, batch, steps = (196, 1000, 64, 20) if quick else (784, 10_000, 64, 50)
    nets = init_lazy_nets(0, 1, d, width, True, torch.float32, device, trainable=False)
    x = torch.rand(1, batch, d, device=device)
    y = torch.sign(torch.randn(1, batch, device=device))
    active = torch.ones(1, dtype=torch.bool, device=device)
    step = lambda: [sgd_step(nets, x, y, 0.1, active) for _ in range(steps)]
    seconds, _ = timed(step, repeats=2, device=device)
    flops = steps * 2 * (2 * batch * d * width)  # forward Wx and the in-place update bmm dominate
    peak = matmul_peak(device)
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


def bench_pgd(quick: bool = False, device: torch.device = CPU) -> list[dict]:
    """ℓ2 PGD steps per second on the full binary-MNIST-sized test set (2,115 points) at d=784, width=1000."""
    from advrepro.experiments.lazy_pgd.runner import LazyPGDConfig, attack
    from advrepro.lazy import init_lazy_nets

    n, d, width, steps = (500, 196, 200, 5) if quick else (2_115, 784, 1_000, 20)
    net = init_lazy_nets(0, 1, d, width, True, torch.float32, device, trainable=False).net()
    x = torch.rand(1, n, d, device=device)
    x = x / x.norm(dim=-1, keepdim=True)
    y = torch.sign(torch.randn(1, n, device=device))
    cfg = LazyPGDConfig(d=d, width=width, eps=0.2, pgd_steps=steps)
    seconds, _ = timed(lambda: attack(net, x, y, cfg), repeats=2, device=device)
    return [
        {
            "benchmark": "pgd",
            "setting": f"test points={n} d={d} width={width}",
            "method": "l2 PGD (closed-form ∇ₓ)",
            "seconds": round(seconds, 4),
            "pgd_steps_per_second": round(steps / seconds, 1),
        }
    ]


def bench_adversarial_training(quick: bool = False, device: torch.device = CPU) -> list[dict]:
    """lazy-pgd's Algorithm 1 epoch for the models of one batch (cells differing in ε and R): trained as one batched
    model, against a plain loop that trains each model alone; PGD steps × examples per second, PGD sub-steps (one
    attack step on one minibatch of every model in the call) per second, and the share of the matmul peak measured
    in the same run. On CUDA also the batched model with its minibatch step replayed as a CUDA graph (the default)
    against eager launches, at minibatch 128 and at the code's 32, and GROUPS_AT_ONCE batch groups trained one after
    another against at once, each in a thread on its own stream (groups_at_once); their ratio_to_loop is per model."""
    from advrepro.experiments.lazy_pgd.runner import Algorithm1, LazyPGDConfig, PerModel
    from advrepro.lazy import concat, data_orders, init_lazy_nets

    d, width, n, models = (196, 200, 256, 4) if quick else (784, 1000, 1024, 8)
    cfgs = [
        LazyPGDConfig(
            d=d, width=width, eps=eps, radius=radius, pgd_steps=10, lr=1.0, batch_size=128, progress=False
        )
        for eps in (0.1, 0.2)
        for radius in torch.linspace(0.1, 1.0, models // 2).tolist()
    ]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g).abs()
    x = (x / x.norm(dim=-1, keepdim=True)).to(device)
    y = torch.sign(torch.randn(n, generator=g)).to(device)

    def epochs(*groups: list[LazyPGDConfig], workers: int = 1):
        """One epoch of each group's trainer per call, `workers` groups at once (advrepro.concurrency); the trainers
        (and on CUDA their captured graphs) persist across calls, so the best of `timed`'s repeats is a steady-state
        epoch."""
        trainers = []
        for group in groups:
            nets = concat(
                [init_lazy_nets(c.seed, 1, d, width, True, x.dtype, device, trainable=False) for c in group]
            )
            order = data_orders([(c.seed, 0) for c in group], n, device)
            trainer = Algorithm1(nets, x, y, group[0], PerModel.of(group, x.dtype, device))
            trainers.append(partial(trainer.epoch, order))
        return lambda: list(at_once(trainers, workers, device))

    epoch_seconds = lambda *groups, repeats=2, workers=1: timed(
        epochs(*groups, workers=workers), repeats=repeats, device=device
    )[0]
    small = [dataclasses.replace(c, batch_size=32) for c in cfgs]
    plain = lambda group: [
        [dataclasses.replace(c, cuda_graphs=False)] for c in group
    ]  # one eager model a call
    looped = epoch_seconds(*plain(cfgs))
    # (method, seconds, attack calls per minibatch, models trained, minibatch)
    methods = [
        ("one batched model (lazy-pgd)", epoch_seconds(cfgs), 1, len(cfgs), 128),
        ("per-model loop", looped, len(cfgs), len(cfgs), 128),
        (
            "per-model loop, minibatch 32 (the code's)",
            epoch_seconds(*plain(small), repeats=1),
            len(cfgs),
            len(cfgs),
            32,
        ),
    ]
    if device.type == "cuda":  # the minibatch step replayed as a CUDA graph (cuda_graphs, the default) or not
        eager = [dataclasses.replace(c, cuda_graphs=False) for c in cfgs]
        eager_32 = [dataclasses.replace(c, cuda_graphs=False) for c in small]
        # batch groups of the same size, trained one after another or at once
        groups = [small] * GROUPS_AT_ONCE
        methods += [
            ("one batched model, eager (no CUDA graph)", epoch_seconds(eager), 1, len(cfgs), 128),
            ("one batched model, minibatch 32, CUDA graph", epoch_seconds(small), 1, len(cfgs), 32),
            ("one batched model, minibatch 32, eager", epoch_seconds(eager_32), 1, len(cfgs), 32),
            (
                f"{len(groups)} batch groups one after another, minibatch 32, CUDA graph",
                epoch_seconds(*groups),
                len(groups),
                len(groups) * len(cfgs),
                32,
            ),
            (
                f"{len(groups)} batch groups at once (groups_at_once={len(groups)}), minibatch 32, CUDA graph",
                epoch_seconds(*groups, workers=len(groups)),
                len(groups),
                len(groups) * len(cfgs),
                32,
            ),
        ]
    steps = cfgs[0].pgd_steps
    # z and ∇ₓf per PGD step; SGD forward + update; count
    flops_per_model = n * d * width * (4 * (steps + 1) + 2)
    peak = matmul_peak(device)
    return [
        {
            "benchmark": "adversarial_training",
            "setting": f"{len(cfgs)} models d={d} width={width} n={n} pgd_steps={steps} float32 {device.type}",
            "method": method if "32" in method else f"{method}, minibatch 128",
            "seconds": round(seconds, 4),
            "pgd_step_examples_per_second": round(trained * n * steps / seconds, 1),
            "pgd_substeps_per_second": round(calls * math.ceil(n / batch_size) * steps / seconds, 1),
            "share_of_matmul_peak": round(trained * flops_per_model / seconds / peak, 3),
            "matmul_peak_gflops": round(peak / 1e9, 1),
            "ratio_to_loop": round(looped / seconds * trained / len(cfgs), 2),
        }
        for method, seconds, calls, trained, batch_size in methods
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
    from advrepro.experiments.schmidt_models.runner import SchmidtConfig, gaussian_statistics

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


ON_DEVICE = (bench_lazy_training, bench_pgd, bench_adversarial_training)  # the rest measure CPU algorithms
BENCHMARKS = (
    bench_flip_search,
    bench_vardi_training,
    bench_lazy_training,
    bench_pgd,
    bench_adversarial_training,
    bench_separation,
    bench_schmidt,
)


def run_all(
    quick: bool = False, results_dir: Path = Path("results"), device: torch.device = CPU
) -> pd.DataFrame:
    """Every benchmark on the CPU (bench.csv), or the training and PGD benchmarks on another device
    (bench-DEVICE.csv), each with the device's matmul ceiling measured in the same run."""
    on_cpu = device.type == "cpu"
    rows = []
    benchmarks = BENCHMARKS if on_cpu else ON_DEVICE
    with (
        logging_redirect_tqdm(),
        tqdm(benchmarks, desc="advrepro bench", unit="benchmark", disable=None) as bars,
    ):
        for bench in bars:
            bars.set_postfix_str(bench.__name__.removeprefix("bench_"))
            rows += bench(quick) if on_cpu else bench(quick, device)
    table = pd.DataFrame(rows)
    name = "bench.csv" if device.type == "cpu" else f"bench-{device.type}.csv"
    store.atomic_write_csv(Path(results_dir) / name, table)
    return table
