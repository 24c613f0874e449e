"""A fixed-shape step replayed as a CUDA graph (torch.cuda.graphs): captured once per input shape, then relaunched
with one call, so that a step made of many small kernels (lazy-pgd's PGD on the code's minibatch of 32) stops
waiting on kernel launches and the host. The same kernels run in the same order, so the rows do not change.

A step takes tensors and returns nothing: it writes only, in place, into tensors it holds (weights, counters). The
first call of each input shape runs the step itself (as the warm-up torch requires before a capture, on a side
stream); the capture records the step without running it; later calls copy their inputs into the captured ones and
replay. Without CUDA, or with the backend off, the step runs as it is."""

import dataclasses
import threading
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor


class GraphBackend(Protocol):
    def warm_up(self, run: Callable[[], None]) -> None: ...

    def capture(self, run: Callable[[], None]) -> Any:
        """An object whose replay() runs what `run` launched, without running it now."""


class CudaGraphs:
    """torch's capture recipe: warm up on a side stream, capture into a torch.cuda.CUDAGraph. Batch groups may train
    in threads at once (advrepro.concurrency): one capture at a time in the process (torch's rule), on a stream of
    its own, in thread_local mode, so that other threads' work goes on during a capture without breaking it."""

    capturing = threading.Lock()

    def warm_up(self, run: Callable[[], None]) -> None:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            run()
        torch.cuda.current_stream().wait_stream(stream)

    def capture(self, run: Callable[[], None]) -> torch.cuda.CUDAGraph:
        graph = torch.cuda.CUDAGraph()
        with (
            self.capturing,
            torch.cuda.graph(graph, stream=torch.cuda.Stream(), capture_error_mode="thread_local"),
        ):
            run()
        return graph


@dataclasses.dataclass
class Replayed:
    """step(*inputs) through `backend` (None: run eagerly), one captured graph per input shape and dtype."""

    step: Callable[..., None]
    backend: GraphBackend | None = None
    graphs: dict = dataclasses.field(default_factory=dict)

    def __call__(self, *inputs: Tensor) -> None:
        if self.backend is None:
            self.step(*inputs)
            return
        key = tuple((tuple(t.shape), t.dtype) for t in inputs)
        if key not in self.graphs:
            static = [t.clone() for t in inputs]
            self.backend.warm_up(lambda: self.step(*static))  # this call's step, run once
            try:
                self.graphs[key] = (static, self.backend.capture(lambda: self.step(*static)))
            except RuntimeError as err:  # an op that cannot be captured: this shape runs eagerly from now on
                warnings.warn(f"CUDA graph capture failed, running eagerly: {err}", stacklevel=2)
                self.graphs[key] = None
            return
        if self.graphs[key] is None:
            self.step(*inputs)
            return
        static, graph = self.graphs[key]
        for buffer, value in zip(static, inputs, strict=True):
            buffer.copy_(value)
        graph.replay()


def replayed(step: Callable[..., None], device: torch.device, enabled: bool) -> Replayed:
    """`step` as a CUDA graph on a CUDA device when enabled (the cuda_graphs key), else as it is."""
    return Replayed(step, CudaGraphs() if enabled and torch.device(device).type == "cuda" else None)
