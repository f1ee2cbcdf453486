"""Property-based fuzzing of the public API of both estimators.

The property: every call ends in finite forecasts on the right index, or in a
``ValueError``, ``TypeError`` or sktime's ``NotImplementedError`` whose message
names the problem. Never another exception type, never a non-finite number,
never a modified input, and a failed ``update`` changes nothing. Inputs that a
user may rightly expect to work must work: the test knows which draws are
valid and fails if one of them is refused.

The example budget comes from the hypothesis profile: ``default`` here keeps
the test run fast; ``--hypothesis-profile=slow`` runs many more examples
(profiles are registered in ``conftest.py``). ``--hypothesis-show-statistics``
prints how many examples ran.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sktime.forecasting.base import ForecastingHorizon

from sk_metalstm import LSTMBaseRegressor, MetaLSTMForecaster
from sk_metalstm.datasets import make_ar_returns_panel

WINDOW, HORIZON, SUPPORT = 4, 2, 8
INDEX_KINDS = ("range", "datetime", "datetime_no_freq", "datetime_tz", "period", "irregular")
DTYPES = ("float64", "float32", "int64", "Float64")
SHAPES = ("positive", "signed", "near_zero")
ALLOWED = (ValueError, TypeError, NotImplementedError)
#: Powers of ten: everyday scales half the time, the whole float64 range otherwise.
_exponents = st.one_of(st.floats(-3, 6), st.floats(-8, 200))
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _pretrained_state(transform: str):
    panel = make_ar_returns_panel(n_series=4, n_timepoints=120, random_state=0)
    forecaster = MetaLSTMForecaster(
        window_length=WINDOW,
        horizon=HORIZON,
        hidden_size=4,
        support_size=SUPPORT,
        query_size=2,
        max_epochs=1,
        base_max_epochs=1,
        transform=transform,
        random_state=0,
        verbose=0,
    )
    return forecaster.pretrain(panel).pretrained_state_


@pytest.fixture(scope="module")
def state():
    """A tiny state meta-trained with the default learner (and horizon 2)."""
    return _pretrained_state("auto")


@pytest.fixture(scope="module")
def levels_state():
    """The same, meta-trained on levels: a state on increments refuses transform="none"."""
    return _pretrained_state("none")


# ------------------------------------------------------------------ data
def _time_index(kind: str, n: int, start: int) -> pd.Index:
    """``n`` time points of ``kind`` beginning ``start`` steps after a fixed origin."""
    if kind == "range":
        return pd.RangeIndex(start, start + n)
    if kind == "period":
        return pd.period_range("2001-01", periods=n, freq="M") + start
    tz = "Europe/London" if kind == "datetime_tz" else None
    if kind == "irregular":
        # Business days with every seventh one missing: no frequency to infer.
        days = pd.bdate_range("2020-01-01", periods=start + n + (start + n) // 6 + 2)
        days = days[np.arange(len(days)) % 7 != 3]
        return pd.DatetimeIndex(days[start : start + n])
    index = pd.date_range("2020-01-01", periods=start + n, freq="D", tz=tz)[start:]
    if kind == "datetime_no_freq":
        index = pd.DatetimeIndex(list(index))
    return index


def _levels(shape: str, magnitude: float, n: int, rng: np.random.Generator) -> np.ndarray:
    steps = rng.standard_t(4, size=n)
    if shape == "positive":
        return magnitude * np.exp(0.02 * np.cumsum(steps))
    if shape == "signed":
        return magnitude * np.cumsum(steps)
    # Tiny values around zero: zeros and sign changes break log-returns only.
    return magnitude * 1e-3 * np.round(np.cumsum(steps))


def _cast(values: np.ndarray, dtype: str) -> np.ndarray | pd.arrays.FloatingArray:
    with np.errstate(over="ignore"):
        if dtype == "int64":
            return np.round(values).astype(np.int64)
        if dtype == "Float64":
            return pd.array(values, dtype="Float64")
        return values.astype(dtype)


@st.composite
def cases(draw):
    """A series or a panel, its continuation for ``update``, and what is valid."""
    kind = draw(st.sampled_from(INDEX_KINDS))
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.sampled_from(SHAPES))
    transform = draw(st.sampled_from(("auto", "log_return", "difference", "none")))
    magnitude = 10.0 ** draw(_exponents)
    if dtype == "int64":
        magnitude = min(max(magnitude, 1e3), 1e15)  # ints cannot hold 1e-8 or 1e200
    n_instances = draw(st.integers(1, 5))
    min_length = WINDOW + HORIZON + (transform != "none")
    boundary = st.integers(min_length - 2, min_length + 2)
    long_enough = st.integers(min_length, 40)
    lengths = draw(
        st.lists(
            st.one_of(boundary, long_enough, long_enough, long_enough, st.integers(0, 40)),
            min_size=n_instances,
            max_size=n_instances,
        )
    )
    n_new = draw(st.integers(1, 4))
    update_poison = draw(st.sampled_from([None, None, "nan", "non_positive"]))
    panel = n_instances > 1 or draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    longest = max(lengths)
    ys, news = {}, {}
    fit_ok, update_ok = kind != "irregular", True
    for i, n in enumerate(lengths):
        if panel and n == 0 and any(lengths):
            continue  # an instance without rows is no instance at all
        # Series of different lengths end together (different listing dates).
        index = _time_index(kind, longest + n_new, 0)[longest - n :]
        raw = _levels(shape, magnitude, n + n_new, rng)
        cast = _cast(raw, dtype)
        values = np.asarray(cast, dtype=np.float64)
        ys[f"s{i}"] = pd.Series(cast[:n], index=index[:n])
        news[f"s{i}"] = pd.Series(cast[n:], index=index[n:])
        old, later = values[:n], values[n:]
        concrete = transform
        if transform == "auto":
            concrete = "log_return" if np.all(old > 0) else "difference"
        fit_ok &= n >= min_length and bool(np.all(np.isfinite(old))) and np.ptp(old) > 0
        fit_ok &= concrete != "log_return" or bool(np.all(old > 0))
        if update_poison and i == len(lengths) - 1:
            # Bad data in the last instance only: the others must not change either.
            bad = np.nan if update_poison == "nan" else -abs(float(later[0]))
            news[f"s{i}"] = news[f"s{i}"].astype(np.float64)
            news[f"s{i}"].iloc[-1] = bad
            later = np.r_[later[:-1], bad]
        update_ok &= bool(np.all(np.isfinite(later)))
        update_ok &= concrete != "log_return" or bool(np.all(later > 0))
    if panel:
        y = pd.concat(ys, names=["instance", "time"]).to_frame("y")
        new = pd.concat(news, names=["instance", "time"]).to_frame("y")
    else:
        y, new = ys["s0"].rename("y"), news["s0"].rename("y")
    return {"y": y, "new": new, "transform": transform, "fit_ok": fit_ok, "update_ok": update_ok}


@st.composite
def horizons(draw):
    """An ``fh``: relative or absolute, in or out of sample, within or beyond horizon."""
    reach = draw(st.sampled_from([(1, HORIZON), (-2, HORIZON + 1)]))  # valid half the time
    steps = draw(st.lists(st.integers(*reach), min_size=1, max_size=3, unique=True))
    return sorted(steps), draw(st.booleans())


# ------------------------------------------------------------------ checks
def _allowed(error: BaseException) -> None:
    assert isinstance(error, ALLOWED), f"{type(error).__name__}: {error}"
    message = str(error)
    assert len(message) > 15, f"uninformative message: {message!r}"
    assert "SINGLE" not in message, message
    assert "NoneType" not in message, message


def _check_forecast(pred: pd.Series | pd.DataFrame, y, fh: ForecastingHorizon, cutoff) -> None:
    values = np.asarray(pred, dtype=np.float64)
    assert np.all(np.isfinite(values)), pred
    if fh.is_relative:
        freq = {pd.PeriodIndex: "M", pd.DatetimeIndex: "D"}.get(type(cutoff))
        fh = ForecastingHorizon(fh.to_numpy(), is_relative=True, freq=freq)
    expected_times = fh.to_absolute_index(cutoff)
    if isinstance(y, pd.Series):
        assert pred.index.equals(expected_times)
    else:
        instances = y.index.get_level_values(0).unique()
        assert pred.index.get_level_values(0).unique().equals(instances)
        for name in instances:
            times = pred.xs(name, level=0).index
            assert times.equals(expected_times), (times, expected_times)


def _fh(steps: list[int], absolute: bool, cutoff) -> ForecastingHorizon:
    """Relative steps as a user writes them, or the dates they stand for."""
    if not absolute:
        return ForecastingHorizon(steps, is_relative=True)
    freq = {pd.PeriodIndex: "M", pd.DatetimeIndex: "D"}.get(type(cutoff))
    return ForecastingHorizon(steps, is_relative=True, freq=freq).to_absolute(cutoff)


def _same(a, b) -> None:
    pd.testing.assert_index_equal(a.index, b.index)
    np.testing.assert_array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


# ------------------------------------------------------------------ forecaster
def _attempt(call, *args, **kwargs):
    """``call``'s result, or the allowed exception it raised (anything else fails)."""
    try:
        return call(*args, **kwargs), None
    except ALLOWED as error:
        _allowed(error)
        return None, error


@FUZZ
@given(case=cases(), fh_draw=horizons(), coverage=st.sampled_from([0.5, 0.9, 0.99]))
def test_forecaster_property(state, levels_state, case, fh_draw, coverage):
    y, new = case["y"], case["new"]
    y_before, new_before = y.copy(deep=True), new.copy(deep=True)
    chosen = levels_state if case["transform"] == "none" else state
    forecaster = MetaLSTMForecaster.from_pretrained(chosen, transform=case["transform"], verbose=0)
    _, error = _attempt(forecaster.fit, y)
    _unchanged(y, y_before)
    event("fit refused" if error else "fit ok")
    if error is not None:
        assert not case["fit_ok"], f"a valid series was refused: {error}"
        return
    assert case["fit_ok"], "fit accepted an invalid series"
    steps, absolute = fh_draw
    fh_ok = min(steps) >= 1 and max(steps) <= HORIZON
    fh = _fh(steps, absolute, forecaster.cutoff)
    pred, error = _attempt(forecaster.predict, fh)
    assert (error is None) == fh_ok, f"fh {steps}: {error}"
    if error is not None:
        return
    _check_forecast(pred, y, fh, forecaster.cutoff)
    cutoff = forecaster.cutoff
    _, error = _attempt(forecaster.update, new)
    _unchanged(new, new_before)
    event("update refused" if error else "update ok")
    if error is not None:
        assert not case["update_ok"], f"valid update data were refused: {error}"
        # A failed update changes nothing: same cutoff, same forecasts.
        assert forecaster.cutoff.equals(cutoff)
        _same(forecaster.predict(fh), pred)
        return
    assert case["update_ok"], "update accepted invalid data"
    fh = _fh(steps, absolute, forecaster.cutoff)
    _check_forecast(forecaster.predict(fh), y, fh, forecaster.cutoff)
    intervals = forecaster.predict_interval(fh, coverage=coverage)
    assert np.all(np.isfinite(intervals.to_numpy(dtype=np.float64)))
    lower, upper = intervals.iloc[:, 0].to_numpy(), intervals.iloc[:, 1].to_numpy()
    assert np.all(lower <= upper)
    # A variance is the square of the scale: near 1e155 it leaves float64, and says so.
    var, error = _attempt(forecaster.predict_var, fh)
    if error is None:
        assert np.all(np.isfinite(var.to_numpy())) and np.all(var.to_numpy() >= 0)
    else:
        assert "not finite in float64" in str(error)


def _unchanged(after, before) -> None:
    if isinstance(before, pd.Series):
        pd.testing.assert_series_equal(after, before)
    else:
        pd.testing.assert_frame_equal(after, before)


@FUZZ
@given(case=cases(), steps=st.integers(1, HORIZON))
def test_forecaster_fit_without_pretraining_property(case, steps):
    # The user's first call: fit meta-trains on y itself, default learner.
    y = case["y"]
    y_before = y.copy(deep=True)
    forecaster = MetaLSTMForecaster(
        window_length=WINDOW,
        hidden_size=4,
        support_size=SUPPORT,
        query_size=2,
        max_epochs=1,
        base_max_epochs=1,
        transform=case["transform"],
        random_state=0,
        verbose=0,
    )
    fh = ForecastingHorizon(list(range(1, steps + 1)))
    _, error = _attempt(forecaster.fit, y, fh=fh)
    _unchanged(y, y_before)
    event("fit refused" if error else "fit ok")
    if error is not None:
        # Meta-training needs a whole task; a valid series may be shorter than one.
        assert not case["fit_ok"] or "long enough to cut one meta-training task" in str(error)
        return
    _check_forecast(forecaster.predict(), y, fh, forecaster.cutoff)


# ------------------------------------------------------------------ regressor
@st.composite
def regression_data(draw):
    """``X`` (2-D or 3-D) and ``y`` (1-D or 2-D) of any size, scale and dtype."""
    n = draw(st.integers(0, 24))
    length = draw(st.integers(0, 5))
    shape = (n, length) if draw(st.booleans()) else (n, length, draw(st.integers(1, 3)))
    outputs = draw(st.sampled_from([None, 1, 2]))
    magnitude = 10.0 ** draw(_exponents)
    dtype = draw(st.sampled_from(("float64", "float32", "int64")))
    if dtype == "int64":
        magnitude = min(max(magnitude, 1e3), 1e15)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    X = _cast(magnitude * rng.standard_t(4, size=shape), dtype)
    y = magnitude * rng.standard_t(4, size=(n,) if outputs is None else (n, outputs))
    poison = draw(st.sampled_from([None, "nan_X", "inf_y"]))
    if poison == "nan_X" and X.size and dtype != "int64":
        X.flat[draw(st.integers(0, X.size - 1))] = np.nan
    if poison == "inf_y" and y.size:
        y.flat[draw(st.integers(0, y.size - 1))] = np.inf
    with np.errstate(over="ignore", invalid="ignore"):
        as32 = np.r_[np.asarray(X, dtype=np.float32).ravel(), y.astype(np.float32).ravel()]
    must_work = n >= 1 and length >= 1 and bool(np.all(np.isfinite(as32)))
    # Beyond ~1e15 the squared error overflows float32: refusing is then fine too.
    must_work &= magnitude <= 1e12
    return X, y, must_work


@FUZZ
@given(data=regression_data(), n_predict=st.integers(0, 5))
def test_regressor_property(data, n_predict):
    X, y, must_work = data
    X_before, y_before = X.copy(), y.copy()
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=3, random_state=0)
    _, error = _attempt(model.fit, X, y)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    event("fit refused" if error else "fit ok")
    if error is not None:
        assert not must_work, f"valid data were refused: {error}"
        return
    pred, error = _attempt(model.predict, X[:n_predict])
    if n_predict == 0 or len(X) == 0:
        assert error is not None  # nothing to predict: a clear error, not an empty guess
        return
    assert error is None, error
    assert pred.shape == (min(n_predict, len(X)),) + y.shape[1:]
    assert np.all(np.isfinite(pred))


# ------------------------------------------------------- defects found, pinned
def test_empty_panel_is_refused(state):
    empty = pd.concat({"s0": pd.Series([], dtype=float)}, names=["instance", "time"])
    empty = empty.to_frame("y")
    with pytest.raises(ValueError, match="y is empty"):
        MetaLSTMForecaster.from_pretrained(state, verbose=0).fit(empty)


@pytest.mark.parametrize("tz", [None, "Europe/London"])
def test_update_on_dates_without_freq_keeps_forecast_dates(state, tz):
    # Before: predict after update raised TypeError (int * NoneType) in sktime.
    dates = pd.DatetimeIndex(list(pd.date_range("2020-01-01", periods=30, freq="D", tz=tz)))
    y = pd.Series(np.linspace(1.0, 2.0, 30) + 0.01 * np.sin(np.arange(30)), index=dates)
    forecaster = MetaLSTMForecaster.from_pretrained(state, verbose=0).fit(y.iloc[:29])
    forecaster.update(y.iloc[29:])
    pred = forecaster.predict([1, 2])
    expected = pd.date_range("2020-01-31", periods=2, freq="D", tz=tz)
    np.testing.assert_array_equal(pred.index, expected)


def test_update_with_a_gap_in_the_dates_is_refused(state):
    dates = pd.date_range("2020-01-01", periods=40, freq="D")
    y = pd.Series(np.linspace(1.0, 2.0, 40) + 0.01 * np.sin(np.arange(40)), index=dates)
    forecaster = MetaLSTMForecaster.from_pretrained(state, verbose=0).fit(y.iloc[:30])
    before = forecaster.predict([1])
    gap = "is 2020-01-31 00:00:00: update must continue the series without a gap"
    with pytest.raises(ValueError, match=gap):
        forecaster.update(y.iloc[[33]])
    _same(forecaster.predict([1]), before)


def test_log_return_refuses_non_positive_values_outside_the_kept_tail(state):
    # Only the most recent values are kept for adaptation; the check covers them all.
    y = pd.Series(np.r_[-1.0, np.linspace(1.0, 2.0, 40)])
    with pytest.raises(ValueError, match="strictly positive"):
        MetaLSTMForecaster.from_pretrained(state, transform="log_return", verbose=0).fit(y)


def test_update_errors_do_not_show_internal_names(state):
    y = pd.Series(np.linspace(1.0, 2.0, 40) + 0.01 * np.sin(np.arange(40)))
    forecaster = MetaLSTMForecaster.from_pretrained(state, verbose=0).fit(y)
    with pytest.raises(ValueError, match="^update data contain NaN or infinite") as info:
        forecaster.update(pd.Series([np.inf], index=[40]))
    assert "__" not in str(info.value)


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.zeros((3, 0, 1)), np.ones(3), "no time steps"),
        (np.zeros((3, 2, 0)), np.ones(3), "no time steps or no features"),
    ],
)
def test_regressor_refuses_sequences_without_steps_or_features(X, y, match):
    with pytest.raises(ValueError, match=match):
        LSTMBaseRegressor(max_epochs=1).fit(X, y)


@pytest.mark.parametrize("where", ["X", "y"])
def test_regressor_trains_on_values_beyond_float32(where):
    # Once refused ("beyond float32's range"); fit now standardises X and y in
    # float64, so the network sees the same numbers in any units.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    big_X, big_y = (1e200 * X, y) if where == "X" else (X, 1e200 * y)
    params = dict(hidden_size=4, max_epochs=2, random_state=0)
    base = LSTMBaseRegressor(**params).fit(X, y).predict(X)
    pred = LSTMBaseRegressor(**params).fit(big_X, big_y).predict(big_X)
    assert np.all(np.isfinite(pred))
    np.testing.assert_allclose(pred / (1e200 if where == "y" else 1), base, rtol=1e-5, atol=1e-6)


def test_regressor_refuses_predict_inputs_beyond_float32():
    # Standardised with the fit's statistics, 1e60 is ~1e60 standard deviations
    # out: beyond float32, the range the network was trained in.
    model = LSTMBaseRegressor(hidden_size=4, max_epochs=1, random_state=0)
    model.fit(np.random.default_rng(0).normal(size=(20, 3)), np.arange(20.0))
    with pytest.raises(ValueError, match="beyond float32"):
        model.predict(np.full((2, 3), 1e60))
