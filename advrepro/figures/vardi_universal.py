"""Figure of vardi-universal: ‖δ‖/√d of the universal perturbation versus n, d and width (Vardi et al. 2022)."""

from pathlib import Path

import numpy as np
import pandas as pd

from advrepro.experiments.vardi_universal import NAME, fixed_panels
from advrepro.figures import inferred_note, panels, save, settings

TITLES = {"n": "(a) versus n", "d": "(b) versus d", "width": "(c) versus width"}


def plot(rows: pd.DataFrame, cells: pd.DataFrame, figure_dir: Path) -> list[str]:
    chosen = {axis: frame for axis, frame in fixed_panels(rows).items() if frame[axis].nunique() > 1}
    if not chosen:
        return []
    fig, axes = panels(len(chosen))
    for ax, (axis, frame) in zip(axes, chosen.items(), strict=True):
        stats = frame.groupby(axis).agg(
            mean=("delta_over_sqrt_d", "mean"),
            lo=("delta_over_sqrt_d", "min"),
            hi=("delta_over_sqrt_d", "max"),
            ok=("separation_ok", "all"),
            d=("d", "first"),
            n=("n", "first"),
        )
        x = stats.index.to_numpy(dtype=float)
        ax.errorbar(
            x,
            stats["mean"],
            yerr=[stats["mean"] - stats["lo"], stats["hi"] - stats["mean"]],
            fmt="-",
            color="C0",
            capsize=3,
            label="‖δ‖/√d: mean, min–max over runs",
        )
        ax.scatter(
            x[stats["ok"]],
            stats["mean"][stats["ok"]],
            color="C0",
            zorder=3,
            label="separation condition holds",
        )
        ax.scatter(
            x[~stats["ok"]],
            stats["mean"][~stats["ok"]],
            facecolor="white",
            edgecolor="C0",
            zorder=3,
            label="separation condition violated",
        )
        rate = np.sqrt(stats["d"] / stats["n"]) / np.sqrt(stats["d"])  # ‖δ‖ = O(√(d/n)), divided by ‖x‖ = √d
        scale = np.exp(np.mean(np.log(stats["mean"] / rate)))
        ax.plot(x, scale * rate, "k--", lw=1, label=f"{scale:.2f}·√(d/n)/√d (constant fitted)")
        fixed = ", ".join(f"{k}={frame[k].iloc[0]}" for k in ("d", "n", "width") if k != axis)
        ax.set(xscale="log", yscale="log", xlabel=axis, ylabel="‖δ‖ / ‖x‖", title=f"{TITLES[axis]} ({fixed})")
        ax.legend(fontsize=7)
    caption = (
        "Universal perturbation δ = η·Σ_i y_i x_i of trained two-layer ReLU networks: η = max over samples of the "
        "smallest η flipping that sample (the paper's number), exact along each ray. "
        + settings(cells, ["runs", "loss", "loss_target", "lr0", "init", "batch_size", "dtype", "seed"])
        + ". "
        + inferred_note(NAME, ["d", "n", "width", "lr0", "init", "batch_size"])
    )
    return save(fig, f"{NAME}_delta", figure_dir, caption)
