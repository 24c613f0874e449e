"""yang-separation: the claims (pandas): which rows each claim rests on, and the paper's predictions against them."""

import numpy as np
import pandas as pd

from advrepro.claims import Band, claim, reported
from advrepro.experiments.yang_separation.runner import NAME
from advrepro.stats import Estimate, with_cell_keys

# The paper's table (the ICASSP tutorial slides): data set -> (train–train, test–train separation, the usual ℓ∞ attack radius ε).
PUBLISHED = {"mnist": (0.737, 0.812, 0.1), "cifar10": (0.212, 0.220, 0.031), "svhn": (0.094, 0.110, 0.031)}
LAZY_PGD_EPS = 0.2  # the lazy-training paper's Fig. 4 right, ℓ2 on unit-normalised d = 784 inputs [code]


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
