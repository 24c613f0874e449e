"""Image classification data sets as flat byte images: MNIST (offline too), CIFAR-10 and SVHN (torchvision's
download, for users with a network)."""

import contextlib
import io
import socket
import urllib.parse
from pathlib import Path

import numpy as np
import torch

from advrepro.data.mnist import DOWNLOAD_TIMEOUT_S, load_mnist, reachable
from advrepro.errors import UserError


def _torchvision_sets(
    dataset: str, data_dir: Path, download: bool
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(images (N, C, H, W) uint8, labels) per split from torchvision; a one-line UserError when unavailable."""
    from torchvision import datasets

    if dataset == "cifar10":
        url = datasets.CIFAR10.url
        make = lambda split: datasets.CIFAR10(str(data_dir), train=split == "train", download=download)
    else:
        url = datasets.SVHN.split_list["train"][0]
        make = lambda split: datasets.SVHN(str(data_dir / "svhn"), split=split, download=download)
    host = urllib.parse.urlparse(url).hostname
    if download and not reachable(url):
        raise UserError(
            f"{dataset} is not in {data_dir} and its download host {host} is unreachable (no network?)"
        )
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            sets = {split: make(split) for split in ("train", "test")}
    except (RuntimeError, OSError, ValueError) as err:
        raise UserError(f"{dataset} unavailable in {data_dir}: {str(err).splitlines()[0]}") from None
    finally:
        socket.setdefaulttimeout(previous)
    out = {}
    for split, found in sets.items():
        images = np.asarray(found.data)
        images = images.transpose(0, 3, 1, 2) if dataset == "cifar10" else images  # CIFAR stores (N, H, W, C)
        out[split] = images, np.asarray(found.targets if dataset == "cifar10" else found.labels)
    return out


def load_images(
    dataset: str, data_dir: str | Path, download: bool, classes: list[int] | None = None
) -> dict[str, torch.Tensor]:
    """train_x, test_x (N, pixels) uint8 and train_y, test_y int64, restricted to `classes` when given."""
    if dataset == "mnist":
        data = load_mnist(data_dir, download)
        parts = {split: (data[f"{split}_x"], data[f"{split}_y"]) for split in ("train", "test")}
    else:
        parts = {
            split: (torch.from_numpy(x), torch.from_numpy(y).long())
            for split, (x, y) in _torchvision_sets(dataset, Path(data_dir), download).items()
        }
    out = {}
    for split, (x, y) in parts.items():
        keep = (
            torch.ones(len(y), dtype=torch.bool) if classes is None else torch.isin(y, torch.tensor(classes))
        )
        out[f"{split}_x"], out[f"{split}_y"] = x[keep].reshape(int(keep.sum()), -1).contiguous(), y[keep]
    return out
