"""From `advrepro run EXPERIMENT [OVERRIDES]` to the cells it means: the planning rule, the batch groups, the dry run
and the cost estimate. Nothing here computes or writes a cell (advrepro.execution does; advrepro.launching hands
jobs to Hydra's launchers).

A cell is one resolved config. The planning rule (README, `advrepro run --help`):
- no experiment key given (only where/how keys such as results_dir, device, scale, or seed): the preset grids of
  `scale` (smoke, default, paper), as `make figures` runs them;
- keys given without -m: exactly one cell, the config's defaults, then the scale's budget (the settings every grid of
  the scale fixes to one value, such as runs or epochs), then the keys given;
- with -m: the product of the values given, each cell built the same way.
Cells that differ only in the experiment's batch_keys form one batch group (one model, one launcher job).
Outputs go where `store.outputs_dir` says: the reference outputs only from the reference scale's preset grids.
"""

import dataclasses
import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from advrepro import store
from advrepro.config import (
    NON_IDENTITY_KEYS,
    ParsedOverrides,
    compose,
    identity,
    merge_values,
    override_string,
    parse_overrides,
    to_plain,
    without_grids,
)
from advrepro.device import resolve_device, resolve_dtype
from advrepro.errors import UserError
from advrepro.experiment import Experiment
from advrepro.launching import check_launcher, launcher_of


@dataclasses.dataclass
class Cell:
    overrides: list[str]
    plain: dict[str, Any]
    digest: str


def build_config(experiment: Experiment, plain: dict[str, Any]) -> Any:
    """The typed config object; its __post_init__ checks values (sizes > 0, known names)."""
    try:
        cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(experiment.config_class), plain))
    except OmegaConfBaseException as err:
        raise UserError(str(err).splitlines()[0]) from err
    if cfg.seed < 0:  # a key every experiment has; derived seeds need a non-negative integer
        raise UserError(f"seed must be ≥ 0, got {cfg.seed}")
    return cfg


# Keys that keep a command on the preset grids: where and how its cells run, and the seed of every draw.
PRESET_KEYS = frozenset((*NON_IDENTITY_KEYS, "seed"))


def grid_cells(grids: list[dict[str, list]], user_keys: set[str]) -> list[dict[str, Any]]:
    """The union over grids of each grid's product, without the axes the user set."""
    cells: list[dict[str, Any]] = []
    for grid in grids:
        axes = {k: list(v) if isinstance(v, list) else [v] for k, v in grid.items() if k not in user_keys}
        cells += [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    return cells


def budget(grids: list[dict[str, list]]) -> dict[str, Any]:
    """The settings every grid of a scale fixes to the same single value (runs, epochs, training subset, …)."""
    single = [{k: v[0] for k, v in g.items() if isinstance(v, list) and len(v) == 1} for g in grids]
    return (
        {k: v for k, v in single[0].items() if all(k in s and s[k] == v for s in single[1:])}
        if single
        else {}
    )


# a quoted value (classes='0,1') names its directory without the quotes
UNQUOTED = str.maketrans("", "", "'\"")


def adhoc_label(parsed: ParsedOverrides) -> str:
    """A directory name for a command's own outputs, from the experiment keys it gave (readable, hashed if long):
    `d=100_eps=0.1,0.3` for d=100 and -m eps=0.1,0.3."""
    swept = [
        f"{axis[0].split('=')[0]}={','.join(o.split('=', 1)[1] for o in axis)}" for axis in parsed.sweeps
    ]
    given = sorted(o for o in parsed.pinned + swept if o.split("=")[0].lstrip("+~") not in PRESET_KEYS)
    text = re.sub(r"[^A-Za-z0-9=.,+_-]+", "-", "_".join(given).translate(UNQUOTED))
    return text if len(text) <= 60 else f"{text[:60]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


@dataclasses.dataclass
class Plan:
    """What a command will do: its cells, whether they are the preset grids, and where its outputs go."""

    experiment: Experiment
    cells: list[Cell]
    parsed: ParsedOverrides
    preset: bool
    scale: str
    results_dir: Path
    outputs: Path

    @property
    def launcher(self) -> str | None:
        return launcher_of(self.parsed)


def split_for_all(experiments: list[Experiment], overrides: list[str]) -> dict[str, list[str]]:
    """`advrepro run all KEY=VALUE ...`: each experiment gets the overrides of keys it has (Hydra's own go to all);
    a key no experiment has is an error."""
    keys = {exp.name: set(to_plain(compose(exp.name))) for exp in experiments}
    parsed = OverridesParser.create().parse_overrides(overrides=overrides)
    unknown = [
        o.input_line
        for o in parsed
        if not o.is_hydra_override() and not any(o.key_or_group in k for k in keys.values())
    ]
    if unknown:
        raise UserError(f"no experiment has the key of {', '.join(unknown)}")
    return {
        name: [o.input_line for o in parsed if o.is_hydra_override() or o.key_or_group in own]
        for name, own in keys.items()
    }


def plan(experiment: Experiment, overrides: list[str], multirun: bool) -> Plan:
    """Every cell of the request (the module docstring's rule), composed and validated, and the results directory
    checked, before anything runs or is written."""
    parsed = parse_overrides(overrides, multirun)
    base = to_plain(compose(experiment.name, parsed.pinned))
    if base["scale"] not in base["grids"]:
        raise UserError(f"unknown scale '{base['scale']}' (choose one of: {', '.join(base['grids'])})")
    preset = parsed.keys <= PRESET_KEYS
    grids = base["grids"][base["scale"]]
    grid = grid_cells(grids if preset else [budget(grids)], parsed.keys)
    cells: dict[str, Cell] = {}
    for swept in itertools.product(*parsed.sweeps):
        composed = without_grids(
            compose(experiment.name, parsed.pinned + list(swept))
        )  # once per combination
        for values in grid or [{}]:
            job = parsed.pinned + list(swept) + [override_string(k, v) for k, v in values.items()]
            plain = experiment.canonical(to_plain(merge_values(composed, values)))  # typed as compose would
            config = build_config(experiment, plain)
            resolve_device(config.device)
            resolve_dtype(config.dtype)
            digest = experiment.digest(plain)
            cells.setdefault(digest, Cell(job, plain, digest))
    results_dirs = {c.plain["results_dir"] for c in cells.values()}
    if len(results_dirs) != 1:
        raise UserError("one run writes to one results_dir: do not sweep results_dir")
    results_dir = Path(results_dirs.pop())
    store.check_results_dir(results_dir)
    if parsed.hydra:
        check_launcher(experiment, parsed)
    outputs = store.outputs_dir(
        results_dir, base["scale"], preset, f"{experiment.name}/{adhoc_label(parsed)}" if not preset else ""
    )
    return Plan(experiment, list(cells.values()), parsed, preset, base["scale"], results_dir, outputs)


def batches(experiment: Experiment, cells: list[Cell]) -> list[list[Cell]]:
    """Cells that differ only in the experiment's batch_keys, grouped (one group per cell when it has none)."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        rest = {k: v for k, v in cell.plain.items() if k not in experiment.batch_keys}
        groups.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append(cell)
    return list(groups.values())


def describe_plan(request: Plan) -> str:
    """`--dry-run`: the cells in the batches they would train in, each complete / missing / corrupted, and the
    estimated cost of the missing ones; nothing is computed or written."""
    experiment = request.experiment
    defaults = identity(without_grids_plain(experiment))
    status = {
        c.digest: store.cell_status(store.cell_dir(request.results_dir, experiment.name, c.digest))
        for c in request.cells
    }
    missing = [c for c in request.cells if status[c.digest] != "complete"]
    counts = {word: sum(v == word for v in status.values()) for word in ("complete", "missing", "corrupted")}
    cost = cost_message(experiment, missing, request.results_dir) if missing else "nothing to compute"
    groups = batches(experiment, request.cells)
    lines = [
        f"{experiment.name}: {len(request.cells)} cells in {len(groups)} batches "
        f"({'the preset grids of scale=' + request.scale if request.preset else 'the keys given'}): "
        + ", ".join(f"{n} {word}" for word, n in counts.items())
        + f"; the missing ones: {cost}. Outputs -> {request.outputs}"
    ]
    for number, group in enumerate(groups, 1):
        lines.append(
            f"  batch {number} ({len(group)} cells, trained together)"
            if len(group) > 1
            else f"  batch {number}"
        )
        for cell in group:
            changed = {k: v for k, v in identity(cell.plain).items() if defaults.get(k) != v}
            settings = " ".join(f"{k}={v}" for k, v in changed.items()) or "(the config's defaults)"
            lines.append(f"    {status[cell.digest]:<9} {cell.digest}  {settings}")
    return "\n".join(lines)


def without_grids_plain(experiment: Experiment) -> dict[str, Any]:
    """The experiment's config with no override, as plain values."""
    return to_plain(without_grids(compose(experiment.name)))


def cost_message(experiment: Experiment, cells: list[Cell], results_dir: str | Path) -> str:
    """The one sentence every command gives for the cost of `cells` (`advrepro config`, `run --dry-run`)."""
    estimate = estimate_seconds(experiment, cells, results_dir)
    if estimate is None:
        return f"no measured cells in {results_dir} to estimate their cost from"
    return (
        f"roughly {estimate[0] / 60:.1f} min on the device of the {estimate[1]} cells measured in {results_dir} "
        "(a cost model, not a promise)"
    )


def estimate_seconds(
    experiment: Experiment, cells: list[Cell], results_dir: str | Path
) -> tuple[float, int] | None:
    """Rough cost of `cells`: Σ cost_model(cell) × the median seconds per unit of work over the complete cells of this
    experiment in results_dir (their meta.json and config.yaml). None when nothing has been measured yet."""
    rates = []
    for directory in sorted((Path(results_dir) / "runs" / experiment.name).glob("*")):
        meta = store.read_meta(directory)
        if meta is not None:
            config = OmegaConf.to_container(OmegaConf.load(directory / "config.yaml"))
            rates.append(meta["wall_time_s"] / experiment.cost_model(config))
    if not rates:
        return None
    return float(pd.Series(rates).median()) * sum(experiment.cost_model(c.plain) for c in cells), len(rates)
