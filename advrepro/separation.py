"""Exact nearest differently-labelled neighbours (Yang, Rashtchian, Zhang, Salakhutdinov, Chaudhuri, NeurIPS 2020).

ℓ∞ on byte images, exactly, without comparing every pair byte by byte:

1. an upper bound U_q per query: the exact ℓ∞ distance to its `candidates` nearest references in ℓ2 of a 64-dim
   random projection (a cheap ordering; any ordering keeps the result exact);
2. a proof that ‖q − r‖∞ ≥ U_q for almost every other pair: a pixel that is ≥ U_q in q and 0 in r (direction 1),
   or 0 in q and ≥ U_q in r (direction 2), found with bit operations on packed 0/1 masks;
3. the exact distance for the pairs left unproven, which are the only ones that could be nearer than U_q.

ℓ2 (optionally on unit-normalised inputs) is exact from one float64 matrix product.
"""

import numpy as np
import torch
from torch import Tensor

PAIRS_PER_BATCH = 2**16
QUERIES_PER_BATCH = 1024


def exact_linf(queries: Tensor, refs: Tensor, qi: Tensor, rj: Tensor) -> Tensor:
    """‖queries[qi] − refs[rj]‖∞ for the listed pairs (bytes, as int16)."""
    out = torch.empty(len(qi), dtype=torch.int16, device=queries.device)
    for s in range(0, len(qi), PAIRS_PER_BATCH):
        a, b = queries[qi[s : s + PAIRS_PER_BATCH]], refs[rj[s : s + PAIRS_PER_BATCH]]
        out[s : s + PAIRS_PER_BATCH] = (torch.maximum(a, b) - torch.minimum(a, b)).amax(-1)  # stays in bytes
    return out


def squared_l2(queries: Tensor, refs: Tensor) -> Tensor:
    """‖q − r‖² for all pairs, float64 (exact for bytes)."""
    a, b = queries.double(), refs.double()
    return (a.square().sum(1)[:, None] + b.square().sum(1)[None, :] - 2 * a @ b.T).clamp_min(0)


def sketch(x: Tensor, width: int = 64, seed: int = 0) -> Tensor:
    """A Gaussian random projection to `width` dimensions: ℓ2 distances approximately kept (Johnson–Lindenstrauss),
    enough to order candidates; exactness comes from the proof and the exact check."""
    g = torch.Generator().manual_seed(seed)
    projection = torch.randn(x.shape[1], width, generator=g).to(x.device) / width**0.5
    return x.float() @ projection


def upper_bounds(
    queries: Tensor, refs: Tensor, query_sketch: Tensor, ref_sketch: Tensor, excluded: Tensor, candidates: int
) -> tuple[Tensor, Tensor]:
    """Step 1: per query, the smallest exact ℓ∞ distance among its `candidates` nearest allowed references in the
    sketch's ℓ2, and that reference's index."""
    sq = torch.addmm(ref_sketch.square().sum(1), query_sketch, ref_sketch.T, alpha=-2)  # ‖q − r‖² − ‖q‖²
    sq[excluded] = torch.inf
    near = sq.topk(min(candidates, refs.shape[0]), largest=False).indices  # (Q, k)
    qi = torch.arange(len(queries), device=queries.device).repeat_interleave(near.shape[1])
    found = exact_linf(queries, refs, qi, near.reshape(-1)).reshape(near.shape)
    found[torch.gather(excluded, 1, near)] = torch.iinfo(torch.int16).max
    best, which = found.min(1)
    return best, near.gather(1, which[:, None])[:, 0]


def bits(mask: np.ndarray) -> np.ndarray:
    """(R, C) bool → (R, ⌈C/64⌉) uint64: each row's C bits packed into machine words."""
    packed = np.packbits(mask, axis=1)
    packed = np.pad(packed, ((0, 0), (0, (-packed.shape[1]) % 8)))
    return np.ascontiguousarray(packed).view(np.uint64)


def nearest_linf(
    queries: Tensor, query_labels: Tensor, refs: Tensor, ref_labels: Tensor, candidates: int = 32
) -> tuple[Tensor, Tensor, int]:
    """Per query: the exact smallest ℓ∞ distance (bytes) to a reference of another label, its index, and how many
    exact distances were evaluated (queries may be the references themselves: a point has its own label).

    Step 2 works on bitsets: over the references, per pixel, [r = 0] (so the references proven far from q by
    direction 1 are the OR of the rows of q's pixels ≥ U_q, a few dozen); over the pixels, per image, [q = 0]
    and [r ≥ u] (direction 2 for the pairs left: 13 machine words a pair)."""
    device = queries.device
    best = torch.empty(len(queries), dtype=torch.int16, device=device)
    index = torch.empty(len(queries), dtype=torch.long, device=device)
    query_sketch, ref_sketch = sketch(queries), sketch(refs)
    for s in range(0, len(queries), QUERIES_PER_BATCH):
        rows = slice(s, s + QUERIES_PER_BATCH)
        excluded = query_labels[rows, None] == ref_labels[None, :]
        best[rows], index[rows] = upper_bounds(
            queries[rows], refs, query_sketch[rows], ref_sketch, excluded, candidates
        )
    q, r = queries.cpu().numpy(), refs.cpu().numpy()
    q_labels, r_labels = query_labels.cpu().numpy(), ref_labels.cpu().numpy()
    zero_by_pixel = bits((r == 0).T)  # (d, words over references)
    other_class = {c: bits((r_labels != c)[None])[0] for c in np.unique(q_labels)}
    query_zero = bits(q == 0)  # (Q, words over pixels)
    upper = best.cpu().numpy()
    evaluated = 0
    for u in np.unique(upper):
        members = np.flatnonzero(upper == u)
        proven = np.zeros((len(members), zero_by_pixel.shape[1]), dtype=np.uint64)
        active = q[members] >= u
        for pixel in np.flatnonzero(active.any(0)):  # direction 1: OR in the references that are 0 there
            proven[active[:, pixel]] |= zero_by_pixel[pixel]
        for label in np.unique(q_labels[members]):
            proven[q_labels[members] == label] |= ~other_class[label]
        open_mask = np.unpackbits((~proven).view(np.uint8), axis=1)[:, : len(r)]
        local, rj = np.nonzero(open_mask)
        qi = members[local]
        still_open = ~(query_zero[qi] & bits(r >= u)[rj]).any(1)  # direction 2 on the pairs left
        qi, rj = torch.from_numpy(qi[still_open]).to(device), torch.from_numpy(rj[still_open]).to(device)
        if len(qi) == 0:
            continue
        evaluated += len(qi)
        found = exact_linf(queries, refs, qi, rj)
        improved = best.scatter_reduce(0, qi, found, reduce="amin")
        hit = (found == improved[qi]) & (found < best[qi])
        index[qi[hit]] = rj[hit]
        best = improved
    return best, index, evaluated


def nearest_l2(
    queries: Tensor, query_labels: Tensor, refs: Tensor, ref_labels: Tensor, normalize: bool
) -> tuple[Tensor, Tensor]:
    """Per query: the exact smallest ℓ2 distance to a reference of another label (on unit-normalised vectors when
    `normalize`), and its index."""
    a, b = queries.double(), refs.double()
    if normalize:
        a, b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    best, index = [], []
    for s in range(0, len(a), QUERIES_PER_BATCH):
        sq = squared_l2(a[s : s + QUERIES_PER_BATCH], b)
        sq[query_labels[s : s + QUERIES_PER_BATCH, None] == ref_labels[None, :]] = torch.inf
        found = sq.min(1)
        best.append(found.values.sqrt())
        index.append(found.indices)
    return torch.cat(best), torch.cat(index)
