"""Derived seeds: every random draw of a cell comes from `seed` plus a named stream."""

import zlib

import numpy as np
import torch


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 63-bit seed for the stream `keys` of `seed` (independent of chunking, device and order)."""
    words = [seed] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return int(
        np.random.SeedSequence(words).generate_state(2, dtype=np.uint32).astype(np.uint64) @ [1 << 31, 1]
    )


def generator(seed: int, *keys: int | str) -> torch.Generator:
    """A CPU generator for one stream: draws are identical on every device once moved there."""
    return torch.Generator().manual_seed(derive_seed(seed, *keys))
