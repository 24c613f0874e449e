"""Interrupts at safe points: Hydra and OmegaConf turn a KeyboardInterrupt raised inside them into odd errors."""

import contextlib
import signal
import threading


@contextlib.contextmanager
def deferred_interrupts():
    """SIGINT and SIGTERM arriving inside the block are delivered when it ends (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
