"""From `advrepro run EXPERIMENT [OVERRIDES]` to complete cells: plan, execute (resumably), aggregate.

A cell is one resolved config. The scale preset (`scale=smoke|default|paper`) gives grids of cells; a key the
user sets, pinned or swept with -m, replaces that grid axis (and the axis of the key it sets, `Experiment.sets`). Cells run in this process, or through any Hydra
launcher (`hydra/launcher=joblib|submitit_local|submitit_slurm`), with the same task function.
"""

import dataclasses
import itertools
import json
import logging
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from advrepro import store
from advrepro.claims import COLUMNS
from advrepro.config import (
    ParsedOverrides,
    compose,
    config_dir,
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
from advrepro.experiments import get
from advrepro.provenance import device_description, git_commit, package_versions
from advrepro.signals import deferred_interrupts

log = logging.getLogger("advrepro")


@dataclasses.dataclass
class Cell:
    overrides: list[str]
    plain: dict[str, Any]
    digest: str


def build_config(experiment: Experiment, plain: dict[str, Any]) -> Any:
    """The typed config object; its __post_init__ checks values (sizes > 0, known names)."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(experiment.config_class), plain))
    except OmegaConfBaseException as err:
        raise UserError(str(err).splitlines()[0]) from err


def grid_cells(grids: list[dict[str, list]], user_keys: set[str]) -> list[dict[str, Any]]:
    """The union over grids of each grid's product, without the axes the user set."""
    cells: list[dict[str, Any]] = []
    for grid in grids:
        axes = {k: list(v) if isinstance(v, list) else [v] for k, v in grid.items() if k not in user_keys}
        cells += [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    return cells


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


def plan(experiment: Experiment, overrides: list[str], multirun: bool) -> tuple[list[Cell], ParsedOverrides]:
    """Every cell of the request, composed and validated before anything runs or is written."""
    parsed = parse_overrides(overrides, multirun)
    base = to_plain(compose(experiment.name, parsed.pinned))
    if base["scale"] not in base["grids"]:
        raise UserError(f"unknown scale '{base['scale']}' (choose one of: {', '.join(base['grids'])})")
    user_keys = parsed.keys | {experiment.sets[k] for k in parsed.keys if k in experiment.sets}
    grid = grid_cells(base["grids"][base["scale"]], user_keys)
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
            digest = store.cell_hash(identity(plain))
            cells.setdefault(digest, Cell(job, plain, digest))
    results_dirs = {c.plain["results_dir"] for c in cells.values()}
    if len(results_dirs) != 1:
        raise UserError("one run writes to one results_dir: do not sweep results_dir")
    return list(cells.values()), parsed


def execute_cells(configs: list[DictConfig | dict[str, Any]], force: bool = False) -> list[str]:
    """Compute cells unless already complete; cells of one call (differing only in the experiment's batch_keys)
    are computed together as one batched model. Each cell is still written, and resumable, on its own."""
    plains = [to_plain(c) if isinstance(c, DictConfig) else c for c in configs]
    experiment = get(plains[0]["experiment"])
    plains = [experiment.canonical(p) for p in plains]
    digests = [store.cell_hash(identity(p)) for p in plains]
    directories = [
        store.cell_dir(p["results_dir"], experiment.name, d) for p, d in zip(plains, digests, strict=True)
    ]
    todo = [i for i, directory in enumerate(directories) if force or store.read_meta(directory) is None]
    if not todo:
        return digests
    with deferred_interrupts():
        configs = [build_config(experiment, plains[i]) for i in todo]
    device = resolve_device(configs[0].device)
    started, clock = datetime.now(UTC), time.perf_counter()
    frames = experiment.compute(configs, device)
    seconds = time.perf_counter() - clock
    for i, config, rows in zip(todo, configs, frames, strict=True):
        meta = {
            "experiment": experiment.name,
            "cell": digests[i],
            "seed": config.seed,
            "device": device_description(device),
            "versions": package_versions(),
            "git_commit": git_commit(),
            "wall_time_s": round(seconds / len(todo), 3),  # a batch's time is shared equally
            "batched_with": len(todo),
            "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(),
        }
        store.write_cell(directories[i], plains[i], rows, meta)
    return digests


def execute_cell(cfg: DictConfig | dict[str, Any], force: bool = False) -> str:
    """The task function (in-process or under a Hydra launcher): compute one cell unless already complete."""
    return execute_cells([cfg], force)[0]


def batches(experiment: Experiment, cells: list[Cell]) -> list[list[Cell]]:
    """Cells that differ only in the experiment's batch_keys, grouped (one group per cell when it has none)."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        rest = {k: v for k, v in cell.plain.items() if k not in experiment.batch_keys}
        groups.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append(cell)
    return list(groups.values())


def launch_with_hydra(experiment: Experiment, hydra_overrides: list[str], jobs: list[list[str]], force: bool):
    """Hand the planned cells to the Hydra launcher the user named (joblib, submitit_local, submitit_slurm)."""
    from hydra import initialize_config_dir
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.plugins import Plugins
    from hydra.core.utils import JobStatus
    from hydra.types import HydraContext, RunMode

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name=experiment.name):
        hydra = GlobalHydra.instance().hydra
        cfg = hydra.compose_config(experiment.name, hydra_overrides + jobs[0], run_mode=RunMode.MULTIRUN)
        HydraConfig.instance().set_config(cfg)
        context = HydraContext(config_loader=hydra.config_loader, callbacks=Callbacks(cfg))
        launcher = Plugins.instance().instantiate_launcher(
            hydra_context=context, task_function=partial(execute_cell, force=force), config=cfg
        )
        returns = launcher.launch(jobs, initial_job_idx=0)
    failed = [r for r in returns if r.status != JobStatus.COMPLETED]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(jobs)} jobs failed; first: {failed[0].return_value!r}")


def aggregate(experiment: Experiment, cells: list[Cell]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All rows of the requested cells (with their `cell`) and one row per cell (config, time, device).

    The aggregates are rewritten only when the set of cells or their contents changed: a stamp beside them lists
    each cell's digest and rows checksum, and the aggregates' own checksums."""
    results = Path(cells[0].plain["results_dir"])
    paths = (results / f"{experiment.name}.csv", results / f"{experiment.name}.cells.csv")
    metas = []
    for cell in cells:
        meta = store.read_meta(store.cell_dir(results, experiment.name, cell.digest))
        if meta is None:
            raise RuntimeError(f"cell {cell.digest} has no complete result in {results}")
        metas.append(meta)
    stamp = {"cells": [[c.digest, m["rows_sha256"]] for c, m in zip(cells, metas, strict=True)]}
    if store.read_stamp(results, experiment.name, paths) == stamp:
        return pd.read_csv(paths[0]), pd.read_csv(paths[1])
    frames, summaries = [], []
    for cell, meta in zip(cells, metas, strict=True):
        rows = store.read_rows(store.cell_dir(results, experiment.name, cell.digest))
        rows.insert(0, "cell", cell.digest)
        frames.append(rows)
        scalars = {k: v for k, v in identity(cell.plain).items() if not isinstance(v, dict | list)}
        summaries.append(
            {
                "cell": cell.digest,
                **scalars,
                "device": meta["device"],
                "wall_time_s": meta["wall_time_s"],
                "git_commit": meta["git_commit"],
                "torch": meta["versions"]["torch"],
            }
        )
    rows, summary = pd.concat(frames, ignore_index=True), pd.DataFrame(summaries)
    store.atomic_write_csv(paths[0], rows)
    store.atomic_write_csv(paths[1], summary)
    store.write_stamp(results, experiment.name, paths, stamp)
    return rows, summary


def execute(experiment: Experiment, cells: list[Cell], parsed: ParsedOverrides, force: bool = False) -> dict:
    """Compute the missing cells, aggregate, update claims.csv; returns a summary for the CLI."""
    results_dir = cells[0].plain["results_dir"]
    todo = [
        c
        for c in cells
        if force or store.read_meta(store.cell_dir(results_dir, experiment.name, c.digest)) is None
    ]
    clock = time.perf_counter()
    if any(o.startswith("hydra/launcher=") for o in parsed.hydra):
        if todo:
            launch_with_hydra(experiment, parsed.hydra, [c.overrides for c in todo], force)
    else:
        show = None if cells[0].plain["progress"] else True
        with (
            logging_redirect_tqdm(),
            tqdm(total=len(todo), desc=f"{experiment.name} cells", unit="cell", disable=show) as progress,
        ):
            for group in batches(experiment, todo):
                execute_cells([cell.plain for cell in group], force)
                progress.update(len(group))
    rows, summary = aggregate(experiment, cells)
    claims = pd.DataFrame(experiment.claims(rows, summary), columns=list(COLUMNS))
    store.update_claims(results_dir, experiment.name, claims)
    return {
        "experiment": experiment.name,
        "cells": len(cells),
        "computed": len(todo),
        "results_dir": results_dir,
        "seconds": time.perf_counter() - clock,
        "claims": claims,
    }


def estimate_seconds(
    experiment: Experiment, cells: list[Cell], results_dir: str | Path
) -> tuple[float, int] | None:
    """Rough cost of `cells`: Σ work(cell) × the median seconds per unit of work over the cells already measured in
    results_dir (from EXPERIMENT.cells.csv). None when nothing has been measured yet."""
    measured_path = Path(results_dir) / f"{experiment.name}.cells.csv"
    if not measured_path.is_file():
        return None
    measured = pd.read_csv(measured_path)
    rates = [row["wall_time_s"] / experiment.work(row) for row in measured.to_dict("records")]
    return float(pd.Series(rates).median()) * sum(experiment.work(c.plain) for c in cells), len(measured)
