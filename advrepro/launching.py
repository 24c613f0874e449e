"""Hydra's launchers (joblib, submitit_local, submitit_slurm): checking the one a command names, encoding a batch group
as one job's overrides, and launching the jobs. The only module that touches Hydra's private API (Callbacks), covered
by tests/test_launchers.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from advrepro.config import (
    ParsedOverrides,
    compose,
    hydra_configs,
    override_value,
)
from advrepro.errors import UserError
from advrepro.experiment import Experiment

if TYPE_CHECKING:
    from advrepro.planning import Cell


def launcher_of(parsed: ParsedOverrides) -> str | None:
    """The Hydra launcher a command names (hydra/launcher=…), or None to run in this process."""
    return next((o.split("=", 1)[1] for o in parsed.hydra if o.startswith("hydra/launcher=")), None)


def check_launcher(experiment: Experiment, parsed: ParsedOverrides) -> None:
    """Hydra's own overrides compose (an unknown launcher is one line, not a traceback)."""
    from hydra.core.global_hydra import GlobalHydra

    try:
        compose(experiment.name, parsed.hydra + parsed.pinned, with_hydra=True)
    except UserError as err:
        launcher = launcher_of(parsed)
        if launcher is None or f"hydra/launcher/{launcher}" not in str(err):
            raise
        with hydra_configs(experiment.name):
            known = GlobalHydra.instance().config_loader().get_group_options("hydra/launcher")
        raise UserError(f"unknown launcher '{launcher}' (installed: {', '.join(sorted(known))})") from err


def job_overrides(experiment: Experiment, group: list[Cell]) -> list[str]:
    """A launcher job for a batch group: the first cell's overrides, and `+batch` listing each member's batch keys."""
    if len(group) == 1:
        return group[0].overrides
    members = [
        "{"
        + ",".join(f"{k}:{override_value(c.plain[k])}" for k in experiment.batch_keys if k in c.plain)
        + "}"
        for c in group
    ]
    return [*group[0].overrides, f"+batch=[{','.join(members)}]"]


def launch_with_hydra(
    experiment: Experiment, hydra_overrides: list[str], jobs: list[list[str]], task
) -> None:
    """Hand the planned jobs (one per batch group) to the Hydra launcher the user named (joblib, submitit_local,
    submitit_slurm); `task(cfg)` runs one job (advrepro.execution.execute_job)."""
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.plugins import Plugins
    from hydra.core.utils import JobStatus
    from hydra.types import HydraContext, RunMode

    with hydra_configs(experiment.name):
        hydra = GlobalHydra.instance().hydra
        cfg = hydra.compose_config(experiment.name, hydra_overrides + jobs[0], run_mode=RunMode.MULTIRUN)
        HydraConfig.instance().set_config(cfg)
        context = HydraContext(config_loader=hydra.config_loader, callbacks=Callbacks(cfg))
        launcher = Plugins.instance().instantiate_launcher(
            hydra_context=context, task_function=task, config=cfg
        )
        returns = launcher.launch(jobs, initial_job_idx=0)
    failed = [r for r in returns if r.status != JobStatus.COMPLETED]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(jobs)} jobs failed; first: {failed[0].return_value!r}")
