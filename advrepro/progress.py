"""tqdm bars that follow the config's `progress` switch (and hide themselves off a terminal)."""

from collections.abc import Iterable

from tqdm.auto import tqdm


def bar(iterable: Iterable, cfg, desc: str, **kwargs) -> tqdm:
    return tqdm(iterable, desc=desc, leave=False, disable=None if cfg.progress else True, **kwargs)
