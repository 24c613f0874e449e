"""Zhu, Liu, Chrysos, Cevher (NeurIPS 2022): perturbation stability against width per depth and initialisation, at
initialisation and after training, beside the shape of the paper's bounds; and the lazy ratio κ."""

from pathlib import Path

import numpy as np
import pandas as pd

from advrepro.claims import MIN_ACCURACY
from advrepro.experiments.zhu_stability.claims import usable
from advrepro.experiments.zhu_stability.runner import NAME
from advrepro.plotting import inferred_note, panels, save, settings

SETTINGS = [
    "p",
    "networks",
    "n_inputs",
    "lr",
    "batch_size",
    "loss_target",
    "max_epochs",
    "train_subset",
    "alpha",
    "seed",
]
LAZY_INITS = ["lecun", "he", "ntk"]


def bound(init: str, depth: int, width: np.ndarray, p: int) -> np.ndarray:
    """The paper's upper bounds on P/ε for ‖a‖ = 1, up to their unknown constants (protocols §7)."""
    growth = np.sqrt(depth**3 * width / p) * np.exp(-width / depth**3)
    if init == "lecun":
        return (growth + np.sqrt(1 / p)) * (np.sqrt(2) / 2) ** (depth - 2)
    return growth + (np.sqrt(1 / p) if init == "he" else 1.0)


def curve(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and standard error over networks per (depth, width)."""
    return (
        frame.groupby(["depth", "width"])[metric]
        .agg(mean="mean", sem=lambda v: v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0)
        .reset_index()
    )


def plot(rows: pd.DataFrame, summary: pd.DataFrame, figure_dir: Path) -> list[str]:
    paths = []
    rows = rows.assign(per_f=rows["p_over_eps"] / rows["f_abs"])
    shown = [("init", "p_over_eps"), ("trained", "p_over_eps"), ("trained", "per_f")]
    shown = [(r, m) for r, m in shown if (rows["regime"] == r).any()]
    inits = [i for i in LAZY_INITS if (rows["init"] == i).any()]
    p = int(summary["p"].iloc[0])
    if shown and inits and rows["width"].nunique() > 1:
        fig, axes = panels(len(inits), width=3.6, height=3.0, rows=len(shown))
        for k, ((regime, metric), init) in enumerate((s, i) for s in shown for i in inits):
            ax = axes[k]
            own = rows[(rows["regime"] == regime) & (rows["init"] == init)]
            if own.empty:
                ax.set_axis_off()
                continue
            kept = usable(rows, regime)
            kept = kept[kept["init"] == init]
            colours = dict(
                zip(sorted(own["depth"].unique()), ["C0", "C1", "C2", "C3", "C4", "C5"], strict=False)
            )
            for depth, colour in colours.items():
                line = curve(kept[kept["depth"] == depth], metric)
                if len(line):
                    ax.errorbar(
                        line["width"],
                        line["mean"],
                        line["sem"],
                        color=colour,
                        marker="o",
                        ms=3,
                        label=f"L={depth}",
                    )
                    if metric == "p_over_eps":
                        shape = bound(init, depth, line["width"].to_numpy(float), p)
                        ax.plot(
                            line["width"], shape * line["mean"].iloc[0] / shape[0], color=colour, ls=":", lw=1
                        )
                lost = curve(own[(own["depth"] == depth) & ~own.index.isin(kept.index)], metric)
                ax.plot(lost["width"], lost["mean"], color=colour, marker="x", ls="none", ms=5)
            label = "P/ε" if metric == "p_over_eps" else "P/ε ÷ E|f|"
            if metric == "p_over_eps":
                ax.plot([], [], color="0.4", ls=":", lw=1, label="paper's bound: shape only")
            ax.set(
                xscale="log", yscale="log", xlabel="width m", ylabel=label, title=f"{init}, {regime}: {label}"
            )
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6, title="depth", title_fontsize=6)
        caption = (
            "Zhu et al. (2022), FCNN: perturbation stability P/ε = E‖∇f(a)‖·E|u₁| (closed form, ‖a‖ = 1, MNIST test "
            "inputs) against width, one line per depth; mean ± standard error over networks. Rows: at initialisation; "
            "after SGD on 0-vs-1 MNIST to a common endpoint (each network until its mean training loss is ≤ "
            f"loss_target, at most max_epochs), networks that miss it or stay below test accuracy {MIN_ACCURACY:g} left "
            "out (x: their mean, not a result); the same trained networks' P/ε ÷ E|f(a)|, the stability relative to "
            "the output's scale. Dotted: the shape of the paper's bound for that depth (its constants are unknown: "
            "scaled to the first point), not a fit. "
            + settings(summary[summary["init"].isin(LAZY_INITS)], SETTINGS)
            + ". "
            + inferred_note(
                NAME,
                [
                    "width",
                    "depth",
                    "lr",
                    "batch_size",
                    "loss_target",
                    "max_epochs",
                    "networks",
                    "n_inputs",
                    "p",
                ],
            )
        )
        paths += save(fig, f"{NAME}_width", figure_dir, caption)
    trained = rows[rows["regime"] == "trained"]
    if len(trained) and trained["width"].nunique() > 1:
        shown = [i for i in [*LAZY_INITS, "small"] if (trained["init"] == i).any()]
        fig, axes = panels(len(shown), width=3.4, height=3.0)
        for ax, init in zip(axes, shown, strict=True):
            own = trained[trained["init"] == init]
            for depth in sorted(own["depth"].unique()):
                line = curve(own[own["depth"] == depth], "kappa")
                ax.errorbar(line["width"], line["mean"], line["sem"], marker="o", ms=3, label=f"L={depth}")
            ax.set(xscale="log", yscale="log", xlabel="width m", ylabel="κ", title=init)
            ax.legend(fontsize=6)
        caption = (
            "Lazy ratio κ = Σ_l ‖X_l − X_l(0)‖_F / Σ_l ‖X_l(0)‖_F after training, mean ± standard error over networks "
            "(every network, trained or not). small: β = m^(−c), the paper's non-lazy setting. "
            + settings(summary, SETTINGS + ["c"])
            + "."
        )
        paths += save(fig, f"{NAME}_kappa", figure_dir, caption)
    return paths
