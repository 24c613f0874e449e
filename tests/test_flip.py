"""Ray searches: exact breakpoint search against a brute-force grid; scan + refinement against exact."""

import math

import pytest
import torch

from advrepro.flip import exact_relu_root, refine, scan


def relu_ray(B=4, N=6, k=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(B, N, k, generator=g, dtype=torch.float64)
    v = torch.randn(B, N, k, generator=g, dtype=torch.float64)
    c = torch.randn(B, 1, k, generator=g, dtype=torch.float64)
    c0 = torch.randn(B, 1, generator=g, dtype=torch.float64) * 0.3

    def f_of_t(t):  # t: (B, N, G)
        return c0[..., None] + (
            c[:, :, None, :] * torch.relu(z[:, :, None, :] + t[..., None] * v[:, :, None, :])
        ).sum(-1)

    return z, v, c, c0, f_of_t


def flat(f_of_t, shape):
    """The same ray function in the searches' flat form: (t (R, G), rays (R,)) -> (R, G)."""

    def f_flat(t, rays):
        full = torch.zeros(*shape, t.shape[1], dtype=t.dtype)
        full.view(-1, t.shape[1])[rays] = t
        return f_of_t(full).reshape(-1, t.shape[1])[rays]

    return f_flat


def brute_force_root(f_of_t, f0, t_max, n=200_001):
    """The first sign change on a fine grid, refined linearly between the two grid points."""
    t = torch.linspace(0, t_max, n, dtype=torch.float64).expand(*f0.shape, n)
    values = f_of_t(t)
    crossed = torch.sign(f0)[..., None] * values[..., 1:] <= 0
    j = crossed.to(torch.int64).argmax(-1, keepdim=True)
    t0, t1 = t.gather(-1, j), t.gather(-1, j + 1)
    f_a, f_b = values.gather(-1, j), values.gather(-1, j + 1)
    root = (t0 - f_a * (t1 - t0) / (f_b - f_a)).squeeze(-1)
    return torch.where(crossed.any(-1), root, torch.full_like(root, math.nan))


@pytest.mark.parametrize("seed", range(5))
def test_exact_relu_root_equals_brute_force(seed):
    z, v, c, c0, f_of_t = relu_ray(seed=seed)
    f0 = f_of_t(torch.zeros(*z.shape[:2], 1, dtype=torch.float64)).squeeze(-1)
    exact = exact_relu_root(z, v, c, c0, t_max=5.0)
    brute = brute_force_root(f_of_t, f0, 5.0)
    assert torch.equal(torch.isnan(exact), torch.isnan(brute))
    assert torch.isnan(exact).sum() < exact.numel()  # some rays do flip
    torch.testing.assert_close(exact, brute, atol=1e-7, rtol=0, equal_nan=True)
    found = ~torch.isnan(exact)
    at_root = f_of_t(torch.nan_to_num(exact)[..., None]).squeeze(-1)
    assert at_root[found].abs().max() < 1e-10  # f really vanishes there


def test_exact_root_handles_f0_zero_and_no_crossing():
    z = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    v = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    c = torch.tensor([1.0, 1.0], dtype=torch.float64)
    # f(t) = relu(1 + t) + relu(t − 1) > 0 for all t ≥ 0: never flips
    assert torch.isnan(exact_relu_root(z, v, c, 0.0, 10.0)).all()
    # f(t) = 2 − relu(1 + t): zero at t = 1
    assert exact_relu_root(z[:, :1], v[:, :1], -c[:1], 2.0, 10.0).item() == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(3))
def test_scan_and_refine_agree_with_exact(seed):
    z, v, c, c0, f_of_t = relu_ray(seed=seed)
    f0 = f_of_t(torch.zeros(*z.shape[:2], 1, dtype=torch.float64)).squeeze(-1)
    exact = exact_relu_root(z, v, c, c0, t_max=5.0)
    lo, hi = scan(flat(f_of_t, z.shape[:2]), f0, 0.001, 5.0)
    torch.testing.assert_close(hi, exact, atol=1.001e-3, rtol=0, equal_nan=True)  # the 0.001 walk
    assert (hi >= exact - 1e-12)[~torch.isnan(exact)].all()
    root = refine(flat(f_of_t, z.shape[:2]), f0, lo, hi, rtol=1e-10)
    torch.testing.assert_close(root, exact, atol=1e-8, rtol=0, equal_nan=True)


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_network_ray_search_equals_brute_force_on_the_network(depth, activation):
    """Net.along_ray + scan + refine against f(x + t·u) evaluated directly on a fine grid of t."""
    from tests.test_nets import random_net

    net = random_net(activation, depth, bias=True, B=3, k=12, d=4, seed=depth)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    f, grad, z1 = net.input_gradient(x)
    direction = -torch.sign(f)[..., None] * grad / grad.norm(dim=-1, keepdim=True)
    v, f_of_t = net.along_ray(z1, direction)
    lo, hi = scan(f_of_t, f, 0.01, 3.0)
    root = refine(f_of_t, f, lo, hi, rtol=1e-12)

    def on_network(t):  # (B, N, G): evaluate the network itself at x + t·u
        points = x[None, :, None, :] + t[..., None] * direction[:, :, None, :]
        return torch.stack(
            [
                net.select(torch.tensor([b])).forward(points[b].reshape(-1, 4)).reshape(t.shape[1:])
                for b in range(3)
            ]
        )

    brute = brute_force_root(on_network, f, 3.0, n=30_001)
    assert (~torch.isnan(brute)).sum() > 3
    torch.testing.assert_close(root, brute, atol=1e-6, rtol=0, equal_nan=True)
    if depth == 1 and activation == "relu":
        exact = exact_relu_root(z1, v, net.readout[:, None, :], net.out_bias[:, None], 3.0)
        torch.testing.assert_close(exact, root, atol=1e-9, rtol=0, equal_nan=True)


def test_flip_benchmark_rows_agree_with_the_exact_search():
    """advrepro's walk, the published one-point-at-a-time walk and grid + Illinois land on the exact answer (within
    the walk's step) for the same rays; the rows say so (the benchmark's answers are checked, not only timed)."""
    from advrepro.bench import bench_flip_search

    rows = {row["method"].split(" (")[0].split(",")[0]: row for row in bench_flip_search(quick=True)}
    assert set(rows) == {
        "exact breakpoints",
        "walk 0.001 on cached pre-activations",
        "grid 0.05 + Illinois",
        "walk 0.001",
    }
    for row in rows.values():
        assert row["same_flipped_set"] and row["max_abs_diff_delta"] <= 0.001 + 1e-6
        assert row["seconds_per_ray"] > 0
