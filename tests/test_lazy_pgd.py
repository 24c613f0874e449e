"""lazy-pgd: the ℓ2 PGD attack, the lazy-ball projection, the early-stopping rule, the CLI end to end."""

import math

import pandas as pd
import pytest
import torch

from advrepro.attacks import clip_box, l2_normalize, pgd_l2, project_l2_ball
from advrepro.experiments.lazy_pgd.runner import LazyPGDConfig, attack, should_stop
from advrepro.lazy import init_lazy_nets, logistic_loss
from advrepro.nets import sphere
from advrepro.seeding import generator
from tests.helpers import assert_columns_documented, outputs_of


def unit_data(n=64, d=16, seed=0):
    x = sphere(n, d, 1.0, generator(seed, "pgd"), torch.float64).abs()  # ‖x‖ = 1, pixels ≥ 0
    return x, torch.where(x[:, 0] > x[:, 1], 1.0, -1.0).to(torch.float64)


@pytest.mark.parametrize("clip", [True, False])
def test_pgd_stays_in_the_eps_ball_and_the_box_and_raises_the_loss(clip):
    x, y = unit_data()
    nets = init_lazy_nets(0, 2, 16, 50, True, torch.float64, "cpu", trainable=False)
    net = nets.net()
    xs, ys = x.expand(2, -1, -1), y.expand(2, -1)
    cfg = LazyPGDConfig(d=16, eps=0.3, pgd_steps=20, clip=clip)
    delta = attack(net, xs, ys, cfg)
    assert (delta.norm(dim=-1) <= 0.3 + 1e-12).all()
    if clip:
        assert ((xs + delta) >= -1e-12).all() and ((xs + delta) <= 1 + 1e-12).all()
    clean, attacked = (logistic_loss(ys[..., None] * net.forward(z)[..., None]) for z in (xs, xs + delta))
    assert (attacked >= clean - 1e-12).all() and (attacked > clean).any()


def test_pgd_reaches_the_closed_form_worst_case_of_a_linear_model():
    """For f(x) = w·x + b the worst ℓ2 perturbation of the logistic loss is δ* = −y·ε·w/‖w‖."""
    g = torch.Generator().manual_seed(0)
    w, x = (
        torch.randn(8, generator=g, dtype=torch.float64),
        torch.randn(5, 8, generator=g, dtype=torch.float64),
    )
    y = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0], dtype=torch.float64)
    delta = pgd_l2(
        lambda z: -y[:, None] * w.expand_as(z), x, eps=0.7, step_size=2.5 * 0.7 / 10, steps=10, clip=False
    )
    torch.testing.assert_close(delta, -y[:, None] * 0.7 * w / w.norm())


def test_steps_compose():
    g = torch.Generator().manual_seed(1)
    delta = torch.randn(10, 6, generator=g, dtype=torch.float64) * 3
    projected = project_l2_ball(delta, 0.5)
    assert (projected.norm(dim=-1) <= 0.5 + 1e-12).all()
    inside = delta[:1] * 0.01 / delta[:1].norm()
    torch.testing.assert_close(project_l2_ball(inside, 0.5), inside)  # points inside are left alone
    torch.testing.assert_close(l2_normalize(delta).norm(dim=-1), torch.ones(10, dtype=torch.float64))
    x = torch.rand(10, 6, generator=g, dtype=torch.float64)
    box = x + clip_box(x, delta)
    assert (box >= 0).all() and (box <= 1).all()


def test_projection_lands_every_neuron_in_the_ball_and_leaves_inside_ones_untouched():
    nets = init_lazy_nets(0, 2, 5, 40, True, torch.float64, "cpu", trainable=False)
    g = torch.Generator().manual_seed(2)
    scale = torch.where(torch.arange(40) < 20, 0.01, 5.0).to(torch.float64)  # half inside, half far outside
    nets.W += torch.randn(2, 40, 5, generator=g, dtype=torch.float64) * scale[:, None]
    nets.b += torch.randn(2, 40, generator=g, dtype=torch.float64) * scale
    before_W, before_b = nets.W.clone(), nets.b.clone()
    nets.project(0.3)
    moved = ((nets.W - nets.W0).pow(2).sum(-1) + (nets.b - nets.b0).pow(2)).sqrt()
    assert (moved <= 0.3 + 1e-12).all() and nets.distance().max() <= 0.3 + 1e-12
    torch.testing.assert_close(
        moved[:, 20:], torch.full((2, 20), 0.3, dtype=torch.float64)
    )  # onto the sphere
    torch.testing.assert_close(nets.W[:, :20], before_W[:, :20])
    torch.testing.assert_close(nets.b[:, :20], before_b[:, :20])
    direction = (before_W - nets.W0)[:, 20:]
    cos = ((nets.W - nets.W0)[:, 20:] * direction).sum(-1) / (
        (nets.W - nets.W0)[:, 20:].norm(dim=-1) * direction.norm(dim=-1)
    )
    torch.testing.assert_close(cos, torch.ones_like(cos))  # radial: the direction is kept


def test_early_stopping_rule_on_a_scripted_accuracy_sequence():
    """advtrain.py: from the third epoch on, count epochs gaining ≤ 1e-4; stop once the count exceeds patience."""
    rising = [0.1 * i for i in range(10)]
    flat = [0.5, 0.6] + [0.7] * 5  # epochs 2..6: epoch 2 gains 0.1, then four stalls
    assert not should_stop(torch.tensor(rising)[:, None], 2, 1e-4).item()
    assert not should_stop(torch.tensor(flat[:5])[:, None], 2, 1e-4).item()  # stalls at epochs 3, 4: count 2
    assert should_stop(torch.tensor(flat[:6])[:, None], 2, 1e-4).item()  # third stall: 3 > patience 2
    stalled_then_rise = [0.5, 0.6, 0.7, 0.7, 0.7, 0.8, 0.8]
    assert not should_stop(
        torch.tensor(stalled_then_rise)[:, None], 2, 1e-4
    ).item()  # a gain resets the count
    both = torch.tensor([flat[:6], rising[:6]]).T
    assert should_stop(both, 2, 1e-4).tolist() == [True, False]  # per run
    assert not should_stop(torch.tensor([[0.1], [0.1]]), 0, 1e-4).item()  # nothing counts before epoch 3


def test_lazy_pgd_cli_end_to_end(cli, results, tmp_path, mnist_smoke):
    result = cli(
        "run",
        "lazy-pgd",
        *mnist_smoke,
        "d=25",
        "width=32",
        "radius=0.05,0.5",
        "eps=0.1",
        "train_subset=100",
        "pgd_steps=3",
        "max_epochs=2",
    )
    assert result.exit_code == 0, result.stderr
    import pandas as pd

    out = outputs_of(result, "lazy-pgd")
    assert_columns_documented(out, "lazy-pgd")
    rows = pd.read_csv(out / "lazy-pgd.csv")
    assert (
        sorted(rows["radius"]) == [0.05, 0.5]
        and (rows["final_distance"] <= rows["radius"] * (1 + 1e-5)).all()
    )
    assert (rows["robust_test_acc"] <= rows["clean_test_acc"] + 0.02).all()
    for _, row in rows.iterrows():  # one entry per epoch trained; the last is the final value
        history = [float(v) for v in row["robust_train_history"].split(";")]
        boundary = [float(v) for v in row["boundary_history"].split(";")]
        assert len(history) == len(boundary) == row["epochs"] and 0 <= min(boundary) <= max(boundary) <= 1
        assert history[-1] == pytest.approx(row["robust_train_acc"], abs=1e-4)
        assert boundary[-1] == pytest.approx(row["boundary_share"], abs=1e-4)
    assert rows.loc[rows["radius"] == 0.05, "boundary_share"].iloc[0] > 0.5  # a small ball binds most neurons
    assert (out / "figures" / "lazy-pgd_fig4.png").is_file()
    bad = cli("run", "lazy-pgd", "radius=-1", f"results_dir={tmp_path / 'bad'}")
    assert bad.exit_code == 2 and "radius must be positive" in bad.stderr
    assert math.isfinite(rows["clean_test_acc"].mean())


def two_cells_of_one_batch(data_dir, **keys) -> list[LazyPGDConfig]:
    """Two tiny cells that differ in ε and R (one batch group), 2 runs each, in float64."""
    base = dict(d=25, width=16, train_subset=64, pgd_steps=3, max_epochs=2, runs=2, progress=False)
    base |= dict(dtype="float64", data_dir=str(data_dir), download=False, **keys)
    return [LazyPGDConfig(**base, eps=0.05, radius=0.05), LazyPGDConfig(**base, eps=0.3, radius=0.5)]


def test_cells_differing_in_eps_and_radius_train_as_one_batch_with_the_same_results(mnist_data_dir):
    from advrepro.experiments.lazy_pgd.runner import run, run_batch

    cfgs = two_cells_of_one_batch(mnist_data_dir)
    batched = run_batch(cfgs, torch.device("cpu"))
    for cfg, together in zip(cfgs, batched, strict=True):
        alone = run(cfg, torch.device("cpu"))
        assert together.to_csv(index=False) == alone.to_csv(index=False)  # the same bytes, batched or alone


def test_a_model_that_stops_leaves_the_batch_and_the_rows_stay_those_of_each_cell_alone(
    mnist_data_dir, monkeypatch
):
    """patience 0: a model stops at the first epoch from the third on that does not improve. Three of the four
    models stop after epoch 3, and the fourth trains on alone to max_epochs in a trainer of one model."""
    from advrepro.experiments.lazy_pgd import runner

    sizes = []

    class Recorded(runner.Algorithm1):
        def __post_init__(self):
            sizes.append(len(self.models.radius))
            super().__post_init__()

    monkeypatch.setitem(runner.TRAINERS, "per_step", Recorded)
    cfgs = two_cells_of_one_batch(mnist_data_dir, max_epochs=5, lr=1.0, patience=0, min_delta=0.0)
    batched = pd.concat(runner.run_batch(cfgs, torch.device("cpu")))
    assert batched["epochs"].tolist() == [3, 3, 5, 3]
    assert batched["stopped_early"].tolist() == [True, True, False, True]
    assert sizes == [4, 1]
    alone = pd.concat([runner.run(cfg, torch.device("cpu")) for cfg in cfgs])
    assert batched.to_csv(index=False) == alone.to_csv(index=False)


@pytest.mark.parametrize("project", ["per_step", "per_epoch"])
def test_a_replaced_trainer_is_freed_at_once_not_by_the_garbage_collector(project):
    """No reference cycle through the replayed step: the last reference gone, the trainer (its graphs, its copy of
    the weights) is gone, with the cyclic collector off."""
    import gc
    import weakref

    from advrepro.experiments.lazy_pgd.runner import TRAINERS, PerModel

    cfg = LazyPGDConfig(
        d=16, width=12, eps=0.3, radius=0.05, pgd_steps=2, lr=2.0, batch_size=5, project=project
    )
    x = sphere(10, 16, 1.0, generator(0, "test"), torch.float64).abs()
    y = torch.ones(10, dtype=torch.float64)
    nets = init_lazy_nets(0, 1, 16, 12, True, torch.float64, "cpu", trainable=False)
    trainer = TRAINERS[project](nets, x, y, cfg, PerModel.of([cfg], torch.float64, "cpu"))
    trainer.epoch(torch.arange(10)[None])
    gone = weakref.ref(trainer)
    gc.disable()
    try:
        del trainer
        assert gone() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("project", ["per_step", "per_epoch"])
def test_epoch_functions_follow_algorithm_1_and_the_published_advtrain_loop(project):
    """Two minibatches, written out by hand: Algorithm 1 attacks each batch with the current weights and projects
    after every step; advtrain.py attacks every example with the epoch's starting weights and projects once."""
    from advrepro.experiments.lazy_pgd.runner import TRAINERS, PerModel
    from advrepro.lazy import sgd_step

    cfg = LazyPGDConfig(
        d=16, width=12, eps=0.3, radius=0.05, pgd_steps=4, lr=2.0, batch_size=5, project=project
    )
    g = generator(0, "test")
    x = sphere(10, 16, 1.0, g, torch.float64).abs()
    y = torch.sign(torch.randn(10, generator=g, dtype=torch.float64))
    order = torch.randperm(10, generator=g)[None]
    models = PerModel.of([cfg], torch.float64, "cpu")
    fresh = lambda: init_lazy_nets(0, 1, 16, 12, True, torch.float64, "cpu", trainable=False)
    nets, by_hand = fresh(), fresh()
    TRAINERS[project](nets, x, y, cfg, models).epoch(order)

    batches = [order[:, :5], order[:, 5:]]
    if project == "per_epoch":
        adversarial = [x[i] + attack(by_hand.net(), x[i], y[i], cfg) for i in batches]
    for k, i in enumerate(batches):
        xb = adversarial[k] if project == "per_epoch" else x[i] + attack(by_hand.net(), x[i], y[i], cfg)
        sgd_step(by_hand, xb, y[i], cfg.lr)
        if project == "per_step":
            by_hand.project(cfg.radius)
    by_hand.project(cfg.radius)  # a no-op after per_step's own projection
    torch.testing.assert_close(nets.W, by_hand.W)
    torch.testing.assert_close(nets.b, by_hand.b)
    assert nets.distance().item() <= cfg.radius + 1e-12


def test_adversarial_training_benchmark_compares_the_batched_model_with_a_per_model_loop():
    from advrepro.bench import bench_adversarial_training

    batched, looped, code = bench_adversarial_training(quick=True)  # 4 models, n = 256, 10 PGD steps
    assert batched["method"].startswith("one batched model") and looped["method"].startswith("per-model loop")
    assert "32" in code["method"] and code["setting"] == batched["setting"] == looped["setting"]
    for row, calls, batch in (
        (batched, 1, 128),
        (looped, 4, 128),
        (code, 4, 32),
    ):  # the rates follow the seconds
        assert row["pgd_step_examples_per_second"] == pytest.approx(4 * 256 * 10 / row["seconds"], rel=0.01)
        assert row["pgd_substeps_per_second"] == pytest.approx(
            calls * (256 // batch) * 10 / row["seconds"], rel=0.01
        )
        assert row["ratio_to_loop"] == pytest.approx(looped["seconds"] / row["seconds"], rel=0.01, abs=0.01)
        assert row["share_of_matmul_peak"] > 0


def test_the_recipe_scale_pairs_the_published_recipe_with_the_default_budget(cli, tmp_path):
    result = cli("run", "lazy-pgd", "scale=recipe", f"results_dir={tmp_path}", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("lazy-pgd: 16 cells in 4 batches") and not (tmp_path / "runs").exists()
    recipe = [
        line for line in result.stdout.splitlines() if line.startswith("    missing") and "lr=" not in line
    ]
    assert len(recipe) == 8  # the config's own defaults are the published recipe: no lr override
