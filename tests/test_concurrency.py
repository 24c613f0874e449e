"""advrepro.concurrency.at_once: batch groups at once in threads (their rows: tests/test_determinism.py)."""

import threading
import time

import pytest
import torch

from advrepro.concurrency import WORKER, abandoned_workers, at_once

CPU = torch.device("cpu")


def test_every_task_runs_once_and_at_most_workers_at_a_time():
    lock, running, most, seen = threading.Lock(), [0], [0], []
    first_three = threading.Barrier(3, timeout=30)  # passed only if three tasks run at once

    def task(k):
        def run():
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            if k < 3:
                first_three.wait()
            time.sleep(0.01)
            with lock:
                running[0] -= 1
                seen.append(threading.current_thread())
            return k

        return run

    results = list(at_once([task(k) for k in range(7)], 3, CPU))
    assert sorted(results) == list(range(7))
    assert most[0] == 3
    assert threading.main_thread() not in seen
    assert not abandoned_workers()  # a finished at_once leaves no worker behind


def test_one_worker_runs_the_tasks_in_order_in_the_calling_thread():
    threads = []
    tasks = [lambda k=k: threads.append(threading.current_thread()) or k for k in range(4)]
    assert list(at_once(tasks, 1, CPU)) == [0, 1, 2, 3]
    assert set(threads) == {threading.current_thread()}


def test_the_first_error_is_raised_in_the_caller_and_the_running_task_is_abandoned():
    """Task 0 fails while task 1 runs: the caller gets the error at once, task 1 goes on as an abandoned worker (the
    CLI then ends the process by os._exit), and the tasks after it never start."""
    started, running, release = [], threading.Event(), threading.Event()

    def task(k):
        def run():
            started.append(k)
            if k == 0:
                running.wait(10)
                raise ValueError("bad cell")
            running.set()
            release.wait(10)

        return run

    with pytest.raises(ValueError, match="bad cell"):
        list(at_once([task(k) for k in range(6)], 2, CPU))
    assert abandoned_workers()
    release.set()
    for thread in threading.enumerate():
        if thread.name == WORKER:
            thread.join(10)
    assert not abandoned_workers()
    assert sorted(started) == [0, 1]
