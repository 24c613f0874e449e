"""The registry: every experiment is one module exposing `EXPERIMENT` (see advrepro.experiment)."""

from hydra.core.config_store import ConfigStore

from advrepro.errors import UserError
from advrepro.experiment import Experiment


def _load() -> dict[str, Experiment]:
    from advrepro.experiments import (
        cluster_robustness,
        lazy_pgd,
        lazy_sgd,
        random_net,
        schmidt_models,
        vardi_universal,
        yang_separation,
        zhu_stability,
        # advrepro new: imports above
    )

    modules = (
        random_net,
        lazy_sgd,
        lazy_pgd,
        vardi_universal,
        schmidt_models,
        yang_separation,
        zhu_stability,
        cluster_robustness,
        # advrepro new: modules above
    )
    found = {m.EXPERIMENT.name: m.EXPERIMENT for m in modules}
    store = ConfigStore.instance()
    for exp in found.values():
        store.store(name=f"{exp.config_class.__name__}", node=exp.config_class)
    return found


EXPERIMENTS: dict[str, Experiment] = _load()


def get(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise UserError(f"unknown experiment '{name}' (choose one of: {', '.join(EXPERIMENTS)})")
    return EXPERIMENTS[name]
