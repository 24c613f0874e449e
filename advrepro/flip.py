"""The smallest step along a ray that flips a network's sign.

- `gradient_ray`: the ray x + t·u along the gradient, u = −sign f(x)·∇f (t = |η|, Bubeck et al. / Bartlett et al.)
  or its unit vector (t = ‖δ‖, Wang et al.), with f along it in O(width) per trial t. Every experiment and the
  benchmark start here and then take one of the searches below (composable steps, as MadryLab robustness's).
- `exact_relu_root`: one hidden ReLU layer. Along x + t·u the pre-activations are z + t·v, so
  f(t) = c0 + Σ_l c_l relu(z_l + t v_l) is piecewise linear with breakpoints t_l = −z_l/v_l. Sorting the
  breakpoints and accumulating slopes gives the first zero exactly (docs/protocols.md §1, "Exactness").
- `scan` + `bisect`: any network. Evaluate on a grid of t until the sign changes, then bisect the bracket.
  The scan alone with step 0.001 in ‖δ‖ is the published code's walk (Wang et al. 2022, ntk_normal.py).
"""

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import Tensor

RayFunction = Callable[[Tensor, Tensor], Tensor]  # (t: (Q, G), rays: (Q,) flat ray indices) -> f: (Q, G)


@dataclasses.dataclass
class GradientRay:
    """f(x), ∇ₓf(x), the first-layer pre-activations z1 and their change v per unit t along the ray, f along it."""

    f: Tensor
    grad: Tensor
    z1: Tensor
    v: Tensor
    f_of_t: RayFunction

    @property
    def grad_norm(self) -> Tensor:
        return self.grad.norm(dim=-1)


def gradient_ray(net, x: Tensor, unit: bool) -> GradientRay:
    """The ray from x towards the other sign along the gradient: u = −sign f(x)·∇f, or u/‖u‖ when `unit`.

    `net` is an advrepro.nets.Net; x is (N, d) shared by its networks or (B, N, d)."""
    f, grad, z1 = net.input_gradient(x)
    direction = -torch.sign(f)[..., None] * grad
    if unit:
        direction = direction / grad.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    v, f_of_t = net.along_ray(z1, direction)
    return GradientRay(f, grad, z1, v, f_of_t)


def exact_flip(net, ray: GradientRay, t_max: Tensor | float) -> Tensor:
    """The first sign change along a one-hidden-layer ReLU network's ray, exactly (`exact_relu_root`)."""
    c0 = 0.0 if net.out_bias is None else net.out_bias[:, None]
    return exact_relu_root(ray.z1, ray.v, net.readout[:, None, :], c0, t_max)


def walk_flip(ray: GradientRay, step: Tensor | float, t_max: Tensor | float) -> Tensor:
    """The first grid point t = j·step where the sign has changed: the published code's walk when step = 0.001."""
    return scan(ray.f_of_t, ray.f, step, t_max)[1]


def bracketed_flip(ray: GradientRay, step: Tensor | float, t_max: Tensor | float, rtol: float) -> Tensor:
    """Any network: a grid scan brackets the first sign change, Illinois false position narrows it to rtol."""
    return refine(ray.f_of_t, ray.f, *scan(ray.f_of_t, ray.f, step, t_max), rtol)


def relu_ray_pieces(z: Tensor, v: Tensor, c: Tensor, c0: Tensor | float, t_max: Tensor | float):
    """f(t) = c0 + Σ_l c_l relu(z_l + t·v_l) on [0, t_max] as a piecewise-linear function (t_max per ray or one).

    Returns (knots, values, slopes): knots (..., k+2) from 0 to t_max (breakpoints t_l = −z_l/v_l sorted, those
    past t_max clamped onto it), f at each knot, and the slope on each segment [knot_j, knot_j+1] (..., k+1).
    """
    c = c.expand_as(z)
    active = (z > 0) | ((z == 0) & (v > 0))
    f0 = c0 + (c * torch.relu(z)).sum(-1)
    slope0 = (c * v * active).sum(-1)
    # The slope jumps by c_l·|v_l| at each breakpoint t_l = −z_l / v_l > 0 (a unit switching on or off).
    end = torch.as_tensor(t_max, dtype=z.dtype, device=z.device).expand_as(f0)[..., None]
    breaks = torch.minimum(torch.where(z * v < 0, -z / v, torch.full_like(z, math.inf)), end)
    breaks, order = breaks.sort(dim=-1)
    jumps = torch.gather(c * v.abs(), -1, order)
    zero = torch.zeros_like(f0)[..., None]
    knots = torch.cat([zero, breaks, end], -1)
    slopes = slope0[..., None] + torch.cat([zero, jumps.cumsum(-1)], -1)
    values = f0[..., None] + torch.cat([zero, (slopes * knots.diff(dim=-1)).cumsum(-1)], -1)
    return knots, values, slopes


def segment_roots(knots: Tensor, values: Tensor, slopes: Tensor, sign: Tensor) -> Tensor:
    """Per segment, where f enters the side opposite to `sign` (..., k+1); NaN for segments with no entry."""
    start, stop = sign[..., None] * values[..., :-1], sign[..., None] * values[..., 1:]
    enters = (start > 0) & (stop <= 0)
    root = knots[..., :-1] - values[..., :-1] / torch.where(slopes == 0, torch.ones_like(slopes), slopes)
    return torch.where(enters, root, torch.full_like(root, math.nan))


def exact_relu_root(z: Tensor, v: Tensor, c: Tensor, c0: Tensor | float, t_max: Tensor | float) -> Tensor:
    """Smallest t in [0, t_max] with f(t) = 0, f(t) = c0 + Σ_l c_l relu(z_l + t·v_l); NaN if none.

    z, v: (..., k); c broadcastable to (..., k); c0 broadcastable to (...).
    """
    knots, values, slopes = relu_ray_pieces(z, v, c, c0, t_max)
    f0 = values[..., 0]
    first = segment_roots(knots, values, slopes, torch.sign(f0)).nan_to_num(math.inf).min(-1).values
    first = torch.where(torch.isinf(first), torch.full_like(first, math.nan), first)
    return torch.where(f0 == 0, torch.zeros_like(first), first)


def scan(f_of_t: RayFunction, f0: Tensor, step: Tensor | float, t_max: Tensor | float, block: int = 4):
    """First grid point t = j·step (j ≥ 1, t ≤ t_max) where f has left the sign of f0, for every ray.

    f0: f at t = 0 for the P rays (any shape; flattened). `step` and `t_max` may be per ray. Only rays not
    yet bracketed are evaluated, `block` grid points at a time. Returns (lo, hi) = (hi − step, hi), shaped
    like f0, NaN where the sign never changes up to t_max.
    """
    shape, f0 = f0.shape, f0.reshape(-1)
    step = torch.as_tensor(step, dtype=f0.dtype, device=f0.device).expand(shape).reshape(-1)
    t_max = torch.as_tensor(t_max, dtype=f0.dtype, device=f0.device).expand(shape).reshape(-1)
    side, hi = torch.sign(f0), torch.full_like(f0, math.nan)
    rays, first = torch.arange(f0.numel(), device=f0.device), 1
    while rays.numel():
        t = step[rays, None] * torch.arange(first, first + block, device=f0.device, dtype=f0.dtype)
        inside = t <= t_max[rays, None] * (1 + 1e-9)
        flipped = (side[rays, None] * f_of_t(t, rays) <= 0) & inside
        found = flipped.any(-1)
        hi[rays[found]] = t.gather(-1, flipped.to(torch.int8).argmax(-1, keepdim=True)).squeeze(-1)[found]
        rays, first = rays[~found & inside[:, -1]], first + block
    hi = hi.reshape(shape)
    return hi - step.reshape(shape), hi


def refine(
    f_of_t: RayFunction, f0: Tensor, lo: Tensor, hi: Tensor, rtol: float = 1e-6, max_iter: int = 200
) -> Tensor:
    """Shrink each bracket (sign of f0 at lo, the other sign at hi) until hi − lo ≤ rtol·hi; return hi.

    Illinois false position: superlinear on the nearly linear rays of these experiments, never leaves the
    bracket. Converged rays drop out; NaN brackets stay NaN.
    """
    shape, side = f0.shape, torch.sign(f0).reshape(-1)
    out = hi.reshape(-1).clone()
    rays = torch.nonzero(~torch.isnan(out)).squeeze(-1)
    a, b = lo.reshape(-1)[rays], out[rays]
    g = side[rays, None] * f_of_t(torch.stack([a, b], -1), rays)  # normalised: g(a) > 0 ≥ g(b)
    ga, gb = g[:, 0], g[:, 1]
    last = torch.zeros_like(a, dtype=torch.int8)  # which end moved last: +1 b, −1 a
    for _ in range(max_iter):
        done = (b - a <= rtol * b) | (gb == 0)
        out[rays[done]] = b[done]
        keep = ~done
        rays, a, b, ga, gb, last = rays[keep], a[keep], b[keep], ga[keep], gb[keep], last[keep]
        if not rays.numel():
            break
        t = torch.where(ga != gb, b - gb * (b - a) / (gb - ga), 0.5 * (a + b))
        t = torch.where((t > a) & (t < b), t, 0.5 * (a + b))
        gt = side[rays] * f_of_t(t[:, None], rays).squeeze(-1)
        moves_b = gt <= 0
        ga = torch.where(moves_b & (last == 1), 0.5 * ga, ga)  # Illinois: halve the end that stays twice
        gb = torch.where(~moves_b & (last == -1), 0.5 * gb, gb)
        a, ga = torch.where(moves_b, a, t), torch.where(moves_b, ga, gt)
        b, gb = torch.where(moves_b, t, b), torch.where(moves_b, gt, gb)
        last = torch.where(moves_b, 1, -1).to(torch.int8)
    out[rays] = b
    return out.reshape(shape)


def piecewise_value(knots: Tensor, values: Tensor, slopes: Tensor, t: Tensor) -> Tensor:
    """f at the points t (..., C) of the piecewise-linear function given by `relu_ray_pieces` (t ≤ t_max)."""
    j = (torch.searchsorted(knots.contiguous(), t.contiguous(), right=True) - 1).clamp(
        0, slopes.shape[-1] - 1
    )
    return values.gather(-1, j) + slopes.gather(-1, j) * (t - knots.gather(-1, j))
