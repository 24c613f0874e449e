"""Computing planned cells, resumably: each batch group in this process (`groups_at_once` of them at a time) or
through a Hydra launcher (one job per group), each cell written with its provenance on its own, then the aggregates
and claims.csv."""

import dataclasses
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from advrepro import store
from advrepro.allocator import reuse_freed_host_memory
from advrepro.claims import COLUMNS
from advrepro.concurrency import at_once
from advrepro.config import (
    identity,
    to_plain,
)
from advrepro.device import resolve_device
from advrepro.errors import UserError
from advrepro.experiment import Experiment
from advrepro.experiments import EXPERIMENTS, get
from advrepro.launching import job_overrides, launch_with_hydra
from advrepro.planning import Cell, Plan, batches, build_config
from advrepro.progress import silence
from advrepro.provenance import device_description, git_commit, package_versions
from advrepro.signals import deferred_interrupts


@dataclasses.dataclass
class Missing:
    """The cells of one batch group still to compute: their plain configs, names, directories and typed configs."""

    experiment: Experiment
    plains: list[dict[str, Any]]
    digests: list[str]
    directories: list[Path]
    configs: list[Any]


def missing_cells(
    configs: list[DictConfig | dict[str, Any]], force: bool = False
) -> tuple[list[str], Missing]:
    """Every cell's digest, and the cells not yet complete (all of them when `force`), their configs built here (in
    the calling thread: Hydra and OmegaConf are not thread-safe)."""
    plains = [to_plain(c) if isinstance(c, DictConfig) else c for c in configs]
    experiment = get(plains[0]["experiment"])
    plains = [experiment.canonical(p) for p in plains]
    digests = [experiment.digest(p) for p in plains]
    directories = [
        store.cell_dir(p["results_dir"], experiment.name, d) for p, d in zip(plains, digests, strict=True)
    ]
    todo = [i for i, directory in enumerate(directories) if force or store.read_meta(directory) is None]
    with deferred_interrupts():
        built = [build_config(experiment, plains[i]) for i in todo]
    pick = lambda values: [values[i] for i in todo]
    return digests, Missing(experiment, pick(plains), pick(digests), pick(directories), built)


@dataclasses.dataclass
class Computed:
    """The rows of each missing cell of a batch group, and where, when and for how long they were computed."""

    missing: Missing
    frames: list[pd.DataFrame]
    device: torch.device
    started: datetime
    seconds: float
    gpu_peak_bytes: int | None  # torch.cuda.max_memory_allocated at the end; None off CUDA


def compute(missing: Missing) -> Computed:
    """The missing cells computed together as one batched model (cells differing only in the experiment's
    batch_keys). Writes nothing: it may run in a worker thread (groups_at_once), which an interrupt abandons."""
    device = resolve_device(missing.configs[0].device)
    started, clock = datetime.now(UTC), time.perf_counter()
    frames = missing.experiment.compute(missing.configs, device)
    seconds = time.perf_counter() - clock
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return Computed(missing, frames, device, started, seconds, peak)


def gpu_memory(peak_bytes: int | None) -> dict[str, float]:
    """meta.json's `gpu_peak_gib` on CUDA: the process's peak GPU allocation up to the end of this batch group (the
    group's own when it is the process's only one, as under a launcher; with groups_at_once > 1 it includes the
    groups beside it). Nothing off CUDA."""
    return {} if peak_bytes is None else {"gpu_peak_gib": round(peak_bytes / 2**30, 3)}


def write(computed: Computed, groups_at_once: int = 1) -> None:
    """Each computed cell written on its own with its provenance (so a run resumes cell by cell)."""
    missing = computed.missing
    for plain, digest, directory, config, rows in zip(
        missing.plains, missing.digests, missing.directories, missing.configs, computed.frames, strict=True
    ):
        meta = {
            "experiment": missing.experiment.name,
            "cell": digest,
            "seed": config.seed,
            "device": device_description(computed.device),
            "versions": package_versions(),
            "git_commit": git_commit(),
            "wall_time_s": round(computed.seconds / len(computed.frames), 3),  # shared equally by the batch
            "batched_with": len(computed.frames),
            "groups_at_once": groups_at_once,
            **gpu_memory(computed.gpu_peak_bytes),
            "started": computed.started.isoformat(),
            "finished": datetime.now(UTC).isoformat(),
        }
        store.write_cell(directory, plain, rows, meta)


def execute_cells(configs: list[DictConfig | dict[str, Any]], force: bool = False) -> list[str]:
    """Compute cells unless already complete, as one batch group (missing_cells, compute, write); their digests."""
    digests, missing = missing_cells(configs, force)
    if missing.configs:
        write(compute(missing))
    return digests


def execute_job(cfg: DictConfig | dict[str, Any], force: bool = False) -> list[str]:
    """The task function (in-process or under a Hydra launcher): one batch group, given as its first cell's config
    plus `batch`, the batch-key values of every member (absent for a group of one); computes the missing ones."""
    reuse_freed_host_memory()  # a launcher's job is a process of its own
    plain = to_plain(cfg) if isinstance(cfg, DictConfig) else dict(cfg)
    members = plain.pop("batch", None) or [{}]
    return execute_cells([{**plain, **member} for member in members], force)


def aggregate(experiment: Experiment, cells: list[Cell], outputs: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All rows of the requested cells (with their `cell`) and one row per cell (config, time, device).

    The aggregates are rewritten only when the set of cells or their contents changed: a stamp beside them lists
    each cell's digest and rows checksum, and the aggregates' own checksums."""
    results = Path(cells[0].plain["results_dir"])
    paths = (outputs / f"{experiment.name}.csv", outputs / f"{experiment.name}.cells.csv")
    metas = []
    for cell in cells:
        meta = store.read_meta(store.cell_dir(results, experiment.name, cell.digest))
        if meta is None:
            raise RuntimeError(f"cell {cell.digest} has no complete result in {results}")
        metas.append(meta)
    stamp = {"cells": [[c.digest, m["rows_sha256"]] for c, m in zip(cells, metas, strict=True)]}
    if store.read_stamp(outputs, experiment.name, paths) == stamp:
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
    store.write_stamp(outputs, experiment.name, paths, stamp)
    return rows, summary


def execute(planned: Plan, force: bool = False) -> dict:
    """Compute the missing cells (batch groups together), aggregate, update claims.csv in the plan's outputs."""
    experiment, cells = planned.experiment, planned.cells
    todo = [
        c
        for c in cells
        if force
        or store.cell_status(store.cell_dir(planned.results_dir, experiment.name, c.digest)) != "complete"
    ]
    workers = cells[0].plain["groups_at_once"]
    if workers < 1:
        raise UserError(f"groups_at_once must be ≥ 1, got {workers}")
    store.mark_results_dir(planned.results_dir, planned.scale, planned.preset)
    clock = time.perf_counter()
    groups = batches(experiment, todo)
    if planned.launcher is not None:
        if todo:
            jobs = [job_overrides(experiment, g) for g in groups]
            launch_with_hydra(experiment, planned.parsed.hydra, jobs, partial(execute_job, force=force))
    else:
        show = None if cells[0].plain["progress"] else True
        with (
            logging_redirect_tqdm(),
            tqdm(total=len(todo), desc=f"{experiment.name} cells", unit="cell", disable=show) as progress,
        ):
            tasks = [partial(compute, missing_cells([c.plain for c in g], force)[1]) for g in groups]
            device = resolve_device(cells[0].plain["device"]) if todo else None
            try:
                for computed in at_once(tasks, workers, device):  # cells are written here, in this thread
                    write(computed, workers)
                    progress.update(len(computed.frames))
            except KeyboardInterrupt:
                silence(keep=progress)  # the cells bar stays, with the count done
                raise
    rows, summary = aggregate(experiment, cells, planned.outputs)
    claims = pd.DataFrame(experiment.claims(rows, summary), columns=list(COLUMNS))
    store.update_claims(planned.outputs, experiment.name, claims, order=list(EXPERIMENTS))
    return {
        "experiment": experiment.name,
        "cells": len(cells),
        "computed": len(todo),
        "outputs": planned.outputs,
        "seconds": time.perf_counter() - clock,
        "claims": claims,
    }
