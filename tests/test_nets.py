"""Closed-form input gradients against autograd; sampled weights and inputs against their distributions."""

import itertools
import math

import numpy as np
import pytest
import torch

from advrepro.experiments.random_net.runner import RandomNetConfig, control_variates, sample_networks
from advrepro.nets import ACTIVATIONS, Net, sphere
from advrepro.seeding import generator
from advrepro.theory import gaussian_moments


def random_net(activation: str, depth: int, bias: bool, B=3, k=7, d=5, seed=0) -> Net:
    g = torch.Generator().manual_seed(seed)
    shapes = [(B, k, d)] + [(B, k, k)] * (depth - 1)
    weights = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    biases = [torch.randn(B, k, generator=g, dtype=torch.float64) for _ in shapes] if bias else None
    return Net(
        weights=weights,
        readout=torch.randn(B, k, generator=g, dtype=torch.float64),
        activation=activation,
        biases=biases,
        out_bias=torch.randn(B, generator=g, dtype=torch.float64) if bias else None,
    )


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("depth", [1, 2, 4])
@pytest.mark.parametrize("bias", [False, True])
def test_closed_form_gradient_equals_autograd(activation, depth, bias):
    net = random_net(activation, depth, bias)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(11, 5, generator=g, dtype=torch.float64, requires_grad=True)
    f, grad, z1 = net.input_gradient(x)
    reference = torch.stack([torch.autograd.grad(net.forward(x)[b].sum(), x)[0] for b in range(3)])
    # torch's softplus is exactly linear past 20, where ψ' = σ(z) differs from 1 by e^(−z) ≤ 2·10⁻⁹ per unit
    torch.testing.assert_close(grad, reference, rtol=1e-7, atol=1e-9 if activation != "softplus" else 1e-7)
    torch.testing.assert_close(f, net.forward(x))
    torch.testing.assert_close(z1, net.linear(0, x))
    value, alone, _ = net.input_gradient(x, with_value=False)  # what an attack step asks for
    assert value is None and torch.equal(alone, grad)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_closed_form_derivatives_match_autograd(activation):
    psi, psi_prime = ACTIVATIONS[activation]
    z = torch.linspace(-4, 4, 801, dtype=torch.float64, requires_grad=True)
    (reference,) = torch.autograd.grad(psi(z).sum(), z)
    torch.testing.assert_close(psi_prime(z.detach()), reference)


def test_random_net_weights_follow_the_paper_distributions():
    cfg = RandomNetConfig(d=200, width=500, n_networks=4)
    net = sample_networks(cfg, 0, 4, torch.float64)
    w = net.weights[0]
    assert w.shape == (4, 500, 200)
    assert abs(w.mean().item()) < 3 / math.sqrt(w.numel()) * math.sqrt(1 / 200)
    assert w.var().item() == pytest.approx(1 / 200, rel=0.02)  # w_l ~ N(0, I/d)
    a = net.readout * math.sqrt(500)
    assert set(a.unique().tolist()) == {-1.0, 1.0}  # a_l uniform on {−1, +1}, f scaled by 1/√k
    assert abs(a.mean().item()) < 4 / math.sqrt(a.numel())


def test_networks_do_not_depend_on_chunking():
    cfg = RandomNetConfig(d=10, width=20, depth=2, n_networks=5)
    whole = sample_networks(cfg, 0, 5, torch.float32)
    tail = sample_networks(cfg, 3, 2, torch.float32)
    torch.testing.assert_close(whole.weights[1][3:], tail.weights[1])
    torch.testing.assert_close(whole.readout[3:], tail.readout)


def test_control_variates_are_s_and_v_with_mean_one():
    """s = Σ_l c_l‖w_l‖ and v = ‖Σ_l c_l w_l‖² as defined (torch in float64), E s² = E v = 1 over many networks, and
    a ReLU network's mean output over the sphere is κ_d·s, κ_d = √d·E[u₁⁺] (docs §1); v is NaN for deeper networks."""
    cfg = RandomNetConfig(d=20, width=50, n_networks=3000)
    net = sample_networks(cfg, 0, cfg.n_networks, torch.float32)
    s, v = control_variates(net, sphere(10, cfg.d, math.sqrt(cfg.d), generator(0, "inputs")))
    w, c = net.weights[0].double(), net.readout.double()
    np.testing.assert_allclose(s, (c * w.norm(dim=-1)).sum(-1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(v, (c[..., None] * w).sum(1).square().sum(-1).numpy(), rtol=1e-12)
    assert abs((s**2).mean() - 1) < 4 * (s**2).std() / math.sqrt(len(s))
    assert abs(v.mean() - 1) < 4 * v.std() / math.sqrt(len(v))
    x = sphere(400_000, cfg.d, math.sqrt(cfg.d), generator(1, "inputs"), torch.float64)
    first = Net([w[:2]], c[:2])
    kappa = math.sqrt(cfg.d) * math.gamma(cfg.d / 2) / (2 * math.sqrt(math.pi) * math.gamma((cfg.d + 1) / 2))
    np.testing.assert_allclose(first.forward(x).mean(1).numpy(), kappa * s[:2], atol=0.01)


def test_deep_offset_is_the_mean_output_with_s_squared_one_over_every_readout_sign():
    """Deeper: s = Σ_l c_l m_l/(Σ_l c_l² m_l²)^½, m_l the last hidden unit's mean over the inputs, so s is the
    network's mean output over its inputs in units that do not depend on the readout signs; averaged over all 2⁷
    sign patterns of the readout, s² is exactly 1 (docs §1)."""
    cfg = RandomNetConfig(d=5, width=7, depth=3, hidden_gain=2.0)
    net = sample_networks(cfg, 0, 1, torch.float64)
    x = sphere(30, cfg.d, math.sqrt(cfg.d), generator(0, "inputs"), torch.float64)
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=cfg.width)), dtype=torch.float64)
    nets = Net([w.expand(len(signs), -1, -1) for w in net.weights], signs / math.sqrt(cfg.width))
    s, v = control_variates(nets, x)
    assert np.isnan(v).all()
    assert (s**2).mean() == pytest.approx(1.0, abs=1e-12)
    hidden_means = nets.hidden(nets.linear(0, x)).mean(1)
    np.testing.assert_allclose(
        s * hidden_means.norm(dim=-1).numpy() / math.sqrt(cfg.width),
        nets.forward(x).mean(1).numpy(),
        rtol=1e-10,
    )


def test_inputs_are_uniform_on_the_sqrt_d_sphere():
    d = 50
    x = sphere(20_000, d, math.sqrt(d), generator(0, "inputs"), torch.float64)
    torch.testing.assert_close(x.norm(dim=1), torch.full((20_000,), math.sqrt(d), dtype=torch.float64))
    second = x.T @ x / len(x)  # isotropic: E[x xᵀ] = I for radius √d
    torch.testing.assert_close(second, torch.eye(d, dtype=torch.float64), atol=0.06, rtol=0)
    assert x.mean(0).abs().max().item() < 0.05


def test_gaussian_moments_closed_forms():
    assert gaussian_moments("relu") == pytest.approx((0.5, 0.5), abs=1e-9)
    second, slope = gaussian_moments("tanh")
    assert second == pytest.approx(0.3943, abs=1e-4) and slope == pytest.approx(0.4644, abs=1e-4)
