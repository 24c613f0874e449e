"""Figures 2, 3, 5, 6, 7 of Wang, Ullah, Mianjy, Arora (NeurIPS 2022) from lazy-sgd's CSVs."""

from pathlib import Path

import numpy as np
import pandas as pd

from advrepro.claims import MIN_ACCURACY
from advrepro.experiments.lazy_sgd.claims import (
    FIGURES,
    LAW_PREDICTS,
    METRICS,
    c0_evidence,
    evidence_rows,
    finite_d_law,
    models,
    panels,
    per_run_means,
    trained_only,
)
from advrepro.experiments.lazy_sgd.runner import NAME
from advrepro.plotting import inferred_note, save, settings
from advrepro.plotting import panels as panels_of

SETTINGS = [
    "runs",
    "lr",
    "batch_size",
    "max_epochs",
    "stop",
    "keep",
    "search",
    "misclassified",
    "antialias",
    "seed",
]
MEANS_TEXT = "correctly classified ones, or all with δ = 0 under misclassified=zero"
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


def finite_d_law_band(ax, kept: pd.DataFrame, metric: str, widest: int, c0: float):
    """What the finite-d law of docs §2 predicts for `metric` at the widest width (claims.LAW_PREDICTS: ‖∇f‖, or
    ‖δ‖/‖x‖ of one linear step), mean over test images, shaded from c = 0 to c = C0² (the slope claim's range)."""
    rows = kept[kept["in_means"] & (kept["width"] == widest)]
    ends = [LAW_PREDICTS[metric](rows, finite_d_law(rows, c)).groupby(rows["d"]).mean() for c in (0.0, c0**2)]
    ax.fill_between(
        ends[0].index,
        ends[0].to_numpy(),
        ends[1].to_numpy(),
        color="grey",
        alpha=0.25,
        label=f"finite-d law, 0 ≤ c ≤ C0², width {widest}",
    )


def plot(rows: pd.DataFrame, summary: pd.DataFrame, figure_dir: Path) -> list[str]:
    paths: list[str] = []
    common = settings(summary, SETTINGS)
    note = inferred_note(NAME, ["d", "width", "C0", "runs", "max_epochs"])
    frames = panels(rows, summary)
    for (normalized, axis), frame in frames.items():
        what, fig_d, fig_c0 = VARIANTS[normalized]
        table = models(frame)
        fig, axes = panels_of(3)
        if axis == "d":
            kept = trained_only(frame)
            means = per_run_means(kept, ["d", "width"])
            for ax, (metric, (label, power)) in zip(axes, METRICS.items(), strict=True):
                curves(ax, means, "d", metric, "width")
                theory_curve(ax, means, "d", metric, power, {0.5: "√d", -1.0: "1/d", -0.5: "1/√d"}[power])
                if metric in LAW_PREDICTS:
                    c0 = float(frame["C0"].iloc[0])
                    finite_d_law_band(ax, kept, metric, int(frame["width"].max()), c0)
                ax.set(xscale="log", yscale="log", xlabel="input dimension d", ylabel=label)
                ax.legend(fontsize=7, loc="upper left" if metric == "grad_norm" else "lower left")
            caption = (
                f"{FIGURES[normalized, 'd']}: lazy-trained networks ({what}, C0={frame['C0'].iloc[0]:g}) versus d; "
                f"per-run means over the test images ({MEANS_TEXT}), mean ± std over runs; dashed: the paper's "
                f"rates (asymptotic); shaded: what the finite-d law predicts at these d (docs §2: ‖∇f‖² = (d − 1)/2 + (x̂·∇f)² + c, from c = 0 to C0²; "
                f"‖δ‖/‖x‖ = |f|/(‖∇f‖·‖x‖), one linear step, |f| and ‖x‖ as measured); "
                f"{excluded_text(table)}. {common}. {note}"
            )
            paths += save(fig, f"{NAME}_{fig_d}", figure_dir, caption)
            continue
        keep = evidence_rows(frame, c0_evidence(frame)[0])
        means = per_run_means(frame[keep], ["C0"]).assign(setting="trained, left the ball")
        others = per_run_means(frame[~keep], ["C0"])
        for ax, (metric, (label, _)) in zip(axes, METRICS.items(), strict=True):
            curves(ax, means, "C0", metric, "setting")
            if len(others):
                ax.scatter(
                    others["C0"],
                    others[metric],
                    facecolor="white",
                    edgecolor="grey",
                    zorder=3,
                    label="never left the ball or untrained (not evidence)",
                )
            ax.set(xscale="log", xlabel="C0 (lazy radius C0/√m)", ylabel=label)
            ax.legend(fontsize=7)
        caption = (
            f"{FIGURES[normalized, 'C0']}: the same quantities versus C0 ({what}, d={frame['d'].iloc[0]}, "
            f"width={frame['width'].iloc[0]}, stop={frame['stop'].iloc[0]}); the paper: all three grow with C0. "
            f"Hollow points: models that never left the ball within max_epochs (they converged inside; a larger "
            f"C0 then gives the same model), untrained ones (a small ball stops after a few SGD steps) and "
            f"duplicates of a smaller C0's model; they are not evidence for the trend. {excluded_text(table)}. "
            f"{common}. {note}"
        )
        paths += save(fig, f"{NAME}_{fig_c0}", figure_dir, caption)
    raw = frames.get((False, "d"))
    if raw is not None:
        one = trained_only(raw[raw["d"] == raw["d"].max()])
        width = min(one["width"].unique(), key=lambda m: abs(m - 1000))  # the published example: m = 1000
        one = one[(one["width"] == width) & one["in_means"]]
        fig, axes = panels_of(3)
        for ax, (column, label) in zip(
            axes, (("delta_norm", "‖δ‖"), ("grad_norm", "‖∇ₓf‖"), ("eta", "η")), strict=True
        ):
            ax.hist(one[column].dropna(), bins=50, color="C0", alpha=0.8)
            ax.set(xlabel=label, ylabel="test images")
        caption = (
            f"Fig. 7: histograms over the test images ({MEANS_TEXT}; all runs) of ‖δ‖, ‖∇ₓf‖ and η at "
            f"d={one['d'].iloc[0]}, width={width}, C0={one['C0'].iloc[0]:g}, raw pixels with bias. {common}."
        )
        paths += save(fig, f"{NAME}_fig7", figure_dir, caption)
    return paths


def excluded_text(table: pd.DataFrame) -> str:
    untrained = table[~table["trained"]]
    if untrained.empty:
        return f"every model reached clean test accuracy ≥ {MIN_ACCURACY:g}"
    return (
        f"{len(untrained)} of {len(table)} models below {MIN_ACCURACY:g} clean test accuracy are left out "
        f"(untrained)"
    )
