"""Lazy training leaves networks open to a single gradient step (Wang, Ullah, Mianjy, Arora, NeurIPS 2022, §5.1).

docs/protocols.md §2. Train the lazy two-layer net with plain SGD on the logistic loss until it leaves the ball of
radius C0/√m around its initialisation; then, per test image, the smallest single gradient step that flips it.
"""

from advrepro.experiment import Experiment
from advrepro.experiments.lazy_sgd.claims import claims
from advrepro.experiments.lazy_sgd.runner import COLUMNS, NAME, LazySGDConfig, cost_model, run

EXPERIMENT = Experiment(
    name=NAME,
    title="Lazy-trained networks on binary MNIST: one gradient step flips them",
    reproduces="Wang, Ullah, Mianjy, Arora, 'Adversarial robustness is at odds with lazy training' (NeurIPS 2022), "
    "Figures 2, 3, 5, 6, 7",
    figures=(f"{NAME}_fig2", f"{NAME}_fig3", f"{NAME}_fig5", f"{NAME}_fig6", f"{NAME}_fig7"),
    config_class=LazySGDConfig,
    run=run,
    claims=claims,
    figure_module=f"{__name__}.figure",
    cost_model=cost_model,
    columns=COLUMNS,
    rows_version=3,  # 2: batch-invariant readout; 3: grad_along_x
)
