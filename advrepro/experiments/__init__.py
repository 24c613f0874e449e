"""The registry: every package under advrepro/experiments/ is one experiment, exposing `EXPERIMENT` (see
advrepro.experiment) from its `__init__.py`, with `runner.py` (config and run), `claims.py` and `figure.py`."""

import importlib
import pkgutil

from hydra.core.config_store import ConfigStore

from advrepro.errors import UserError
from advrepro.experiment import Experiment

# The order of `advrepro list`, `make figures`, the report and the claims table: the project's papers in the order
# they were added; a package not named here (a new paper) follows them, by name.
ORDER = (
    "random_net",
    "lazy_sgd",
    "lazy_pgd",
    "vardi_universal",
    "schmidt_models",
    "yang_separation",
    "zhu_stability",
    "cluster_robustness",
)


def _load() -> dict[str, Experiment]:
    packages = [info.name for info in pkgutil.iter_modules(__path__) if info.ispkg]
    ordered = sorted(packages, key=lambda p: (ORDER.index(p) if p in ORDER else len(ORDER), p))
    found = {}
    for package in ordered:
        experiment = importlib.import_module(f"{__name__}.{package}").EXPERIMENT
        found[experiment.name] = experiment
    store = ConfigStore.instance()
    for exp in found.values():
        store.store(name=f"{exp.config_class.__name__}", node=exp.config_class)
    return found


EXPERIMENTS: dict[str, Experiment] = _load()


def get(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise UserError(f"unknown experiment '{name}' (choose one of: {', '.join(EXPERIMENTS)})")
    return EXPERIMENTS[name]
