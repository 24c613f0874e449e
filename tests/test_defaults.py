"""One source of defaults: each experiment's YAML (what `advrepro run` composes) and its config dataclass (what a
test or a script builds directly) give every key the same default."""

import dataclasses

import pytest

from advrepro.config import compose, to_plain, without_grids
from advrepro.experiments import EXPERIMENTS, get


@pytest.mark.parametrize("experiment", list(EXPERIMENTS))
def test_the_dataclass_defaults_are_the_yaml_defaults(experiment):
    yaml = to_plain(without_grids(compose(experiment)))
    fields = {f.name: f for f in dataclasses.fields(get(experiment).config_class) if f.name != "grids"}
    assert set(yaml) - {"experiment"} <= set(fields), "a YAML key the dataclass lacks"
    drift = {
        name: (field.default, yaml[name])
        for name, field in fields.items()
        if name in yaml and name != "experiment" and field.default != yaml[name]
    }
    assert not drift, f"dataclass default vs YAML: {drift}"
