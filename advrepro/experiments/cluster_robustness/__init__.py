"""Robust networks exist, gradient descent does not find them, pReLU does (Frei, Vardi, Bartlett, Srebro, NeurIPS
2023; Min & Vidal, ICML 2024).

docs/protocols.md §8. k orthogonal clusters x = e_c + N(0, (α/√d)²I), the first k_pos labelled +1. Two-layer
networks f(x) = Σ_j v_j relu(w_j·x)^p/‖w_j‖^(p−1) trained by SGD on the exponential loss from a tiny
initialisation. p = 1 (ReLU) converges towards F = √k₊relu(μ₊·x) − √k₋relu(μ₋·x), broken at radius 1/√k; p = 3 towards
F^(3) = Σ_c s_c relu(x_c)³, robust to √2/2, the radius the data's separation allows. Measured per network: robust
accuracy under several ℓ2 attacks (which one broke each point), the ℓ∞ distance on the unit sphere to the ideal
classifier, and the dominant neurons' contributions and alignments.
"""

from advrepro.experiment import Experiment
from advrepro.experiments.cluster_robustness.claims import claims
from advrepro.experiments.cluster_robustness.runner import (
    COLUMNS,
    NAME,
    ClusterConfig,
    cost_model,
    run,
    run_batch,
)

EXPERIMENT = Experiment(
    name=NAME,
    title="Implicit bias on clustered data: ReLU networks broken at 1/√k, pReLU robust to √2/2",
    reproduces="Frei, Vardi, Bartlett, Srebro, 'The double-edged sword of implicit bias' (NeurIPS 2023) and Min & "
    "Vidal, 'Can implicit bias imply adversarial robustness?' (ICML 2024), the orthogonal-cluster figure (a)–(e)",
    figures=(f"{NAME}_panels", f"{NAME}_attacks"),
    config_class=ClusterConfig,
    run=run,
    claims=claims,
    figure_module=f"{__name__}.figure",
    cost_model=cost_model,
    columns=COLUMNS,
    rows_version=2,  # 2: the restarts count a point broken if any iterate broke it (was: the last iterate)
    batch_keys=("noise", "p"),
    run_batch=run_batch,
)
