"""Hydra configs: composing one experiment, parsing overrides, and reading each value's provenance tag.

Typer owns argv and hands the override strings to Hydra's compose API (hydra #409, #1964: Hydra does not
nest inside Click). Sweeps are expanded here (hydra #2673), or handed to a Hydra launcher (`advrepro.planning`, `advrepro.execution`, `advrepro.launching`).
"""

import copy
import dataclasses
import functools
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from advrepro.errors import UserError

VERSION_BASE = "1.3"
TAG = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w-]*):.*#\s*\[(?P<tag>[a-z]+)\]\s*(?P<note>.*)$")

# Keys that say where or how a cell runs, not what it computes: left out of the cell's identity (hash).
NON_IDENTITY_KEYS = (
    "results_dir",
    "device",
    "scale",
    "grids",
    "progress",
    "chunk_mb",
    "groups_at_once",
    "cuda_graphs",
    "data_dir",
    "download",
)


@dataclasses.dataclass
class CommonConfig:
    """Keys every experiment has (configs/common.yaml gives their defaults and tags)."""

    experiment: str = ""
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    results_dir: str = "results"
    scale: str = "default"
    progress: bool = True
    chunk_mb: int = 1024
    groups_at_once: int = 1
    grids: Any = dataclasses.field(default_factory=dict)


def config_dir() -> Path:
    """`configs/` of the checkout (ADVREPRO_CONFIG_DIR overrides it)."""
    path = Path(os.environ.get("ADVREPRO_CONFIG_DIR", Path(__file__).resolve().parent.parent / "configs"))
    if not (path / "common.yaml").is_file():
        raise UserError(
            f"config directory {path} not found: install advrepro from its checkout (pip install -e .)"
        )
    return path


def _first_line(err: Exception) -> str:
    cause = err.__cause__ or err.__context__
    text = str(err).strip() or type(err).__name__
    line = text.splitlines()[0]
    if cause is not None and ("could not override" in line.lower() or "error merging" in line.lower()):
        line = f"{line} {str(cause).splitlines()[0]}"
    return line


def hydra_configs(job_name: str):
    """Hydra initialised on `configs/` (a context manager), for composing and for launchers."""
    return initialize_config_dir(config_dir=str(config_dir()), version_base=VERSION_BASE, job_name=job_name)


def compose(experiment: str, overrides: Iterable[str] = (), with_hydra: bool = False) -> DictConfig:
    """The experiment's config with `overrides` applied; any composition error becomes a UserError.

    Hydra's compose takes about 0.1 s and a plan asks for the same compositions again and again (every figure's
    caption, every sweep combination, `run all`), so each (state of the config files, experiment, overrides) is
    composed once per process and every call gets its own copy."""
    if with_hydra:
        return _composed(experiment, tuple(overrides), True)
    return copy.deepcopy(_cached_composed(_config_files_state(), experiment, tuple(overrides)))


def _config_files_state() -> tuple:
    """The config directory and each YAML file's path, size and modification time: a change to any makes a new key."""
    directory = config_dir()
    return (
        str(directory),
        *((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.rglob("*.yaml"))),
    )


@functools.lru_cache(maxsize=1024)
def _cached_composed(state: tuple, experiment: str, overrides: tuple[str, ...]) -> DictConfig:
    return _composed(experiment, overrides, False)


def _composed(experiment: str, overrides: tuple[str, ...], with_hydra: bool) -> DictConfig:
    import advrepro.experiments  # noqa: F401 (registers every experiment's config class, which the YAML names)

    try:
        with hydra_configs(experiment):
            return hydra_compose(
                config_name=experiment, overrides=list(overrides), return_hydra_config=with_hydra
            )
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise UserError(_first_line(err)) from err


@dataclasses.dataclass
class ParsedOverrides:
    """User overrides split into Hydra's own, single values (pinned) and sweep axes (each a list of k=v)."""

    hydra: list[str]
    pinned: list[str]
    sweeps: list[list[str]]
    keys: set[str]


def parse_overrides(overrides: Iterable[str], multirun: bool) -> ParsedOverrides:
    overrides = list(overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides=overrides)
    except HydraException as err:
        raise UserError(_first_line(err)) from err
    out = ParsedOverrides(hydra=[], pinned=[], sweeps=[], keys=set())
    for override, text in zip(parsed, overrides, strict=True):
        if override.is_hydra_override():
            out.hydra.append(text)
            continue
        out.keys.add(override.key_or_group)
        if override.is_sweep_override():
            if not multirun:
                raise UserError(f"'{text}' is a sweep: add -m/--multirun to run every value")
            key = override.get_key_element()
            out.sweeps.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            out.pinned.append(text)
    return out


def override_value(value: Any) -> str:
    """A scalar in Hydra's override grammar: `key=` values and the members of `+batch=[{…}]` alike."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str) and any(c in value for c in ",[]{}()=': "):
        return f"'{value}'"  # quoted: a comma would otherwise make it a sweep, a colon a dict entry
    return str(value)


def override_string(key: str, value: Any) -> str:
    """`key=value` in Hydra's override grammar for the scalar values grids hold."""
    return f"{key}={override_value(value)}"


def provenance_tags(experiment: str) -> dict[str, tuple[str, str]]:
    """Each top-level key's tag ([paper], [code], [inferred], [unknown], [ours]) and note, from the YAML comments of
    the experiment's file and of the files in its defaults list (common.yaml, lazy.yaml)."""
    tags: dict[str, tuple[str, str]] = {}
    defaults = OmegaConf.load(config_dir() / f"{experiment}.yaml").get("defaults", [])
    files = [name for name in defaults if isinstance(name, str) and (config_dir() / f"{name}.yaml").is_file()]
    for name in [*files, experiment]:
        for line in (config_dir() / f"{name}.yaml").read_text().splitlines():
            match = TAG.match(line)
            if match and not match["indent"]:
                tags[match["key"]] = (match["tag"], match["note"].strip())
    return tags


def without_grids(cfg: DictConfig) -> DictConfig:
    """A cell's config: the preset grids are not part of it (nor of its identity), and copying them is slow."""
    OmegaConf.set_struct(cfg, False)
    cfg.pop("grids", None)
    OmegaConf.set_struct(cfg, True)
    return cfg


def merge_values(cfg: DictConfig, values: dict[str, Any]) -> DictConfig:
    """cfg with `values` (a grid cell's keys) merged in, converted by the schema's types as an override would be."""
    try:
        return OmegaConf.merge(cfg, values)
    except OmegaConfBaseException as err:
        raise UserError(_first_line(err)) from err


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain Python, without Hydra's own node."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("hydra", None)
    return plain


def identity(plain: dict[str, Any]) -> dict[str, Any]:
    """The keys that define what a cell computes."""
    return {k: v for k, v in plain.items() if k not in NON_IDENTITY_KEYS}


def require_positive(cfg: Any, *names: str) -> None:
    """Sizes, counts and step lengths must be > 0."""
    for name in names:
        if not getattr(cfg, name) > 0:
            raise UserError(f"{name} must be positive, got {getattr(cfg, name)}")


def require_choice(cfg: Any, name: str, choices: Iterable[str]) -> None:
    choices = list(choices)
    if getattr(cfg, name) not in choices:
        raise UserError(f"unknown {name} '{getattr(cfg, name)}' (choose one of: {', '.join(choices)})")
