"""yang-separation: the pruned exact ℓ∞ search equals brute force; ℓ2; CLI; offline data sets fail in one line."""

import numpy as np
import pytest
import torch

from advrepro.separation import bits, nearest_l2, nearest_linf, set_bits


def brute_force(queries, query_labels, refs, ref_labels, p):
    distances = torch.cdist(queries.double(), refs.double(), p=p)
    distances[query_labels[:, None] == ref_labels[None, :]] = torch.inf
    return distances.min(1).values


def brute_force_neighbour(distances, query_labels, ref_labels):
    """The documented rule: the smallest distance, then the smallest training index (a Python loop, no torch
    tie-breaking involved)."""
    distances = distances.clone()
    distances[query_labels[:, None] == ref_labels[None, :]] = torch.inf
    return torch.tensor(
        [min(range(len(row)), key=lambda j, row=row: (row[j].item(), j)) for row in distances]
    )


def images(n, d, zero_share, seed, levels=256):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randint(0, levels, (n, d), generator=g) * (255 // max(levels - 1, 1))).to(torch.uint8)
    x[torch.rand(n, d, generator=g) < zero_share] = 0
    return x, torch.randint(0, 3, (n,), generator=g)


@pytest.mark.parametrize(
    ("levels", "zero_share", "seed"), [(2, 0.5, 0), (3, 0.3, 1), (4, 0.8, 2), (256, 0.9, 3)]
)
def test_linf_ties_go_to_the_smallest_training_index(levels, zero_share, seed):
    refs, ref_labels = images(200, 12, zero_share, seed, levels)
    queries, query_labels = images(80, 12, zero_share, seed + 10, levels)
    for q, ql in ((queries, query_labels), (refs, ref_labels)):
        distances = (q[:, None, :].int() - refs[None, :, :].int()).abs().amax(-1).double()
        for candidates in (1, 3, 50):
            best, index, _ = nearest_linf(q, ql, refs, ref_labels, candidates=candidates)
            assert torch.equal(index, brute_force_neighbour(distances, ql, ref_labels))


@pytest.mark.parametrize("normalize", [False, True])
def test_l2_ties_go_to_the_smallest_training_index(normalize):
    refs, ref_labels = images(150, 6, 0.3, 7, levels=2)
    queries, query_labels = images(60, 6, 0.3, 8, levels=2)
    queries[0], refs[:2] = 0, 0  # a zero image: unit-normalising it gives nan, which must not win
    a, b = queries.double(), refs.double()
    sq = a.square().sum(1)[:, None] + b.square().sum(1)[None, :] - 2 * a @ b.T
    if normalize:
        sq = 2 - 2 * (a @ b.T) / (a.square().sum(1)[:, None] * b.square().sum(1)[None, :]).sqrt()
    _, index = nearest_l2(queries, query_labels, refs, ref_labels, normalize)
    expected = brute_force_neighbour(sq.nan_to_num(torch.inf), query_labels, ref_labels)
    assert torch.equal(index[1:], expected[1:])


@pytest.mark.parametrize(("zero_share", "seed"), [(0.0, 0), (0.6, 1), (0.9, 2), (0.97, 3)])
def test_pruned_linf_equals_brute_force(zero_share, seed):
    refs, ref_labels = images(300, 50, zero_share, seed)
    queries, query_labels = images(120, 50, zero_share, seed + 10)
    for q, ql in ((queries, query_labels), (refs, ref_labels)):  # test–train and train–train
        best, index, evaluated = nearest_linf(q, ql, refs, ref_labels, candidates=4)
        expected = brute_force(q, ql, refs, ref_labels, float("inf"))
        assert torch.equal(best.double(), expected)
        assert (ref_labels[index] != ql).all()
        assert torch.equal((q[torch.arange(len(q))].int() - refs[index].int()).abs().amax(1), best.int())
        assert 0 < evaluated <= len(q) * len(refs)


def test_pruned_linf_on_mnist_digits_equals_brute_force(mnist_images):
    x, y = mnist_images
    queries, refs = x[:150], x[150:3000]
    best, _, evaluated = nearest_linf(queries, y[:150], refs, y[150:3000])
    assert torch.equal(best.double(), brute_force(queries, y[:150], refs, y[150:3000], float("inf")))
    assert evaluated < 0.05 * len(queries) * len(refs)  # the bit-level proofs prune almost every pair


@pytest.mark.parametrize("normalize", [False, True])
def test_l2_equals_brute_force(normalize):
    refs, ref_labels = images(200, 30, 0.5, 4)
    queries, query_labels = images(60, 30, 0.5, 5)
    best, index = nearest_l2(queries, query_labels, refs, ref_labels, normalize)
    a, b = queries.double(), refs.double()
    if normalize:
        a, b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    expected = torch.cdist(a, b)
    expected[query_labels[:, None] == ref_labels[None, :]] = torch.inf
    torch.testing.assert_close(best, expected.min(1).values)


def test_yang_smoke_rows_and_figure(smoke_runs):
    results, rows, _, _ = smoke_runs("yang-separation")
    assert set(rows["split"]) == {"train", "test"} and len(rows) == 12_665 + 2_115
    assert (rows["label"] != rows["neighbour_label"]).all() and rows["distance"].between(0, 1).all()
    assert (results / "figures" / "yang-separation_distances.png").is_file()


def test_offline_cifar_fails_in_one_line(cli, results, tmp_path):
    result = cli(
        "run",
        "yang-separation",
        "dataset=cifar10",
        "download=false",
        f"data_dir={tmp_path / 'none'}",
        f"results_dir={results}",
        "progress=false",
    )
    assert (
        result.exit_code == 2 and "cifar10 unavailable" in result.stderr and not (results / "runs").exists()
    )


def test_bad_yang_input_exits_2(cli, results):
    for bad, message in (("classes=7", "at least two labels"), ("normalize=true", "needs norm=l2")):
        result = cli("run", "yang-separation", bad, f"results_dir={results}")
        assert result.exit_code == 2 and message in result.stderr


def test_progress_counts_every_query_once_per_pass():
    """The bar's total: ℓ∞ reports each query after its bound (step 1) and after its exact distance (step 3)."""
    refs, ref_labels = images(300, 50, 0.6, 5)
    queries, query_labels = images(1100, 50, 0.6, 6)  # more than one batch of QUERIES_PER_BATCH
    done = []
    nearest_linf(queries, query_labels, refs, ref_labels, candidates=4, advance=done.append)
    assert sum(done) == 2 * len(queries) and len(done) > 2
    done.clear()
    nearest_l2(queries, query_labels, refs, ref_labels, normalize=False, advance=done.append)
    assert done == [1024, 76]


@pytest.mark.parametrize(
    ("rows", "count", "share"), [(7, 130, 0.5), (40, 64, 0.01), (3, 1, 1.0), (5, 200, 0.0)]
)
def test_set_bits_equals_nonzero_of_the_unpacked_matrix(rows, count, share):
    mask = np.random.default_rng(count).random((rows, count)) < share
    packed = bits(mask)
    packed[:, -1] |= np.uint64(1) << np.uint64(
        63
    )  # column 56 of the last word: padding past `count` but at 64
    expected = np.nonzero(np.unpackbits(packed.view(np.uint8), axis=1)[:, :count])
    row, column = set_bits(packed, count)
    assert np.array_equal(row, expected[0]) and np.array_equal(column, expected[1])
