"""Figures of random-net: |η| versus width, ‖δ‖ versus d, and both versus depth (Bubeck et al. 2021)."""

from pathlib import Path

import numpy as np
import pandas as pd

from advrepro.plotting import inferred_note, median_band, panels, save, settings
from advrepro.stats import with_cell_keys
from advrepro.theory import pooled_step_quantile

NAME = "random-net"
DERIVED = "derived median (docs §1)"


def derived_median(
    ax, activation: str, x: list, cells: list[tuple[int, int, int]], column: str, line
) -> None:
    """The median of |η| or ‖δ‖ pooled over networks × inputs derived at each (d, width, depth) in cells
    (advrepro.theory.pooled_step_quantile), plotted at x, dotted in the measured line's colour."""
    y = [pooled_step_quantile(activation, int(d), int(k), 0.5, int(depth))[column] for d, k, depth in cells]
    ax.plot(x, y, ls=":", lw=1.5, color=line.get_color())


def plot(rows: pd.DataFrame, summary: pd.DataFrame, figure_dir: Path) -> list[str]:
    paths: list[str] = []
    keys = ["n_networks", "n_inputs", "eta_max", "search", "dtype", "seed"]
    common, one_layer = settings(summary, keys), settings(summary[summary["depth"] == 1], keys)
    shallow = rows[rows["depth"] == 1]
    activations = sorted(shallow["activation"].unique())
    if len(activations) and shallow["width"].nunique() > 1:
        fig, axes = panels(len(activations))
        for ax, act in zip(axes, activations, strict=True):
            for d, group in shallow[shallow["activation"] == act].groupby("d"):
                line = median_band(ax, group, "width", "eta", f"d={d}")
                widths = sorted(group["width"].unique())
                derived_median(ax, act, widths, [(d, k, 1) for k in widths], "eta", line)
            ax.plot([], [], "k:", lw=1.5, label=DERIVED)
            ax.axhline(1.0, color="k", ls="--", lw=1, label="paper: |η| ≈ 1")
            ax.set(
                xscale="log", xlabel="width k", ylabel="smallest flipping |η|", title=f"ψ = {act}, depth 1"
            )
            ax.legend(fontsize=8)
        caption = (
            f"Smallest |η| such that x + η∇f(x), sign η = −sign f(x), flips sign f; median and "
            f"interquartile range over networks × inputs; dotted: the median derived for one hidden layer "
            f"(network offsets and ReLU's kink curvature, docs §1). {one_layer}. "
            + inferred_note(NAME, ["d", "width", "activation"])
        )
        paths += save(fig, f"{NAME}_eta_vs_width", figure_dir, caption)
    if len(activations) and shallow["d"].nunique() > 1:
        fig, axes = panels(len(activations))
        for ax, act in zip(axes, activations, strict=True):
            group = shallow[shallow["activation"] == act]
            for k, sub in group.groupby("width"):
                line = median_band(ax, sub, "d", "delta_norm", f"width={k}")
                ds = sorted(sub["d"].unique())
                derived_median(ax, act, ds, [(d, k, 1) for d in ds], "delta", line)
            ds = np.array(sorted(group["d"].unique()), dtype=float)
            ax.plot([], [], "k:", lw=1.5, label=DERIVED)
            ax.plot(ds, np.sqrt(ds), "k--", lw=1, label="‖x‖ = √d")
            ax.set(
                xscale="log",
                yscale="log",
                xlabel="input dimension d",
                ylabel="‖δ‖ of the flipping step",
                title=f"ψ = {act}, depth 1",
            )
            ax.legend(fontsize=8)
        caption = (
            f"Norm of the single flipping step ‖δ‖ = |η|·‖∇f(x)‖ against the input norm √d: the step is "
            f"a vanishing fraction 1/√d of ‖x‖. Median and interquartile range; dotted: the median derived for one "
            f"hidden layer (docs §1). {one_layer}. " + inferred_note(NAME, ["d", "width", "activation"])
        )
        paths += save(fig, f"{NAME}_delta_vs_d", figure_dir, caption)
    deep = with_cell_keys(rows[rows["activation"] == "relu"], summary, ["hidden_gain"])
    if deep["depth"].nunique() > 1:
        deep = deep[deep.groupby(["d", "width"])["depth"].transform("nunique") > 1]
        fig, axes = panels(2)
        for (d, k), group in deep.groupby(["d", "width"]):
            gains = sorted(group.loc[group["depth"] > 1, "hidden_gain"].unique())
            depths = sorted(group["depth"].unique())
            cells = [(d, k, depth) for depth in depths]
            for gain in gains:  # depth-1 cells have no hidden layer: they start every gain's line
                at_gain = group[(group["depth"] == 1) | (group["hidden_gain"] == gain)]
                line = median_band(
                    axes[0], at_gain, "depth", "eta", f"d={d}, width={k}, hidden_gain {gain:g}"
                )
                if gain == 2:  # the derived |η| is He gain's (G² = 1/2)
                    derived_median(axes[0], "relu", depths, cells, "eta", line)
            label = f"d={d}, width={k}, hidden_gain {gains[-1]:g}"
            at_gain = group[(group["depth"] == 1) | (group["hidden_gain"] == gains[-1])]
            line = median_band(axes[1], at_gain, "depth", "delta_norm", label)
            derived_median(axes[1], "relu", depths, cells, "delta", line)
        for ax in axes:
            ax.plot([], [], "k:", lw=1.5, label=DERIVED)
            ax.set_xticks(sorted(deep["depth"].unique()))
        axes[0].set(xlabel="hidden ReLU layers", ylabel="smallest flipping |η|", yscale="log")
        axes[1].set(xlabel="hidden ReLU layers", ylabel="‖δ‖ of the flipping step")
        for ax in axes:
            ax.legend(fontsize=8)
        caption = (
            f"Deep random ReLU networks (Bartlett et al. 2021): one gradient step still flips the sign. "
            f"|η| depends on the per-layer scale (homogeneity), ‖δ‖ does not (shown at the largest hidden gain, whose "
            f"flips are every gain's). Dotted: the medians derived for "
            f"each depth (|η| at He gain; offsets and the kinks' curvature summed over layers, docs §1). {common}. "
            + inferred_note(NAME, ["depth", "hidden_gain", "width"])
        )
        paths += save(fig, f"{NAME}_depth", figure_dir, caption)
    return paths
