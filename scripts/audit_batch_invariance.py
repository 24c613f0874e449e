"""Audit: does a lazy model's SGD step come out bit for bit the same whatever the batch it is computed in?

Batching cells (lazy-pgd's batch groups), a stopped model leaving its batch, and resuming one cell at a time all
rely on it. For each (d, width, minibatch) of the lazy grids this computes one closed-form SGD step and the input
gradient of 4 models together, then of sub-batches (1, 2, 3 models) on 1 and 2 threads, and prints the cases
whose weights, gradients or step bounds differ in any bit. Run it twice: on this 2-core machine (torch 2.14.1, MKL)
the float32 cases that differ are few and not the same from run to run.

    .venv/bin/python scripts/audit_batch_invariance.py [float32|float64]
"""

import sys

import torch

from advrepro.lazy import init_lazy_nets, sgd_step
from advrepro.seeding import generator

# (d, width, minibatch): lazy-pgd's 128 and its last of 32 (4,000 images), the code's 32 and its last of 25
# (12,665, scale=recipe and paper, widths to 10,000), lazy-sgd's 64 and its last of 57
SHAPES = [
    (25, 1000, 128),
    (196, 1000, 32),
    (784, 100, 128),
    (784, 300, 32),
    (784, 1000, 25),
    (784, 1000, 128),
    (25, 500, 57),
    (400, 1000, 57),
    (784, 2000, 64),
    (784, 3000, 25),
    (784, 10_000, 32),
]
VARIANTS = [(slice(0, 4), 1), (slice(0, 2), 2), (slice(0, 3), 2), (slice(2, 3), 2), (slice(3, 4), 1)]
NAMES = ("W", "b", "input gradient", "step bound")


def step(d: int, width: int, x, y, models: slice, threads: int, dtype) -> tuple:
    torch.set_num_threads(threads)
    nets = init_lazy_nets(0, 4, d, width, True, dtype, "cpu", trainable=False).take(torch.arange(4)[models])
    _, gradient, _ = nets.net().input_gradient(x[models])
    bound = sgd_step(nets, x[models], y[models], 0.1, torch.ones(len(nets.W), dtype=torch.bool))
    return nets.W, nets.b, gradient, bound


def main(dtype_name: str = "float32") -> None:
    dtype, threads = getattr(torch, dtype_name), torch.get_num_threads()
    differ = 0
    for d, width, batch in SHAPES:
        g = generator(0, "audit")
        x, y = (
            torch.rand(4, batch, d, generator=g, dtype=dtype),
            torch.sign(torch.randn(4, batch, generator=g)),
        )
        reference = step(d, width, x, y.to(dtype), slice(0, 4), 2, dtype)
        for models, n_threads in VARIANTS:
            out = step(d, width, x, y.to(dtype), models, n_threads, dtype)
            bad = [n for n, a, b in zip(NAMES, out, reference, strict=True) if not torch.equal(a, b[models])]
            if bad:
                differ += 1
                print(
                    f"d={d} width={width} minibatch={batch}: models {models.start}-{models.stop - 1} of 4 on "
                    f"{n_threads} thread(s) differ from the batch of 4 on 2 threads in {', '.join(bad)}"
                )
    torch.set_num_threads(threads)
    print(f"{dtype_name}: {differ} of {len(SHAPES) * len(VARIANTS)} cases differ")


if __name__ == "__main__":
    main(*sys.argv[1:])
