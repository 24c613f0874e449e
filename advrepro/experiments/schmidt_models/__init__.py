"""Adversarially robust generalisation needs more data (Schmidt, Santurkar, Tsipras, Talwar, Madry, NeurIPS 2018).

docs/protocols.md §5. The Gaussian model x ~ N(y·θ*, σ²I), θ* = 1 (‖θ*‖₂ = √d, ‖θ*‖∞ = 1), σ = sigma_scale·d^{1/4},
and the Bernoulli model (y·x_j = +1 with probability ½ + τ, τ = tau_scale·d^{−1/4}); the paper's learner
ŵ = Σ_i y_i x_i; standard and ℓ∞-ε robust test errors of sign⟨ŵ, x⟩ in closed form, no test set:

- Gaussian, exactly: standard Φ(−⟨w,θ*⟩/(σ‖w‖₂)), robust Φ((ε‖w‖₁ − ⟨w,θ*⟩)/(σ‖w‖₂)) (the adversary lowers the
  margin by exactly ε‖w‖₁). ŵ = nθ* + σ√n·g in distribution; one g ~ N(0, I_d) per draw serves every n of the
  grid through ⟨w,θ*⟩ = nd + σ√n Σg, ‖w‖₂² = n²d + 2nσ√n Σg + σ²n Σg², ‖w‖₁ = σ√n Σ_j |√n/σ + g_j|.
- Bernoulli: ŵ_j = 2·Binomial(n, ½ + τ) − n independently, so the histogram of ŵ's coordinates is one
  multinomial draw (O(n) per draw, any d); the test margin Σ_j w_j s_j (s_j = ±1 with P(+1) = ½ + τ) has mean
  2τΣw and variance (1 − 4τ²)Σw², and the errors are its normal approximation over the d coordinates [derived].
  With threshold=true the classifier reads sign(x + Δ) = x (ε < 1), so its robust error is its standard error
  (Theorem 10); for ε ≥ 1 the adversary can flip every coordinate and the robust error is 1.
"""

from advrepro.experiment import Experiment
from advrepro.experiments.schmidt_models.claims import claims
from advrepro.experiments.schmidt_models.runner import (
    COLUMNS,
    NAME,
    SchmidtConfig,
    cost_model,
    run,
    run_batch,
)

EXPERIMENT = Experiment(
    name=NAME,
    title="Robust learning needs more data: Gaussian and Bernoulli models",
    reproduces="Schmidt, Santurkar, Tsipras, Talwar, Madry, 'Adversarially robust generalization requires more "
    "data' (NeurIPS 2018), Gaussian model (Thms 4–6, Cor. 22–23 of v2) and Bernoulli model (Thms 10, 31)",
    figures=(f"{NAME}_errors", f"{NAME}_complexity", f"{NAME}_bernoulli"),
    config_class=SchmidtConfig,
    run=run,
    claims=claims,
    figure_module=f"{__name__}.figure",
    cost_model=cost_model,
    columns=COLUMNS,
    batch_keys=("eps", "n", "n_max"),
    run_batch=run_batch,
)
