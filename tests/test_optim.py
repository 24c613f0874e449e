"""descend: the in-place gradient step gives the bits of θ − lr·g (the committed rows rest on it)."""

import pytest
import torch

from advrepro.optim import descend


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("lr", [0.2, 0.01, 1e-4, 0.1234567])
def test_descend_gives_the_bits_of_theta_minus_lr_g_and_consumes_g(dtype, lr):
    g = torch.Generator().manual_seed(0)
    theta = [torch.randn(3, 50, 70, generator=g, dtype=dtype), torch.randn(3, 50, generator=g, dtype=dtype)]
    grads = [torch.randn(t.shape, generator=g, dtype=dtype) * 1e3 for t in theta]
    grads[0] = (
        grads[0].transpose(1, 2).contiguous().transpose(1, 2)
    )  # strided, as autograd's bmm gradients come
    expected = [t - lr * d for t, d in zip(theta, grads, strict=True)]
    scaled = [lr * d for d in grads]
    descend(theta, grads, lr)
    assert all(torch.equal(t, e) for t, e in zip(theta, expected, strict=True))
    assert all(torch.equal(d, s) for d, s in zip(grads, scaled, strict=True))  # g now holds lr·g


def test_descend_works_on_leaves_that_require_grad():
    theta = torch.ones(4, requires_grad=True)
    descend([theta], [torch.full((4,), 2.0)], 0.5)
    assert theta.requires_grad and torch.equal(theta.detach(), torch.zeros(4))
