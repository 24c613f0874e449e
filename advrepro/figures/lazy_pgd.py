"""Figure 4 of Wang, Ullah, Mianjy, Arora (NeurIPS 2022): robust test accuracy over (d, ε) and (width, R)."""

from pathlib import Path

import numpy as np
import pandas as pd

from advrepro.experiments.lazy_pgd import NAME, PANELS, panel_rows
from advrepro.figures import inferred_note, panels, save, settings

LABELS = {
    "d": "input dimension d",
    "eps": "ε (ℓ2 attack radius)",
    "width": "width m",
    "radius": "R (lazy-ball radius)",
}
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
    shown = {
        name: frame
        for name, frame in panel_rows(rows).items()
        if frame[[PANELS[name].across, PANELS[name].threshold]].drop_duplicates().shape[0] > 1
    }
    if not shown:
        return []
    fig, axes = panels(len(shown), width=4.8, height=3.8)
    for ax, (name, frame) in zip(axes, shown.items(), strict=True):
        across, threshold, fixed, symbol = PANELS[name][:4]
        mesh, xs = heat(ax, frame, across, threshold)
        ax.plot(
            xs, 1 / np.sqrt(xs), "r-", lw=1.5, label=f"{symbol} = 1/√{'m' if across == 'width' else across}"
        )
        title = ", ".join(f"{k}={frame[k].iloc[0]:g}" for k in fixed)
        ax.set(
            xlabel=LABELS[across],
            ylabel=LABELS[threshold],
            title=f"{title}, n_train={frame['train_size'].iloc[0]}",
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
