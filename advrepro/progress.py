"""tqdm bars that follow the config's `progress` switch (and hide themselves off a terminal)."""

from collections.abc import Iterable

from tqdm.auto import tqdm


def bar(iterable: Iterable, cfg, desc: str, **kwargs) -> tqdm:
    return tqdm(iterable, desc=desc, leave=False, disable=None if cfg.progress else True, **kwargs)


def silence(keep: tqdm | None = None) -> None:
    """Erase every bar but `keep` from the terminal and stop it drawing again. After an interrupt, the bars of batch
    groups still computing in abandoned threads (groups_at_once > 1) would otherwise stay on screen, or be redrawn,
    under the interrupt's message."""
    with tqdm.get_lock():
        for other in [b for b in tqdm._instances if b is not keep and not b.disable]:
            other.clear()
            other.disable = True
