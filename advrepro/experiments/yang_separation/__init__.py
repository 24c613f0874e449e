"""Real data are separated (Yang, Rashtchian, Zhang, Salakhutdinov, Chaudhuri, NeurIPS 2020, "A closer look at
accuracy vs. robustness").

docs/protocols.md §6. For every training point, the exact distance to the nearest training point of another class
(train–train), and for every test point to the nearest training point of another class (test–train). Their
minimum is the separation: an accurate and robust classifier exists whenever ε < separation/2. ℓ∞ on pixels in
[0, 1] (bytes/255; `advrepro.separation` finds it exactly with bit-level pruning), or ℓ2, optionally on
unit-normalised inputs (the lazy-training paper's Fig. 4 setting).
"""

from advrepro.experiment import Experiment
from advrepro.experiments.yang_separation.claims import claims
from advrepro.experiments.yang_separation.runner import COLUMNS, NAME, YangConfig, cost_model, run

EXPERIMENT = Experiment(
    name=NAME,
    title="Real data are separated: nearest differently-labelled neighbours",
    reproduces="Yang, Rashtchian, Zhang, Salakhutdinov, Chaudhuri, 'A closer look at accuracy vs. robustness' "
    "(NeurIPS 2020), the separation table (MNIST; CIFAR-10 and SVHN with a network)",
    figures=(f"{NAME}_distances",),
    config_class=YangConfig,
    run=run,
    claims=claims,
    figure_module=f"{__name__}.figure",
    cost_model=cost_model,
    columns=COLUMNS,
    rows_version=2,  # 2: ties go to the smallest training index
)
