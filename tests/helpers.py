"""Test helpers, in one place (no test module imports another). Synthetic rows for the claim tests: each builder
writes an experiment's rows.csv columns from chosen exponents and rates, so a test can make a claim hold or fail on
purpose; and where a run's outputs are."""

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advrepro.theory import gaussian_expectations, relu_kink_curvature, relu_offset_share

ROOT = Path(__file__).resolve().parent.parent  # the repository's root


def _noise(rng, size, scale=0.02):
    return np.exp(rng.normal(0, scale, size))


def stratified_normal(rng, networks: int, inputs: int) -> np.ndarray:
    """N(0, 1) draws, `inputs` per network, one from each of `inputs` equal-probability strata in random order (Latin
    hypercube): a network's sample quantiles are its population's, so the rows' noise is the networks' own."""
    strata = rng.permuted(np.tile(np.arange(inputs), (networks, 1)), axis=1)
    uniform = (strata + rng.random((networks, inputs))) / inputs
    return torch.special.ndtri(torch.from_numpy(uniform)).numpy().ravel()


def random_net_rows(
    flip=1.0, step_factor=1.0, curvature_factor=1.0, limit_factor=1.0, networks=60, inputs=60, seed=0
):
    """Depth-1 relu/tanh cells at two d and widths, and depth-2 cells at both gains, drawn from the model the
    claims derive (docs §1). A network with offset s ~ N(0, 1) has f ~ N(√ν·s, Eψ² − ν) over its inputs
    (stratified_normal), ν = (Eψ)² for one layer and ρ_L·Eψ² deeper, and ‖∇f‖ ≈ √Eψ'², both times limit_factor.
    Its exact flip solves |f| − ‖∇f‖‖δ‖ + κ‖δ‖²/2 = 0 with κ the ReLU kinks' curvature (times curvature_factor, ±30%
    per input; 0 for tanh); the step is then scaled by step_factor, and a share 1 − flip of the inputs does not
    flip."""
    rng = np.random.default_rng(seed)
    settings = [
        (a, d, k, 1, 1.0) for a, d, k in itertools.product(["relu", "tanh"], [100, 1000], [100, 10000])
    ]
    settings += [("relu", 100, 1000, 2, gain) for gain in (1.0, 2.0)]
    frames, cells = [], []
    for i, (activation, d, width, depth, gain) in enumerate(settings):
        size = networks * inputs
        mean, second, slope = gaussian_expectations(activation)
        offset_s, linear_v = rng.normal(0, 1, networks), 1 + 0.05 * rng.normal(0, 1, networks)
        offset = mean**2 if depth == 1 else relu_offset_share(depth) * second
        spread = math.sqrt(second - offset) * stratified_normal(rng, networks, inputs)
        f = limit_factor * (math.sqrt(offset) * np.repeat(offset_s, inputs) + spread)
        grad_norm = limit_factor * math.sqrt(slope) * _noise(rng, size)
        kappa = relu_kink_curvature(d, width, depth) if activation == "relu" else 0.0
        kappa = curvature_factor * kappa * (1 + 0.3 * rng.normal(0, 1, size))
        stretch = 1 - 2 * kappa * np.abs(f) / grad_norm**2  # δ solves |f| − Gδ + κδ²/2 = 0 (its smaller root)
        delta = 2 * np.abs(f) / grad_norm / (1 + np.sqrt(np.clip(stretch, 0, None)))
        flipped = rng.random(size) < flip
        if depth > 1:
            linear_v = np.full(networks, np.nan)
        frame = pd.DataFrame(
            {
                "cell": f"c{i}",
                "d": d,
                "width": width,
                "depth": depth,
                "activation": activation,
                "network": np.repeat(np.arange(networks), inputs),
                "input": np.tile(np.arange(inputs), networks),
                "f_abs": np.abs(f),
                "grad_norm": grad_norm,
                "eta_lin": np.abs(f) / grad_norm**2,
                "eta": np.where(flipped, step_factor * delta / grad_norm, np.nan),
                "delta_norm": np.where(flipped, step_factor * delta, np.nan),
                "flipped": flipped,
                "offset_s": np.repeat(offset_s, inputs),
                "linear_v": np.repeat(linear_v, inputs),
            }
        )
        frames.append(frame)
        cells.append({"cell": f"c{i}", "hidden_gain": gain, "eta_max": 20.0})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(cells)


def lazy_sgd_rows(
    grad_ratio=0.0,
    eta=-1.0,
    delta_ratio=0.0,
    c0=0.3,
    accuracy=0.99,
    overshoot=0.001,
    flip=1.0,
    never_left=(50.0,),
    same_steps=False,
    grad_offset=15.0,
    init_scale=1.0,
):
    """Both variants: a d sweep at C0 = 10 (per_step) and a C0 sweep at d = 100 (per_epoch), 3 runs, 40 test points.

    ‖∇f‖ = √(‖∇⊥f₀‖² + (x̂·∇f)² + c)·d^grad_ratio·(C0/10)^c0 with c = grad_offset and ‖∇⊥f₀‖² ≈ init_scale·(d−1)/2 (the
    finite-d law of docs §2; x̂·∇f = f with ‖x‖ = 1 and no bias, half of |f| for raw pixels), η ∝ d^eta·(C0/10)^c0,
    ‖δ‖ ∝ |f|/√(‖∇⊥f₀‖² + (x̂·∇f)² + c)·d^delta_ratio·(C0/10)^c0 (one linear step, by the law) with ‖x‖ = 1, or
    0.3·√d for raw pixels; C0 values in `never_left` never leave the ball; `flip` is the share of correctly classified points one step flips; same_steps gives every
    model the same step count (as the code's per-epoch check does to small balls)."""
    rng = np.random.default_rng(1)
    settings = []
    for normalized in (False, True):
        settings += [(normalized, d, w, 10.0, "per_step") for d in (25, 100, 400) for w in (500, 1000)]
        settings += [(normalized, 100, 1000, c, "per_epoch") for c in (2.0, 5.0, 10.0, *never_left)]
    frames, cells, points = [], [], 40
    for i, (normalized, d, width, C0, stop) in enumerate(settings):
        size = 3 * points
        f_abs = 2 * _noise(rng, size, 0.2)
        scale = (C0 / 10) ** c0 * _noise(rng, size)
        along_x = f_abs if normalized else f_abs / 2
        init_perp = np.sqrt((d - 1) / 2 * init_scale * _noise(rng, size))
        law = np.sqrt(init_perp**2 + along_x**2 + grad_offset)
        grad = law * d**grad_ratio * scale
        delta = f_abs / (2 * law) * d**delta_ratio * scale  # a constant factor leaves every slope as it is
        x_norm = 1.0 if normalized else 0.3 * np.sqrt(d)
        correct = rng.random(size) < 0.98
        flipped = correct & (rng.random(size) < flip)
        left = C0 not in never_left
        radius = C0 / np.sqrt(width)
        frames.append(
            pd.DataFrame(
                {
                    "cell": f"c{i}",
                    "d": d,
                    "width": width,
                    "C0": C0,
                    "normalize": normalized,
                    "bias": not normalized,
                    "run": np.repeat(np.arange(3), points),
                    "correct": correct,
                    "flipped": flipped,
                    "in_means": correct,
                    "f_abs": f_abs,
                    "grad_norm": grad,
                    "grad_along_x": along_x,
                    "init_grad_perp": init_perp,
                    "eta": np.where(flipped, d**eta * scale, np.nan),
                    "delta_over_x": np.where(flipped, delta / x_norm, np.nan),
                    "delta_norm": np.where(flipped, delta, np.nan),
                    "test_acc": accuracy,
                    "train_acc": accuracy,
                    "left_ball": left,
                    "radius": radius,
                    "final_distance": radius * (1 + overshoot) if left else radius / 2,
                    "steps": 100 if same_steps else int(100 * C0),
                }
            )
        )
        cells.append(
            {"cell": f"c{i}", "stop": stop, "keep": "first_outside", "max_epochs": 100, "delta_max": 5.0}
        )
    return pd.concat(frames, ignore_index=True), pd.DataFrame(cells)


def vardi_rows(n_exp=-0.5, d_exp=0.0, width_exp=0.0, converged=1.0, universal=1.0, runs=5):
    """The three panels outside the separation condition and one n panel inside it, ‖δ‖/√d = n^n_exp·d^d_exp·…"""
    rng = np.random.default_rng(2)
    settings = [(500, n, 100, False) for n in (10, 50, 200)]
    settings += [(d, 50, 100, False) for d in (100, 2000)]
    settings += [(500, 50, w, False) for w in (20, 500)]
    settings += [(10000, n, 100, True) for n in (2, 4, 8)]
    frames, cells = [], []
    for i, (d, n, width, ok) in enumerate(settings):
        found = rng.random(runs) < universal
        frames.append(
            pd.DataFrame(
                {
                    "cell": f"c{i}",
                    "d": d,
                    "n": n,
                    "width": width,
                    "run": np.arange(runs),
                    "converged": rng.random(runs) < converged,
                    "separation_ok": ok,
                    "eta_all": np.where(found, 0.1, np.nan),
                    "class_share": 0.5,
                    "delta_all_over_sqrt_d": np.where(found, 1.5 / np.sqrt(n), np.nan),
                    "delta_over_sqrt_d": float(n) ** n_exp
                    * float(d) ** d_exp
                    * float(width) ** width_exp
                    * _noise(rng, runs),
                }
            )
        )
        cells.append({"cell": f"c{i}", "loss_target": 1e-30, "universal_cap": 2.0})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(cells)


def lazy_pgd_rows(
    exponent=-0.5, level=2.0, clean=0.99, trained_from=0.0, recipe_step=0.5, c0_exponent=0.5, runs=3
):
    """Fig. 4 on one boundary: robust accuracy 1/(1 + (ε/ε*)^8), ε* = level·d^exponent·(C0/10)^c0_exponent with
    C0 = 10·R/R₁₀(m), R₁₀(m) = (10/√1000)·(m/1000)^exponent (= R·√m at exponent −1/2), so that ε* ∝ d^exponent along
    the left panel (d = 100, 400, 1600 at m = 1000, C0 = 10), R* ∝ m^exponent along the right (d = 400, ε = 0.2), the
    C0 axis (d = 196) crosses like R^c0_exponent, and between the panels' crossings at (d, m) = (400, 1000) the
    boundary's log–log slope is c0_exponent. Right-panel cells with R < trained_from/√m are untrained (clean 0.6,
    the constant level). Each cell has `runs` training runs, whose accuracies scatter by 0.01. A recipe check at
    d = 196 whose default budget crosses 1/2 mid-step between ε = 0.3 and 0.4, the published recipe `recipe_step`
    grid steps above ε = 0.3."""
    rng = np.random.default_rng(3)

    def robust(d, width, radius, eps):
        c0 = 10 * radius / ((10 / np.sqrt(1000)) * (width / 1000) ** exponent)
        star = level * d**exponent * (c0 / 10) ** c0_exponent
        return 1 / (1 + (eps / star) ** 8)

    frames = []
    grid = np.geomspace(0.005, 2.0, 13)
    ten = 10 / np.sqrt(1000)
    for d in (100, 400, 1600):  # two of them above 2·C0² = 200
        frames.append(_pgd_panel(d, 1000, ten, grid, robust(d, 1000, ten, grid), runs, rng))
    for radius in (0.2, 0.4, 0.8):
        frames.append(_pgd_panel(196, 1000, radius, grid, robust(196, 1000, radius, grid), runs, rng))
    radii = np.geomspace(0.005, 20.0, 13)
    for width in (100, 400, 1000):
        untrained = radii < trained_from / np.sqrt(width)
        accuracy = np.where(untrained, 0.46, robust(400, width, radii, 0.2))
        panel = _pgd_panel(400, width, radii, 0.2, accuracy, runs, rng)
        frames.append(panel.assign(clean_test_acc=np.where(np.repeat(untrained, runs), 0.6, clean)))
    budget = {"lr": 1.0, "batch_size": 128, "train_subset": 4000}
    recipe = {"lr": 0.01, "batch_size": 32, "train_subset": 0}
    for crossing_at, keys in ((0.5, budget), (recipe_step, recipe)):
        step = np.array([0.0, 1.0])
        panel = _pgd_panel(196, 1000, ten, [0.3, 0.4], 0.5 - 0.2 * (step - crossing_at), 1, None)
        if keys is recipe:
            panel = panel.assign(train_size=12_665, pgd_steps=100, max_epochs=1000)
        frames.append(panel.assign(**keys))
    rows = pd.concat(frames, ignore_index=True)
    rows["clean_test_acc"] = rows["clean_test_acc"].fillna(clean)
    rows["cell"] = [f"c{i}" for i in range(len(rows))]
    summary = rows[["cell", *budget]].fillna(budget)
    return rows.drop(columns=list(budget)), summary


def _pgd_panel(d, width, radius, eps, robust, runs, rng):
    """One row per (cell, run); runs after the first scatter by 0.01 around the cell's accuracy."""
    cells = pd.DataFrame({"radius": radius, "eps": eps, "robust_test_acc": robust})
    frame = cells.loc[cells.index.repeat(runs)].reset_index(drop=True)
    run = np.tile(np.arange(runs), len(cells))
    scatter = np.where(run > 0, rng.normal(0, 0.01, len(frame)), 0.0) if rng is not None else 0.0
    return frame.assign(
        robust_test_acc=np.clip(frame["robust_test_acc"] + scatter, 0, 1),
        d=d,
        width=width,
        run=run,
        train_size=1000,
        pgd_steps=10,
        max_epochs=30,
        test_size=2115,
        constant_acc=0.537,
    )


def schmidt_rows(
    eps_exp=2.0,
    d_exp=0.5,
    one_sample=0.005,
    threshold_error=0.005,
    linear_error=0.2,
    draws=20,
    follow_model=True,
):
    """Robust error curves crossing 1% at the model's n* (`expected_needed`, σ = 0.6·d^¼) when follow_model, else
    at n* = 2000·ε^eps_exp·(d/1e6)^d_exp; standard error `one_sample` at n = 1; a Bernoulli block whose thresholded
    and linear robust errors at n = 1 are as given."""
    from advrepro.experiments.schmidt_models.claims import expected_needed

    rng = np.random.default_rng(3)
    ns = np.unique(np.round(np.geomspace(1, 5000, 40)).astype(int))
    frames = []
    for d, eps in itertools.product([1e5, 1e6, 1e7], [0.1, 0.2, 0.4]):
        star = (
            expected_needed(d, eps, 0.6 * d**0.25)
            if follow_model
            else 2000 * eps**eps_exp * (d / 1e6) ** d_exp
        )
        for draw in range(draws):
            jitter = _noise(rng, 1, 0.05)[0]
            robust = np.minimum(1.0, 0.01 * (ns / (star * jitter)) ** -2.0)
            standard = one_sample * jitter * ns**-3.0
            frames.append(_schmidt_frame("gaussian", d, eps, False, ns, draw, standard, robust))
    for threshold, eps in itertools.product([False, True], [0.1, 0.3]):
        at_one = threshold_error if threshold else linear_error
        for draw in range(draws):
            errors = at_one * _noise(rng, 1, 0.05)[0] * ns**-1.0
            frames.append(_schmidt_frame("bernoulli", 1000, eps, threshold, ns, draw, errors, errors))
    rows = pd.concat(frames, ignore_index=True)
    rows["cell"] = rows.groupby(["model", "d", "eps", "threshold"]).ngroup().astype(str)
    return rows, pd.DataFrame({"cell": rows["cell"].unique()})


def _schmidt_frame(model, d, eps, threshold, ns, draw, standard, robust):
    return pd.DataFrame(
        {
            "model": model,
            "d": d,
            "eps": eps,
            "threshold": threshold,
            "sigma": 0.6 * d**0.25 if model == "gaussian" else np.nan,
            "tau": 0.8 * d**-0.25 if model == "bernoulli" else np.nan,
            "n": ns,
            "draw": draw,
            "standard_error": standard,
            "robust_error": robust,
        }
    )


def yang_rows(train_min=0.737, test_min=0.812, points=50):
    """MNIST ℓ∞ rows whose smallest train–train and test–train distances are as given."""
    rng = np.random.default_rng(4)
    frames = []
    for split, low in (("train", train_min), ("test", test_min)):
        distance = np.r_[low, low + rng.random(points - 1) * (1 - low)]
        frames.append(
            pd.DataFrame(
                {
                    "cell": "c0",
                    "dataset": "mnist",
                    "classes": "all",
                    "norm": "linf",
                    "normalize": False,
                    "split": split,
                    "index": np.arange(points),
                    "label": 0,
                    "distance": distance,
                    "neighbour": 0,
                    "neighbour_label": 1,
                    "exact_evaluations": 1,
                }
            )
        )
    return pd.concat(frames, ignore_index=True), pd.DataFrame({"cell": ["c0"], "drop_smallest": [0]})


def assert_columns_documented(results, experiment: str) -> None:
    """Every column of the experiment's aggregate CSV is documented in its `columns` (and every documented one
    is written)."""
    from advrepro.experiments import get

    written = set(pd.read_csv(results / f"{experiment}.csv", nrows=1).columns) - {"cell"}
    assert written == set(get(experiment).columns), written ^ set(get(experiment).columns)


def outputs_of(result, experiment: str) -> Path:
    """Where a run put its aggregates, claims and figures: the directory its `-> DIR/EXPERIMENT.csv` line names."""
    match = re.search(rf"-> (\S+)/{re.escape(experiment)}\.csv", result.stdout)
    assert match, result.stdout
    return Path(match[1])


def zhu_rows(
    width_slope=-0.3,
    lecun_depth=-0.3,
    he_depth=0.3,
    ntk_depth=0.3,
    networks=6,
    init_factor=1.0,
    init_width_slope=0.0,
    init_depth=0.0,
    rescaling_error=0.0,
):
    """After training: P/ε ∝ width^width_slope · e^(depth_slope·L) per init (all trained). At initialisation: He's
    derived value times init_factor·width^init_width_slope·e^(init_depth·L), LeCun and NTK its exact rescalings
    (times 1 + rescaling_error), one shared noise draw per network as with the same random draws."""
    from advrepro.experiments.zhu_stability.claims import init_value

    rng = np.random.default_rng(5)
    frames = []
    for depth, width in itertools.product((2, 4, 6), (64, 256, 1024)):
        noise = _noise(rng, networks)
        he = init_value("he", 784, depth) * init_factor * width**init_width_slope * np.exp(init_depth * depth)
        for init in ("lecun", "he", "ntk"):
            error = 1 + rescaling_error if init != "he" else 1.0
            value = he * init_value(init, 784, depth) / init_value("he", 784, depth) * error * noise
            frames.append(_zhu_frame(init, depth, width, "init", value, rng))
        for init in ("lecun", "he", "ntk"):
            slope = {"lecun": lecun_depth, "he": he_depth, "ntk": ntk_depth}[init]
            value = 0.1 * width**width_slope * np.exp(slope * depth) * _noise(rng, networks)
            frames.append(_zhu_frame(init, depth, width, "trained", value, rng))
    rows = pd.concat(frames, ignore_index=True)
    return rows, pd.DataFrame({"cell": ["c0"]})


def _zhu_frame(init, depth, width, regime, p_over_eps, rng):
    return pd.DataFrame(
        {
            "init": init,
            "depth": depth,
            "width": width,
            "p": 784,
            "loss_target": 0.03,
            "max_epochs": 30,
            "train_subset": 2000,
            "regime": regime,
            "network": np.arange(len(p_over_eps)),
            "p_over_eps": p_over_eps,
            "f_abs": 2.0,
            "kappa": 0.01 * _noise(rng, len(p_over_eps)),
            "test_acc": 0.99,
            "trained": regime == "trained",
        }
    )


def smoke_overrides(
    experiment: str, results: Path, data_dir: Path, device: str = "cpu", **settings
) -> list[str]:
    """The overrides of an experiment's smoke grid into `results`, with `settings` (e.g. chunk_mb=1), only the keys
    the experiment has (data_dir and download are the MNIST experiments' own, cuda_graphs lazy-pgd's)."""
    from advrepro.config import compose, to_plain

    keys = set(to_plain(compose(experiment)))
    settings = {"device": device, "data_dir": data_dir, "download": False, **settings}
    return ["scale=smoke", "progress=false", f"results_dir={results}"] + [
        f"{key}={value}" for key, value in settings.items() if key in keys and value is not None
    ]


def smoke_plan(experiment: str, results: Path, data_dir: Path, device: str = "cpu", **settings):
    """The plan of an experiment's smoke grid into `results` (smoke_overrides)."""
    from advrepro import planning
    from advrepro.experiments import get

    overrides = smoke_overrides(experiment, results, data_dir, device, **settings)
    return planning.plan(get(experiment), overrides, multirun=True)


def smoke_cells(
    experiment: str,
    results: Path,
    data_dir: Path,
    *,
    device: str = "cpu",
    threads: int | None = None,
    one_cell_at_a_time: bool = False,
    **settings,
) -> dict[str, bytes]:
    """Every smoke cell of `experiment`, computed in this process under the given settings (keys such as chunk_mb):
    cell digest -> the bytes of its rows.csv. Batch groups train as one model unless `one_cell_at_a_time` (what a
    resumed or hand-picked subset does)."""
    import torch

    from advrepro import execution, planning, store

    planned = smoke_plan(experiment, results, data_dir, device, **settings)
    groups = (
        [[cell] for cell in planned.cells]
        if one_cell_at_a_time
        else planning.batches(planned.experiment, planned.cells)
    )
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        for group in groups:
            execution.execute_cells([cell.plain for cell in group])
    finally:
        torch.set_num_threads(previous)
    return {
        cell.digest: (store.cell_dir(results, experiment, cell.digest) / "rows.csv").read_bytes()
        for cell in planned.cells
    }


def cluster_rows(relu=1.0, prelu=1.0, separation=0.707, distance=0.05, trained=1.0, code_shift=0.0, runs=5):
    """Robustness cells at (k, k_pos) = (10, 6) and (4, 2) for p = 1 and 3 whose accuracy under every attack ramps
    down through 1/2 at relu·1/√k and prelu·√2/2 (PGD from δ = 0 alone: 1.4 times later); noise-panel cells; and
    cells at the published code's setting whose PGD crossing is the published runs' mean + code_shift. `trained` of
    the runs reach clean accuracy, the others hold a constant predictor's 0.6."""
    from advrepro.experiments.cluster_robustness.claims import (
        PUBLISHED_CODE_CURVE,
        PUBLISHED_CODE_SETTING,
        crossings,
    )

    published = pd.read_csv(PUBLISHED_CODE_CURVE).assign(cell="published", measure="accuracy", attack="pgd")
    code_crossing = {p: crossings(curve, "pgd")["crossing"].mean() for p, curve in published.groupby("p")}
    rng = np.random.default_rng(5)
    frames, cells = [], []
    settings = [(k, k_pos, p, 0.01, 29, None) for k, k_pos in ((10, 6), (4, 2)) for p in (1, 3)]
    settings += [(10, 6, p, noise, 1, None) for p in (1, 3) for noise in (0.1, 0.3)]
    settings += [(10, 6, p, 0.01, 15, code_crossing[p] + code_shift) for p in (1, 3)]
    for i, (k, k_pos, p, noise, steps, pgd_at) in enumerate(settings):
        radius = (relu / math.sqrt(k)) if p == 1 else prelu * math.sqrt(0.5)
        eps = np.linspace(0, 1.5, steps)
        for run in range(runs):
            ok = run < round(trained * runs)
            r = radius * (1 + 0.01 * rng.normal())
            at_pgd = 1.4 * r if pgd_at is None else pgd_at * (1 + 0.01 * rng.normal())
            for attack, at in (("all", r), ("pgd", at_pgd)):
                acc = np.clip(0.5 - (eps - at) / 0.1, 0, 1) if ok else np.full(steps, 0.6)
                frames.append(
                    pd.DataFrame(
                        {
                            "cell": f"c{i}",
                            "run": run,
                            "measure": "accuracy",
                            "attack": attack,
                            "eps": eps,
                            "robust_acc": acc,
                        }
                    )
                )
            frames.append(pd.DataFrame({"cell": [f"c{i}"], "run": [run], "measure": ["neuron"], "rank": [1]}))
            for frame in frames[-3:]:
                frame["trained"] = ok
                frame["half_separation"] = separation * (1 + 0.001 * rng.normal())
                frame["relative_distance"] = distance * (1 + 0.05 * rng.normal()) * (1 + noise)
                frame[["k", "k_pos", "p", "noise"]] = k, k_pos, p, noise
        keys = {**PUBLISHED_CODE_SETTING, "k": k, "k_pos": k_pos, "noise": noise, "eps_steps": steps}
        cells.append({"cell": f"c{i}", "p": p, **keys, "d": 100 if pgd_at is not None else 50})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(cells)


# advrepro new: builders above
# For each experiment: its synthetic-rows builder, and claim id (prefix) -> (keyword arguments where it holds, where
# it fails). tests/test_claims.py runs every claim both ways; tests/test_every_experiment.py fails for an experiment
# without an entry.
CASES = {
    "random-net": (
        random_net_rows,
        {
            "flip-rate": ({"flip": 1.0}, {"flip": 0.5}),
            "eta-": ({"step_factor": 1.0}, {"step_factor": 4.0}),
            "delta-": ({"step_factor": 1.0}, {"step_factor": 4.0}),
            "curvature-": ({"curvature_factor": 1.0}, {"curvature_factor": 1.5}),
            "limit-": ({"limit_factor": 1.0}, {"limit_factor": 1.2}),
        },
    ),
    "lazy-sgd": (
        lazy_sgd_rows,
        {
            "5-slope-delta_over_x": ({"delta_ratio": 0.0}, {"delta_ratio": -0.5}),
            "2-slope-delta_over_x": ({"delta_ratio": 0.0}, {"delta_ratio": -0.5}),
            "5-grad-offset-low": ({"grad_offset": 15.0}, {"grad_offset": -10.0}),
            "5-grad-offset-high": ({"grad_offset": 15.0}, {"grad_offset": 150.0}),
            "2-slope-grad_norm": ({"grad_ratio": 0.0}, {"grad_ratio": 0.3}),
            "5-slope-grad_norm": ({"grad_ratio": 0.0}, {"grad_ratio": 0.3}),
            "2-initial-orthogonal": ({"init_scale": 1.0}, {"init_scale": 1.2}),
            "5-initial-orthogonal": ({"init_scale": 1.0}, {"init_scale": 1.2}),
            "2-grad-offset-low": ({"grad_offset": 15.0}, {"grad_offset": -10.0}),
            "2-grad-offset-high": ({"grad_offset": 15.0}, {"grad_offset": 150.0}),
            "3-C0-": ({"c0": 0.3}, {"c0": -0.3}),
            "6-C0-": ({"c0": 0.3}, {"c0": -0.3}),
            "2-accuracy": ({"accuracy": 0.99}, {"accuracy": 0.9}),
            "5-accuracy": ({"accuracy": 0.99}, {"accuracy": 0.9}),
            "2-overshoot": ({"overshoot": 0.001}, {"overshoot": 0.05}),
            "5-overshoot": ({"overshoot": 0.001}, {"overshoot": 0.05}),
            "2-flip-rate": ({"flip": 1.0}, {"flip": 0.5}),
            "5-flip-rate": ({"flip": 1.0}, {"flip": 0.5}),
        },
    ),
    "vardi-universal": (
        vardi_rows,
        {
            "converged": ({"converged": 1.0}, {"converged": 0.5}),
            "universal-": ({"universal": 1.0}, {"universal": 0.3}),
            "slope-n": ({"n_exp": -0.5}, {"n_exp": 0.0}),
            "slope-d": ({"d_exp": 0.0}, {"d_exp": 0.5}),
            "slope-width": ({"width_exp": 0.0}, {"width_exp": 0.5}),
        },
    ),
    "lazy-pgd": (
        lazy_pgd_rows,
        {
            "crossing-slope": ({"exponent": -0.5}, {"exponent": -0.25}),
            "crossing-C0": ({"c0_exponent": 0.5}, {"c0_exponent": 0.0}),
            "small-ball-not-robust": ({"level": 2.0}, {"level": 200.0}),
            "large-ball-robust": ({"level": 2.0}, {"level": 0.01}),
            "panels-one-boundary": ({"c0_exponent": 0.5}, {"c0_exponent": 2.0}),
            "recipe-crossing": ({"recipe_step": 0.5}, {"recipe_step": 2.5}),
        },
    ),
    "schmidt-models": (
        schmidt_rows,
        {
            "gaussian-standard-one-sample": ({"one_sample": 0.005}, {"one_sample": 0.05}),
            "gaussian-d-exponent": ({"follow_model": True}, {"follow_model": False, "d_exp": 0.0}),
            "gaussian-eps-exponent": ({"follow_model": True}, {"follow_model": False, "eps_exp": 1.0}),
            "bernoulli-threshold": ({"threshold_error": 0.005}, {"threshold_error": 0.05}),
            "bernoulli-linear": ({"linear_error": 0.2}, {"linear_error": 0.001}),
        },
    ),
    "zhu-stability": (
        zhu_rows,
        {
            "width-": ({"width_slope": -0.3}, {"width_slope": 0.0}),
            "width-init": ({"init_width_slope": 0.0}, {"init_width_slope": 0.3}),
            "value-he-init": ({"init_factor": 1.0}, {"init_factor": 1.3}),
            "rescaling-init": ({"rescaling_error": 0.0}, {"rescaling_error": 0.1}),
            "depth-lecun-init": ({"init_depth": 0.0}, {"init_depth": 0.2}),
            "depth-he-init": ({"init_depth": 0.0}, {"init_depth": 0.2}),
            "depth-lecun": ({"lecun_depth": -0.3}, {"lecun_depth": 0.3}),
            "depth-he": ({"he_depth": 0.3}, {"he_depth": 0.0}),
            "depth-ntk": ({"ntk_depth": 0.3}, {"ntk_depth": -0.3}),
        },
    ),
    "yang-separation": (
        yang_rows,
        {
            "mnist-train-train": ({"train_min": 0.737}, {"train_min": 0.8}),
            "mnist-test-train": ({"test_min": 0.812}, {"test_min": 0.7}),
            "mnist-radius": ({"train_min": 0.737}, {"train_min": 0.15}),
        },
    ),
    "cluster-robustness": (
        cluster_rows,
        {
            "trained": ({"trained": 1.0}, {"trained": 0.6}),
            "crossing-p1-": ({"relu": 1.0}, {"relu": 2.2}),
            "crossing-p3-": ({"prelu": 1.0}, {"prelu": 0.45}),
            "separation-": ({"separation": 0.707}, {"separation": 0.5}),
            "distance-p": ({"distance": 0.05}, {"distance": 0.5}),
            "published-code-": ({"code_shift": 0.0}, {"code_shift": 0.2}),
        },
    ),
    # advrepro new: cases above
}
