"""Figure of vardi-universal: ‖δ‖/√d of the universal perturbation versus n, d and width (Vardi et al. 2022)."""

from pathlib import Path

import numpy as np
import pandas as pd

from advrepro.experiments.vardi_universal.claims import fixed_panels
from advrepro.experiments.vardi_universal.runner import NAME
from advrepro.plotting import inferred_note, panels, save, settings
from advrepro.stats import groups_of, resampled_means

TITLES = {
    "n": "(a) versus n",
    "d": "(b) versus d",
    "width": "(c) versus width",
    "n, separated": "(d) versus n, separation condition holds",
}


def plot(rows: pd.DataFrame, summary: pd.DataFrame, figure_dir: Path) -> list[str]:
    chosen = {
        axis: frame for axis, frame in fixed_panels(rows).items() if frame[axis.split(",")[0]].nunique() > 1
    }
    if not chosen:
        return []
    fig, axes = panels(len(chosen))
    for ax, (panel, frame) in zip(axes, chosen.items(), strict=True):
        axis = panel.split(",")[0]
        frame = frame[np.isfinite(frame["delta_over_sqrt_d"])]
        stats = frame.groupby(axis).agg(
            mean=("delta_over_sqrt_d", "mean"),
            ok=("separation_ok", "all"),
            d=("d", "first"),
            n=("n", "first"),
        )
        x, groups = groups_of(frame, axis, "delta_over_sqrt_d")
        stats["lo"], stats["hi"] = np.percentile(resampled_means(groups), [2.5, 97.5], axis=0)
        ax.errorbar(
            x,
            stats["mean"],
            yerr=[stats["mean"] - stats["lo"], stats["hi"] - stats["mean"]],
            fmt="-",
            color="C0",
            capsize=3,
            label="‖δ‖/√d: mean, 95% bootstrap interval over runs",
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
        ax.set(
            xscale="log", yscale="log", xlabel=axis, ylabel="‖δ‖ / ‖x‖", title=f"{TITLES[panel]} ({fixed})"
        )
        ax.legend(fontsize=7)
    caption = (
        "Universal perturbation δ = η·Σ_i y_i x_i of trained two-layer ReLU networks: η = max over samples of the "
        "smallest η flipping that sample (the paper's number), exact along each ray. "
        + (
            "Where lr0 varies it is set per d (lr0·d = 10 on the cells inside the separation condition: a fixed "
            "lr0 is a coarser step of the gradient flow the larger d is, docs §4). "
            if summary["lr0"].nunique() > 1
            else ""
        )
        + settings(summary, ["runs", "loss", "loss_target", "lr0", "init", "batch_size", "dtype", "seed"])
        + ". "
        + inferred_note(NAME, ["d", "n", "width", "lr0", "init", "batch_size"])
    )
    return save(fig, f"{NAME}_delta", figure_dir, caption)
