"""Figure of yang-separation: per-point distance to the nearest differently-labelled training point."""

from pathlib import Path

import numpy as np
import pandas as pd

from advrepro.experiments.yang_separation.claims import LAZY_PGD_EPS, PUBLISHED
from advrepro.experiments.yang_separation.runner import NAME
from advrepro.plotting import inferred_note, panels, save, settings


def plot(rows: pd.DataFrame, summary: pd.DataFrame, figure_dir: Path) -> list[str]:
    groups = list(rows.groupby(["dataset", "classes", "norm", "normalize"]))
    if not groups:
        return []
    fig, axes = panels(len(groups), width=4.4)
    for ax, ((dataset, classes, norm, normalize), frame) in zip(axes, groups, strict=True):
        bins = np.linspace(0, frame["distance"].max() * 1.02, 60)
        for split, color in (("train", "C0"), ("test", "C1")):
            values = frame.loc[frame["split"] == split, "distance"]
            ax.hist(
                values, bins=bins, color=color, alpha=0.55, label=f"{split}–train (min {values.min():.3f})"
            )
        if norm == "linf" and dataset in PUBLISHED:
            eps = PUBLISHED[dataset][2]
            ax.axvline(2 * eps, color="k", ls="--", lw=1, label=f"2ε, ε = {eps:g} (usual attack radius)")
        if normalize:
            ax.axvline(
                2 * LAZY_PGD_EPS,
                color="k",
                ls=":",
                lw=1,
                label=f"2ε, lazy-training Fig. 4 ε = {LAZY_PGD_EPS:g}",
            )
        which = (
            "ℓ∞, pixels in [0, 1]"
            if norm == "linf"
            else ("ℓ2, ‖x‖ = 1" if normalize else "ℓ2, pixels in [0, 1]")
        )
        ax.set(
            yscale="log",
            xlabel=f"distance to the nearest other-class training point ({which})",
            ylabel="points",
            title=f"{dataset}, classes {classes}",
        )
        ax.legend(fontsize=7)
    caption = (
        "Per-point distance to the nearest training point of another class (exact), for training points (train–train) "
        "and test points (test–train); the smallest is the separation, and a classifier both accurate and robust "
        "at radius ε exists when 2ε is below it. "
        + settings(summary, ["candidates", "drop_smallest"])
        + ". "
        + inferred_note(NAME, ["dataset", "classes", "norm", "normalize"])
    )
    return save(fig, f"{NAME}_distances", figure_dir, caption)
