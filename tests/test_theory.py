"""advrepro.theory against brute force: the folded normal's median and its sample median's bias by sampling, the ReLU
kink curvature against random networks' exact flips, and the flip step's medians against the runner (docs §1)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from advrepro.experiments.random_net.claims import per_network
from advrepro.experiments.random_net.runner import RandomNetConfig, run
from advrepro.stats import control_variate_estimate
from advrepro.theory import (
    StepModel,
    flip_step_medians,
    folded_normal_median,
    gaussian_expectations,
    gaussian_moments,
    pooled_step_quantile,
    relu_kink_curvature,
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


def networks_of(activation: str, d: int, width: int, n_networks: int, n_inputs: int) -> pd.DataFrame:
    cfg = RandomNetConfig(d=d, width=width, activation=activation, n_networks=n_networks, n_inputs=n_inputs)
    rows = run(cfg, torch.device("cpu")).assign(cell="c0")
    return per_network(rows, pd.DataFrame({"cell": ["c0"], "hidden_gain": [1.0]}))


@pytest.mark.parametrize("d, width", [(100, 100), (400, 4000)])
def test_relu_kink_curvature_matches_exact_flips(d, width):
    """Each network's curvature fitted to its exact flips (fitted_curvature) averages to the derived f'' within the
    derivation's next order, 1/√min(d, width)."""
    networks = networks_of("relu", d, width, n_networks=150, n_inputs=40)
    measured = networks["curvature"].mean()
    assert measured == pytest.approx(relu_kink_curvature(d, width), rel=1 / math.sqrt(min(d, width)))


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_flip_step_medians_match_the_runner(activation):
    """The mean over networks of the median ‖δ‖ and |η|, corrected by the control variates, within 3% of the
    derived values: the O(1/d) terms left out are ≈ 0.5% at d = 400, the sampling's standard error ≈ 0.6%."""
    d, width, n_inputs = 400, 400, 60
    networks = networks_of(activation, d, width, n_networks=600, n_inputs=n_inputs)
    covariates = np.column_stack([networks["offset_s"] ** 2, networks["linear_v"]])
    predicted = flip_step_medians(activation, d, width, n_inputs)
    for column in ("delta", "eta"):
        estimate = control_variate_estimate(networks[column], covariates, (1.0, 1.0), "networks")
        assert estimate.value == pytest.approx(predicted[column], rel=0.03), column


@pytest.mark.parametrize("p", [0.25, 0.5, 0.75])
def test_pooled_step_quantiles_match_sampling_the_model(p):
    """The mixture's quantile against 10⁶ draws of the same model: s ~ N(0, 1), τ ~ |N(c₀s/G, σ²)|, ‖δ‖ = exact(τ)."""
    model = StepModel.of("relu", 100, 100)
    rng = np.random.default_rng(2)
    s = rng.normal(0, 1, 1_000_000)
    mean, _, slope = gaussian_expectations("relu")
    tau = torch.from_numpy(np.abs(rng.normal(mean / math.sqrt(slope) * s, model.sigma)))
    sampled = np.quantile(model.exact(tau).numpy(), p)
    assert pooled_step_quantile("relu", 100, 100, p)["delta"] == pytest.approx(sampled, rel=3e-3)


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
