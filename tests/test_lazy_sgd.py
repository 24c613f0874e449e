"""lazy-sgd: closed-form SGD step, the lazy stop rule, exact flip versus the code's walk, CLI end to end."""

import dataclasses
import math

import pandas as pd
import pytest
import torch

from advrepro.experiments.lazy_sgd.claims import per_run_means
from advrepro.experiments.lazy_sgd.runner import LazySGDConfig, flip_steps, measure, train
from advrepro.lazy import init_lazy_nets, logistic_loss, sgd_step
from advrepro.nets import sphere
from advrepro.seeding import generator
from tests.helpers import assert_columns_documented, outputs_of


def toy_data(n=96, d=9, seed=0):
    x = sphere(n, d, 1.0, generator(seed, "toy"), torch.float64).abs()
    y = torch.where(x[:, 0] > x[:, 1], 1.0, -1.0).to(torch.float64)
    return x, y


@pytest.mark.parametrize("bias", [True, False])
def test_closed_form_sgd_step_equals_autograd(bias):
    x, y = toy_data()
    nets = init_lazy_nets(0, 3, 9, 20, bias, torch.float64, "cpu", trainable=True)
    idx = torch.stack([torch.arange(16) + 16 * r for r in range(3)])
    loss = logistic_loss(y[idx] * nets.net().forward(x[idx])).sum()
    params = [p for p in (nets.W, nets.b) if p is not None]
    expected = [p.detach() - 0.1 * g for p, g in zip(params, torch.autograd.grad(loss, params), strict=True)]
    moved = sgd_step(nets, x[idx], y[idx], 0.1, torch.ones(3, dtype=torch.bool))
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p.detach(), e)
    assert (moved > 0).all()
    unbounded = init_lazy_nets(0, 3, 9, 20, bias, torch.float64, "cpu", trainable=False)
    assert (
        sgd_step(unbounded, x[idx], y[idx], 0.1, with_bound=False) is None
    )  # lazy-pgd's step: the same weights
    assert all(torch.equal(p.detach(), q) for p, q in zip(params, (unbounded.W, unbounded.b), strict=False))


def replay_exit(cfg: LazySGDConfig, x, y) -> tuple[int, float]:
    """Plain SGD for one run with the exact (2,∞) distance after every step (or epoch): the first step outside."""
    nets = init_lazy_nets(cfg.seed, 1, x.shape[1], cfg.width, cfg.bias, x.dtype, "cpu", trainable=False)
    order = torch.randperm(len(y), generator=generator(cfg.seed, "shuffle", 0))[None]
    radius, steps = cfg.C0 / math.sqrt(cfg.width), 0
    for _ in range(cfg.max_epochs):
        for start in range(0, len(y), cfg.batch_size):
            idx = order[:, start : start + cfg.batch_size]
            sgd_step(nets, x[idx], y[idx], cfg.lr, torch.ones(1, dtype=torch.bool))
            steps += 1
            if cfg.stop == "per_step" and nets.distance()[0] > radius:
                return steps, nets.distance()[0].item()
        if cfg.stop == "per_epoch" and nets.distance()[0] > radius:
            return steps, nets.distance()[0].item()
    return steps, nets.distance()[0].item()


@pytest.mark.parametrize("stop", ["per_step", "per_epoch"])
def test_lazy_stop_rule_keeps_the_first_model_outside_the_ball(stop):
    x, y = toy_data()
    cfg = LazySGDConfig(
        d=9, width=30, C0=0.5, lr=0.5, batch_size=8, max_epochs=50, stop=stop, runs=1, progress=False
    )
    nets, record = train(cfg, x, y, "cpu")
    steps, distance = replay_exit(cfg, x, y)
    assert record["left_ball"][0] and record["steps"][0] == steps
    assert record["final_distance"][0] == pytest.approx(distance, rel=1e-9)
    assert record["final_distance"][0] > record["radius"][0]
    if stop == "per_epoch":
        assert steps % (len(y) // cfg.batch_size) == 0


@pytest.mark.parametrize("stop", ["per_step", "per_epoch"])
def test_keep_last_inside_keeps_the_model_before_the_exit(stop):
    x, y = toy_data()
    cfg = LazySGDConfig(
        d=9, width=30, C0=0.5, lr=0.5, batch_size=8, max_epochs=50, stop=stop, runs=2, progress=False
    )
    _, first = train(cfg, x, y, "cpu")
    _, last = train(dataclasses.replace(cfg, keep="last_inside"), x, y, "cpu")
    assert first["left_ball"].all() and last["left_ball"].all()
    assert (first["final_distance"] > first["radius"]).all() and (
        last["final_distance"] <= last["radius"]
    ).all()
    undone = 1 if stop == "per_step" else len(y) // cfg.batch_size  # one step, or the whole exit epoch
    assert (last["steps"] == first["steps"] - undone).all()


def test_misclassified_zero_counts_every_point_with_delta_zero():
    x, y = toy_data(n=300)
    cfg = LazySGDConfig(
        d=9, width=40, C0=0.3, lr=0.5, batch_size=16, max_epochs=1, runs=2, progress=False, dtype="float64"
    )
    nets, _ = train(cfg, x, y, "cpu")
    with torch.no_grad():
        out = {
            m: measure(nets.net(), nets.initial().net(), x, y, dataclasses.replace(cfg, misclassified=m))
            for m in ("exclude", "zero")
        }
    wrong = ~out["exclude"]["correct"]
    assert wrong.any() and (~wrong).any()
    assert out["exclude"]["delta_norm"][wrong].isnan().all() and not out["exclude"]["in_means"][wrong].any()
    assert (out["zero"]["delta_norm"][wrong] == 0).all() and out["zero"]["in_means"].all()
    torch.testing.assert_close(out["zero"]["grad_norm"], out["exclude"]["grad_norm"])


def test_per_run_means_average_only_the_points_in_the_means():
    rows = pd.DataFrame(
        {
            "d": 25,
            "run": 0,
            "in_means": [True, True, False],
            "f_abs": 1.0,
            "grad_norm": [1.0, 3.0, 1000.0],
            "grad_along_x": [1.0, -1.0, 5.0],
            "init_grad_perp": [1.0, 2.0, 0.0],
            "eta": [0.1, 0.3, float("nan")],
            "delta_over_x": [0.0, 0.2, float("nan")],
        }
    )
    means = per_run_means(rows, ["d"])
    assert means.loc[0, ["grad_norm", "eta", "delta_over_x"]].tolist() == pytest.approx([2.0, 0.2, 0.1])
    # what training added, c = ‖∇f‖² − (x̂·∇f)² − ‖∇⊥f₀‖², by hand: ((1 − 1 − 1) + (9 − 1 − 4)) / 2
    assert means.loc[0, "grad_offset"] == pytest.approx(1.5)


@pytest.mark.parametrize("bias", [True, False])
def test_grad_along_x_is_autograds_and_without_bias_f_over_norm(bias):
    """x̂·∇ₓf against autograd; without biases f is positively homogeneous, so x·∇f = f (Euler)."""
    x, y = toy_data(n=20)
    x = 3 * x  # ‖x‖ = 3: raw pixels are not on the unit sphere
    nets = init_lazy_nets(0, 2, 9, 30, bias, torch.float64, "cpu", trainable=False)
    cfg = LazySGDConfig(d=9, width=30, runs=2, bias=bias, progress=False, dtype="float64")
    with torch.no_grad():
        out = flip_steps(nets.net(), x, cfg)
    inputs = x.expand(2, -1, -1).clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(nets.net().forward(inputs).sum(), inputs)
    torch.testing.assert_close(out["grad_along_x"], (grad * x).sum(-1) / 3)
    if not bias:
        torch.testing.assert_close(out["grad_along_x"], out["f"] / 3)
    else:  # the biases break homogeneity
        assert not torch.allclose(out["grad_along_x"], out["f"] / 3)


def test_finite_d_law_at_initialisation():
    """docs §2: at initialisation E[‖∇f‖² − (x̂·∇f)²] = (d − 1)/2, with or without biases and for any ‖x‖ (the part
    of each w_s orthogonal to x is independent of its unit's activation), against 400 random networks."""
    d, nets_count = 49, 400
    x = 4 * sphere(10, d, 1.0, generator(1, "toy"), torch.float64).abs()
    for bias in (True, False):
        nets = init_lazy_nets(3, nets_count, d, 50, bias, torch.float64, "cpu", trainable=False)
        cfg = LazySGDConfig(d=d, width=50, runs=nets_count, bias=bias, progress=False, dtype="float64")
        with torch.no_grad():
            out = flip_steps(nets.net(), x, cfg)
        perpendicular = (out["grad_norm"] ** 2 - out["grad_along_x"] ** 2).mean(-1)  # per network
        error = perpendicular.std() / math.sqrt(nets_count)
        assert abs(perpendicular.mean() - (d - 1) / 2) < 4 * error
        assert 4 * error < 0.05 * (d - 1) / 2  # the test's power: a law 5% off would fail it


def test_runs_that_stay_inside_stop_at_max_epochs():
    x, y = toy_data()
    cfg = LazySGDConfig(d=9, width=30, C0=1e6, lr=0.1, batch_size=32, max_epochs=2, runs=2, progress=False)
    _, record = train(cfg, x, y, "cpu")
    assert not record["left_ball"].any() and (record["epochs"] == 2).all() and (record["steps"] == 6).all()


def test_exact_flip_agrees_with_the_codes_walk_within_its_step():
    x, y = toy_data(n=200)
    cfg = LazySGDConfig(
        d=9, width=40, C0=5.0, lr=0.5, batch_size=16, max_epochs=20, runs=2, progress=False, dtype="float64"
    )
    nets, _ = train(cfg, x, y, "cpu")
    net = nets.net()
    with torch.no_grad():
        exact = flip_steps(net, x, cfg)["delta"]
        walk = flip_steps(net, x, LazySGDConfig(**{**cfg.__dict__, "search": "walk"}))["delta"]
    found = ~torch.isnan(exact)
    assert found.float().mean() > 0.9
    assert torch.equal(found, ~torch.isnan(walk))
    assert ((walk - exact)[found] >= -1e-12).all() and ((walk - exact)[found] <= 0.001 + 1e-9).all()


def test_lazy_sgd_cli_end_to_end(cli, results, tmp_path, mnist_smoke):
    args = (
        "run",
        "lazy-sgd",
        *mnist_smoke,
        "d=25",
        "width=32",
        "C0=2.0,10.0",
        "runs=2",
        "max_epochs=2",
        "normalize=false",
        "bias=true",
    )
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    import pandas as pd

    out = outputs_of(result, "lazy-sgd")
    assert_columns_documented(out, "lazy-sgd")
    rows = pd.read_csv(out / "lazy-sgd.csv")
    assert len(rows) == 2 * 2 * 2_115 and set(rows["C0"]) == {2.0, 10.0}
    assert (out / "figures" / "lazy-sgd_fig3.png").is_file()
    kept = rows[rows["correct"]]
    assert ((kept["eta"] * kept["grad_norm"] - kept["delta_norm"]).abs() < 1e-5).all()
    assert rows.loc[~rows["correct"], "eta"].isna().all()  # misclassified: out of the means by default
    assert (rows["in_means"] == rows["correct"]).all() and not (rows["flipped"] & ~rows["correct"]).any()
