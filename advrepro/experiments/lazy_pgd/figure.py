"""Figure 4 of Wang, Ullah, Mianjy, Arora (NeurIPS 2022): robust test accuracy over (d, ε) and (width, R), and our C0
axis (ε against R at one d and m)."""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.patches import Rectangle

from advrepro.claims import MIN_ACCURACY
from advrepro.experiments.lazy_pgd.claims import (
    C0_PANEL,
    PANELS,
    Panel,
    c0_rows,
    crossing_points,
    describe,
    panel_grid,
    panel_rows,
)
from advrepro.experiments.lazy_pgd.runner import NAME
from advrepro.plotting import departures_note, inferred_note, panels, save, settings

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


def heat(ax, frame: pd.DataFrame, panel: Panel):
    """Robust test accuracy per (across, threshold) cell, written in it; untrained cells hatched grey instead."""
    grid = panel_grid(frame, panel)
    robust = grid.pivot(index=panel.threshold, columns=panel.across, values="robust")
    trained = grid.pivot(index=panel.threshold, columns=panel.across, values="trained").astype(bool)
    clean = grid.pivot(index=panel.threshold, columns=panel.across, values="clean")
    xs, ys = robust.columns.to_numpy(dtype=float), robust.index.to_numpy(dtype=float)
    x_edges, y_edges = edges(xs), edges(ys)
    mesh = ax.pcolormesh(
        x_edges, y_edges, robust.where(trained).to_numpy(), vmin=0, vmax=1, cmap="viridis", shading="flat"
    )
    for i, j in np.argwhere(robust.notna().to_numpy()):
        if trained.iat[i, j]:
            value = robust.iat[i, j]
            text, color = f"{value:.2f}", "w" if value < 0.6 else "k"
        else:
            ax.add_patch(
                Rectangle(
                    (x_edges[j], y_edges[i]),
                    x_edges[j + 1] - x_edges[j],
                    y_edges[i + 1] - y_edges[i],
                    facecolor="0.85",
                    edgecolor="0.55",
                    hatch="///",
                    lw=0,
                )
            )
            text, color = f"clean\n{clean.iat[i, j]:.2f}", "0.2"
        ax.text(xs[j], ys[i], text, ha="center", va="center", fontsize=5.5, color=color)
    ax.set(xscale="log", yscale="log")
    return mesh, xs


def plot(rows: pd.DataFrame, summary: pd.DataFrame, figure_dir: Path) -> list[str]:
    candidates = {name: (PANELS[name], frame) for name, frame in panel_rows(rows).items()}
    if rows["radius"].nunique() > 1:  # the C0 axis, when the cells have one
        candidates["C0 axis"] = (C0_PANEL, c0_rows(rows))
    shown = {
        name: (panel, frame)
        for name, (panel, frame) in candidates.items()
        if len(frame) and frame[[panel.across, panel.threshold]].drop_duplicates().shape[0] > 1
    }
    if not shown:
        return []
    fig, axes = panels(len(shown), width=4.8, height=3.8)
    for ax, (name, (panel, frame)) in zip(axes, shown.items(), strict=True):
        mesh, xs = heat(ax, frame, panel)
        if panel is C0_PANEL:  # the ball in the paper's units on top: C0 = R·√m
            root_m = float(np.sqrt(frame["width"].iloc[0]))
            top = ax.secondary_xaxis("top", functions=(lambda r, k=root_m: r * k, lambda c, k=root_m: c / k))
            top.set_xlabel("C0 = R·√m", fontsize=8)
            top.set_xticks(xs * root_m, labels=[f"{c:.2g}" for c in xs * root_m])
            top.xaxis.set_minor_formatter(ticker.NullFormatter())
        else:
            ax.plot(
                xs,
                1 / np.sqrt(xs),
                "r-",
                lw=1.5,
                label=f"{panel.symbol} = 1/√{panel.scale} (the paper's line)",
            )
        grid = panel_grid(frame, panel)
        points = crossing_points(grid, panel, grid["robust"].to_numpy())
        ax.plot(
            list(points),
            list(points.values()),
            "wo--",
            mec="k",
            ms=4,
            lw=1,
            label="measured: robust accuracy = 1/2 (trained cells)",
        )
        ax.set(
            xlabel=LABELS[panel.across],
            ylabel=LABELS[panel.threshold],
            title=f"{name}: {describe(frame, panel)}, n_train={frame['train_size'].iloc[0]}",
        )
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    bar = fig.colorbar(mesh, ax=axes, label="robust test accuracy")
    constant = float(rows["constant_acc"].iloc[0])
    for level in (constant, 1 - constant):
        bar.ax.axhline(level, color="r", lw=1)
    caption = (
        "Fig. 4: robust test accuracy (ℓ2 PGD, the training attack; step α = 2.5ε/pgd_steps unless pgd_step_size "
        "is set) after adversarial training inside the lazy ball; mean over training runs, written in each cell "
        "(the cells beside each crossing of 1/2 train with seeds 0, 1, 2 [ours], the others once). "
        + (
            "C0 axis [ours, docs §3]: ε against the ball's radius at one (d, m), the cells the crossing-C0 claim "
            "rests on (ε*·√d grows with C0). "
            if "C0 axis" in shown
            else ""
        )
        + "Hatched "
        f"grey: not trained (clean test accuracy < {MIN_ACCURACY:g}, written in the cell): no robustness result and "
        f"no claim. Red ticks on the colour bar: a constant predictor ({constant:.3f} and {1 - constant:.3f}). "
        + settings(summary, SETTINGS)
        + ". "
        + departures_note(NAME, summary, SETTINGS)
        + " "
        + inferred_note(NAME, ["d", "eps", "width", "radius", "train_subset", "pgd_steps", "max_epochs"])
    )
    return save(fig, f"{NAME}_fig4", figure_dir, caption)
