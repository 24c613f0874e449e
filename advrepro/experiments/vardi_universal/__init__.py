"""Gradient methods converge to networks with a universal perturbation (Vardi, Yehudai, Shamir, NeurIPS 2022).

docs/protocols.md §4. Train f(x) = Σ_l a_l relu(w_l·x + b_l) (W, b, a all trained) on n points of the √d-sphere with
random ±1 labels until the loss is ≤ 1e-30; then δ = η·Σ_i y_i x_i flips every sample: sign f(x_i − y_i δ) = −y_i.
"""

from advrepro.experiment import Experiment
from advrepro.experiments.vardi_universal.claims import claims
from advrepro.experiments.vardi_universal.runner import COLUMNS, NAME, VardiConfig, cost_model, run

EXPERIMENT = Experiment(
    name=NAME,
    title="Trained networks have a universal perturbation δ = η·Σ y_i x_i",
    reproduces="Vardi, Yehudai, Shamir, 'Gradient methods provably converge to non-robust networks' (NeurIPS 2022), "
    "experiment figure panels (a), (b) and a width panel",
    figures=(f"{NAME}_delta",),
    config_class=VardiConfig,
    run=run,
    claims=claims,
    figure_module=f"{__name__}.figure",
    cost_model=cost_model,
    columns=COLUMNS,
    rows_version=3,  # 2: the η* column is eta_star (was eta_max_min); 3: class_share
)
