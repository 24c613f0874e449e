"""Figures of schmidt-models (Schmidt et al. 2018): errors versus n, sample complexity versus d, Bernoulli model."""

from pathlib import Path

import numpy as np
import pandas as pd

from advrepro.experiments.schmidt_models.claims import TARGET, needed
from advrepro.experiments.schmidt_models.runner import NAME
from advrepro.plotting import inferred_note, panels, save, settings

SETTINGS = ["sigma_scale", "tau_scale", "draws", "n_points", "seed"]


def error_curves(ax, frame: pd.DataFrame, column: str, label: str, **style):
    """Mean error over the training-set draws against n, one curve per ε, with the 95% band of that mean."""
    for eps, group in frame.groupby("eps"):
        stats = group.groupby("n")[column].agg(["mean", "sem"])
        line = ax.plot(stats.index, stats["mean"], label=f"{label}, ε={eps:g}", **style)[0]
        ax.fill_between(
            stats.index,
            stats["mean"] - 1.96 * stats["sem"],
            stats["mean"] + 1.96 * stats["sem"],
            color=line.get_color(),
            alpha=0.15,
        )


def error_panel(
    frame: pd.DataFrame, label: str, reference: pd.Series, reference_label: str, ylabel: str, title: str
):
    """Robust error against n per ε, a dashed reference curve, the 1% line; log axes cut at 10⁻⁵."""
    fig, axes = panels(1, width=5.5)
    error_curves(axes[0], frame, "robust_error", label)
    axes[0].plot(reference.index, reference, "k--", label=reference_label)
    axes[0].axhline(TARGET, color="grey", lw=0.8)
    axes[0].set(xscale="log", yscale="log", xlabel="training samples n", ylabel=ylabel, title=title)
    axes[0].set_ylim(1e-5, 1.5)  # smaller errors say nothing more
    axes[0].legend(fontsize=7)
    return fig


def plot(rows: pd.DataFrame, summary: pd.DataFrame, figure_dir: Path) -> list[str]:
    paths: list[str] = []
    common = settings(summary, SETTINGS)
    gaussian = rows[rows["model"] == "gaussian"]
    if not gaussian.empty:
        d = gaussian["d"].min()
        frame = gaussian[gaussian["d"] == d]
        reference = frame[frame["eps"] == frame["eps"].min()].groupby("n")["standard_error"].mean()
        fig = error_panel(
            frame,
            "robust",
            reference,
            "standard (every ε)",
            "test error",
            f"(a) Gaussian model, d = {d:g}, σ = {frame['sigma'].iloc[0]:.3g}",
        )
        caption = (
            "(a) Exact standard and ℓ∞-ε robust test errors of ŵ = Σ y_i x_i on the Gaussian model, mean over "
            f"training sets with its 95% band; grey line: 1%. {common}. "
            + inferred_note(NAME, ["d", "eps", "sigma_scale"])
        )
        paths += save(fig, f"{NAME}_errors", figure_dir, caption)
        table = needed(rows, "gaussian")
        if table["d"].nunique() > 1:
            fig, axes = panels(1, width=5.5)
            ax = axes[0]
            for eps, group in table.groupby("eps"):
                group = group[np.isfinite(group["n_needed"])]
                err = [group["n_needed"] - group["low"], group["high"] - group["n_needed"]]
                line = ax.errorbar(
                    group["d"], group["n_needed"], yerr=err, marker="o", capsize=2, label=f"robust, ε={eps:g}"
                )[0]
                ds = np.array(sorted(table["d"].unique()), dtype=float)
                top = group[group["d"] == group["d"].max()]
                if len(top):  # ε²√d through the largest d's point
                    scale = top["n_needed"].iloc[0] / (eps**2 * np.sqrt(top["d"].iloc[0]))
                    ax.plot(ds, scale * eps**2 * np.sqrt(ds), ":", color=line.get_color(), lw=1)
                sigma = gaussian.groupby("d")["sigma"].first().loc[ds].to_numpy()
                bound = eps**2 * sigma**2 / (8 * np.log(ds))
                ax.plot(ds, bound, "--", color=line.get_color(), lw=0.8, alpha=0.6)
            standard = needed(rows, "gaussian", error="standard_error").groupby("d")["n_needed"].max()
            ax.plot(standard.index, standard, "ks-", label="standard (every ε)")
            ax.set(
                xscale="log",
                yscale="log",
                xlabel="input dimension d",
                ylabel="n for ≤ 1% error",
                title="(b) sample complexity, Gaussian model",
            )
            ax.legend(fontsize=7)
            caption = (
                "(b) Training samples n for ≤ 1% robust error (mean over training sets; 95% bootstrap interval) "
                "against d; dotted: ε²√d through the largest d (constant fitted); dashed: ε²σ²/(8 log d), below "
                "which any learner has robust error ≥ ½(1 − 1/d) (Cor. 23 of v2, for θ* ~ N(0, I): a reference, "
                f"not a bound for θ* = 1). Standard learning needs n = 1 throughout. {common}. "
                + inferred_note(NAME, ["d", "eps", "sigma_scale"])
            )
            paths += save(fig, f"{NAME}_complexity", figure_dir, caption)
    bernoulli = rows[rows["model"] == "bernoulli"]
    if not bernoulli.empty:
        thresholded = bernoulli[bernoulli["threshold"] & (bernoulli["eps"] < 1)]
        fig = error_panel(
            bernoulli[~bernoulli["threshold"]],
            "linear",
            thresholded.groupby("n")["robust_error"].mean(),  # the same for every ε < 1 (Theorem 10)
            "thresholded inputs, every ε < 1",
            "robust test error",
            f"(c) Bernoulli model, d = {bernoulli['d'].iloc[0]:g}, τ = {bernoulli['tau'].iloc[0]:.3g}",
        )
        caption = (
            "(c) Bernoulli model: ℓ∞-ε robust error of ŵ = Σ y_i x_i used linearly, and on thresholded inputs "
            "sign(x + Δ) (Theorem 10: robust error = standard error for ε < 1). Errors from the normal "
            f"approximation of the margin over the d coordinates. {common}. "
            + inferred_note(NAME, ["d", "eps", "tau_scale"])
        )
        paths += save(fig, f"{NAME}_bernoulli", figure_dir, caption)
    return paths
