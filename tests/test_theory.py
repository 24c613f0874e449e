"""advrepro.theory against brute force: the folded normal's median and its sample median's bias by sampling, the ReLU
kink curvature against random networks' exact flips, and the flip step's medians against the runner (docs §1)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from advrepro.experiments.random_net.claims import per_network
from advrepro.experiments.random_net.runner import RandomNetConfig, run, sample_networks
from advrepro.nets import sphere
from advrepro.seeding import generator
from advrepro.stats import control_variate_estimate
from advrepro.theory import (
    StepModel,
    flip_step_medians,
    folded_normal_median,
    gaussian_expectations,
    gaussian_moments,
    pooled_step_quantile,
    relu_kink_curvature,
    relu_offset_share,
    sample_median_bias,
)


def test_folded_normal_median_closed_forms_and_sampling():
    mu = torch.tensor([0.0, 40.0, 0.7], dtype=torch.float64)
    median = folded_normal_median(mu, 0.5)
    assert median[0].item() == pytest.approx(0.5 * 0.6744897502, rel=1e-9)  # σ·Φ⁻¹(3/4)
    assert median[1].item() == pytest.approx(40.0, rel=1e-9)  # far from 0 the fold does nothing
    draws = np.abs(np.random.default_rng(0).normal(0.7, 0.5, 2_000_000))
    assert median[2].item() == pytest.approx(np.median(draws), abs=2e-3)


@pytest.mark.parametrize("mu", [0.0, 0.6])
def test_sample_median_bias_matches_sampling(mu):
    n, repeats = 21, 200_000
    draws = np.abs(np.random.default_rng(1).normal(mu, 1.0, (repeats, n)))
    mu_t = torch.tensor([mu], dtype=torch.float64)
    q = folded_normal_median(mu_t, 1.0)
    bias = sample_median_bias(q, mu_t, 1.0, n).item()
    sampled = np.median(draws, axis=1).mean() - q.item()  # standard error ≈ 0.17/√repeats = 4e-4
    assert bias > 0 and sampled == pytest.approx(bias, abs=1.2e-3)


def test_relu_kink_curvature_limits():
    """h → 4aσφ(0) where the self term a = 1/√k is small against σ = 1/√(2d), and → a² where it dominates."""
    d, k = 100, 10**8  # a/σ = 1.4e-3
    a, sigma = 1 / math.sqrt(k), math.sqrt(1 / (2 * d))
    assert relu_kink_curvature(d, k) == pytest.approx(math.sqrt(k) * 4 * a * sigma / (2 * math.pi), rel=1e-3)
    d, k = 10**8, 100  # a/σ = 1400
    assert relu_kink_curvature(d, k) == pytest.approx(
        math.sqrt(k) * (1 / k) / math.sqrt(2 * math.pi), rel=1e-3
    )


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_relu_kink_curvature_is_random_networks_bend_along_the_ray(depth):
    """Brute force: along the flip direction u = −sign f·∇f/G the secant curvature 2(sign f·f(x + τu) − |f| + Gτ)/τ²
    at τ = 0.3, averaged over 250 He-gain networks × 40 inputs, is the kinks' curvature summed over layers within the
    derivation's next order 1/√min(d, k) (about −4% to −8% here, as a simulation of 10⁴ rays per depth showed)."""
    cfg = RandomNetConfig(d=50, width=300, depth=depth, hidden_gain=2.0)
    net = sample_networks(cfg, 0, 250, torch.float64)
    x = sphere(40, cfg.d, math.sqrt(cfg.d), generator(0, "inputs"), torch.float64)
    f, grad, _ = net.input_gradient(x)
    gain, sign, tau = grad.norm(dim=-1), f.sign(), 0.3
    moved = net.forward(x - tau * (sign / gain)[..., None] * grad)
    bend = 2 * (sign * moved - f.abs() + gain * tau) / tau**2
    expected = relu_kink_curvature(cfg.d, cfg.width, depth)
    assert bend.mean().item() == pytest.approx(expected, rel=1 / math.sqrt(min(cfg.d, cfg.width)))


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_deep_kink_curvature_is_depth_times_one_layers_when_width_dominates(depth):
    """Where k ≫ d every layer's self term is small against σ_j ≈ 1/√(2d), and a lower layer's Gaussian |β| gives the
    same E[|β|·4|β|σφ(0)] as the top layer's fixed one: f'' → L·√2/(π√d)."""
    d, k = 100, 10**8
    assert relu_kink_curvature(d, k, depth) == pytest.approx(
        depth * math.sqrt(2) / (math.pi * math.sqrt(d)), rel=2e-3
    )


@pytest.mark.parametrize("rho", [0.0, 0.4, -0.5])
def test_relu_offset_share_steps_are_the_arc_cosine_map(rho):
    """One step of the map is 2·E[relu(u)relu(v)] for unit normals with correlation ρ (10⁶ samples), and the share
    after L layers is that map iterated L times from 0."""
    rng = np.random.default_rng(3)
    u, z = rng.normal(size=(2, 1_000_000))
    v = rho * u + math.sqrt(1 - rho * rho) * z
    sampled = 2 * (np.maximum(u, 0) * np.maximum(v, 0)).mean()
    step = (math.sqrt(1 - rho * rho) + (math.pi - math.acos(rho)) * rho) / math.pi
    assert sampled == pytest.approx(step, abs=3e-3)
    assert relu_offset_share(1) == pytest.approx(1 / math.pi)
    one, two = relu_offset_share(1), relu_offset_share(2)
    assert two == pytest.approx((math.sqrt(1 - one * one) + (math.pi - math.acos(one)) * one) / math.pi)


def test_relu_offset_share_is_deep_networks_output_correlation():
    """Wide He-gain ReLU nets of 3 layers: the mean over networks of f(x)f(x') for pairs of inputs over that of f(x)²
    is ρ₃ (the inputs' correlation is O(1/√d), the map's slope 1/2 per layer keeps it below 1%)."""
    cfg = RandomNetConfig(d=400, width=400, depth=3, hidden_gain=2.0)
    x = sphere(40, cfg.d, math.sqrt(cfg.d), generator(0, "inputs"), torch.float64)
    f = sample_networks(cfg, 0, 400, torch.float64).forward(x)
    products = (f[:, :20] * f[:, 20:]).mean()
    assert (products / f.square().mean()).item() == pytest.approx(relu_offset_share(3), abs=0.03)


def networks_of(
    activation: str, d: int, width: int, n_networks: int, n_inputs: int, depth: int = 1
) -> pd.DataFrame:
    gain = 2.0 if depth > 1 else 1.0
    cfg = RandomNetConfig(
        d=d,
        width=width,
        depth=depth,
        hidden_gain=gain,
        activation=activation,
        n_networks=n_networks,
        n_inputs=n_inputs,
    )
    rows = run(cfg, torch.device("cpu")).assign(cell="c0")
    return per_network(rows, pd.DataFrame({"cell": ["c0"], "hidden_gain": [gain]}))


@pytest.mark.parametrize("d, width", [(100, 100), (400, 4000)])
def test_relu_kink_curvature_matches_exact_flips(d, width):
    """Each network's curvature fitted to its exact flips (fitted_curvature) averages to the derived f'' within the
    derivation's next order, 1/√min(d, width)."""
    networks = networks_of("relu", d, width, n_networks=150, n_inputs=40)
    measured = networks["curvature"].mean()
    assert measured == pytest.approx(relu_kink_curvature(d, width), rel=1 / math.sqrt(min(d, width)))


@pytest.mark.parametrize(
    "activation, depth, n_networks", [("relu", 1, 600), ("tanh", 1, 600), ("relu", 2, 300)]
)
def test_flip_step_medians_match_the_runner(activation, depth, n_networks):
    """The mean over networks of the median ‖δ‖ and |η|, corrected by the control variates (s² and, for one layer,
    v), within 3% of the derived values: the O(1/d) terms left out are ≈ 0.5% at d = 400, the sampling's standard
    error ≈ 0.6% (one layer) and 0.9% (two He-gain layers, 40 inputs each)."""
    d, width, n_inputs = 400, 400, 60 if depth == 1 else 40
    networks = networks_of(activation, d, width, n_networks, n_inputs, depth)
    covariates = networks[["offset_s", "linear_v"]].assign(offset_s=networks["offset_s"] ** 2).dropna(axis=1)
    predicted = flip_step_medians(activation, d, width, n_inputs, depth)
    for column in ("delta", "eta"):
        estimate = control_variate_estimate(
            networks[column], covariates.to_numpy(), (1.0,) * covariates.shape[1], "networks"
        )
        assert estimate.value == pytest.approx(predicted[column], rel=0.03), column


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("p", [0.25, 0.5, 0.75])
def test_pooled_step_quantiles_match_sampling_the_model(p, depth):
    """The mixture's quantile against 10⁶ draws of the same model: s ~ N(0, 1), τ ~ |N(√ν·s/G, σ²)|, ‖δ‖ = exact(τ),
    ν = (Eψ)² for one layer, ρ_L·Eψ² deeper."""
    model = StepModel.of("relu", 100, 100, depth)
    rng = np.random.default_rng(2)
    s = rng.normal(0, 1, 1_000_000)
    mean, second, slope = gaussian_expectations("relu")
    offset = mean if depth == 1 else math.sqrt(relu_offset_share(depth) * second)
    tau = torch.from_numpy(np.abs(rng.normal(offset / math.sqrt(slope) * s, model.sigma)))
    sampled = np.quantile(model.exact(tau).numpy(), p)
    assert pooled_step_quantile("relu", 100, 100, p, depth)["delta"] == pytest.approx(sampled, rel=3e-3)


def test_exact_flip_solves_the_bent_linearisation():
    """‖δ‖ = exact(τ) solves G‖δ‖ − f''‖δ‖²/2 = Gτ, `linear` inverts it, and past the turning point G/f'' (no root)
    ‖δ‖ stays there."""
    model = StepModel.of("relu", 100, 1000, 4)
    g, c = model.gain, model.curvature
    tau = torch.tensor([0.1, 0.8, 1.5], dtype=torch.float64)
    delta = model.exact(tau)
    torch.testing.assert_close(g * delta - c * delta**2 / 2, g * tau)
    assert [model.linear(x) for x in delta.tolist()] == pytest.approx(tau.tolist())
    past = model.exact(
        torch.linspace(g / (2 * c), 10.0, 10_001, dtype=torch.float64)
    )  # from the turning point on
    assert past.isfinite().all() and past.allclose(torch.tensor(g / c, dtype=torch.float64))
    rounded = StepModel.of("relu", 50, 500)  # where 2f''τ/G rounds above 1 at the turning point
    assert rounded.exact(torch.tensor([1e3], dtype=torch.float64)).item() == pytest.approx(
        rounded.gain / rounded.curvature
    )


def test_pooled_tanh_median_is_the_folded_normal_closed_form():
    """tanh is odd (no offset) and its curvature enters at order 1/d: the median is Φ⁻¹(3/4)·√(Eψ²/Eψ'²)."""
    second, slope = gaussian_moments("tanh")
    expected = 0.6744897502 * math.sqrt(second / slope)
    assert pooled_step_quantile("tanh", 100, 1000, 0.5)["delta"] == pytest.approx(expected, rel=1e-6)
    assert pooled_step_quantile("tanh", 100, 1000, 0.5)["eta"] == pytest.approx(expected / math.sqrt(slope))


def test_fitted_curvature_recovers_the_curvature_of_hand_made_flips():
    """Rows whose flips solve |f| − G‖δ‖ + κ‖δ‖²/2 = 0 exactly give back κ per network; a flip that needed no
    curvature (‖δ‖ = |f|/G) gives 0, and inputs that did not flip are left out."""
    kappa = np.array([0.05, 0.05, 0.05, 0.0, 0.0, 0.0])
    f_abs, grad_norm = np.array([0.2, 0.7, 1.5, 0.3, 0.9, 1.1]), np.full(6, 0.7)
    delta = (grad_norm - np.sqrt(grad_norm**2 - 2 * kappa * f_abs)) / np.where(kappa > 0, kappa, 1)
    delta = np.where(kappa > 0, delta, f_abs / grad_norm)
    rows = pd.DataFrame(
        {
            "cell": "c0",
            "activation": "relu",
            "depth": 1,
            "d": 100,
            "width": 100,
            "network": [0, 0, 0, 1, 1, 1],
            "f_abs": f_abs,
            "grad_norm": grad_norm,
            "delta_norm": delta,
            "eta": delta / grad_norm,
            "eta_lin": f_abs / grad_norm**2,
            "flipped": True,
            "offset_s": 0.0,
            "linear_v": 1.0,
        }
    )
    unflipped = rows.iloc[[0]].assign(f_abs=5.0, delta_norm=np.nan, eta=np.nan, flipped=False)
    networks = per_network(pd.concat([rows, unflipped]), pd.DataFrame({"cell": ["c0"], "hidden_gain": [1.0]}))
    np.testing.assert_allclose(networks["curvature"], [0.05, 0.0], atol=1e-12)
    assert networks["flips"].tolist() == [3, 3]
