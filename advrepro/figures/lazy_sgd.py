"""Figures 2, 3, 5, 6, 7 of Wang, Ullah, Mianjy, Arora (NeurIPS 2022) from lazy-sgd's CSVs."""

from pathlib import Path

import numpy as np
import pandas as pd

from advrepro.experiments.lazy_sgd import METRICS, NAME, per_run_means, variant
from advrepro.figures import inferred_note, panels, save, settings

SETTINGS = ["runs", "lr", "batch_size", "max_epochs", "stop", "search", "misclassified", "antialias", "seed"]
VARIANTS = {
    False: ("raw pixels in [0,1], with bias", "fig2", "fig3"),
    True: ("‖x‖ = 1, no bias", "fig5", "fig6"),
}


def curves(ax, means: pd.DataFrame, x: str, metric: str, by: str):
    """Mean over runs of the per-run means, ± one standard deviation across runs, one curve per `by`."""
    for value, group in means.groupby(by):
        stats = group.groupby(x)[metric].agg(["mean", "std"])
        label = value if isinstance(value, str) else f"{by}={value}"
        ax.errorbar(
            stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3, label=label
        )


def theory_curve(ax, means: pd.DataFrame, x: str, metric: str, power: float, label: str):
    """c·x^power with c fitted (least squares in log space) to the plotted means."""
    stats = means.groupby(x)[metric].mean()
    xs = stats.index.to_numpy(dtype=float)
    c = np.exp(np.mean(np.log(stats.to_numpy()) - power * np.log(xs)))
    ax.plot(xs, c * xs**power, "k--", lw=1, label=f"∝ {label} (constant fitted)")


def plot(rows: pd.DataFrame, cells: pd.DataFrame, figure_dir: Path) -> list[str]:
    paths: list[str] = []
    common = settings(cells, SETTINGS)
    note = inferred_note(NAME, ["d", "width", "C0", "runs", "max_epochs"])
    for normalized, (what, fig_d, fig_c0) in VARIANTS.items():
        data = variant(rows, normalized)
        if data.empty:
            continue
        c0_ref = data.groupby("C0")["d"].nunique().idxmax()
        versus_d = data[data["C0"] == c0_ref]
        if versus_d["d"].nunique() > 1:
            means = per_run_means(versus_d, ["d", "width"])
            fig, axes = panels(3)
            for ax, (metric, (label, power)) in zip(axes, METRICS.items(), strict=True):
                curves(ax, means, "d", metric, "width")
                theory_curve(ax, means, "d", metric, power, {0.5: "√d", -1.0: "1/d", -0.5: "1/√d"}[power])
                ax.set(xscale="log", yscale="log", xlabel="input dimension d", ylabel=label)
                ax.legend(fontsize=7)
            caption = (
                f"{'Fig. 5' if normalized else 'Fig. 2'}: lazy-trained networks ({what}, C0={c0_ref:g}) versus d; "
                f"means over correctly classified test images, ± std over runs. {common}. {note}"
            )
            paths += save(fig, f"{NAME}_{fig_d}", figure_dir, caption)
        pairs = data.groupby(["d", "width"])["C0"].transform("nunique") > 1
        if pairs.any():
            means = per_run_means(data[pairs], ["d", "width", "C0"])
            means["setting"] = [f"d={d}, width={w}" for d, w in zip(means["d"], means["width"], strict=True)]
            fig, axes = panels(3)
            for ax, (metric, (label, _)) in zip(axes, METRICS.items(), strict=True):
                curves(ax, means, "C0", metric, "setting")
                ax.set(xscale="log", xlabel="C0 (lazy radius C0/√m)", ylabel=label)
                ax.legend(fontsize=7)
            caption = (
                f"{'Fig. 6' if normalized else 'Fig. 3'}: the same quantities versus C0 ({what}); all three "
                f"grow with C0. Runs that never left the ball stop at max_epochs. {common}. {note}"
            )
            paths += save(fig, f"{NAME}_{fig_c0}", figure_dir, caption)
    raw = variant(rows, False)
    if not raw.empty:
        c0_ref = raw["C0"].mode().iloc[0]
        one = raw[(raw["C0"] == c0_ref) & (raw["d"] == raw["d"].max())]
        width = min(one["width"].unique(), key=lambda m: abs(m - 1000))  # the published example: m = 1000
        one = one[(one["width"] == width) & one["correct"]]
        fig, axes = panels(3)
        for ax, (column, label) in zip(
            axes, (("delta_norm", "‖δ‖"), ("grad_norm", "‖∇ₓf‖"), ("eta", "η")), strict=True
        ):
            ax.hist(one[column], bins=50, color="C0", alpha=0.8)
            ax.set(xlabel=label, ylabel="test images")
        caption = (
            f"Fig. 7: histograms over the correctly classified test images (all runs) of ‖δ‖, ‖∇ₓf‖ and η at "
            f"d={one['d'].iloc[0]}, width={one['width'].iloc[0]}, C0={c0_ref:g}, raw pixels with bias. {common}."
        )
        paths += save(fig, f"{NAME}_fig7", figure_dir, caption)
    return paths
