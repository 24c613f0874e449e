"""vardi-universal: float64 training to 1e-30, exact universal-perturbation search against brute force."""

import dataclasses
import math

import pytest
import torch

from advrepro.experiments.vardi_universal.runner import (
    VardiConfig,
    init_params,
    log_mean_loss,
    run,
    sample_data,
    train,
    universal_perturbation,
)
from advrepro.nets import Net

CPU = torch.device("cpu")


def data(cfg: VardiConfig):
    return sample_data(cfg, torch.float64)


@pytest.mark.parametrize("loss", ["exp", "logistic"])
def test_log_mean_loss_is_exact_and_never_underflows(loss):
    margins = torch.tensor([[0.5, 3.0, 20.0], [900.0, 1000.0, 1200.0]], dtype=torch.float64)
    got = log_mean_loss(margins, loss)
    ell = torch.exp(-margins[0]) if loss == "exp" else torch.nn.functional.softplus(-margins[0])
    assert got[0].item() == pytest.approx(math.log(ell.mean().item()), rel=1e-12)
    # e^{−900} underflows float64; the log of the mean loss is still −900 − log(3) + log(1 + e^{−100} + …)
    assert got[1].item() == pytest.approx(-900 - math.log(3), rel=1e-12)


def test_training_reaches_1e_minus_30_in_float64():
    cfg = VardiConfig(d=30, n=10, width=40, runs=3, progress=False, dtype="float64")
    x, y = data(cfg)
    net, record = train(cfg, x, y, CPU)
    assert record["converged"].all()
    assert (record["final_log10_loss"] <= -30).all() and record["final_log10_loss"].min() > -300
    margins = y * net.forward(x)
    assert torch.isfinite(margins).all() and (margins > 60).all()  # e^{−m} ≤ 1e-30·n needs m ≳ 69 − log n
    assert all(torch.isfinite(t).all() for t in (*net.weights, net.readout, *net.biases))


def test_training_is_gradient_descent_on_log_loss_and_a_run_stops_at_its_first_step_below_target():
    """Against a plain loop per run (autograd through Net.forward): θ ← θ − lr0·∇log L, stopping a run at the first
    step whose loss is ≤ loss_target, others going on (the target sits between two of run 0's steps)."""
    cfg = VardiConfig(d=8, n=6, width=5, runs=3, progress=False, dtype="float64", lr0=0.05, max_steps=40)
    x, y = data(cfg)

    def log_loss(r: int, W, b, a) -> torch.Tensor:
        return log_mean_loss(y[r] * Net([W[None]], a[None], "relu", [b[None]]).forward(x[r][None]), cfg.loss)

    paths, losses = [], []
    for r in range(cfg.runs):
        theta = [p.clone().requires_grad_() for p in init_params(cfg, r, torch.float64)]
        path, loss = [], []
        for _ in range(cfg.max_steps):
            grads = torch.autograd.grad(log_loss(r, *theta).sum(), theta)
            with torch.no_grad():
                theta = [(p - cfg.lr0 * g).requires_grad_() for p, g in zip(theta, grads, strict=True)]
                path.append([p.detach() for p in theta])
                loss.append(log_loss(r, *theta).item())
        paths.append(path)
        losses.append(loss)
    log_target = (losses[0][14] + losses[0][15]) / 2
    expected = [
        next((s + 1 for s, v in enumerate(loss) if v <= log_target), cfg.max_steps) for loss in losses
    ]
    assert expected[0] == 16 and len(set(expected)) > 1  # the runs stop at different steps
    net, record = train(dataclasses.replace(cfg, loss_target=math.exp(log_target)), x, y, CPU)
    assert record["steps"].tolist() == expected
    assert record["converged"].tolist() == [
        s < cfg.max_steps or losses[r][-1] <= log_target for r, s in enumerate(expected)
    ]
    for r, s in enumerate(expected):
        W, b, a = paths[r][s - 1]
        assert torch.allclose(net.weights[0][r], W, rtol=1e-10, atol=1e-13)
        assert torch.allclose(net.biases[0][r], b, rtol=1e-10, atol=1e-13)
        assert torch.allclose(net.readout[r], a, rtol=1e-10, atol=1e-13)
        assert record["final_log10_loss"][r] == pytest.approx(losses[r][s - 1] / math.log(10), rel=1e-10)


def random_two_layer(R=3, n=7, d=6, k=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    net = Net(
        [torch.randn(R, k, d, generator=g, dtype=torch.float64)],
        torch.randn(R, k, generator=g, dtype=torch.float64),
        "relu",
        [torch.randn(R, k, generator=g, dtype=torch.float64)],
    )
    x = torch.randn(R, n, d, generator=g, dtype=torch.float64)
    y = torch.sign(net.forward(x))  # labels the network gets right, as after training
    return net, x, y


@pytest.mark.parametrize("seed", range(4))
def test_universal_eta_equals_brute_force(seed):
    net, x, y = random_two_layer(seed=seed)
    u = (y[..., None] * x).sum(1)
    t_max = torch.full((3,), 4.0, dtype=torch.float64)
    found = universal_perturbation(net, x, y, t_max)
    etas = torch.linspace(0, 4.0, 40_001, dtype=torch.float64)
    points = (
        x[:, None] - etas[None, :, None, None] * y[:, None, :, None] * u[:, None, None, :]
    )  # (R, E, n, d)
    flipped = torch.stack(
        [
            y[r] * net.select(torch.tensor([r])).forward(points[r].reshape(-1, 6)).reshape(len(etas), -1) < 0
            for r in range(3)
        ]
    )  # (R, E, n)
    for r in range(3):
        per_sample = [
            etas[flipped[r, :, i]].min().item() if flipped[r, :, i].any() else math.inf for i in range(7)
        ]
        expected_star = max(per_sample)
        all_at = flipped[r].all(-1)
        expected_all = etas[all_at].min().item() if all_at.any() else math.nan
        if math.isinf(expected_star):
            assert math.isnan(found["eta_star"][r].item())
            continue
        assert found["eta_star"][r].item() == pytest.approx(expected_star, abs=2e-4)
        assert found["eta_all"][r].item() == pytest.approx(expected_all, abs=2e-4, nan_ok=True)


def test_the_perturbation_flips_the_samples_it_claims():
    cfg = VardiConfig(d=40, n=12, width=50, runs=2, progress=False, dtype="float64")
    rows = run(cfg, CPU)
    x, y = data(cfg)
    net, _ = train(cfg, x, y, CPU)
    u = (y[..., None] * x).sum(1)
    for r, row in rows.iterrows():
        assert row["converged"] and math.isfinite(row["eta_all"])
        eta = row["eta_all"] * (1 + 1e-9)
        f = net.select(torch.tensor([r])).forward(x[r] - eta * y[r][:, None] * u[r])[0]
        assert (y[r] * f < 0).all()  # every sample flipped by the one δ
        before = net.select(torch.tensor([r])).forward(x[r] - 0.999 * row["eta_all"] * y[r][:, None] * u[r])[
            0
        ]
        assert not (y[r] * before < 0).all()  # and no smaller η flips them all (locally)
        assert row["frac_flipped"] <= 1 and row["delta_over_sqrt_d"] == pytest.approx(
            row["eta_star"] * u[r].norm().item() / math.sqrt(cfg.d)
        )


def test_bad_vardi_input_exits_2(cli, results):
    result = cli("run", "vardi-universal", "loss=hinge", f"results_dir={results}")
    assert result.exit_code == 2 and "unknown loss" in result.stderr and not results.exists()
