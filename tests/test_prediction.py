"""_prediction: forecast steps of an fh, the output index, and quantile levels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sktime.forecasting.base import ForecastingHorizon

from sk_metalstm._prediction import (
    Forecast,
    forecast_steps,
    level_variance,
    output_index,
    quantile_levels,
    relative_steps,
)
from sk_metalstm._series import SINGLE
from sk_metalstm._series_state import SeriesState

HORIZON = 3


def _state(key=SINGLE, kind="log_return", scale=1.0) -> SeriesState:
    y = pd.Series([10.0, 12.0, 11.0, 13.0], index=pd.date_range("2020-01-01", periods=4))
    state = SeriesState.start(key, y, None, kind, keep=4)
    return state.adapted({"loc": 0.0, "scale": np.array([scale])}, params={})


# --------------------------------------------------------------- forecast_steps
def test_relative_fh_gives_its_steps_and_dates_after_the_cutoff():
    cutoff = _state().cutoff  # 2020-01-04, daily
    steps, times = forecast_steps(ForecastingHorizon([1, 3]), cutoff, HORIZON)
    np.testing.assert_array_equal(steps, [1, 3])
    assert list(times) == list(pd.to_datetime(["2020-01-05", "2020-01-07"]))


def test_absolute_fh_is_counted_from_the_cutoff():
    cutoff = _state().cutoff
    fh = ForecastingHorizon(pd.to_datetime(["2020-01-06", "2020-01-07"]), is_relative=False)
    steps, times = forecast_steps(fh, cutoff, HORIZON)
    np.testing.assert_array_equal(steps, [2, 3])
    assert list(times) == list(fh.to_pandas())
    monthly = pd.period_range("2000-01", periods=1, freq="M")
    fh = ForecastingHorizon(pd.period_range("2000-02", periods=2, freq="M"), is_relative=False)
    steps, times = forecast_steps(fh, monthly, HORIZON)
    np.testing.assert_array_equal(steps, [1, 2])


@pytest.mark.parametrize(
    "fh",
    [
        ForecastingHorizon([0]),
        ForecastingHorizon([-1, 1]),
        ForecastingHorizon(pd.to_datetime(["2020-01-04", "2020-01-05"]), is_relative=False),
    ],
    ids=["zero", "negative", "absolute_at_cutoff"],
)
def test_in_sample_fh_is_refused(fh):
    with pytest.raises(ValueError, match="out of sample only; fh must lie after the cutoff"):
        forecast_steps(fh, _state().cutoff, HORIZON)


@pytest.mark.parametrize(
    ("cutoff", "fh"),
    [
        (  # a month-end series asked for mid-month dates
            pd.date_range("2036-08-31", periods=1, freq="ME"),
            ForecastingHorizon(pd.to_datetime(["2036-09-15", "2036-10-01"]), is_relative=False),
        ),
        (  # a daily series asked for 36 hours ahead
            pd.date_range("2020-07-18", periods=1, freq="D"),
            ForecastingHorizon(pd.to_timedelta([36], unit="h"), freq="D"),
        ),
        (  # a business-day series asked for a Saturday
            pd.bdate_range("2020-10-06", periods=1),
            ForecastingHorizon(pd.to_datetime(["2020-10-10"]), is_relative=False),
        ),
    ],
    ids=["mid_month", "hours", "saturday"],
)
def test_fh_between_grid_points_is_refused_not_rounded(cutoff, fh):
    # sktime rounds such times to whole steps; the forecast of the next grid
    # point would come back labelled with the requested time.
    with pytest.raises(ValueError, match="cannot be counted in whole steps.*on its grid"):
        forecast_steps(fh, cutoff, HORIZON)
    on_grid = ForecastingHorizon(
        pd.DatetimeIndex([cutoff[0] + cutoff.freq, cutoff[0] + 2 * cutoff.freq]),
        is_relative=False,
    )
    np.testing.assert_array_equal(forecast_steps(on_grid, cutoff, HORIZON)[0], [1, 2])


def test_fh_beyond_the_horizon_says_how_to_fix_it():
    with pytest.raises(ValueError, match="reaches 5 steps ahead, beyond horizon=3.*>= 5"):
        forecast_steps(ForecastingHorizon([1, 5]), _state().cutoff, HORIZON)
    fh = ForecastingHorizon(pd.to_datetime(["2020-01-08"]), is_relative=False)
    with pytest.raises(ValueError, match="reaches 4 steps ahead"):
        forecast_steps(fh, _state().cutoff, HORIZON)


# ----------------------------------------------------------------- output_index
def test_output_index_of_single_series_and_panels():
    times = pd.date_range("2020-01-05", periods=2)
    assert output_index([(None, times)], None) is times
    panel = output_index([("a", times), ("b", times[:1])], ["instance", "time"])
    assert list(panel) == [("a", times[0]), ("a", times[1]), ("b", times[0])]
    assert list(panel.names) == ["instance", "time"]
    nested = output_index([(("r1", "a"), times)], ["region", "store", "time"])
    assert list(nested) == [("r1", "a", times[0]), ("r1", "a", times[1])]
    assert nested.nlevels == 3
    # A tuple label in a single instance level stays one label (it was
    # unpacked into two levels, and predict raised pandas' "Length of names").
    tupled = output_index([(("0", "x"), times[:1])], ["instance", "time"])
    assert tupled.nlevels == 2 and tupled[0] == (("0", "x"), times[0])


# ------------------------------------------------- quantile_levels, level_variance
SCALE = np.array([0.01, 0.03, 0.02])  # forecast scale of each step's increment


def _residuals(n: int = 41, seed: int = 0) -> dict[str, np.ndarray]:
    """Standardised residuals symmetric about 0 (median exactly 0), heavier in step 2."""
    rng = np.random.default_rng(seed)
    half = rng.standard_normal((n // 2, HORIZON)) * [1.0, 1.5, 0.8]
    step = np.vstack([half, -half, np.zeros((1, HORIZON))])
    return {"step": step, "cumulative": np.cumsum(step, axis=1) / np.sqrt([1.0, 2.0, 3.0])}


@pytest.mark.parametrize("kind", ["log_return", "difference", "none"])
def test_quantiles_never_cross_and_the_median_is_the_point_forecast(kind):
    state = _state(kind=kind, scale=2.0)
    central = np.array([0.03, -0.08, 0.05])  # crossing steps' signs
    alpha = [0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98]
    levels = quantile_levels(state, Forecast(central, SCALE), _residuals(), alpha)
    assert levels.shape == (len(alpha), HORIZON)
    assert np.all(np.diff(levels, axis=0) > 0)  # strictly increasing in alpha, every step
    point = state.to_levels(central)
    np.testing.assert_allclose(levels[alpha.index(0.5)], point, rtol=1e-12)
    assert np.all(levels[0] < point) and np.all(point < levels[-1])


def test_quantile_spread_is_the_forecast_scale_times_residual_quantiles():
    central = np.array([1.0, 2.0, 3.0])
    state = _state(kind="none")
    narrow = quantile_levels(state, Forecast(central, SCALE), _residuals(), [0.1, 0.9])
    wide = quantile_levels(state, Forecast(central, 3 * SCALE), _residuals(), [0.1, 0.9])
    np.testing.assert_allclose(wide - central, 3.0 * (narrow - central), rtol=1e-12)
    expected = np.quantile(_residuals()["step"], 0.9, axis=0, method="weibull") * SCALE
    np.testing.assert_allclose(narrow[1] - central, expected, rtol=1e-12)


def test_multi_step_spread_accumulates_the_step_scales():
    # Differences: the level k steps ahead is last + the sum of k increments, whose
    # scale is sqrt(sum of squared step scales).
    state = _state(kind="difference")
    central = np.array([0.5, -0.2, 0.1])
    levels = quantile_levels(state, Forecast(central, SCALE), _residuals(), [0.9])[0]
    z = _residuals()["cumulative"]
    spread = np.quantile(z, 0.9, axis=0, method="weibull") * np.sqrt(np.cumsum(SCALE**2))
    np.testing.assert_allclose(levels, 13.0 + np.cumsum(central) + spread, rtol=1e-12)


def test_level_variance_of_differences_and_levels():
    central = np.array([0.5, -0.2, 0.1])
    residuals = _residuals()
    got = level_variance(_state(kind="difference"), Forecast(central, SCALE), residuals)
    expected = np.var(residuals["cumulative"], axis=0) * np.cumsum(SCALE**2)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    got = level_variance(_state(kind="none"), Forecast(central, SCALE), residuals)
    np.testing.assert_allclose(got, np.var(residuals["step"], axis=0) * SCALE**2, rtol=1e-12)


def test_level_variance_of_log_returns_is_that_of_the_price():
    # Price = last * exp(C): for small scales its variance is close to the delta
    # method's (last * exp(mean))^2 * var(C), and exactly the sample variance of
    # the prices the residuals imply.
    state = _state(kind="log_return")
    central = np.array([0.001, -0.002, 0.0005])
    residuals = _residuals(n=2001)
    got = level_variance(state, Forecast(central, SCALE), residuals)
    cumulative_scale = np.sqrt(np.cumsum(SCALE**2))
    prices = 13.0 * np.exp(np.cumsum(central) + residuals["cumulative"] * cumulative_scale)
    np.testing.assert_allclose(got, np.var(prices, axis=0), rtol=1e-10)
    delta = (13.0 * np.exp(np.cumsum(central))) ** 2 * np.var(
        residuals["cumulative"] * cumulative_scale, axis=0
    )
    np.testing.assert_allclose(got, delta, rtol=0.05)


@pytest.mark.parametrize("tz", [None, "US/Eastern"])
def test_absolute_business_days_are_counted_without_business_day_periods(tz):
    # sktime's count goes through business-day periods, which pandas has
    # deprecated: a FutureWarning on every absolute fh of the bundled daily data.
    import warnings

    cutoff = pd.DatetimeIndex([pd.Timestamp("2022-12-23", tz=tz)], freq="B")  # a Friday
    times = pd.bdate_range("2022-12-26", periods=3, tz=tz)
    fh = ForecastingHorizon(times[[0, 2]], is_relative=False, freq="B")
    # Recorded, not raised: sktime resets the FutureWarning filter inside.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        steps = relative_steps(fh, cutoff)
    assert not [w for w in caught if "PeriodDtype" in str(w.message)]
    np.testing.assert_array_equal(steps, [1, 3])


def test_fixed_length_steps_are_counted_without_building_a_grid(monkeypatch):
    # A date grid out to the fh cost 7 s and 1.3 GB for a second-frequency
    # series asked a year ahead (a MemoryError at microseconds).
    cutoff = pd.DatetimeIndex([pd.Timestamp("2024-01-01")], freq="s")
    far = ForecastingHorizon(cutoff + pd.Timedelta(days=365), is_relative=False, freq="s")

    def no_grid(*args, **kwargs):
        raise AssertionError("a grid was built")

    monkeypatch.setattr(pd, "date_range", no_grid)
    np.testing.assert_array_equal(relative_steps(far, cutoff), [365 * 86_400])
    off = ForecastingHorizon(cutoff + pd.Timedelta(milliseconds=1500), is_relative=False, freq="s")
    with pytest.raises(ValueError, match="cannot be counted in whole steps"):
        relative_steps(off, cutoff)
