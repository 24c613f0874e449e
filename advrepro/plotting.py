"""Shared figure plumbing: paper-sized panels, a caption stating the settings and inferred values, PNG + PDF."""

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import ticker  # noqa: E402

from advrepro.config import compose, provenance_tags, to_plain  # noqa: E402

PNG_META = {"Software": None}
PDF_META = {"Creator": None, "Producer": None, "CreationDate": None}


def panels(n: int, width: float = 4.2, height: float = 3.3, rows: int = 1):
    """A figure of `rows` rows of n panels each; the axes in reading order."""
    fig, axes = plt.subplots(rows, n, figsize=(width * n, height * rows), squeeze=False, layout="constrained")
    return fig, list(axes.ravel())


def settings(summary: pd.DataFrame, keys: list[str]) -> str:
    """`key=value` for each key, or `key∈{…}` where the cells differ."""
    parts = []
    for key in keys:
        column = summary[key].astype(object)
        values = sorted(
            column.where(column.notna(), "default").unique().tolist(), key=str
        )  # null: derived default
        parts.append(f"{key}={values[0]}" if len(values) == 1 else f"{key}∈{{{', '.join(map(str, values))}}}")
    return ", ".join(parts)


def inferred_note(experiment: str, keys: list[str]) -> str:
    """Which of the plotted settings are our reconstruction rather than the paper's ([inferred]/[unknown])."""
    tags = provenance_tags(experiment)
    marked = [
        f"{k} [{tags[k][0]}]" for k in [*keys, "grids"] if k in tags and tags[k][0] in ("inferred", "unknown")
    ]
    return (
        "Inferred, not from the paper: "
        + (", ".join(marked) if marked else "none")
        + " (grids = the swept values)."
    )


def departures_note(experiment: str, summary: pd.DataFrame, keys: list[str]) -> str:
    """Which plotted keys the preset grid sets away from their [paper]/[code] value in the YAML, and that value:
    settings of ours (for the budget), each one override from the published one."""
    tags = provenance_tags(experiment)
    defaults = to_plain(compose(experiment))
    changed = []
    for key in keys:
        if (
            key in summary
            and key in tags
            and tags[key][0] in ("paper", "code")
            and defaults.get(key) is not None
        ):
            values = sorted(set(summary[key].dropna().tolist()))
            if values and values != [defaults[key]]:
                shown = values[0] if len(values) == 1 else values
                changed.append(f"{key}={shown} [ours; {tags[key][0]}: {defaults[key]}]")
    if not changed:
        return ""
    return "Set for this budget, not the published value: " + ", ".join(changed) + "."


def save(fig, name: str, figure_dir: Path, caption: str) -> list[str]:
    """Caption under the panels, then `name.png` and `name.pdf` with pinned metadata (reproducible files)."""
    figure_dir.mkdir(parents=True, exist_ok=True)
    for ax in fig.axes:  # 0.3 rather than 3×10⁻¹ on log axes; label minor ticks when under two decades show
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                low, high = sorted(axis.get_view_interval())
                span = high / low if low > 0 else math.inf
                shown = "123456789" if span < 10 else ("25" if span < 100 else "")  # leading digits labelled
                axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
                axis.set_minor_formatter(
                    ticker.FuncFormatter(
                        lambda value, _, shown=shown: f"{value:g}" if f"{value:e}"[0] in shown else ""
                    )
                )
    text = "\n".join(textwrap.wrap(caption, width=int(fig.get_figwidth() * 17)))
    fig.text(0.01, -0.01, text, ha="left", va="top", fontsize=7.5)
    (figure_dir / f"{name}.caption.txt").write_text(caption + "\n")
    paths = []
    for ext, meta in (("png", PNG_META), ("pdf", PDF_META)):
        path = figure_dir / f"{name}.{ext}"
        fig.savefig(path, bbox_inches="tight", dpi=150, metadata=meta)
        paths.append(str(path))
    plt.close(fig)
    return paths


def median_band(ax, frame: pd.DataFrame, x: str, y: str, label: str, **style):
    """Median of y against x with the interquartile range shaded."""
    stats = frame.groupby(x)[y].quantile([0.25, 0.5, 0.75]).unstack()
    line = ax.plot(stats.index, stats[0.5], marker="o", label=label, **style)[0]
    ax.fill_between(stats.index, stats[0.25], stats[0.75], alpha=0.2, color=line.get_color())
    return line
