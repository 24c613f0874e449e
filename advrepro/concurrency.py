"""Several batch groups at once on one device (the `groups_at_once` key): each group in a thread of its own and, on
CUDA, on a stream of its own, so that the small kernels of one group's step (lazy-pgd's PGD on a minibatch of 32, a
few per cent of an H200) run beside another group's instead of after them.

Groups share no state and every draw comes from the group's own seeded streams, so a group's rows do not depend on
how many run at once (tested on the CPU, where threads bring no speed: torch's own threads already use the cores)."""

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import torch

T = TypeVar("T")
WORKER = "advrepro-batch-group"  # the name of at_once's threads


def abandoned_workers() -> bool:
    """Whether at_once's threads are still computing after their caller stopped waiting for them (an interrupt, an
    error): the process must then end by os._exit, since torch's threads abort an interpreter shutting down under
    them ("terminate called without an active exception"). They write nothing, so nothing is lost."""
    return any(t.name == WORKER and t.is_alive() for t in threading.enumerate())


def on_own_stream(task: Callable[[], T], device: torch.device) -> T:
    """task() with a new CUDA stream as this thread's current stream (on CUDA), its work finished on return."""
    if device.type != "cuda":
        return task()
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        result = task()
    stream.synchronize()
    return result


def at_once(tasks: Sequence[Callable[[], T]], workers: int, device: torch.device) -> Iterator[T]:
    """Each task's result as it finishes, at most `workers` tasks running at once, each in a daemon thread on its own
    stream; workers ≤ 1 runs them one after another in this thread, in order. The first error is raised here and no
    further task starts; the tasks still running are abandoned (abandoned_workers), so an interrupt ends the process
    at once: tasks must not write (the caller writes each result as it comes)."""
    if workers <= 1 or len(tasks) <= 1:
        yield from (task() for task in tasks)
        return
    waiting: queue.SimpleQueue = queue.SimpleQueue()
    finished: queue.SimpleQueue = queue.SimpleQueue()
    failed = threading.Event()
    for task in tasks:
        waiting.put(task)

    def worker() -> None:
        while not failed.is_set():
            try:
                task = waiting.get_nowait()
            except queue.Empty:
                return
            try:
                finished.put((on_own_stream(task, device), None))
            except BaseException as err:  # handed to the caller's thread, which raises it
                failed.set()
                finished.put((None, err))

    threads = [
        threading.Thread(target=worker, name=WORKER, daemon=True) for _ in range(min(workers, len(tasks)))
    ]
    for thread in threads:
        thread.start()
    for _ in tasks:
        result, err = finished.get()
        if err is not None:
            raise err
        yield result
    for thread in threads:  # every task is done: each worker is returning
        thread.join()
