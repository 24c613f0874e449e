"""cluster-robustness: pReLU gradients against autograd, the ideal classifiers' radii against brute-force line
searches, the sphere-distance ascent on networks equal to F, the separation against all pairs, and the attacks."""

import math

import numpy as np
import pytest
import torch

from advrepro.attacks import l2_normalize
from advrepro.experiments.cluster_robustness import runner
from advrepro.experiments.cluster_robustness.runner import (
    ClusterConfig,
    broken_by,
    half_separation,
    ideal_scale,
    neuron_rows,
    robust_accuracy,
    sample_clusters,
    sphere_distance,
    stacked,
    train,
)
from advrepro.prelu import IdealClassifier, PReLUNets

F64 = torch.float64


def tiny(**kw) -> ClusterConfig:
    base = dict(d=12, k=4, k_pos=2, width=16, n_train=80, n_test=24, runs=2, epochs=5, progress=False)
    return ClusterConfig(**{**base, **kw})


def random_nets(p: int, R=3, m=7, d=6, seed=0) -> PReLUNets:
    g = torch.Generator().manual_seed(seed)
    return PReLUNets(
        torch.randn(R, m, d, generator=g, dtype=F64), torch.randn(R, m, generator=g, dtype=F64), p
    )


def ideal_as_network(k: int, k_pos: int, p: int, d: int, extra: float = 0.0) -> PReLUNets:
    """A network equal to the ideal classifier (plus `extra`·relu(x_{k+1})^p, a neuron off the data)."""
    eye = torch.eye(k + 1, d, dtype=F64)
    if p == 1:
        mu_plus = eye[:k_pos].sum(0) / math.sqrt(k_pos)
        mu_minus = eye[k_pos:k].sum(0) / math.sqrt(k - k_pos)
        W = torch.stack([mu_plus, mu_minus, eye[k]])
        v = torch.tensor([math.sqrt(k_pos), -math.sqrt(k - k_pos), extra], dtype=F64)
    else:
        W = eye
        v = torch.tensor([1.0] * k_pos + [-1.0] * (k - k_pos) + [extra], dtype=F64)
    return PReLUNets(W[None], v[None], p)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_input_gradient_matches_autograd(p):
    nets = random_nets(p)
    x = torch.randn(3, 5, 6, dtype=F64, requires_grad=True)
    f, grad = nets.input_gradient(x)
    (auto,) = torch.autograd.grad(f.sum(), x)
    torch.testing.assert_close(grad, auto)
    torch.testing.assert_close(f, nets.forward(x))
    # f is 1-homogeneous in each neuron's w_j for every p: scaling W by 3 scales f by 3
    scaled = PReLUNets(3 * nets.W, nets.v, p)
    torch.testing.assert_close(scaled.forward(x), 3 * f)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_exp_loss_gradients_match_autograd(p):
    nets = random_nets(p)
    W, v = nets.W.clone().requires_grad_(), nets.v.clone().requires_grad_()
    x = torch.randn(3, 5, 6, dtype=F64)
    y = torch.where(torch.rand(3, 5, dtype=F64) > 0.5, 1.0, -1.0).to(F64)
    loss = torch.exp(-y * PReLUNets(W, v, p).forward(x)).mean(-1)
    auto_W, auto_v = torch.autograd.grad(loss.sum(), (W, v))
    got, grad_W, grad_v = nets.exp_loss_gradients(x, y)
    torch.testing.assert_close(got, loss.detach())
    torch.testing.assert_close(grad_W, auto_W)
    torch.testing.assert_close(grad_v, auto_v)


@pytest.mark.parametrize("p", [1, 3])
def test_ideal_classifier_gradient_matches_autograd_and_the_network_form(p):
    ideal = IdealClassifier(5, 3, p)
    x = torch.randn(4, 9, dtype=F64, requires_grad=True)
    value, grad = ideal.forward_and_gradient(x)
    (auto,) = torch.autograd.grad(value.sum(), x)
    torch.testing.assert_close(grad, auto)
    net = ideal_as_network(5, 3, p, 9)
    torch.testing.assert_close(net.forward(x[None])[0], value)


def flip_radius(ideal: IdealClassifier, x: torch.Tensor, y: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Smallest t with y·F(x + t·u) ≤ 0 along each ray, by a fine scan then bisection (inf if none up to 3)."""
    margin = lambda z, labels: labels * ideal.forward_and_gradient(z)[0]
    t = torch.linspace(0, 3.0, 3001, dtype=F64)
    flipped = margin(x[None] + t[:, None, None] * u[None], y) <= 0  # (T, N)
    first = torch.where(flipped.any(0), flipped.to(torch.int8).argmax(0), -1)
    out = torch.full((len(x),), math.inf, dtype=F64)
    for i in torch.nonzero(first > 0).flatten().tolist():
        low, up = t[first[i] - 1].item(), t[first[i]].item()
        for _ in range(60):
            mid = (low + up) / 2
            low, up = (low, mid) if margin(x[i] + mid * u[i], y[i]) <= 0 else (mid, up)
        out[i] = up
    return out


@pytest.mark.parametrize(("k", "k_pos"), [(10, 6), (4, 2), (7, 1)])
def test_relu_ideal_classifier_is_broken_at_one_over_sqrt_k_and_not_before(k, k_pos):
    """F's boundary is 1/√k from every centre: reached along −(√k₊μ₊ − √k₋μ₋) for a positive centre, and no
    random direction flips it sooner (brute-force line searches)."""
    ideal = IdealClassifier(k, k_pos, 1)
    d = k + 3
    centres = torch.eye(k, d, dtype=F64)
    y = torch.where(torch.arange(k) < k_pos, 1.0, -1.0).to(F64)
    signs = torch.where(torch.arange(d) < k_pos, 1.0, torch.where(torch.arange(d) < k, -1.0, 0.0)).to(F64)
    best = l2_normalize(-y[:, None] * signs[None].expand(k, d))  # −y·(√k₊μ₊ − √k₋μ₋)/√k
    torch.testing.assert_close(
        flip_radius(ideal, centres, y, best), torch.full((k,), 1 / math.sqrt(k), dtype=F64)
    )
    assert ideal.radius() == pytest.approx(1 / math.sqrt(k))
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        u = l2_normalize(torch.randn(k, d, generator=g, dtype=F64))
        assert (flip_radius(ideal, centres, y, u) >= 1 / math.sqrt(k) - 1e-9).all()


def test_cubic_ideal_classifier_is_broken_at_sqrt2_over_2_towards_another_label_and_not_before():
    k, k_pos, d = 6, 4, 9
    ideal = IdealClassifier(k, k_pos, 3)
    centres = torch.eye(k, d, dtype=F64)
    y = torch.where(torch.arange(k) < k_pos, 1.0, -1.0).to(F64)
    other = torch.where(y > 0, k_pos, 0)  # a centre of the other label
    u = (torch.eye(k, d, dtype=F64)[other] - centres) / math.sqrt(2)
    torch.testing.assert_close(flip_radius(ideal, centres, y, u), torch.full((k,), math.sqrt(0.5), dtype=F64))
    g = torch.Generator().manual_seed(2)
    for _ in range(5):
        v = l2_normalize(torch.randn(k, d, generator=g, dtype=F64))
        assert (flip_radius(ideal, centres, y, v) >= math.sqrt(0.5) - 1e-9).all()


@pytest.mark.parametrize("p", [1, 3])
def test_sphere_distance_is_zero_at_the_ideal_classifier_and_finds_an_off_data_neuron(p):
    cfg = tiny(
        d=8, k=4, k_pos=2, p=p, runs=1, dist_starts=64, dist_steps=300, dist_samples=400, dtype="float64"
    )
    ideal = IdealClassifier(cfg.k, cfg.k_pos, p)
    exact = ideal_as_network(cfg.k, cfg.k_pos, p, cfg.d)
    scale = ideal_scale(cfg, exact, ideal, F64, "cpu")
    torch.testing.assert_close(scale, torch.ones(1, dtype=F64))
    assert sphere_distance(cfg, exact, ideal, scale).item() < 1e-12
    # one more neuron, 0.5·relu(x_5)^p, unseen by the data (c stays ≈ 1): the largest gap is 0.5 at x = e_5
    extra = ideal_as_network(cfg.k, cfg.k_pos, p, cfg.d, extra=0.5)
    scale = ideal_scale(cfg, extra, ideal, F64, "cpu")
    assert scale.item() == pytest.approx(1.0, abs=1e-3)
    assert sphere_distance(cfg, extra, ideal, scale).item() == pytest.approx(0.5, rel=1e-2)


def test_clusters_have_their_centres_noise_and_labels():
    cfg = tiny(d=400, k=5, k_pos=3, noise=0.3)
    x, y, c = sample_clusters(cfg, 2000, "train", 0, F64)
    torch.testing.assert_close(y, torch.where(c < 3, 1.0, -1.0).to(F64))
    noise = x - torch.eye(5, 400, dtype=F64)[c]
    assert noise.norm(dim=1).mean().item() == pytest.approx(0.3, rel=0.02)  # ‖N(0, (α/√d)²I)‖ ≈ α
    assert np.bincount(c.numpy(), minlength=5).min() > 300


def test_half_separation_is_the_brute_force_minimum():
    cfg = tiny(d=6, k=3, k_pos=1, noise=0.8, n_train=1500)
    x, y, _ = stacked(cfg, cfg.n_train, "train", F64, "cpu")  # 1500 rows: blocks of 1024 and the rest
    got = half_separation(x, y)
    for r in range(cfg.runs):
        pos, neg = x[r][y[r] > 0], x[r][y[r] < 0]
        brute = ((pos[:, None] - neg[None]) ** 2).sum(-1).sqrt().min() / 2
        torch.testing.assert_close(got[r], brute)


def attack(cfg: ClusterConfig, nets: PReLUNets, radii) -> dict:
    """broken_by on the cell's test set at `radii`: (R, E, N) per attack."""
    x_train, y_train, _ = stacked(cfg, cfg.n_train, "train", F64, "cpu")
    universal = l2_normalize((y_train[..., None] * x_train).sum(1))
    test = stacked(cfg, cfg.n_test, "test", F64, "cpu")
    return broken_by(cfg, nets, test, universal, np.asarray(radii), np.arange(len(radii)))


def test_attacks_break_the_cubic_ideal_network_where_the_derivation_says():
    """On F^(3) itself: the pair moves break every point just beyond √2/2 and none below; PGD from δ = 0 cannot move
    towards another centre (zero gradient there), so it breaks nothing at 0.8."""
    cfg = tiny(d=8, k=4, k_pos=2, p=3, runs=1, noise=0.0, pgd_steps=50, restarts=0, dtype="float64")
    broken = attack(cfg, ideal_as_network(cfg.k, cfg.k_pos, 3, cfg.d), [0.70, 0.72, 0.8])
    assert not broken["pairs"][:, 0].any() and broken["pairs"][:, 1].all()
    assert not broken["pgd"][:, 2].any()


def test_the_centre_move_breaks_the_balanced_relu_ideal_network_just_beyond_one_over_sqrt_k():
    """With k₊ = k₋ F's nearest boundary point lies along (μ_other − μ_own)/√2; no attack breaks F below 1/√k."""
    cfg = tiny(d=8, k=4, k_pos=2, p=1, runs=1, noise=0.0, pgd_steps=100, pgd_step_size=0.02, dtype="float64")
    broken = attack(cfg, ideal_as_network(cfg.k, cfg.k_pos, 1, cfg.d), [0.0, 0.49, 0.52])
    assert not any(mask[:, :2].any() for mask in broken.values())
    assert broken["centre"][:, 2].all()  # 1/√4 = 0.5


def test_rows_do_not_depend_on_how_the_radii_are_chunked(monkeypatch):
    cfg = tiny(p=3, epochs=30, eps_steps=5, pgd_steps=20)
    data = {
        s: stacked(cfg, n, s, torch.float32, "cpu") for s, n in (("train", cfg.n_train), ("test", cfg.n_test))
    }
    nets = train(cfg, *data["train"][:2], (cfg.p,) * cfg.runs)
    whole = robust_accuracy(cfg, nets, data)
    monkeypatch.setattr(runner, "radius_chunk", lambda cfg: 2)
    assert robust_accuracy(cfg, nets, data) == whole  # the same floats, bit for bit


def test_neuron_rows_rank_by_contribution_and_measure_alignment():
    cfg = tiny(d=5, k=4, k_pos=2, runs=1, neurons=2)
    W = torch.tensor([[[1.0, 1, 0, 0, 0], [0, 0, 3, 0, 0], [0, 0, 0, 1, 0]]])
    nets = PReLUNets(W, torch.tensor([[1.0, -1.0, 0.5]]), 1)
    rows = neuron_rows(cfg, nets)
    assert [r["rank"] for r in rows] == [1, 2]
    assert rows[0]["contribution"] == pytest.approx(3.0) and rows[0]["centre"] == 3
    assert rows[0]["cos_centre"] == pytest.approx(1.0) and rows[0]["cos_mu_minus"] == pytest.approx(
        math.sqrt(0.5)
    )
    assert rows[1]["cos_mu_plus"] == pytest.approx(1.0) and rows[1]["share"] == pytest.approx(
        math.sqrt(2) / 4.914, rel=1e-3
    )


def test_training_separates_the_clusters_from_a_tiny_initialisation():
    cfg = tiny(epochs=150, p=3)
    x, y, _ = stacked(cfg, cfg.n_train, "train", torch.float32, "cpu")
    nets = train(cfg, x, y, (cfg.p,) * cfg.runs)
    assert (y * nets.forward(x) > 0).all()
    assert nets.W.norm(dim=-1).max() > 1e3 * cfg.init_scale


@pytest.mark.parametrize("bad", ["k_pos=0", "k_pos=10", "k=2000", "noise=-1", "eps_steps=0", "p=0"])
def test_bad_values_exit_2_with_one_line(cli, bad):
    result = cli("run", "cluster-robustness", "scale=smoke", bad)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_rows_say_which_attack_alone_broke_the_points():
    """F^(3) at radius 0.72: the pair moves break every point and nothing else does, so they broke each one alone."""
    cfg = tiny(d=8, k=4, k_pos=2, p=3, runs=1, noise=0.0, pgd_steps=30, restarts=0, eps_max=0.72, eps_steps=2)
    nets = ideal_as_network(cfg.k, cfg.k_pos, 3, cfg.d)
    nets = PReLUNets(nets.W.float(), nets.v.float(), 3)
    data = {
        s: stacked(cfg, n, s, torch.float32, "cpu") for s, n in (("train", cfg.n_train), ("test", cfg.n_test))
    }
    rows = {(r["attack"], r["eps"]): r for r in robust_accuracy(cfg, nets, data)}
    assert rows[("pairs", 0.72)]["robust_acc"] == 0 and rows[("pairs", 0.72)]["broken_alone"] == 1
    assert rows[("pgd", 0.72)]["robust_acc"] == 1 and rows[("pgd", 0.72)]["broken_alone"] == 0
    assert rows[("all", 0.72)]["robust_acc"] == 0 and rows[("all", 0.0)]["robust_acc"] == 1


def test_networks_of_two_powers_in_one_batch_have_the_bits_of_each_alone():
    g = torch.Generator().manual_seed(3)
    W, v = torch.randn(4, 7, 6, generator=g), torch.randn(4, 7, generator=g)
    x, y = torch.randn(4, 5, 6, generator=g), torch.where(torch.rand(4, 5, generator=g) > 0.5, 1.0, -1.0)
    mixed = PReLUNets(W, v, (1, 3, 1, 3))
    for p, rows in ((1, [0, 2]), (3, [1, 3])):
        alone = PReLUNets(W[rows], v[rows], p)
        assert torch.equal(mixed.forward(x)[rows], alone.forward(x[rows]))
        assert torch.equal(mixed.input_gradient(x)[1][rows], alone.input_gradient(x[rows])[1])
        for got, want in zip(
            mixed.exp_loss_gradients(x, y), alone.exp_loss_gradients(x[rows], y[rows]), strict=True
        ):
            assert torch.equal(got[rows], want)
