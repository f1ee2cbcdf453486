"""Prediction quantiles and intervals of MetaLSTMForecaster."""

import numpy as np
import pytest
from sktime.datasets import load_airline
from sktime.forecasting.model_evaluation import evaluate
from sktime.performance_metrics.forecasting.probabilistic import EmpiricalCoverage, PinballLoss
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


def test_intervals_nest_and_widen_with_horizon(airline_forecaster):
    iv = airline_forecaster.predict_interval(fh=[1, 4], coverage=[0.8, 0.95])
    name = iv.columns.get_level_values(0)[0]
    inner = iv[(name, 0.8, "upper")] - iv[(name, 0.8, "lower")]
    outer = iv[(name, 0.95, "upper")] - iv[(name, 0.95, "lower")]
    assert np.all(iv[(name, 0.95, "lower")] <= iv[(name, 0.8, "lower")])
    assert np.all(outer >= inner)
    # Uncertainty of a level forecast accumulates over steps.
    assert inner.iloc[1] > inner.iloc[0]


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
        assert type(dist).__name__ == "Empirical" and dist.index.equals(point.index)
        # The VaR a risk user reads is the same from either method (at every
        # multiple of 1/200; it was half a grid step off, 0.24 s.d. at 1 %).
        levels = [0.01, 0.025, 0.05, 0.5, 0.95, 0.975, 0.99]
        q = forecaster.predict_quantiles(fh=[1, 2], alpha=levels).to_numpy()
        for j, a in enumerate(levels):
            np.testing.assert_allclose(dist.ppf(a).to_numpy()[:, 0], q[:, j], rtol=1e-12)
        # Between grid levels, the nearest one's quantile (0.125 = 25/200).
        nearest = forecaster.predict_quantiles(fh=[1, 2], alpha=[0.125]).to_numpy()[:, 0]
        np.testing.assert_allclose(dist.ppf(0.123).to_numpy()[:, 0], nearest, rtol=1e-12)
        # Mean and variance of 201 quantiles approximate the distribution's.
        var = forecaster.predict_var(fh=[1, 2]).to_numpy()[:, 0]
        ratio = dist.var().to_numpy()[:, 0] / var
        assert np.all((ratio > 0.5) & (ratio <= 1.05))


def test_predict_proba_crps_is_that_of_the_weighted_quantiles(airline_forecaster):
    # sktime's CRPS reads skpro's energy; it must use the grid's trapezoid
    # weights (the two extreme quantiles count half), not equal ones.
    pytest.importorskip("skpro")
    dist = airline_forecaster.predict_proba(fh=[1, 2])
    observed = airline_forecaster.predict(fh=[1, 2]).to_frame() * 1.05
    levels = np.linspace(0.0, 1.0, 201)
    weights = np.full(201, 1 / 200)
    weights[[0, -1]] /= 2
    # sktime's predict_quantiles takes levels in (0, 1): the two ends from ppf.
    inner = airline_forecaster.predict_quantiles(fh=[1, 2], alpha=list(levels[1:-1]))
    ends = [dist.ppf(p).to_numpy() for p in (0.0, 1.0)]
    quantiles = np.column_stack([ends[0], inner.to_numpy(), ends[1]])
    for row, q in enumerate(quantiles):
        to_obs = np.sum(weights * np.abs(q - observed.iloc[row, 0]))
        spread = np.sum(weights[:, None] * weights[None, :] * np.abs(q[:, None] - q[None, :]))
        np.testing.assert_allclose(dist.energy(observed).iloc[row, 0], to_obs, rtol=1e-9)
        np.testing.assert_allclose(dist.energy().iloc[row, 0], spread, rtol=1e-9)


def forecaster_of(panel):
    return MetaLSTMForecaster(horizon=2, **TINY).fit(panel)


def test_predict_var_covariance_is_refused(airline_forecaster):
    with pytest.raises(NotImplementedError, match="marginal variances"):
        airline_forecaster.predict_var(fh=[1, 2], cov=True)


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
