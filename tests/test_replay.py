"""advrepro.replay on the CPU, with a stand-in for CUDA graphs that keeps their semantics: the warm-up runs the
step, the capture records it without running it, and a replay reruns the record on the captured input buffers."""

import pytest
import torch

from advrepro.experiments.lazy_pgd.runner import TRAINERS, LazyPGDConfig, PerModel
from advrepro.lazy import init_lazy_nets
from advrepro.nets import sphere
from advrepro.replay import Replayed, replayed
from advrepro.seeding import generator


class RecordedGraphs:
    """CUDA-graph semantics without a GPU; `fail` makes every capture raise, as an uncapturable op would."""

    def __init__(self, fail: bool = False):
        self.fail, self.captures, self.replays = fail, 0, 0

    def warm_up(self, run):
        run()

    def capture(self, run):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        self.captures += 1
        backend = self

        class Graph:
            def replay(self):
                backend.replays += 1
                run()

        return Graph()


def test_each_shape_is_captured_once_and_replayed_on_fresh_inputs():
    total, graphs = torch.zeros(()), RecordedGraphs()
    step = Replayed(lambda v: total.add_(v.square().sum()), graphs)
    for values in ([1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0]):
        step(torch.tensor(values))
    assert total.item() == sum(v * v for v in range(1, 8))  # the first call of each shape counted once
    assert (graphs.captures, graphs.replays) == (2, 2)


def test_an_uncapturable_step_runs_eagerly_with_a_warning():
    total = torch.zeros(())
    step = Replayed(lambda v: total.add_(v.sum()), RecordedGraphs(fail=True))
    with pytest.warns(UserWarning, match="capture failed"):
        step(torch.tensor([1.0]))
    step(torch.tensor([2.0]))
    assert total.item() == 3.0


def test_without_cuda_the_step_is_not_replayed():
    assert replayed(lambda: None, torch.device("cpu"), enabled=True).backend is None


@pytest.mark.parametrize("project", ["per_step", "per_epoch"])
def test_replayed_adversarial_training_equals_the_eager_trainer(project):
    """Two epochs of 3 models on 23 examples in minibatches of 5 (a ragged last one): the weights, biases and robust
    hits of the replayed trainer are the eager trainer's, bit for bit."""
    cfgs = [
        LazyPGDConfig(d=16, width=12, eps=eps, radius=0.2, pgd_steps=3, lr=2.0, batch_size=5, project=project)
        for eps in (0.1, 0.3, 0.5)
    ]
    g = generator(0, "test")
    x = sphere(23, 16, 1.0, g, torch.float64).abs()
    y = torch.sign(torch.randn(23, generator=g, dtype=torch.float64))
    order = torch.stack([torch.randperm(23, generator=g) for _ in cfgs])
    models = PerModel.of(cfgs, torch.float64, "cpu")
    trainers = []
    for backend in (None, RecordedGraphs()):
        nets = init_lazy_nets(0, 3, 16, 12, True, torch.float64, "cpu", trainable=False)
        trainer = TRAINERS[project](nets, x, y, cfgs[0], models)
        trainer.step = Replayed(trainer.minibatch, backend)
        hits = [trainer.epoch(order) for _ in range(2)]
        trainers.append((trainer, hits))
    (eager, eager_hits), (graphed, graphed_hits) = trainers
    assert graphed.step.backend.replays > 0
    assert torch.equal(eager.nets.W, graphed.nets.W) and torch.equal(eager.nets.b, graphed.nets.b)
    assert all(torch.equal(a, b) for a, b in zip(eager_hits, graphed_hits, strict=True))
