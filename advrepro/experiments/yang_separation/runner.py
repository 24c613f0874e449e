"""yang-separation: the config and the runner (torch); the paper and the protocol are in the package docstring."""

import dataclasses

import numpy as np
import pandas as pd
import torch

from advrepro.config import CommonConfig, require_choice
from advrepro.data.images import load_images
from advrepro.errors import UserError
from advrepro.progress import bar
from advrepro.separation import nearest_l2, nearest_linf

NAME = "yang-separation"
DATASETS = ("mnist", "cifar10", "svhn")
NORMS = ("linf", "l2")


@dataclasses.dataclass
class YangConfig(CommonConfig):
    """One separation table entry: a data set, its classes, a norm."""

    dataset: str = "mnist"
    classes: str = "all"
    norm: str = "linf"
    normalize: bool = False
    drop_smallest: int = 0
    candidates: int = 32
    data_dir: str = "data"
    download: bool = True

    def __post_init__(self):
        require_choice(self, "dataset", DATASETS)
        require_choice(self, "norm", NORMS)
        if self.normalize and self.norm != "l2":
            raise UserError("normalize=true needs norm=l2 (unit-normalised inputs are compared in ℓ2)")
        if self.drop_smallest < 0 or self.candidates < 1:
            raise UserError("drop_smallest must be ≥ 0 and candidates ≥ 1")
        self.class_list  # noqa: B018 (validates the list)

    @property
    def class_list(self) -> list[int] | None:
        """None for every class, else the listed labels (comma-separated, e.g. 0,1)."""
        if self.classes == "all":
            return None
        try:
            labels = sorted({int(c) for c in str(self.classes).split(",")})
        except ValueError:
            raise UserError(f"classes must be 'all' or labels like 0,1, got {self.classes!r}") from None
        if len(labels) < 2:
            raise UserError(f"classes needs at least two labels, got {self.classes!r}")
        return labels


def nearest(
    cfg: YangConfig, queries, query_labels, refs, ref_labels, split: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """Distances (pixel units: bytes/255, or ℓ2 of unit vectors) to the nearest reference of another class."""
    passes = 2 if cfg.norm == "linf" else 1  # ℓ∞: bounds, then exact distances
    desc = f"{NAME} {cfg.dataset} {cfg.classes} {cfg.norm} {split}"
    with bar(None, cfg, desc=desc, total=passes * len(queries), unit="pt", unit_scale=True) as progress:
        if cfg.norm == "linf":
            best, index, evaluated = nearest_linf(
                queries, query_labels, refs, ref_labels, cfg.candidates, progress.update
            )
            return best.cpu().numpy() / 255, index.cpu().numpy(), evaluated
        best, index = nearest_l2(queries, query_labels, refs, ref_labels, cfg.normalize, progress.update)
    scale = 1.0 if cfg.normalize else 255.0
    return best.cpu().numpy() / scale, index.cpu().numpy(), len(queries) * len(refs)


# The columns of rows.csv (besides `cell`, added on aggregation): name -> meaning.
COLUMNS = {
    "dataset": "mnist, cifar10 or svhn",
    "classes": "all, or the labels kept",
    "norm": "linf or l2",
    "normalize": "images scaled to unit ℓ2 norm first",
    "split": "train: a training point against the others; test: a test point against the training set",
    "index": "the point's index within its split (after the class filter)",
    "label": "its label",
    "distance": "distance to the nearest training point of another label (pixels in [0, 1])",
    "neighbour": "that training point's index (ties: the smallest index)",
    "neighbour_label": "its label",
    "exact_evaluations": "exact distances computed for the whole split (all pairs for l2)",
}


def run(cfg: YangConfig, device: torch.device) -> pd.DataFrame:
    """Rows, one per point: split (train: its nearest other-class training point; test: likewise), index, label,
    distance (pixels in [0, 1]; ℓ2 of unit vectors when normalize), neighbour (its training index), neighbour_label,
    exact_evaluations (exact distances computed for the split; all pairs for ℓ2)."""
    data = load_images(cfg.dataset, cfg.data_dir, cfg.download, cfg.class_list)
    train_x, train_y = data["train_x"].to(device), data["train_y"].to(device)
    frames = []
    for split in ("train", "test"):
        x, y = data[f"{split}_x"].to(device), data[f"{split}_y"].to(device)
        distance, neighbour, evaluated = nearest(cfg, x, y, train_x, train_y, split)
        frames.append(
            pd.DataFrame(
                {
                    "dataset": cfg.dataset,
                    "classes": cfg.classes,
                    "norm": cfg.norm,
                    "normalize": cfg.normalize,
                    "split": split,
                    "index": np.arange(len(y)),
                    "label": y.cpu().numpy(),
                    "distance": distance,
                    "neighbour": neighbour,
                    "neighbour_label": train_y.cpu().numpy()[neighbour],
                    "exact_evaluations": evaluated,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def cost_model(c: dict) -> float:
    """Cost model for estimates: (points)^1.5 × pixels (pruning makes it far below the N² pairs; measured on MNIST,
    0-vs-1 against all classes)."""
    points, pixels = {"mnist": (70_000, 784), "cifar10": (60_000, 3072), "svhn": (99_289, 3072)}[c["dataset"]]
    share = 1.0 if c["classes"] == "all" else len(str(c["classes"]).split(",")) / 10
    return (points * share) ** 1.5 * pixels
