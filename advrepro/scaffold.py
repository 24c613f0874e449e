"""`advrepro new NAME`: a new experiment's files, working and tested as created (CONTRIBUTING.md's five pieces).

The scaffold is a complete small experiment, not a stub: the distance |w·x|/‖w‖ from points x of the √d-sphere to the
boundary of a random linear classifier, whose mean is √d·Γ(d/2)/(√π·Γ((d+1)/2)) exactly (→ √(2/π)). It shows every
piece the next paper needs (config with tags and grids, a seeded batched runner with documented columns, a claim
against a derived value for the setting measured, a figure with its settings, tests against the closed form, two-way
claim cases) and passes tests/test_every_experiment.py as written. Replace its model, measurement and claims.
"""

import re
from pathlib import Path
from string import Template

from advrepro.config import config_dir
from advrepro.errors import UserError

NAME_RULE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# Lines the scaffold inserts before (each file keeps its line, so the next `advrepro new` finds it again).
MARKERS = {
    "tests/helpers.py": ("# advrepro new: builders above\n", "    # advrepro new: cases above\n"),
}

CONFIG = Template("""# $title. docs/protocols.md: write the protocol first (model, data, training, measurement, figure, each value tagged).
defaults:
  - ${cls}Config
  - common
  - _self_

experiment: $name  # [ours] the experiment this config runs
d: 100               # [inferred] input dimension; points uniform on the √d-sphere
n: 1000              # [inferred] points per run
runs: 5              # [inferred] independent runs (a classifier and its points each)

grids:               # [inferred] the swept values
  smoke:
    - {d: [10, 20], n: [50], runs: [2]}
  default:
    - {d: [3, 10, 100, 1000]}
  paper:
    - {d: [3, 10, 100, 1000, 10000]}
""")

PACKAGE = Template('''"""$title.

docs/protocols.md (its section for $name). Scaffolded by `advrepro new $name`: a random linear classifier f(x) = w·x,
w ~ N(0, I), and points x uniform on the √d-sphere; the distance to the boundary |w·x|/‖w‖ = √d·|u₁| (u uniform on
the unit sphere) has mean √d·Γ(d/2)/(√π·Γ((d+1)/2)), which tends to √(2/π). Replace with the paper's experiment.
"""

from advrepro.experiment import Experiment
from advrepro.experiments.$module.claims import claims
from advrepro.experiments.$module.runner import COLUMNS, NAME, ${cls}Config, cost_model, run

EXPERIMENT = Experiment(
    name=NAME,
    title="$title",
    reproduces="(the paper and its figure)",
    figures=(f"{NAME}_distance",),
    config_class=${cls}Config,
    run=run,
    claims=claims,
    figure_module=f"{__name__}.figure",
    cost_model=cost_model,
    columns=COLUMNS,
)
''')

RUNNER = Template('''"""$name: the config and the runner (torch); the paper and the protocol are in the package docstring."""

import dataclasses
import math

import numpy as np
import pandas as pd
import torch

from advrepro.config import CommonConfig, require_positive
from advrepro.device import resolve_dtype
from advrepro.nets import sphere
from advrepro.seeding import generator

NAME = "$name"


@dataclasses.dataclass
class ${cls}Config(CommonConfig):
    """$name's keys (configs/$name.yaml, tags and sources in docs/protocols.md)."""

    d: int = 100
    n: int = 1000
    runs: int = 5

    def __post_init__(self):
        require_positive(self, "d", "n", "runs")


def mean_distance(d: int) -> float:
    """E|w·x|/‖w‖ = √d·E|u₁| = √d·Γ(d/2)/(√π·Γ((d+1)/2)) for x uniform on the √d-sphere [derived]."""
    return math.sqrt(d) * math.exp(math.lgamma(d / 2) - math.lgamma((d + 1) / 2)) / math.sqrt(math.pi)


# The columns of rows.csv (besides `cell`, added on aggregation): name -> meaning.
COLUMNS = {
    "d": "input dimension",
    "run": "independent run (a classifier w and its n points)",
    "distance": "mean over the n points of |w·x|/‖w‖ (‖x‖ = √d)",
}


def run(cfg: ${cls}Config, device: torch.device) -> pd.DataFrame:
    """Rows of one cell, one per run: every run's classifier and points from its own stream, all runs batched."""
    dtype = resolve_dtype(cfg.dtype)
    streams = [(generator(cfg.seed, "w", r), generator(cfg.seed, "x", r)) for r in range(cfg.runs)]
    w = torch.stack([torch.randn(cfg.d, generator=g, dtype=dtype) for g, _ in streams]).to(device)
    x = torch.stack([sphere(cfg.n, cfg.d, math.sqrt(cfg.d), g, dtype) for _, g in streams]).to(device)
    margin = (x * w[:, None, :]).sum(-1)  # elementwise and a sum: the same bits however many runs share it
    distance = (margin.abs() / w.norm(dim=-1, keepdim=True)).mean(-1)
    return pd.DataFrame({"d": cfg.d, "run": np.arange(cfg.runs), "distance": distance.cpu().numpy()})


def cost_model(c: dict) -> float:
    """Cost model for estimates: one pass over the points."""
    return c["runs"] * c["n"] * c["d"]
''')

CLAIMS = Template('''"""$name: the claims (pandas): which rows each claim rests on, and the paper\'s predictions against them."""

import pandas as pd

from advrepro.claims import Band, claim
from advrepro.experiments.$module.runner import NAME, mean_distance
from advrepro.stats import statistic_estimate

TOLERANCE = 0.05  # ours: relative, on the mean distance


def claims(rows: pd.DataFrame, summary: pd.DataFrame) -> list[dict]:
    """Per d: the mean distance against its closed form for that d."""
    out = []
    for d, frame in rows.groupby("d"):
        value = mean_distance(int(d))
        out.append(
            claim(
                NAME,
                f"mean-distance-d{d}",
                statement=f"mean distance |w·x|/‖w‖ to the boundary (d={d})",
                prediction=f"√d·Γ(d/2)/(√π·Γ((d+1)/2)) = {value:.4f}",
                source="[derived]",
                band=Band(value * (1 - TOLERANCE), value * (1 + TOLERANCE)),
                tolerance_by=f"ours: ±{TOLERANCE:.0%}",
                estimate=statistic_estimate(frame["distance"], "runs"),
            )
        )
    return out
''')

FIGURE = Template('''"""Figure of $name: the mean distance to the boundary against d, with its closed form."""

from pathlib import Path

import numpy as np
import pandas as pd

from advrepro.experiments.$module.runner import NAME, mean_distance
from advrepro.plotting import inferred_note, panels, save, settings


def plot(rows: pd.DataFrame, summary: pd.DataFrame, figure_dir: Path) -> list[str]:
    stats = rows.groupby("d")["distance"].agg(["mean", "min", "max"])
    fig, (ax,) = panels(1)
    ax.errorbar(
        stats.index,
        stats["mean"],
        yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
        fmt="o",
        capsize=3,
        label="measured: mean, min–max over runs",
    )
    d = np.array(sorted(stats.index))
    ax.plot(d, [mean_distance(int(v)) for v in d], "k--", lw=1, label="closed form")
    ax.set(xscale="log", xlabel="d", ylabel="mean |w·x|/‖w‖", title="distance to a random linear boundary")
    ax.legend(fontsize=7)
    caption = "Mean distance to the boundary of a random linear classifier. "
    caption += settings(summary, ["n", "runs", "seed"]) + ". " + inferred_note(NAME, ["d", "n", "runs"])
    return save(fig, f"{NAME}_distance", figure_dir, caption)
''')

TEST = Template('''"""$name: the mean distance against its closed form, and one CLI run at scale=smoke."""

import math

import pytest
import torch

from advrepro.experiments.$module.runner import ${cls}Config, mean_distance, run


def test_the_closed_form_is_the_large_d_limit_and_exact_at_d_2():
    assert mean_distance(10**6) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-5)
    assert mean_distance(2) == pytest.approx(2 * math.sqrt(2) / math.pi)  # √2·E|cos θ|


def test_the_measured_mean_matches_the_closed_form():
    rows = run(${cls}Config(d=5, n=20000, runs=3, dtype="float64"), torch.device("cpu"))
    assert rows["distance"].mean() == pytest.approx(mean_distance(5), rel=0.02)


def test_cli_smoke_run(cli, tmp_path):
    result = cli("run", "$name", "scale=smoke", "progress=false", f"results_dir={tmp_path}")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "$name.csv").is_file()
''')

BUILDER = Template('''def ${module}_rows(factor=1.0, runs=5):
    """$name's runs at d ∈ {10, 100} whose mean distance is `factor` times its closed form."""
    from advrepro.experiments.$module.runner import mean_distance

    rng = np.random.default_rng(7)
    frames = [
        pd.DataFrame(
            {
                "cell": f"c{d}",
                "d": d,
                "run": np.arange(runs),
                "distance": factor * mean_distance(d) * _noise(rng, runs, 0.005),
            }
        )
        for d in (10, 100)
    ]
    return pd.concat(frames, ignore_index=True), pd.DataFrame({"cell": ["c10", "c100"]})


''')

CASE = Template("""    "$name": (${module}_rows, {"mean-distance-": ({"factor": 1.0}, {"factor": 1.3})}),
""")


def scaffold(name: str, title: str, root: Path | None = None) -> list[Path]:
    """Write the new experiment's package, config and tests under the checkout `root` (the registry finds the
    package) and its two-way claim cases in tests/helpers.py; the paths written or changed."""
    if not NAME_RULE.match(name):
        raise UserError(f"experiment name '{name}' must be lowercase words joined by '-', e.g. frei-clusters")
    root = root or config_dir().parent
    module = name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-"))
    fields = {"name": name, "module": module, "cls": cls, "title": title or name}
    package = root / "advrepro" / "experiments" / module
    files = {
        root / "configs" / f"{name}.yaml": CONFIG,
        package / "__init__.py": PACKAGE,
        package / "runner.py": RUNNER,
        package / "claims.py": CLAIMS,
        package / "figure.py": FIGURE,
        root / "tests" / f"test_{module}.py": TEST,
    }
    taken = [str(path.relative_to(root)) for path in files if path.exists()]
    if taken:
        raise UserError(f"experiment '{name}' exists already: {', '.join(taken)}")
    insertions = {
        "tests/helpers.py": (BUILDER.substitute(fields), CASE.substitute(fields)),
    }
    texts = {}
    for relative, (first, second) in insertions.items():
        text = (root / relative).read_text()
        for marker, line in zip(MARKERS[relative], (first, second), strict=True):
            if text.count(marker) != 1:
                raise UserError(
                    f"{relative} has lost its line '{marker.strip()}' (advrepro new inserts before it)"
                )
            text = text.replace(marker, line + marker)
        texts[root / relative] = text
    package.mkdir(exist_ok=True)
    for path, template in files.items():
        path.write_text(template.substitute(fields))
    for path, text in texts.items():
        path.write_text(text)
    return [*files, *texts]
