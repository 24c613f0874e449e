"""Width helps, depth hurts, initialisation decides (Zhu, Liu, Chrysos, Cevher, NeurIPS 2022).

docs/protocols.md §7. Bias-free fully connected ReLU networks f(a) = X_L σ(X_{L−1} … σ(X_1 a)) / α of depth L (L
weight matrices) and width m, X_1 ~ N(0, β₁²), hidden X_l ~ N(0, β²), X_L ~ N(0, β_L²). Perturbation stability
P(f, ε) = E_{a, â}|∇f(a)ᵀ(a − â)| with â uniform in the ℓ2 ε-ball around a and ‖a‖ = 1. For a fixed gradient g,
E|gᵀu| over u uniform in the ε-ball is ε‖g‖·E|u₁|, so P/ε = E_a‖∇f(a)‖·E|u₁| in closed form (`ball_abs_moment`).
Measured at initialisation (an expectation over networks) and after training on 0-vs-1 MNIST with ‖a‖ = 1.
"""

from advrepro.experiment import Experiment
from advrepro.experiments.zhu_stability.claims import claims
from advrepro.experiments.zhu_stability.runner import COLUMNS, NAME, ZhuConfig, cost_model, run

EXPERIMENT = Experiment(
    name=NAME,
    title="Perturbation stability against width, depth and initialisation: width helps, depth hurts, init decides",
    reproduces="Zhu, Liu, Chrysos, Cevher, 'Robustness in deep learning: the good (width), the bad (depth), and the "
    "ugly (initialization)' (NeurIPS 2022), the trend table and the FCNN figures",
    figures=(f"{NAME}_width", f"{NAME}_kappa"),
    config_class=ZhuConfig,
    run=run,
    claims=claims,
    figure_module=f"{__name__}.figure",
    cost_model=cost_model,
    columns=COLUMNS,
)
