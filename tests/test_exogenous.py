"""Exogenous covariates X in MetaLSTMForecaster."""

import warnings

import numpy as np
import pandas as pd
import pytest

from sk_metalstm import MetaLSTMForecaster

TINY = dict(
    window_length=4,
    hidden_size=4,
    support_size=8,
    query_size=2,
    max_epochs=1,
    base_max_epochs=1,
    random_state=0,
)


def driven_series(n=400, seed=0):
    """Log-returns driven by a covariate known one step in advance."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2020-01-01", periods=n, freq="D")
    x = rng.standard_normal(n)
    r = 0.01 * (0.8 * x + 0.3 * rng.standard_normal(n))
    return pd.Series(100 * np.exp(np.cumsum(r)), index=idx, name="price"), pd.DataFrame(
        {"driver": x}, index=idx
    )


def rolling_mse(forecaster, y, X, start):
    errors = []
    for t in range(start, len(y) - 1):
        pred = forecaster.predict(fh=[1], X=None if X is None else X.iloc[t : t + 1]).iloc[0]
        errors.append(np.log(pred / y.iloc[t]))
        forecaster.update(y.iloc[t : t + 1], X=None if X is None else X.iloc[t : t + 1])
    return np.mean(np.square(errors))


def test_known_in_advance_driver_lowers_the_error_clearly():
    y, X = driven_series()
    cfg = dict(
        window_length=5,
        hidden_size=16,
        support_size=60,
        query_size=10,
        max_epochs=5,
        base_max_epochs=5,
        lr=5e-3,
        random_state=0,
    )
    start = 300
    with_x = MetaLSTMForecaster(**cfg).fit(y.iloc[:start], X=X.iloc[:start], fh=[1])
    without_x = MetaLSTMForecaster(**cfg).fit(y.iloc[:start], fh=[1])
    mse_x = rolling_mse(with_x, y, X, start)
    mse_plain = rolling_mse(without_x, y, None, start)
    print(f"rolling MSE with X {mse_x:.3e}, without X {mse_plain:.3e}")
    assert mse_x < 0.85 * mse_plain, (mse_x, mse_plain)


@pytest.fixture(scope="module")
def fitted():
    y, X = driven_series(120)
    return MetaLSTMForecaster(**TINY).fit(y.iloc[:100], X=X.iloc[:100], fh=[1, 2]), X


def test_predict_without_x_says_what_is_missing(fitted):
    forecaster, _ = fitted
    with pytest.raises(ValueError, match="uses exogenous X"):
        forecaster.predict(fh=[1])


def test_x_without_covariates_in_training_is_ignored_with_a_warning():
    # It was ignored silently; fit refuses such X, predict keeps sktime's pass-through.
    y, X = driven_series(120)
    forecaster = MetaLSTMForecaster(**TINY).fit(y.iloc[:100], fh=[1])
    with pytest.warns(UserWarning, match="X passed to predict is ignored"):
        with_x = forecaster.predict(X=X.iloc[100:101])
    pd.testing.assert_series_equal(with_x, forecaster.predict())
    with pytest.warns(UserWarning, match="X passed to update is ignored"):
        forecaster.update(y.iloc[100:101], X=X.iloc[100:101])


def test_predict_with_x_missing_the_first_step_is_refused(fitted):
    forecaster, X = fitted
    with pytest.raises(ValueError, match="first step after the cutoff"):
        forecaster.predict(fh=[2], X=X.iloc[101:102])


def test_numpy_x_for_a_numpy_y_says_sktime_indexes_it_from_zero():
    # sktime gives a numpy X the index 0, 1, ...: not the forecast period.
    y, X = driven_series(120)
    forecaster = MetaLSTMForecaster(**TINY).fit(y.to_numpy()[:100], X=X.to_numpy()[:100])
    with pytest.raises(ValueError, match="no row for 100.*a numpy X is indexed 0, 1"):
        forecaster.predict(fh=[1], X=X.to_numpy()[100:102])


def test_misaligned_columns_are_refused(fitted):
    forecaster, X = fitted
    with pytest.raises(ValueError, match="columns"):
        forecaster.predict(fh=[1], X=X.iloc[100:102].rename(columns={"driver": "other"}))


@pytest.mark.parametrize("bad", ["nan", "duplicated"])
def test_bad_covariates_are_refused(bad):
    y, X = driven_series(120)
    X = X.copy()
    if bad == "nan":
        X.iloc[5, 0] = np.nan
        match = "missing data"  # sktime's own check, before ours
    else:  # was numpy's "could not broadcast input array"
        X = pd.concat([X, X.iloc[[5]] * 2]).sort_index()
        match = "X has a duplicated time index"
    with pytest.raises(ValueError, match=match):
        MetaLSTMForecaster(**TINY).fit(y, X=X)


def test_text_covariates_are_refused_as_the_tags_say(fitted):
    # The tag said categorical X was supported; fit then refused it.
    assert MetaLSTMForecaster.get_class_tag("capability:categorical_in_X") is False
    y, X = driven_series(120)
    with pytest.raises(TypeError, match="categorical features in exogenous X"):
        MetaLSTMForecaster(**TINY).fit(y, X=X.assign(label="a"))
    forecaster, X = fitted
    with pytest.raises(TypeError, match="categorical features in exogenous X"):
        forecaster.predict(fh=[1], X=X.iloc[100:102].assign(label="a"))


def test_duplicated_covariate_rows_at_predict_are_refused(fitted):
    forecaster, X = fitted
    doubled = pd.concat([X.iloc[100:102], X.iloc[[100]] + 1.0]).sort_index()
    with pytest.raises(ValueError, match="X passed to predict has a duplicated time index"):
        forecaster.predict(fh=[1], X=doubled)


def test_covariate_far_beyond_the_fitted_range_is_clipped_with_a_warning(fitted):
    # 1e6 and 1e9 gave the same forecast without a word: the network saturates.
    forecaster, X = fitted
    usual = X.iloc[100:101]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        forecaster.predict(fh=[1], X=usual)
    with pytest.warns(UserWarning, match="standard deviations .* clipped there"):
        huge = forecaster.predict(fh=[1], X=usual * 1e6)
    with pytest.warns(UserWarning, match="clipped"):
        pd.testing.assert_series_equal(forecaster.predict(fh=[1], X=usual * 1e9), huge)


def test_covariates_too_large_to_standardise_are_refused():
    y, X = driven_series(120)
    X = X.copy()
    X.iloc[50, 0] = 1e300  # numpy's overflow warning only, and a covariate scaled to 0
    with pytest.raises(ValueError, match="values up to 1e\\+300, too large to standardise"):
        MetaLSTMForecaster(**TINY).fit(y, X=X)


def test_x_must_cover_y(fitted):
    y, X = driven_series(120)
    with pytest.raises(ValueError, match="not contained in index"):
        MetaLSTMForecaster(**TINY).fit(y, X=X.drop(X.index[50]))


def test_pretrain_with_panel_x_then_fit_unseen_series_and_leave_inputs_untouched():
    series = [driven_series(150, seed) for seed in range(3)]
    y_panel = pd.concat({f"s{i}": s[0] for i, s in enumerate(series)}, names=["id", "time"])
    X_panel = pd.concat({f"s{i}": s[1] for i, s in enumerate(series)}, names=["id", "time"])
    y_panel = y_panel.to_frame("price")
    y_copy, X_copy = y_panel.copy(), X_panel.copy()
    forecaster = MetaLSTMForecaster(horizon=1, **TINY)
    forecaster.pretrain(y_panel, X=X_panel)
    pd.testing.assert_frame_equal(y_panel, y_copy)
    pd.testing.assert_frame_equal(X_panel, X_copy)
    y_new, X_new = driven_series(80, seed=9)
    adapted = MetaLSTMForecaster.from_pretrained(forecaster.pretrained_state_)
    adapted.fit(y_new.iloc[:70], X=X_new.iloc[:70])
    pred = adapted.predict(fh=[1], X=X_new.iloc[70:71])
    assert np.isfinite(pred.iloc[0])
    with pytest.raises(ValueError, match="trained with exogenous X"):
        MetaLSTMForecaster.from_pretrained(forecaster.pretrained_state_).fit(y_new)


def test_a_covariate_named_none_is_still_known_after_a_state_round_trip():
    # pandas names a None column NaN; the unpickled state's NaN is another
    # object, and the same X was refused ("X has columns [nan, 'b'], but ...").
    import pickle

    y, X = driven_series(150)
    X = X.assign(b=np.cos(np.arange(150))).set_axis([None, "b"], axis=1)
    forecaster = MetaLSTMForecaster(horizon=1, **TINY).fit(y.iloc[:120], X=X.iloc[:120])
    state = pickle.loads(pickle.dumps(forecaster.pretrained_state_))
    again = MetaLSTMForecaster.from_pretrained(state).fit(y.iloc[:120], X=X.iloc[:120])
    pd.testing.assert_series_equal(
        again.predict(fh=[1], X=X.iloc[120:121]), forecaster.predict(fh=[1], X=X.iloc[120:121])
    )


@pytest.mark.parametrize("labels", [["AB", "ABC", "Z"], [1, 11, 2]])
def test_x_missing_an_instance_is_refused_not_borrowed_from_a_similar_label(labels):
    # "ABC" once read the rows of "AB" (its label cut by one character), and
    # an integer label raised a TypeError.
    from sk_metalstm.datasets import make_ar_returns_panel

    panel = make_ar_returns_panel(n_series=3, n_timepoints=60, random_state=0)
    panel.index = panel.index.set_levels(labels, level=0)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.standard_normal(len(panel))}, index=panel.index)
    missing = labels[1]
    with pytest.raises(ValueError, match=f"X has no rows for instance {missing!r} of y"):
        MetaLSTMForecaster(horizon=2, **TINY).fit(panel, X=X.drop(missing, level=0))
    # A two-column pretrain panel names the instance too, not only (instance, column).
    two = panel.assign(other=panel["price"] * 2)
    with pytest.raises(ValueError, match=f"of y, nor for {missing!r}\\."):
        MetaLSTMForecaster(horizon=2, **TINY).pretrain(two, X=X.drop(missing, level=0))


def test_predict_refuses_a_plain_x_for_a_panel_y():
    # A plain X gave every instance the covariates of one series, silently.
    from sk_metalstm.datasets import make_ar_returns_panel

    panel = make_ar_returns_panel(n_series=3, n_timepoints=60, random_state=0)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.standard_normal(len(panel))}, index=panel.index)
    history = panel.groupby(level=0).head(55)
    # cumcount, not nth: pandas < 2 drops the time level from nth's result.
    future = X[X.groupby(level=0).cumcount().between(55, 56).to_numpy()]
    forecaster = MetaLSTMForecaster(horizon=2, **TINY).fit(
        history, X=X.groupby(level=0).head(55)
    )
    assert forecaster.predict(fh=[1, 2], X=future).notna().all().all()
    first = panel.index.get_level_values(0)[0]
    with pytest.raises(ValueError, match=r"X has no rows for instance .* \(X is a single series\)"):
        forecaster.predict(fh=[1, 2], X=future.loc[first])


def test_x_indexed_by_periods_for_a_dated_y_is_refused_at_fit_and_predict(fitted):
    # A panel's was "no rows for 99 time point(s)" at fit (a single series'
    # is refused by sktime); predict accepted it silently.
    forecaster, X = fitted
    pairs = {k: driven_series(100, seed) for seed, k in enumerate("ab")}
    y_panel = pd.concat({k: y.to_frame() for k, (y, _) in pairs.items()}, names=["id", "t"])
    x_panel = pd.concat({k: x.to_period("D") for k, (_, x) in pairs.items()}, names=["id", "t"])
    match = "X \\(instance 'a'\\) is indexed by PeriodIndex.*but y by DatetimeIndex"
    with pytest.raises(ValueError, match=match):
        MetaLSTMForecaster(**TINY).fit(y_panel, X=x_panel)
    with pytest.raises(ValueError, match="X is indexed by PeriodIndex.*but y by DatetimeIndex"):
        forecaster.predict(fh=[1], X=X.to_period("D").iloc[100:102])


@pytest.mark.parametrize(
    ("rezone", "fix"),
    [
        (lambda X: X.tz_localize("UTC").tz_convert("Europe/Berlin"), r"X.tz_convert\('UTC'\)"),
        (lambda X: X, r"X.tz_localize\('UTC'\)"),
    ],
    ids=["other_zone", "no_zone"],
)
def test_x_in_another_time_zone_names_the_conversion(rezone, fix):
    # The advice was X.to_timestamp() or X.to_period(), which cannot help here.
    y, X = driven_series(120)
    forecaster = MetaLSTMForecaster(**TINY).fit(
        y.tz_localize("UTC").iloc[:100], X=X.tz_localize("UTC").iloc[:100]
    )
    with pytest.raises(ValueError, match=f"but y by DatetimeIndex \\(time zone UTC\\).*{fix}"):
        forecaster.predict(fh=[1], X=rezone(X).iloc[100:102])


def test_panel_x_in_another_time_zone_names_the_time_level():
    pairs = {k: driven_series(100, seed) for seed, k in enumerate("ab")}
    y = pd.concat({k: s.tz_localize("UTC").to_frame() for k, (s, _) in pairs.items()})
    X = pd.concat({k: x.tz_localize("UTC") for k, (_, x) in pairs.items()})
    forecaster = MetaLSTMForecaster(**TINY).fit(y, X=X)
    ahead = {k: driven_series(102, s)[1].iloc[100:] for s, k in enumerate("ab")}
    future = pd.concat({k: x.tz_localize("Asia/Tokyo") for k, x in ahead.items()})
    with pytest.raises(ValueError, match=r"X.tz_convert\('UTC', level=-1\)"):
        forecaster.predict(fh=[1], X=future)
