"""What an experiment is: a config schema, a runner for one cell, claims and figures."""

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from advrepro.config import identity
from advrepro.store import cell_hash


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One reproduced experiment.

    run(cfg, device) -> rows of one cell; claims(rows, summary) -> claims table rows; cost_model(cell config) -> a number
    proportional to the cell's cost (for estimates from measured cells); cells differing only in `batch_keys` are
    computed together by run_batch(cfgs, device) -> rows of each; canonical(config) sets keys that cannot change
    what a cell computes to one value (so such cells are one cell); `figure_module` (the package's figure.py) holds
    plot(rows, summary, figure_dir) -> paths of the figures written (PNG and PDF), imported only when drawing;
    `columns` documents every column of rows.csv (name -> meaning, with the unit); `rows_version` is raised when
    the rows' columns or values change (a fix), and enters the cell's identity (`digest`) so that cells written by
    the old code are recomputed rather than misread.
    """

    name: str
    title: str
    reproduces: str
    figures: tuple[str, ...]
    config_class: type
    run: Callable[[Any, torch.device], pd.DataFrame]
    claims: Callable[[pd.DataFrame, pd.DataFrame], list[dict[str, Any]]]
    figure_module: str
    cost_model: Callable[[dict[str, Any]], float]
    batch_keys: tuple[str, ...] = ()
    run_batch: Callable[[list[Any], torch.device], list[pd.DataFrame]] | None = None
    canonical: Callable[[dict[str, Any]], dict[str, Any]] = dict
    columns: dict[str, str] = dataclasses.field(default_factory=dict)
    rows_version: int = 1

    def digest(self, plain: dict[str, Any]) -> str:
        """The cell's name: a hash of what it computes (and of the rows' version after the first)."""
        version = {"rows_version": self.rows_version} if self.rows_version > 1 else {}
        return cell_hash({**identity(plain), **version})

    def compute(self, configs: list[Any], device: torch.device) -> list[pd.DataFrame]:
        """Rows of each config: one batched model when the experiment has run_batch, else one cell at a time."""
        if self.run_batch is not None:
            return self.run_batch(configs, device)
        return [self.run(config, device) for config in configs]

    @property
    def package(self) -> str:
        """The experiment's package (advrepro/experiments/<name>/, which holds figure.py)."""
        return self.figure_module.rpartition(".")[0]

    def plot(self, rows: pd.DataFrame, summary: pd.DataFrame, figure_dir) -> list[str]:
        return importlib.import_module(self.figure_module).plot(rows, summary, figure_dir)
