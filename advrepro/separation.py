"""Exact nearest differently-labelled neighbours (Yang, Rashtchian, Zhang, Salakhutdinov, Chaudhuri, NeurIPS 2020).

ℓ∞ on byte images, exactly, without comparing every pair byte by byte:

1. an upper bound (U_q, j_q) per query: the nearest, in exact ℓ∞, of its `candidates` nearest references in ℓ2 of
   a 64-dim random projection (a cheap ordering; any ordering keeps the result exact);
2. proofs that ‖q − r‖∞ ≥ t for almost every other pair: a pixel that is ≥ t in q and 0 in r (direction 1), or
   0 in q and ≥ t in r (direction 2), found with bit operations on packed 0/1 masks;
3. the exact distance for the pairs not proven ≥ U_q, which gives the exact distance D_q;
4. where D_q = U_q, the references before j_q not proven ≥ U_q + 1, scanned in index order up to the first tie.

Ties go to the smallest reference index (one int64 key per (distance, index)), and every float here is an exact
integer or an elementwise IEEE result: the rows are the same bits on any device, thread count and batch size.
ℓ2 (optionally on unit-normalised inputs) comes from exact integer dot products.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

PAIRS_PER_BATCH = 2**16
QUERIES_PER_BATCH = 1024
QUERIES_PER_BLOCK = 256  # open_pairs: a block's proofs, 256 × ⌈60,000/64⌉ words of MNIST, are 1.9 MB


def exact_linf(queries: Tensor, refs: Tensor, qi: Tensor, rj: Tensor) -> Tensor:
    """‖queries[qi] − refs[rj]‖∞ for the listed pairs (bytes, as int64)."""
    out = torch.empty(len(qi), dtype=torch.int64, device=queries.device)
    for s in range(0, len(qi), PAIRS_PER_BATCH):
        a, b = queries[qi[s : s + PAIRS_PER_BATCH]], refs[rj[s : s + PAIRS_PER_BATCH]]
        out[s : s + PAIRS_PER_BATCH] = (torch.maximum(a, b) - torch.minimum(a, b)).amax(-1)  # stays in bytes
    return out


def keys(values: Tensor, index: Tensor, count: int) -> Tensor:
    """One int64 per (value, index) that orders by value, then by index (< count): the tie rule of every minimum
    here, so that results do not depend on the order in which a device or thread count visits the pairs."""
    return values.long() * count + index


def sketch(x: Tensor, width: int = 64, seed: int = 0) -> Tensor:
    """A Rademacher (±1) random projection to `width` dimensions (Achlioptas 2003: ℓ2 distances approximately kept),
    enough to order candidates; exactness comes from the proof and the exact check. On bytes its values, and the
    float64 distances between them, are integers computed exactly on any device and thread count."""
    g = torch.Generator().manual_seed(seed)
    projection = (torch.randint(0, 2, (x.shape[1], width), generator=g) * 2 - 1).double()
    return x.double() @ projection.to(x.device)


def keyed_topk(values: Tensor, excluded: Tensor, k: int) -> Tensor:
    """Per row, the columns of the k smallest allowed values, ties to the smaller column (integer values)."""
    count = values.shape[1]
    allowed = values.masked_fill(excluded, 0)
    shift = max(0, (int(allowed.abs().max()) * count).bit_length() - 62)  # keep value·count inside int64
    column = torch.arange(count, device=values.device)
    order = keys(torch.div(allowed, 2**shift, rounding_mode="floor"), column, count)
    return order.masked_fill(excluded, torch.iinfo(torch.int64).max).topk(k, largest=False).indices


def upper_bounds(
    queries: Tensor, refs: Tensor, query_sketch: Tensor, ref_sketch: Tensor, excluded: Tensor, candidates: int
) -> Tensor:
    """Step 1: per query, the key (distance, index) of the nearest among its `candidates` nearest allowed
    references in the sketch's ℓ2. The sketch distances are exact integers, so that set is unique unless the
    `candidates`-th and the next tie; those rows are ordered by (value, index) instead."""
    count = refs.shape[0]
    k = min(candidates, count)
    # ‖q − r‖² − ‖q‖², exact
    sq = torch.addmm(ref_sketch.square().sum(1), query_sketch, ref_sketch.T, alpha=-2)
    sq[excluded] = torch.inf
    values, near = sq.topk(min(k + 1, count), largest=False)
    near = near[:, :k].clone()
    if k < count and (tied := (values[:, k - 1] == values[:, k]).nonzero()[:, 0]).numel():
        near[tied] = keyed_topk(sq[tied], excluded[tied], k)
    qi = torch.arange(len(queries), device=queries.device).repeat_interleave(k)
    found = exact_linf(queries, refs, qi, near.reshape(-1)).reshape(near.shape)
    found[torch.gather(excluded, 1, near)] = torch.iinfo(torch.int16).max  # no allowed reference: no bound
    return keys(found, near, count).amin(1)


def bits(mask: np.ndarray) -> np.ndarray:
    """(R, C) bool → (R, ⌈C/64⌉) uint64: each row's C bits packed into machine words."""
    packed = np.packbits(mask, axis=1)
    packed = np.pad(packed, ((0, 0), (0, (-packed.shape[1]) % 8)))
    return np.ascontiguousarray(packed).view(np.uint64)


def set_bits(packed: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every 1 among the first `count` columns of `bits`' packing, sorted by row, then column
    (np.nonzero of the unpacked matrix), unpacking only the words that hold a 1: few, once nearly every pair is
    proven."""
    row, word = np.nonzero(packed)
    unpacked = np.unpackbits(packed[row, word].view(np.uint8).reshape(-1, 8), axis=1)  # 64 columns a word
    one, offset = np.nonzero(unpacked)
    column = word[one] * 64 + offset
    inside = column < count
    return row[one][inside], column[inside]


@dataclasses.dataclass
class Proofs:
    """Bitsets that prove pairs far apart without comparing them: over the references, per pixel, [r = 0]
    (`zero_by_pixel`); over the pixels, per query, [q = 0]; per query label, the references of that label."""

    q: np.ndarray
    r: np.ndarray
    q_labels: np.ndarray
    zero_by_pixel: np.ndarray
    query_zero: np.ndarray
    same_class: dict[int, np.ndarray]

    @classmethod
    def of(cls, queries: Tensor, query_labels: Tensor, refs: Tensor, ref_labels: Tensor) -> "Proofs":
        q, r = queries.cpu().numpy(), refs.cpu().numpy()
        q_labels, r_labels = query_labels.cpu().numpy(), ref_labels.cpu().numpy()
        same = {c: bits((r_labels == c)[None])[0] for c in np.unique(q_labels)}
        return cls(q, r, q_labels, bits((r == 0).T), bits(q == 0), same)

    def open_pairs(
        self, members: np.ndarray, threshold: int, before: np.ndarray | None = None
    ) -> tuple[np.ndarray, ...]:
        """(qi, rj), sorted by query then reference: the other-class pairs of the `members` queries, with a reference
        index below `before` (one per member; None: any), not proven ≥ threshold. Direction 1: a pixel ≥ threshold
        in q and 0 in r (per query, one OR-reduction of the references' zero-rows of its bright pixels, a few
        dozen); direction 2, on the pairs left: 0 in q and ≥ threshold in r (13 machine words a pair). Queries go in
        blocks, so that every intermediate stays cache-sized and no query × reference matrix is ever whole."""
        far = bits(self.r >= threshold)  # per reference, its pixels ≥ threshold
        found = [(np.zeros(0, dtype=np.intp),) * 2]
        for start in range(0, len(members), QUERIES_PER_BLOCK):
            block = members[start : start + QUERIES_PER_BLOCK]
            if before is None:
                proven = np.zeros((len(block), self.zero_by_pixel.shape[1]), dtype=np.uint64)
            else:  # the references from `before` on count as proven
                proven = bits(
                    np.arange(len(self.r))[None, :] >= before[start : start + QUERIES_PER_BLOCK, None]
                )
            for row, bright in zip(proven, self.q[block] >= threshold, strict=True):
                row |= np.bitwise_or.reduce(self.zero_by_pixel[bright], axis=0)  # row: a view into proven
            for label in np.unique(self.q_labels[block]):
                proven[self.q_labels[block] == label] |= self.same_class[label]
            local, rj = set_bits(~proven, len(self.r))
            qi = block[local]
            keep = ~(self.query_zero[qi] & far[rj]).any(1)
            found.append((qi[keep], rj[keep]))
        return tuple(np.concatenate(column) for column in zip(*found, strict=True))


def first_within(
    queries: Tensor, refs: Tensor, qi: np.ndarray, rj: np.ndarray, limit: np.ndarray, first_round: int = 16
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per query of the pairs (sorted by query, then reference), the first reference with ‖q − r‖∞ ≤ limit[q], found
    in index order in rounds that grow ×4 from `first_round` pairs a query, stopping each query at its first hit.
    Returns the queries with a hit, their references, and how many distances were computed."""
    device = queries.device
    starts = np.flatnonzero(np.r_[True, qi[1:] != qi[:-1]]) if len(qi) else np.zeros(0, dtype=np.int64)
    ends, position = np.r_[starts[1:], len(qi)], starts.copy()
    found = np.full(len(starts), -1)
    take, evaluated = first_round, 0
    while (searching := np.flatnonzero((found < 0) & (position < ends))).size:
        sizes = np.minimum(ends[searching] - position[searching], take)
        pair = np.repeat(position[searching] - np.r_[0, sizes.cumsum()[:-1]], sizes) + np.arange(sizes.sum())
        distance = exact_linf(queries, refs, *(torch.from_numpy(a).to(device) for a in (qi[pair], rj[pair])))
        hit = distance.cpu().numpy() <= limit[qi[pair]]
        group = np.repeat(searching, sizes)
        # pairs are in index order: the first hit of each query
        first = np.unique(group[hit], return_index=True)
        found[first[0]] = rj[pair][hit][first[1]]
        position[searching] += sizes
        evaluated += len(pair)
        take *= 4
    done = found >= 0
    return qi[starts[done]], found[done], evaluated


def ignore(done: int) -> None:
    """The default progress callback: report nothing."""


def nearest_linf(
    queries: Tensor,
    query_labels: Tensor,
    refs: Tensor,
    ref_labels: Tensor,
    candidates: int = 32,
    advance: Callable[[int], object] = ignore,
) -> tuple[Tensor, Tensor, int]:
    """Per query: the exact smallest ℓ∞ distance (bytes) to a reference of another label, its index (ties: the
    smallest training index), and how many exact distances were evaluated (queries may be the references
    themselves: a point has its own label). `advance(n)` is called as steps 1 and 3 finish n queries each (2 per
    query in all; a progress bar's update).

    Step 3 evaluates every pair not proven ≥ U: the distance D is then exact, and so is the tie rule wherever
    D < U (every pair at D was evaluated). Where D = U, a pair proven ≥ U may tie: step 4 scans, in index order,
    the references before the winner that are not proven ≥ U + 1, and stops at the first at distance U."""
    device, count = queries.device, refs.shape[0]
    best = torch.empty(len(queries), dtype=torch.int64, device=device)
    query_sketch, ref_sketch = sketch(queries), sketch(refs)
    for s in range(0, len(queries), QUERIES_PER_BATCH):
        rows = slice(s, s + QUERIES_PER_BATCH)
        excluded = query_labels[rows, None] == ref_labels[None, :]
        best[rows] = upper_bounds(queries[rows], refs, query_sketch[rows], ref_sketch, excluded, candidates)
        advance(len(excluded))
    proofs = Proofs.of(queries, query_labels, refs, ref_labels)
    upper = (best // count).cpu().numpy()
    evaluated = 0
    for u in np.unique(upper).tolist():  # step 3
        members = np.flatnonzero(upper == u)
        qi, rj = proofs.open_pairs(members, u)
        evaluated += len(qi)
        if len(qi):
            qi, rj = torch.from_numpy(qi).to(device), torch.from_numpy(rj).to(device)
            best = best.scatter_reduce(
                0, qi, keys(exact_linf(queries, refs, qi, rj), rj, count), reduce="amin"
            )
        advance(len(members))
    distance, winner = (best // count).cpu().numpy(), (best % count).cpu().numpy()
    for u in np.unique(distance[distance == upper]).tolist():  # step 4
        members = np.flatnonzero((distance == u) & (upper == u))
        qi, rj = proofs.open_pairs(members, u + 1, before=winner[members])
        qi, rj, scanned = first_within(queries, refs, qi, rj, distance)
        evaluated += scanned
        best[torch.from_numpy(qi).to(device)] = torch.from_numpy(u * count + rj).to(device)
    return best // count, best % count, evaluated


def nearest_l2(
    queries: Tensor,
    query_labels: Tensor,
    refs: Tensor,
    ref_labels: Tensor,
    normalize: bool,
    advance: Callable[[int], object] = ignore,
) -> tuple[Tensor, Tensor]:
    """Per query: the exact smallest ℓ2 distance to a reference of another label (on unit-normalised vectors when
    `normalize`), and its index (ties: the smallest training index). `advance(n)` as each n queries are done.

    On bytes the dot products and squared norms are integers, exact in float64 whatever the summation order; the
    distances follow elementwise (‖q − r‖² = ‖q‖² + ‖r‖² − 2 q·r, or 2 − 2 q·r / (‖q‖‖r‖) on unit vectors), so
    every device and thread count gives the same bits."""
    a, b = queries.double(), refs.double()
    a_sq, b_sq = a.square().sum(1), b.square().sum(1)
    column = torch.arange(len(b), device=b.device)
    best, index = [], []
    for s in range(0, len(a), QUERIES_PER_BATCH):
        rows = slice(s, s + QUERIES_PER_BATCH)
        dot = a[rows] @ b.T
        if normalize:
            sq = 2 - 2 * dot / (a_sq[rows, None] * b_sq[None, :]).sqrt()
            sq = sq.nan_to_num(torch.inf)  # a zero image has no direction
        else:
            sq = a_sq[rows, None] + b_sq[None, :] - 2 * dot
        sq[query_labels[rows, None] == ref_labels[None, :]] = torch.inf
        value = sq.amin(1, keepdim=True)
        best.append(value[:, 0].clamp_min(0).sqrt())
        index.append(torch.where(sq == value, column, len(b)).amin(1))
        advance(len(sq))
    return torch.cat(best), torch.cat(index)
