"""advrepro.stats on hand-built frames with exact answers (as DomainBed tests its model selection)."""

import math

import numpy as np
import pandas as pd
import pytest

from advrepro.stats import (
    Estimate,
    across_estimate,
    at_mode,
    binomial_draws,
    control_variate_estimate,
    crossing,
    loglog_slope,
    percentile_interval,
    resampled_means,
    run_binomial_draws,
    slope_estimate,
    statistic_estimate,
    unit_means,
    widest_axis,
    with_cell_keys,
)


def test_loglog_slope_of_a_power_law_is_its_exponent():
    x = np.array([1.0, 4.0, 9.0, 100.0])
    assert loglog_slope(x, 3 * x**-0.5) == pytest.approx(-0.5)
    batch = np.stack([2 * x**0.25, x**-1.0])  # leading axis: one slope per row
    np.testing.assert_allclose(loglog_slope(x, batch), [0.25, -1.0])


def test_crossing_interpolates_in_log_x():
    assert crossing([0.1, 1.0], np.array([0.8, 0.2])) == pytest.approx(math.sqrt(0.1))
    assert crossing([1.0, 10.0, 100.0], np.array([0.9, 0.7, 0.3])) == pytest.approx(10**1.5)
    assert math.isnan(crossing([1.0, 2.0], np.array([0.9, 0.8])))  # never reaches 1/2
    assert math.isnan(crossing([1.0], np.array([0.3])))  # one point: nothing to cross
    rising = crossing([1.0, 2.0, 4.0], np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]))
    np.testing.assert_allclose(rising, [math.sqrt(2), math.sqrt(8)])


def test_the_logit_link_interpolates_the_log_odds():
    assert crossing([0.1, 1.0], np.array([0.8, 0.2]), link="logit") == pytest.approx(
        math.sqrt(0.1)
    )  # symmetric
    t = math.log(9) / (math.log(9) + math.log(1.5))  # logit 0.9 = log 9, logit 0.4 = −log 1.5
    assert crossing([0.1, 1.0], np.array([0.9, 0.4]), link="logit") == pytest.approx(10 ** (t - 1))
    assert crossing([0.1, 1.0], np.array([0.9, 0.4])) == pytest.approx(10 ** (0.4 / 0.5 - 1))
    ends = crossing([1.0, 2.0], np.array([1.0, 0.0]), link="logit")  # 0 and 1 clipped symmetrically
    assert ends == pytest.approx(math.sqrt(2))


def test_spanning_covers_each_rule_and_keeps_the_point():
    narrow, shifted = np.linspace(0.0, 1.0, 1001), np.linspace(0.5, 2.0, 1001)
    span = Estimate.spanning(0.4, [narrow, shifted], "runs", 3)
    assert span.value == 0.4 and span.low == pytest.approx(0.025) and span.high == pytest.approx(1.9625)


def test_run_binomial_draws_resample_runs_then_test_points():
    # one run: the binomial spread alone; three runs at 0.2, 0.5, 0.8 on many test points: the runs' spread
    single = run_binomial_draws([np.array([0.5])], [np.array([100])], draws=20_000)[:, 0]
    assert single.mean() == pytest.approx(0.5, abs=0.005) and single.std() == pytest.approx(0.05, rel=0.05)
    runs = run_binomial_draws([np.array([0.2, 0.5, 0.8])], [np.array([10**6] * 3)], draws=20_000)[:, 0]
    assert runs.std() == pytest.approx(
        math.sqrt(0.06 / 3), rel=0.05
    )  # var of one run's pick: 0.06, mean of 3


def test_at_mode_holds_the_keys_at_their_most_common_combination():
    frame = pd.DataFrame(
        {"width": [1, 1, 1, 2, 2], "radius": [0.1, 0.1, 0.1, 0.1, 0.3], "d": [4, 9, 16, 4, 4]}
    )
    assert at_mode(frame, ["width", "radius"])["d"].tolist() == [4, 9, 16]


def test_widest_axis_picks_the_setting_with_the_most_values():
    frame = pd.DataFrame({"C0": [10, 10, 10, 1, 1], "d": [25, 49, 100, 25, 25], "run": [0, 0, 0, 0, 1]})
    assert widest_axis(frame, "d", ["C0"])["C0"].unique().tolist() == [10]


def test_unit_means_and_cell_keys():
    rows = pd.DataFrame({"cell": ["a", "a", "a", "b"], "run": [0, 0, 1, 0], "v": [1.0, 3.0, 5.0, 7.0]})
    means = unit_means(rows, ["cell"], "run", ["v"])
    assert means["v"].tolist() == [2.0, 5.0, 7.0]
    joined = with_cell_keys(rows, pd.DataFrame({"cell": ["a", "b"], "stop": ["x", "y"]}), ["stop"])
    assert joined["stop"].tolist() == ["x", "x", "x", "y"]


def test_bootstrap_resamples_units_within_each_group():
    groups = [np.array([1.0, 1.0]), np.array([2.0, 4.0])]
    draws = resampled_means(groups, draws=4000)
    assert (draws[:, 0] == 1.0).all()
    assert set(np.unique(draws[:, 1])) == {2.0, 3.0, 4.0}
    assert (draws[:, 1] == 3.0).mean() == pytest.approx(0.5, abs=0.03)  # two of the four resamples


def test_slope_estimate_interval_covers_and_shrinks_with_units():
    rng = np.random.default_rng(0)

    def frame(units):
        x = np.repeat([10.0, 100.0, 1000.0], units)
        return pd.DataFrame({"x": x, "y": x**0.5 * np.exp(rng.normal(0, 0.1, len(x)))})

    estimates = [slope_estimate(frame(20), "x", "y", "runs", seed=i) for i in range(100)]
    coverage = np.mean([e.low < 0.5 < e.high for e in estimates])
    assert 0.85 <= coverage <= 1.0  # a 95% interval, percentile bootstrap with 20 units per x
    few, many = estimates[0], slope_estimate(frame(500), "x", "y", "runs")
    assert many.high - many.low < (few.high - few.low) / 3
    assert few.units == "20 runs per x" and few.n == 60
    assert slope_estimate(frame(5)[lambda f: f["x"] == 10], "x", "y", "runs") is None


def test_statistic_estimate_of_a_constant_is_exact():
    est = statistic_estimate(np.ones(7), "models", np.min)
    assert (est.value, est.low, est.high, est.n) == (1.0, 1.0, 1.0, 7)
    assert statistic_estimate(np.array([np.nan]), "models") is None


def test_percentile_interval_is_undefined_when_too_many_draws_are():
    draws = np.r_[np.arange(95.0), np.full(5, np.nan)]
    assert all(math.isnan(v) for v in percentile_interval(draws))
    low, high = percentile_interval(np.arange(1001.0))
    assert (low, high) == pytest.approx((25.0, 975.0))


def test_binomial_draws_resample_the_test_points():
    draws = binomial_draws(np.array([0.5, 1.0]), np.array([2000, 2000]), draws=3000)
    assert draws.shape == (3000, 2) and (draws[:, 1] == 1.0).all()
    assert draws[:, 0].std() == pytest.approx(math.sqrt(0.25 / 2000), rel=0.1)


def test_intervals_do_not_depend_on_the_order_of_the_units():
    """UNIT_ORDER: the same units in another order (as when cells are renamed) give the same interval, bit for bit."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=12)
    shuffled = rng.permutation(values)
    assert statistic_estimate(values, "runs") == statistic_estimate(shuffled, "runs")
    frame = pd.DataFrame({"d": np.repeat([10, 100, 1000], 4), "m": np.exp(values)})
    reordered = frame.sample(frac=1.0, random_state=1)
    assert slope_estimate(frame, "d", "m", "runs") == slope_estimate(reordered, "d", "m", "runs")
    assert across_estimate(frame, "d", "m", "runs", np.min) == across_estimate(
        reordered, "d", "m", "runs", np.min
    )
    shares, trials = [np.array([0.5, 0.9, 0.7])], [np.array([100, 50, 80])]
    turned = [s[::-1] for s in shares], [t[::-1] for t in trials]
    np.testing.assert_array_equal(run_binomial_draws(shares, trials), run_binomial_draws(*turned))
    # the resamplers do draw differently for other values: the check above is not vacuous
    assert statistic_estimate(values + 1, "runs") != statistic_estimate(values, "runs")


def test_control_variates_remove_the_spread_they_explain_and_keep_the_mean():
    """y = 2 + 0.5·(c − 1) + small noise with E c = 1: the regression estimator is 2 up to the noise, its interval
    far narrower than the plain mean's; a wrong known mean shifts it by β·(its error)."""
    rng = np.random.default_rng(5)
    c = rng.normal(1.0, 1.0, 200)
    y = 2 + 0.5 * (c - 1) + rng.normal(0, 0.01, 200)
    plain, corrected = statistic_estimate(y, "networks"), control_variate_estimate(y, c, [1.0], "networks")
    assert abs(corrected.value - 2) < 0.005 < abs(plain.value - 2)
    assert corrected.low < 2 < corrected.high
    assert (corrected.high - corrected.low) < 0.05 * (plain.high - plain.low)
    shifted = control_variate_estimate(y, c, [1.2], "networks")
    assert shifted.value == pytest.approx(corrected.value + 0.5 * 0.2, abs=0.005)
    # covariates whose sample mean is the known mean change nothing; a constant one gets β = 0
    centred = np.column_stack([c - c.mean() + 1, np.ones_like(c)])
    assert control_variate_estimate(y, centred, [1.0, 1.0], "networks").value == pytest.approx(y.mean())
    # units in another order give the same interval, bit for bit (UNIT_ORDER)
    order = rng.permutation(len(y))
    assert control_variate_estimate(y[order], c[order], [1.0], "networks") == corrected
    # no units (every unit's value missing): no estimate, whatever the covariates' shape
    assert control_variate_estimate(np.array([]), np.empty((0, 2)), [1.0, 1.0], "networks") is None
    assert control_variate_estimate(np.array([np.nan]), np.ones((1, 2)), [1.0, 1.0], "networks") is None
