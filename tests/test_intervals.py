"""Prediction quantiles and intervals of MetaLSTMForecaster."""

import numpy as np
import pytest
from sktime.datasets import load_airline
from sktime.forecasting.model_evaluation import evaluate
from sktime.performance_metrics.forecasting.probabilistic import (
    CRPS,
    EmpiricalCoverage,
    LogLoss,
    PinballLoss,
)
from sktime.split import ExpandingWindowSplitter

from sk_metalstm import MetaLSTMForecaster
from sk_metalstm.datasets import make_ar_returns_panel

TINY = dict(
    window_length=6,
    hidden_size=4,
    support_size=8,
    query_size=2,
    max_epochs=1,
    base_max_epochs=1,
    random_state=0,
)


@pytest.fixture(scope="module")
def airline_forecaster():
    return MetaLSTMForecaster(horizon=4, **TINY).fit(load_airline())


def test_quantiles_never_cross_and_bracket_the_median(airline_forecaster):
    alphas = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
    q = airline_forecaster.predict_quantiles(fh=[1, 2, 3, 4], alpha=alphas).to_numpy()
    assert np.all(np.diff(q, axis=1) >= 0)
    assert np.all(np.isfinite(q))


def test_the_distribution_shows_its_levels_as_plain_numbers(airline_forecaster):
    # 199 np.float64(...) entries made its get_params 10,000 characters long.
    pytest.importorskip("skpro")
    dist = airline_forecaster.predict_proba(fh=[1, 2])
    assert all(type(level) is float for level in dist.levels)
    assert len(repr(dist.get_params()["levels"])) < 1500


def test_no_levels_asked_gives_an_empty_frame_as_sktime_does(airline_forecaster):
    # np.apply_along_axis raised "Cannot apply_along_axis when any iteration
    # dimensions are 0"; sktime's own forecasters return (steps, 0) frames.
    quantiles = airline_forecaster.predict_quantiles(fh=[1, 2, 3], alpha=[])
    intervals = airline_forecaster.predict_interval(fh=[1, 2, 3], coverage=[])
    assert quantiles.shape == intervals.shape == (3, 0)
    assert quantiles.index.equals(airline_forecaster.predict(fh=[1, 2, 3]).index)


def test_intervals_nest_and_widen_with_horizon(airline_forecaster):
    iv = airline_forecaster.predict_interval(fh=[1, 4], coverage=[0.8, 0.95])
    name = iv.columns.get_level_values(0)[0]
    inner = iv[(name, 0.8, "upper")] - iv[(name, 0.8, "lower")]
    outer = iv[(name, 0.95, "upper")] - iv[(name, 0.95, "lower")]
    assert np.all(iv[(name, 0.95, "lower")] <= iv[(name, 0.8, "lower")])
    assert np.all(outer >= inner)
    # Uncertainty of a level forecast accumulates over steps.
    assert inner.iloc[1] > inner.iloc[0]


@pytest.mark.parametrize("query_size", [1, 2])
def test_intervals_widen_with_coverage_from_one_or_two_calibration_residuals(query_size):
    # A short series with a tiny query_size leaves one or two calibration
    # residuals; the 50 % and 99 % intervals were the same (of zero width from one).
    y = load_airline().iloc[:40]
    f = MetaLSTMForecaster(horizon=2, **{**TINY, "window_length": 5, "query_size": query_size})
    f.fit(y, fh=[1, 2])
    assert len(f.pretrained_state_.residuals["step"]) <= 2
    iv = f.predict_interval(coverage=[0.5, 0.99]).to_numpy()
    inner, outer = iv[:, 1] - iv[:, 0], iv[:, 3] - iv[:, 2]
    assert np.all(inner > 0) and np.all(outer > 1.5 * inner)
    assert np.all(f.predict_var().to_numpy() > 0)


def test_panel_intervals_have_panel_index():
    panel = make_ar_returns_panel(n_series=3, n_timepoints=80, random_state=0)
    f = MetaLSTMForecaster(horizon=2, **TINY).fit(panel)
    iv = f.predict_interval(fh=[1, 2], coverage=0.9)
    assert iv.index.nlevels == 2
    assert len(iv) == 6
    assert np.all(iv.iloc[:, 0] < iv.iloc[:, 1])


def test_variance_agrees_with_the_quantiles_and_grows_with_the_step(airline_forecaster):
    fh = [1, 2, 3, 4]
    var = airline_forecaster.predict_var(fh=fh)
    assert var.shape == (4, 1) and np.all(var.to_numpy() > 0)
    assert np.all(np.diff(var.to_numpy()[:, 0]) > 0)
    # The central 68 % interval of a near-Gaussian forecast is about +-1 s.d.
    q = airline_forecaster.predict_quantiles(fh=fh, alpha=[0.1587, 0.8413]).to_numpy()
    half_width = (q[:, 1] - q[:, 0]) / 2
    ratio = half_width / np.sqrt(var.to_numpy()[:, 0])
    assert np.all((ratio > 0.6) & (ratio < 1.4))


def test_predict_proba_is_the_calibrated_distribution_for_series_and_panels():
    pytest.importorskip("skpro")
    panel = make_ar_returns_panel(n_series=3, n_timepoints=80, random_state=0)
    single = MetaLSTMForecaster(horizon=2, **TINY).fit(load_airline())
    for forecaster in (forecaster_of(panel), single):
        dist = forecaster.predict_proba(fh=[1, 2])
        point = forecaster.predict(fh=[1, 2])
        assert type(dist).__name__ == "QuantileGrid" and dist.index.equals(point.index)
        # The VaR a risk user reads is the same from either method at every
        # multiple of 1/200, and linear in between (0.123 lies 3/5 of the way
        # from 0.12 to 0.125).
        levels = [0.005, 0.01, 0.025, 0.05, 0.5, 0.95, 0.975, 0.99, 0.995]
        q = forecaster.predict_quantiles(fh=[1, 2], alpha=levels).to_numpy()
        for j, a in enumerate(levels):
            np.testing.assert_allclose(dist.ppf(a).to_numpy()[:, 0], q[:, j], rtol=1e-12)
        ends = forecaster.predict_quantiles(fh=[1, 2], alpha=[0.12, 0.125]).to_numpy()
        between = 0.4 * ends[:, 0] + 0.6 * ends[:, 1]
        np.testing.assert_allclose(dist.ppf(0.123).to_numpy()[:, 0], between, rtol=1e-12)
        # Beyond the grid, tails that go on: the 0.1 % quantile lies below the 0.5 %.
        assert np.all(dist.ppf(0.001).to_numpy() < dist.ppf(0.005).to_numpy())
        assert np.all(dist.ppf(0.999).to_numpy() > dist.ppf(0.995).to_numpy())
        var = forecaster.predict_var(fh=[1, 2]).to_numpy()[:, 0]
        ratio = dist.var().to_numpy()[:, 0] / var
        # predict_var is the variance of the same distribution (with these
        # few residuals, tails beyond them included).
        assert np.all((ratio > 0.97) & (ratio < 1.03))


def test_predict_proba_has_a_density_and_exact_crps(airline_forecaster):
    # A log score needs a density (a set of point masses has none), and
    # sktime's CRPS reads skpro's energy: both must be those of the
    # distribution whose quantiles predict_quantiles gives.
    pytest.importorskip("skpro")
    dist = airline_forecaster.predict_proba(fh=[1, 2])
    observed = airline_forecaster.predict(fh=[1, 2]).to_frame() * 1.05
    y_true = observed.iloc[:, 0]
    # CRPS is twice the pinball loss averaged over all levels: over the 199
    # levels of the grid, from predict_quantiles, it is within a few percent.
    levels = np.arange(1, 200) / 200
    q = airline_forecaster.predict_quantiles(fh=[1, 2], alpha=list(levels)).to_numpy()
    below = (y_true.to_numpy()[:, None] < q).astype(float)
    pinball = (below - levels) * (q - y_true.to_numpy()[:, None])
    crps = dist.energy(observed).iloc[:, 0] - dist.energy().iloc[:, 0] / 2
    np.testing.assert_allclose(crps.to_numpy(), 2 * pinball.mean(axis=1), rtol=0.03)
    assert CRPS()(y_true, dist) == pytest.approx(crps.mean())
    # The density is the derivative of the cdf, in the tails and inside a grid
    # segment (0.3025 lies between the levels 0.300 and 0.305).
    for row in range(2):
        one = dist.iloc[[row]]
        for x in (y_true.iloc[row], dist.ppf(0.002).iloc[row, 0], dist.ppf(0.3025).iloc[row, 0]):
            h = 1e-6 * abs(x)
            slope = (one.cdf(x + h).iloc[0, 0] - one.cdf(x - h).iloc[0, 0]) / (2 * h)
            np.testing.assert_allclose(one.pdf(x).iloc[0, 0], slope, rtol=1e-4)
    assert np.isfinite(LogLoss()(y_true, dist))


def forecaster_of(panel):
    return MetaLSTMForecaster(horizon=2, **TINY).fit(panel)


def test_joint_variance_and_distribution_are_refused(airline_forecaster):
    with pytest.raises(NotImplementedError, match="marginal variances"):
        airline_forecaster.predict_var(fh=[1, 2], cov=True)
    pytest.importorskip("skpro")
    with pytest.raises(NotImplementedError, match="marginal distributions"):
        airline_forecaster.predict_proba(fh=[1, 2], marginal=False)


def test_distribution_metrics_in_evaluate_on_a_panel():
    # sktime scores a panel's distribution through y_pred.loc[:, [name]].
    pytest.importorskip("skpro")
    panel = make_ar_returns_panel(n_series=3, n_timepoints=80, random_state=0)
    cv = ExpandingWindowSplitter(initial_window=60, step_length=8, fh=[1, 2])
    f = MetaLSTMForecaster(horizon=2, **TINY)
    result = evaluate(f, cv, panel, strategy="update", scoring=[CRPS(), LogLoss()])
    assert len(result) == 3
    assert np.all(np.isfinite(result.filter(like="test_").to_numpy(dtype=float)))


def test_probabilistic_metrics_in_evaluate():
    y = load_airline()
    f = MetaLSTMForecaster(horizon=2, **TINY)
    cv = ExpandingWindowSplitter(initial_window=120, step_length=6, fh=[1, 2])
    result = evaluate(f, cv, y, strategy="update", scoring=[PinballLoss(), EmpiricalCoverage()])
    assert len(result) == 4
    coverage = result.filter(like="EmpiricalCoverage").to_numpy()
    assert np.all((coverage >= 0) & (coverage <= 1))
    assert np.all(result.filter(like="PinballLoss").to_numpy() > 0)


def test_coverage_is_close_to_nominal_on_unseen_series():
    """Fixed seed: intervals calibrated on query windows cover unseen series."""
    panel = make_ar_returns_panel(n_series=40, n_timepoints=260, random_state=1)
    names = panel.index.get_level_values(0).unique()
    pretrained = MetaLSTMForecaster(
        window_length=5,
        hidden_size=8,
        support_size=60,
        query_size=10,
        horizon=1,
        max_epochs=2,
        base_max_epochs=2,
        lr=5e-3,
        validation_fraction=0.2,
        random_state=0,
    )
    pretrained.pretrain(panel.loc[names[:25]])
    wide = panel.iloc[:, 0].unstack(0)[names[25:]]
    to_panel = lambda w: w.stack().swaplevel().sort_index().to_frame("price")  # noqa: E731
    f = MetaLSTMForecaster.from_pretrained(pretrained.pretrained_state_).fit(
        to_panel(wide.iloc[:120])
    )
    hits = {0.8: [], 0.95: []}
    for t in range(120, 200):
        iv = f.predict_interval(fh=[1], coverage=[0.8, 0.95]).droplevel(1)
        actual = wide.iloc[t]
        for c in hits:
            lower = iv[("price", c, "lower")].reindex(actual.index)
            upper = iv[("price", c, "upper")].reindex(actual.index)
            hits[c].extend(((actual >= lower) & (actual <= upper)).tolist())
        f.update(to_panel(wide.iloc[[t]]))
    assert abs(np.mean(hits[0.8]) - 0.80) < 0.06, np.mean(hits[0.8])
    assert abs(np.mean(hits[0.95]) - 0.95) < 0.04, np.mean(hits[0.95])


def test_quantiles_need_calibration_residuals(airline_forecaster):
    import copy

    f = copy.deepcopy(airline_forecaster)
    f.pretrained_state_.residuals = None
    with pytest.raises(ValueError, match="calibration residuals"):
        f.predict_quantiles(fh=[1], alpha=[0.5])
