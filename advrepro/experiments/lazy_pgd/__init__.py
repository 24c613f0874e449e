"""Adversarial training inside the lazy ball (Wang, Ullah, Mianjy, Arora, NeurIPS 2022, §5.2, Algorithm 1, Fig. 4).

docs/protocols.md §3. Train the lazy two-layer net on ℓ2-PGD adversarial examples, projecting every neuron back onto
the ball of radius R around its initialisation; report robust test accuracy against the same attack.
"""

from advrepro.experiment import Experiment
from advrepro.experiments.lazy_pgd.claims import claims
from advrepro.experiments.lazy_pgd.runner import COLUMNS, NAME, LazyPGDConfig, cost_model, run, run_batch

EXPERIMENT = Experiment(
    name=NAME,
    title="Adversarial training inside the lazy ball fails beyond ε ≈ 1/√d or below R ≈ 1/√m",
    reproduces="Wang, Ullah, Mianjy, Arora, 'Adversarial robustness is at odds with lazy training' (NeurIPS 2022), "
    "§5.2, Algorithm 1, Figure 4",
    figures=(f"{NAME}_fig4",),
    config_class=LazyPGDConfig,
    run=run,
    claims=claims,
    figure_module=f"{__name__}.figure",
    cost_model=cost_model,
    columns=COLUMNS,
    rows_version=2,  # 2: batch-invariant readout and projection
    batch_keys=("eps", "radius", "C0"),
    run_batch=run_batch,
)
