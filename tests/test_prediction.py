"""_prediction: forecast steps of an fh, the output index, and quantile levels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sktime.forecasting.base import ForecastingHorizon

from sk_metalstm._prediction import forecast_steps, output_index, quantile_levels
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


# -------------------------------------------------------------- quantile_levels
def _residuals(n: int = 41, seed: int = 0) -> dict[str, np.ndarray]:
    """Residuals symmetric about 0 (so their median is exactly 0), noisy across steps."""
    rng = np.random.default_rng(seed)
    half = rng.standard_normal((n // 2, HORIZON)) * [0.01, 0.05, 0.02]
    step = np.vstack([half, -half, np.zeros((1, HORIZON))])
    return {"step": step, "cumulative": np.cumsum(step, axis=1)}


@pytest.mark.parametrize("kind", ["log_return", "difference", "none"])
def test_quantiles_never_cross_and_the_median_is_the_point_forecast(kind):
    state = _state(kind=kind, scale=2.0)
    central = np.array([0.03, -0.08, 0.05])  # crossing steps' signs
    alpha = [0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98]
    levels = quantile_levels(state, central, _residuals(), alpha)
    assert levels.shape == (len(alpha), HORIZON)
    assert np.all(np.diff(levels, axis=0) > 0)  # strictly increasing in alpha, every step
    point = state.to_levels(central)
    np.testing.assert_allclose(levels[alpha.index(0.5)], point, rtol=1e-12)
    assert np.all(levels[0] < point) and np.all(point < levels[-1])


def test_quantile_spread_scales_with_the_series_scale():
    central = np.array([1.0, 2.0, 3.0])
    narrow = quantile_levels(_state(kind="none", scale=1.0), central, _residuals(), [0.1, 0.9])
    wide = quantile_levels(_state(kind="none", scale=3.0), central, _residuals(), [0.1, 0.9])
    np.testing.assert_allclose(wide - central, 3.0 * (narrow - central), rtol=1e-12)
    np.testing.assert_allclose(
        narrow[1] - central, np.quantile(_residuals()["step"], 0.9, axis=0), rtol=1e-12
    )
