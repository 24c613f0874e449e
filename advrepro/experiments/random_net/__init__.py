"""Random networks are broken by a single gradient step (Bubeck et al. 2021; Bartlett et al. 2021).

docs/protocols.md §1. For each network f and input x on the √d-sphere: the smallest |η| ≤ eta_max such that
x + η∇f(x), with sign(η) = −sign f(x), has the opposite sign (Bubeck et al., Theorems 1 and 2).
"""

from advrepro.experiment import Experiment
from advrepro.experiments.random_net.claims import claims
from advrepro.experiments.random_net.runner import COLUMNS, NAME, RandomNetConfig, canonical, cost_model, run

EXPERIMENT = Experiment(
    name=NAME,
    title="Random networks: one gradient step flips the sign",
    reproduces="Bubeck, Cherapanamjeri, Gidel, Tachet des Combes (NeurIPS 2021) §experiments; "
    "Bartlett, Bubeck, Cherapanamjeri (NeurIPS 2021) deep ReLU nets",
    figures=("random-net_eta_vs_width", "random-net_delta_vs_d", "random-net_depth"),
    config_class=RandomNetConfig,
    run=run,
    claims=claims,
    figure_module=f"{__name__}.figure",
    cost_model=cost_model,
    columns=COLUMNS,
    rows_version=4,  # 2: batch-invariant readout along rays; 3: control variates; 4: offset_s at depth > 1
    canonical=canonical,
)
