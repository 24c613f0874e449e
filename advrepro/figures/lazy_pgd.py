"""Figure 4 of Wang, Ullah, Mianjy, Arora (NeurIPS 2022): robust test accuracy over (d, ε) and (width, R)."""

from pathlib import Path

import numpy as np
import pandas as pd

from advrepro.experiments.lazy_pgd import NAME, transitions
from advrepro.figures import inferred_note, panels, save, settings

SETTINGS = [
    "runs",
    "train_subset",
    "pgd_steps",
    "pgd_step_size",
    "lr",
    "batch_size",
    "max_epochs",
    "patience",
    "project",
    "clip",
    "seed",
]


def edges(values: np.ndarray) -> np.ndarray:
    """Cell edges at geometric midpoints, for a heat map on log axes."""
    if len(values) == 1:
        return np.array([values[0] / 1.5, values[0] * 1.5])
    mids = np.sqrt(values[1:] * values[:-1])
    return np.concatenate([[values[0] ** 2 / mids[0]], mids, [values[-1] ** 2 / mids[-1]]])


def heat(ax, frame: pd.DataFrame, x: str, y: str):
    table = frame.groupby([y, x])["robust_test_acc"].mean().unstack(x)
    xs, ys = table.columns.to_numpy(dtype=float), table.index.to_numpy(dtype=float)
    mesh = ax.pcolormesh(
        edges(xs), edges(ys), table.to_numpy(), vmin=0, vmax=1, cmap="viridis", shading="flat"
    )
    for (i, yv), (j, xv) in ((a, b) for a in enumerate(ys) for b in enumerate(xs)):
        value = table.iat[i, j]
        if np.isfinite(value):
            ax.text(
                xv,
                yv,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=6,
                color="w" if value < 0.6 else "k",
            )
    ax.set(xscale="log", yscale="log")
    return mesh, xs


def plot(rows: pd.DataFrame, cells: pd.DataFrame, figure_dir: Path) -> list[str]:
    chosen = transitions(rows)
    left, right = chosen["left"], chosen["right"]
    show = [
        (name, frame)
        for name, frame in (("left", left), ("right", right))
        if frame[["d", "eps"] if name == "left" else ["width", "radius"]].drop_duplicates().shape[0] > 1
    ]
    if not show:
        return []
    fig, axes = panels(len(show), width=4.8, height=3.8)
    for ax, (name, frame) in zip(axes, show, strict=True):
        if name == "left":
            mesh, xs = heat(ax, frame, "d", "eps")
            ax.plot(xs, 1 / np.sqrt(xs), "r-", lw=1.5, label="ε = 1/√d")
            ax.set(
                xlabel="input dimension d",
                ylabel="ε (ℓ2 attack radius)",
                title=f"width={frame['width'].iloc[0]}, R={frame['radius'].iloc[0]:.3g}, n_train={frame['train_size'].iloc[0]}",
            )
        else:
            mesh, xs = heat(ax, frame, "width", "radius")
            ax.plot(xs, 1 / np.sqrt(xs), "r-", lw=1.5, label="R = 1/√m")
            ax.set(
                xlabel="width m",
                ylabel="R (lazy-ball radius)",
                title=f"d={frame['d'].iloc[0]}, ε={frame['eps'].iloc[0]:g}, n_train={frame['train_size'].iloc[0]}",
            )
        ax.legend(fontsize=7, loc="upper left")
    fig.colorbar(mesh, ax=axes, label="robust test accuracy")
    caption = (
        "Fig. 4: robust test accuracy (ℓ2 PGD, the training attack; step α = 2.5ε/pgd_steps unless pgd_step_size "
        "is set) after adversarial training inside the lazy ball; mean over runs, written in each cell. A model "
        "predicting −1 everywhere scores 0.46. "
        + settings(cells, SETTINGS)
        + ". "
        + inferred_note(NAME, ["d", "eps", "width", "radius", "train_subset", "pgd_steps", "max_epochs"])
    )
    return save(fig, f"{NAME}_fig4", figure_dir, caption)
