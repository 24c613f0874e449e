"""Figures of cluster-robustness: Min & Vidal (2024)'s panels (a)–(e), and which attack broke each point."""

import math
from pathlib import Path

import numpy as np
import pandas as pd

from advrepro.claims import MIN_ACCURACY
from advrepro.experiments.cluster_robustness.claims import (
    crossings,
    ideal_radius,
    robustness_cells,
    trained_runs,
)
from advrepro.experiments.cluster_robustness.runner import ATTACKS, NAME
from advrepro.plotting import departures_note, inferred_note, panels, save, settings

KEYS = [
    "d",
    "width",
    "n_train",
    "n_test",
    "epochs",
    "runs",
    "init_scale",
    "lr",
    "batch_size",
    "pgd_steps",
    "restarts",
]
STYLE = {1: {"color": "C0", "label": "p = 1 (ReLU)"}, 3: {"color": "C2", "label": "p = 3"}}


def style(p: int) -> dict:
    return STYLE.get(p, {"color": f"C{p}", "label": f"p = {p}"})


def main_setting(rows: pd.DataFrame) -> pd.DataFrame:
    """The robustness cells at the most common (k, k_pos): the published panels' setting."""
    cells = robustness_cells(rows)
    if cells.empty:
        return cells
    k, k_pos = cells[["k", "k_pos"]].value_counts().index[0]
    return cells[(cells["k"] == k) & (cells["k_pos"] == k_pos)]


def accuracy_curves(ax, frame: pd.DataFrame, attack: str = "all", dashed: bool = False) -> None:
    """Mean robust accuracy over runs against ε per p, the runs' min–max shaded (as the published panel)."""
    acc = frame[(frame["measure"] == "accuracy") & (frame["attack"] == attack)]
    for p, group in acc.groupby("p"):
        stats = group.groupby("eps")["robust_acc"].agg(["mean", "min", "max"])
        line = ax.plot(stats.index, stats["mean"], ls="--" if dashed else "-", **style(p))[0]
        if dashed:
            line.set_label(f"{line.get_label()}, PGD from δ = 0 only")
        ax.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.15)


def panel_distance(ax, rows: pd.DataFrame, k: int, k_pos: int) -> None:
    runs = trained_runs(rows[(rows["k"] == k) & (rows["k_pos"] == k_pos)])
    per_run = runs.groupby(["p", "noise", "cell", "run"])["relative_distance"].first().reset_index()
    for p, group in per_run.groupby("p"):
        stats = group.groupby("noise")["relative_distance"].agg(["mean", "min", "max"])
        line = ax.plot(stats.index, stats["mean"], marker="o", **style(p))[0]
        ax.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.2)
    ax.set(
        xlabel="α (noise)",
        ylabel="max |c·f − F| / max |F|, unit sphere",
        title="(a) distance to F (p = 1), F^(3) (p = 3)",
    )
    ax.legend(fontsize=7)


def panel_neurons(axes, cells: pd.DataFrame) -> None:
    """(b) contributions of run 0's dominant neurons; (c, d) their cosines with μ± and with the nearest centre."""
    neurons = cells[(cells["measure"] == "neuron") & (cells["run"] == 0)]
    (ax_b, *ax_cos) = axes
    width = 0.4
    for offset, (p, group) in zip((-width / 2, width / 2), neurons.groupby("p"), strict=False):
        group = group.sort_values("rank")
        ax_b.bar(group["rank"] + offset, group["contribution"], width=width, **style(p))
    ax_b.set(xlabel="neuron rank j", ylabel="|v_j|·‖w_j‖", title="(b) neuron contributions (run 0)")
    ax_b.legend(fontsize=7)
    for ax, letter, (p, group) in zip(ax_cos, "cd", neurons.groupby("p"), strict=False):
        group = group.sort_values("rank")
        mu = np.maximum(group["cos_mu_plus"], group["cos_mu_minus"])
        ax.bar(
            group["rank"] - width / 2, mu, width=width, color="C1", label="max(cos(w_j, μ₊), cos(w_j, μ₋))"
        )
        ax.bar(
            group["rank"] + width / 2,
            group["cos_centre"],
            width=width,
            color="C4",
            label="cos(w_j, nearest e_c)",
        )
        ax.set(
            xlabel="neuron rank j",
            ylabel="cosine",
            ylim=(0, 1.05),
            title=f"({letter}) dominant neurons' alignment, p = {p}",
        )
        ax.legend(fontsize=7, loc="lower right")


def panel_accuracy(ax, cells: pd.DataFrame) -> None:
    k = int(cells["k"].iloc[0])
    accuracy_curves(ax, cells)
    accuracy_curves(ax, cells, "pgd", dashed=True)
    for radius, text in ((1 / math.sqrt(k), "1/√k"), (math.sqrt(0.5), "√2/2")):
        ax.axvline(radius, color="grey", ls=":", lw=1)
        ax.text(radius + 0.02, 0.52, text, fontsize=8, color="grey")
    ax.set(
        xlabel="ℓ2 attack radius ε",
        ylabel="robust test accuracy",
        ylim=(0, 1.05),
        title=f"(e) robust accuracy (k={k}, k_pos={int(cells['k_pos'].iloc[0])})",
    )
    ax.legend(fontsize=7, loc="center right")


def caption(summary: pd.DataFrame, what: str) -> str:
    return (
        what
        + " "
        + settings(summary, ["k", "k_pos", "noise", *KEYS])
        + ". "
        + departures_note(
            NAME, summary, ["d", "width", "n_train", "n_test", "epochs", "dist_starts", "dist_steps"]
        )
        + " "
        + inferred_note(NAME, KEYS)
    )


def plot_panels(rows: pd.DataFrame, summary: pd.DataFrame, figure_dir: Path) -> list[str]:
    cells = main_setting(rows)
    if cells.empty:
        return []
    fig, axes = panels(5, width=4.0)
    panel_distance(axes[0], rows, int(cells["k"].iloc[0]), int(cells["k_pos"].iloc[0]))
    panel_neurons(axes[1:4], cells)
    panel_accuracy(axes[4], cells)
    what = (
        "Two-layer pReLU networks f(x) = Σ v_j relu(w_j·x)^p/‖w_j‖^(p−1) trained by SGD on the exponential loss from "
        "a small initialisation, on k orthogonal clusters (Min & Vidal 2024, after prelu_f_dist.py). (a) ℓ∞ distance "
        "on the unit sphere to the ideal classifier, per noise level α; (b)–(d) the dominant neurons; (e) robust "
        "accuracy when every attack is tried (solid) and under the published PGD from δ = 0 alone (dashed); mean of "
        f"the runs, min–max shaded. Untrained runs (test accuracy below {MIN_ACCURACY:g}) are left out of (a)."
    )
    return save(fig, f"{NAME}_panels", figure_dir, caption(summary, what))


def plot_attacks(rows: pd.DataFrame, summary: pd.DataFrame, figure_dir: Path) -> list[str]:
    cells = robustness_cells(rows)
    main = main_setting(rows)
    if main.empty:
        return []
    ps = sorted(main["p"].unique())
    fig, axes = panels(len(ps) + 1)
    for ax, p in zip(axes, ps, strict=False):
        acc = main[(main["measure"] == "accuracy") & (main["p"] == p)]
        for i, attack in enumerate([*ATTACKS, "all"]):
            curve = acc[acc["attack"] == attack].groupby("eps")["robust_acc"].mean()
            ax.plot(
                curve.index,
                curve,
                color="k" if attack == "all" else f"C{i}",
                lw=2.5 if attack == "all" else 1.2,
                ls="-" if attack == "all" else "--",
                label=attack,
            )
        ax.axvline(ideal_radius(int(main["k"].iloc[0]), p), color="grey", ls=":", lw=1)
        ax.set(
            xlabel="ℓ2 attack radius ε",
            ylabel="robust test accuracy",
            ylim=(0, 1.05),
            title=f"which attack breaks the points, p = {p}",
        )
        ax.legend(fontsize=7)
    ax = axes[-1]
    found = crossings(trained_runs(cells)).merge(
        cells.groupby("cell")[["k", "p"]].first().reset_index(), on="cell"
    )
    ks = np.linspace(found["k"].min(), found["k"].max(), 50) if len(found) else np.array([])
    for p, group in found.groupby("p"):
        stats = group.groupby("k")["crossing"].agg(["mean", "min", "max"])
        ax.errorbar(
            stats.index,
            stats["mean"],
            yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
            fmt="o",
            capsize=3,
            **style(p),
        )
        ideal = (
            1 / np.sqrt(ks) if p == 1 else np.full_like(ks, math.sqrt(0.5))
        )  # ideal_radius on a continuous k
        ax.plot(ks, ideal, ls=":", color=style(p)["color"], label=f"ideal classifier's radius, p = {p}")
    ax.set(
        xlabel="clusters k",
        ylabel="ε where robust accuracy falls through 1/2",
        title="crossing radius versus k (every attack)",
    )
    ax.legend(fontsize=7)
    what = (
        "Robust accuracy per attack at the main setting: pgd = PGD from δ = 0 (the published attack), restarts = "
        "PGD from a random start in the ball (broken if any iterate breaks it; pgd judges its last one), pairs = (e_j − e_c)/√2 towards each centre of the other label, centre = "
        "between the labels' average centres, universal = vardi-universal's −y·Σ y_i x_i; all = robust to every "
        "one. Right: the crossing radius per k (mean, min–max over trained runs) against 1/√k (p = 1) and √2/2 "
        "(p = 3)."
    )
    return save(fig, f"{NAME}_attacks", figure_dir, caption(summary, what))


def plot(rows: pd.DataFrame, summary: pd.DataFrame, figure_dir: Path) -> list[str]:
    return plot_panels(rows, summary, figure_dir) + plot_attacks(rows, summary, figure_dir)
