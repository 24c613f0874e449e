"""zhu-stability: the closed-form stability against sampling, the ball moment, the init table, κ, the CLI."""

import dataclasses
import math

import pandas as pd
import pytest
import torch

from advrepro.experiments.zhu_stability.runner import (
    ZhuConfig,
    ball_abs_moment,
    init_networks,
    lazy_ratio,
    stability,
)
from advrepro.nets import Net, sphere
from advrepro.seeding import generator


@pytest.mark.parametrize(("p", "exact"), [(1, 0.5), (2, 4 / (3 * math.pi)), (3, 3 / 8)])
def test_ball_moment_is_exact_in_low_dimension(p, exact):
    assert ball_abs_moment(p) == pytest.approx(exact, rel=1e-12)


def test_ball_moment_matches_sampling_and_its_large_p_limit():
    g = generator(0, "test")
    p = 49
    direction = sphere(200_000, p, 1.0, g, torch.float64)
    radius = torch.rand(200_000, 1, generator=g, dtype=torch.float64) ** (1 / p)  # uniform in the ball
    sampled = (direction * radius)[:, 0].abs().mean().item()
    assert sampled == pytest.approx(ball_abs_moment(p), rel=0.01)
    assert ball_abs_moment(784) == pytest.approx(math.sqrt(2 / (math.pi * 784)), rel=0.01)


def test_closed_form_stability_equals_the_sampled_expectation_over_the_ball():
    """P(f, ε)/ε = E|∇f(a)ᵀ(a − â)|/ε with â uniform in the ε-ball, sampled, against ‖∇f(a)‖·E|u₁|."""
    cfg = ZhuConfig(p=16, width=12, depth=4, init="he", networks=2, seed=3)
    net = init_networks(cfg, 2, torch.float64, "cpu")
    a = sphere(3, 16, 1.0, generator(0, "a"), torch.float64)
    closed = stability(net, a)["p_over_eps"]  # (networks, inputs)
    g, eps, samples = generator(1, "ball"), 0.3, 100_000
    u = sphere(samples, 16, 1.0, g, torch.float64) * torch.rand(
        samples, 1, generator=g, dtype=torch.float64
    ) ** (1 / 16)
    _, grad, _ = net.input_gradient(a)
    sampled = (grad @ (eps * u).T).abs().mean(-1) / eps
    torch.testing.assert_close(sampled, closed, rtol=0.02, atol=0)


def test_input_gradient_of_a_bias_free_deep_net_equals_autograd():
    net = init_networks(ZhuConfig(p=9, width=7, depth=5, init="lecun"), 2, torch.float64, "cpu")
    a = sphere(4, 9, 1.0, generator(0, "a"), torch.float64).requires_grad_(True)
    f, grad, _ = net.input_gradient(a)
    (auto,) = torch.autograd.grad(net.forward(a).sum(), a)  # each input's f depends on it alone
    torch.testing.assert_close(grad.sum(0), auto)


@pytest.mark.parametrize(
    ("init", "expected"),
    [("lecun", (1 / 100, 1 / 20, 1 / 20)), ("he", (2 / 100, 2 / 20, 2 / 20)), ("ntk", (2 / 20, 2 / 20, 1.0))],
)
def test_the_init_table_and_one_override(init, expected):
    cfg = ZhuConfig(p=100, width=20, init=init)
    assert cfg.variances() == pytest.approx(expected)
    xavier = ZhuConfig(p=100, width=20, init=init, beta1_sq=2 / 120)
    assert xavier.variances()[0] == pytest.approx(2 / 120) and xavier.variances()[1:] == pytest.approx(
        expected[1:]
    )
    small = ZhuConfig(p=100, width=20, init="small", c=1.75)
    assert small.variances() == pytest.approx((20**-3.5,) * 3)


def test_sampled_weights_have_the_init_variances():
    cfg = ZhuConfig(p=400, width=300, depth=3, init="ntk")
    net = init_networks(cfg, 1, torch.float64, "cpu")
    beta1_sq, beta_sq, betaL_sq = cfg.variances()
    assert net.weights[0].var().item() == pytest.approx(beta1_sq, rel=0.02)
    assert net.weights[1].var().item() == pytest.approx(beta_sq, rel=0.02)
    assert net.readout.var().item() == pytest.approx(betaL_sq, rel=0.2)


def test_lazy_ratio_is_the_relative_frobenius_movement():
    start = init_networks(ZhuConfig(p=9, width=7, depth=3), 2, torch.float64, "cpu")
    assert torch.equal(lazy_ratio(start, start), torch.zeros(2, dtype=torch.float64))
    doubled = Net([2 * w for w in start.weights], 2 * start.readout)
    torch.testing.assert_close(lazy_ratio(doubled, start), torch.ones(2, dtype=torch.float64))


def test_zhu_smoke_figure_and_claims_and_a_bad_depth(smoke_runs, cli, results):
    smoke, _, _, output = smoke_runs("zhu-stability")
    assert (smoke / "figures" / "zhu-stability_width.png").is_file()
    assert "value-he-init" in output and "depth-lecun-init" in output
    bad = cli("run", "zhu-stability", "depth=1", f"results_dir={results}")
    assert bad.exit_code == 2 and "depth counts weight matrices" in bad.stderr


def test_a_trained_cell_with_fewer_than_three_trained_networks_supports_no_trend():
    from advrepro.experiments.zhu_stability.claims import claims
    from tests.helpers import zhu_rows

    rows, summary = zhu_rows(networks=3)
    thin = (rows["regime"] == "trained") & (rows["init"] == "lecun") & (rows["width"] == 256)
    rows.loc[thin & (rows["network"] > 0), "trained"] = False  # one trained network left at m = 256
    table = pd.DataFrame(claims(rows, summary)).set_index("id")
    assert "width 256 (1 trained) left out" in table.loc["width-lecun-trained", "reason"]
    assert table.loc["width-lecun-trained", "verdict"] == "not measured"  # 1024 alone: no slope


def test_each_network_stops_at_the_loss_target_as_if_trained_alone_for_its_epochs():
    """The common endpoint: a network that reached loss_target no longer moves, so its weights are those of a fixed
    run of its own epochs_run epochs; a target no network reaches trains every one for max_epochs."""
    from advrepro.experiments.zhu_stability.runner import train, training_loss

    g = generator(0, "data")
    x = sphere(96, 9, 1.0, g, torch.float64)
    y = torch.where(x[:, 0] > 0, 1.0, -1.0).to(torch.float64)
    cfg = ZhuConfig(
        p=9, width=8, depth=3, init="he", networks=3, lr=0.5, batch_size=16, seed=2, progress=False
    )
    start = init_networks(cfg, 3, torch.float64, "cpu")
    free, _ = train(dataclasses.replace(cfg, loss_target=0, max_epochs=12), start, x, y)
    target = float(training_loss(free, x, y).median())  # reached by some networks, not all, within the cap
    stopped, epochs = train(dataclasses.replace(cfg, loss_target=target, max_epochs=12), start, x, y)
    assert len(set(epochs.tolist())) > 1 and epochs.min() < 12
    for k, run_epochs in enumerate(epochs.tolist()):
        alone, _ = train(dataclasses.replace(cfg, loss_target=0, max_epochs=run_epochs), start, x, y)
        for w, w_alone in zip(
            [*stopped.weights, stopped.readout], [*alone.weights, alone.readout], strict=True
        ):
            torch.testing.assert_close(w[k], w_alone[k], rtol=0, atol=1e-12)
        if run_epochs < 12:
            assert training_loss(stopped, x, y)[k] <= target
    _, capped = train(dataclasses.replace(cfg, loss_target=1e-12, max_epochs=4), start, x, y)
    assert capped.tolist() == [4, 4, 4]
