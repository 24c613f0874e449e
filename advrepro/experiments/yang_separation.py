"""Real data are separated (Yang, Rashtchian, Zhang, Salakhutdinov, Chaudhuri, NeurIPS 2020, "A closer look at
accuracy vs. robustness").

docs/protocols.md §6. For every training point, the exact distance to the nearest training point of another class
(train–train), and for every test point to the nearest training point of another class (test–train). Their
minimum is the separation: an accurate and robust classifier exists whenever ε < separation/2. ℓ∞ on pixels in
[0, 1] (bytes/255; `advrepro.separation` finds it exactly with bit-level pruning), or ℓ2, optionally on
unit-normalised inputs (the lazy-training paper's Fig. 4 setting).
"""

import dataclasses

import numpy as np
import pandas as pd
import torch

from advrepro.claims import Band, claim, reported
from advrepro.config import CommonConfig, require_choice
from advrepro.data.images import load_images
from advrepro.errors import UserError
from advrepro.experiment import Experiment
from advrepro.separation import nearest_l2, nearest_linf
from advrepro.stats import Estimate, with_cell_keys

NAME = "yang-separation"
DATASETS = ("mnist", "cifar10", "svhn")
NORMS = ("linf", "l2")
# The paper's table (the ICASSP tutorial slides): data set -> (train–train, test–train separation, the usual ℓ∞ attack radius ε).
PUBLISHED = {"mnist": (0.737, 0.812, 0.1), "cifar10": (0.212, 0.220, 0.031), "svhn": (0.094, 0.110, 0.031)}
LAZY_PGD_EPS = 0.2  # the lazy-training paper's Fig. 4 right, ℓ2 on unit-normalised d = 784 inputs [code]


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


def nearest(cfg: YangConfig, queries, query_labels, refs, ref_labels) -> tuple[np.ndarray, np.ndarray, int]:
    """Distances (pixel units: bytes/255, or ℓ2 of unit vectors) to the nearest reference of another class."""
    if cfg.norm == "linf":
        best, index, evaluated = nearest_linf(queries, query_labels, refs, ref_labels, cfg.candidates)
        return best.cpu().numpy() / 255, index.cpu().numpy(), evaluated
    best, index = nearest_l2(queries, query_labels, refs, ref_labels, cfg.normalize)
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
        distance, neighbour, evaluated = nearest(cfg, x, y, train_x, train_y)
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


def separation(frame: pd.DataFrame, split: str, drop: int = 0) -> Estimate:
    """The smallest distance of a split (after dropping the `drop` smallest, the paper's SVHN rule): exact, so its
    interval is the point itself."""
    distances = np.sort(frame.loc[frame["split"] == split, "distance"].to_numpy())[drop:]
    return Estimate(
        float(distances[0]),
        float(distances[0]),
        float(distances[0]),
        f"exact: every {split} point",
        len(distances),
    )


def claims(rows: pd.DataFrame, summary: pd.DataFrame) -> list[dict]:
    """The published separations (to 1/255) and ε < separation/2 for each data set with all classes in ℓ∞; the binary
    0-vs-1 task's separations reported beside the ε of the lazy-training paper."""
    rows = with_cell_keys(rows, summary, ["drop_smallest"])
    out = []
    for (dataset, classes, norm, normalize), frame in rows.groupby(
        ["dataset", "classes", "norm", "normalize"]
    ):
        drop = int(frame["drop_smallest"].iloc[0])
        setting = f"{dataset}, classes {classes}, ℓ{'∞' if norm == 'linf' else '2'}" + (
            ", unit-normalised" if normalize else ""
        )
        if classes == "all" and norm == "linf" and dataset in PUBLISHED:
            published = dict(zip(("train", "test"), PUBLISHED[dataset][:2], strict=True))
            eps = PUBLISHED[dataset][2]
            for split, value in published.items():
                out.append(
                    claim(
                        NAME,
                        f"{dataset}-{split}-train",
                        statement=f"smallest ℓ∞ distance between differently labelled points, {split}–train ({setting})"
                        + (f", the {drop} smallest dropped" if drop and split == "train" else ""),
                        prediction=f"{value:g}",
                        source="[paper]",
                        band=Band.around(value, 1 / 255),
                        tolerance_by="ours: one grey level, 1/255",
                        estimate=separation(frame, split, drop if split == "train" else 0),
                    )
                )
            half = separation(frame, "train", drop)
            half = half.scaled(0.5)
            out.append(
                claim(
                    NAME,
                    f"{dataset}-radius",
                    statement=f"half the train–train separation against the usual ε ({setting})",
                    prediction=f"> ε = {eps:g}: an accurate robust classifier exists",
                    source="[paper]",
                    band=Band(eps, np.inf),
                    tolerance_by="the paper's inequality",
                    estimate=half,
                )
            )
        else:
            for split in ("train", "test"):
                est = separation(frame, split, drop)
                why = "no published value for this setting"
                if normalize and norm == "l2":
                    why += (
                        f"; beside the lazy-training paper's ε = {LAZY_PGD_EPS:g} (ℓ2, ‖x‖ = 1, d = 784): "
                        f"half the separation is {est.value / 2:.3f}"
                    )
                out.append(
                    reported(
                        NAME,
                        f"{dataset}-{classes.replace(',', '')}-{norm}{'-unit' if normalize else ''}"
                        f"-{split}-train",
                        statement=f"smallest distance between differently labelled points, {split}–train ({setting})",
                        estimate=est,
                        why=why,
                    )
                )
    return out


def cost_model(c: dict) -> float:
    """Cost model for estimates: (points)^1.5 × pixels (pruning makes it far below the N² pairs; measured on MNIST,
    0-vs-1 against all classes)."""
    points, pixels = {"mnist": (70_000, 784), "cifar10": (60_000, 3072), "svhn": (99_289, 3072)}[c["dataset"]]
    share = 1.0 if c["classes"] == "all" else len(str(c["classes"]).split(",")) / 10
    return (points * share) ** 1.5 * pixels


EXPERIMENT = Experiment(
    name=NAME,
    title="Real data are separated: nearest differently-labelled neighbours",
    reproduces="Yang, Rashtchian, Zhang, Salakhutdinov, Chaudhuri, 'A closer look at accuracy vs. robustness' "
    "(NeurIPS 2020), the separation table (MNIST; CIFAR-10 and SVHN with a network)",
    figures=(f"{NAME}_distances",),
    config_class=YangConfig,
    run=run,
    claims=claims,
    figure_module="advrepro.figures.yang_separation",
    cost_model=cost_model,
    columns=COLUMNS,
    rows_version=2,  # 2: ties go to the smallest training index
)
