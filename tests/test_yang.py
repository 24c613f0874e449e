"""yang-separation: the pruned exact ℓ∞ search equals brute force; ℓ2; CLI; offline data sets fail in one line."""

import pandas as pd
import pytest
import torch

from advrepro.separation import nearest_l2, nearest_linf
from tests.helpers import assert_columns_documented


def brute_force(queries, query_labels, refs, ref_labels, p):
    distances = torch.cdist(queries.double(), refs.double(), p=p)
    distances[query_labels[:, None] == ref_labels[None, :]] = torch.inf
    return distances.min(1).values


def images(n, d, zero_share, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, d), generator=g, dtype=torch.uint8)
    x[torch.rand(n, d, generator=g) < zero_share] = 0
    return x, torch.randint(0, 3, (n,), generator=g)


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


def test_yang_cli_smoke(cli, results, mnist_smoke):
    result = cli("run", "yang-separation", *mnist_smoke)
    assert result.exit_code == 0, result.stderr
    assert_columns_documented(results, "yang-separation")
    rows = pd.read_csv(results / "yang-separation.csv")
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
