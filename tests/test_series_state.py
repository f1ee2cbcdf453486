"""SeriesState: the immutable record of one fitted series, and how update extends it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from sk_metalstm._series import SINGLE
from sk_metalstm._series_state import SeriesState
from sk_metalstm.windowing import to_increments


def _daily(values, start="2020-01-01", freq: str | None = "D") -> pd.Series:
    index = pd.date_range(start, periods=len(values), freq="D")
    if freq is None:
        index = pd.DatetimeIndex(list(index))  # as read from a file: no freq attribute
    return pd.Series(values, index=index)


# ------------------------------------------------------------------------ start
def test_start_keeps_the_last_points_as_float64_with_a_frequency():
    y = _daily(np.arange(1, 11), freq=None)  # int64 values, freq-less but regular dates
    state = SeriesState.start("a", y, None, "auto", keep=4)
    assert state.key == "a" and state.kind == "log_return"
    assert state.tail.dtype == np.float64
    np.testing.assert_array_equal(state.tail.to_numpy(), [7.0, 8.0, 9.0, 10.0])
    assert list(state.tail.index) == list(y.index[-4:])
    assert state.tail.index.freq == pd.offsets.Day()  # forecast dates need it
    assert state.cutoff[0] == y.index[-1] and state.cutoff.freq == pd.offsets.Day()
    assert state.x_tail is None and state.params is None and state.loc is None
    y.iloc[-1] = 1000  # the tail is a copy, not a view of the user's series
    assert state.tail.iloc[-1] == 10.0


def test_start_keeps_covariates_at_the_tail_times_only():
    y = _daily(np.arange(1.0, 11.0))
    X = pd.DataFrame({"x": np.arange(10.0) * 10}, index=y.index)
    state = SeriesState.start("a", y, X, "difference", keep=3)
    pd.testing.assert_frame_equal(state.x_tail, X.iloc[-3:])


def test_start_resolves_the_transform_on_the_whole_series():
    # The kept tail is positive; an earlier zero still rules out log-returns.
    y = _daily([5.0, 0.0, 3.0, 4.0, 5.0, 6.0])
    with pytest.raises(ValueError, match="strictly positive.*minimum of 0.0"):
        SeriesState.start("a", y, None, "log_return", keep=3)
    assert SeriesState.start("a", y, None, "auto", keep=3).kind == "difference"
    assert SeriesState.start("a", y.iloc[2:], None, "auto", keep=3).kind == "log_return"


# --------------------------------------------------------------------- appended
def test_appended_later_values_win_and_the_original_is_unchanged():
    state = SeriesState.start("a", _daily(np.arange(1.0, 7.0)), None, "auto", keep=4)
    before = state.tail.copy()
    new = pd.Series([50.0, 70.0], index=pd.DatetimeIndex(["2020-01-06", "2020-01-07"]))
    later = state.appended(new, None, keep=4)
    # 2020-01-06 was 6.0 and is now 50.0; 2020-01-07 is new; still 4 points.
    np.testing.assert_array_equal(later.tail.to_numpy(), [4.0, 5.0, 50.0, 70.0])
    assert later.tail.index[-1] == pd.Timestamp("2020-01-07")
    assert later.tail.index.freq == pd.offsets.Day()
    assert later.kind == state.kind and later.key == state.key
    pd.testing.assert_series_equal(state.tail, before)  # a new record; the old one stays
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.tail = later.tail  # type: ignore[misc]


def test_appended_extends_covariates_too():
    y = _daily(np.arange(1.0, 7.0))
    X = pd.DataFrame({"x": np.arange(6.0)}, index=y.index)
    state = SeriesState.start("a", y, X, "difference", keep=3)
    new_x = pd.DataFrame({"x": [-1.0, 99.0]}, index=pd.date_range("2020-01-06", periods=2))
    later = state.appended(_daily([7.0], start="2020-01-07"), new_x, keep=3)
    np.testing.assert_array_equal(later.x_tail["x"].to_numpy(), [4.0, -1.0, 99.0])
    np.testing.assert_array_equal(state.x_tail["x"].to_numpy(), [3.0, 4.0, 5.0])


@pytest.mark.parametrize(
    "values,start,match",
    [
        # Skips 2 days after the last point seen (2020-01-06).
        ([7.0, 8.0], "2020-01-09", "\\(instance 'a'\\) start at 2020-01-09.* is 2020-01-07"),
        ([7.0, np.nan], "2020-01-07", "update data \\(instance 'a'\\) contain NaN or infinite"),
        ([7.0, np.inf], "2020-01-07", "contain NaN or infinite"),
        ([7.0, 0.0], "2020-01-07", "non-positive values.*log-returns.*'difference'"),
        ([-7.0], "2020-01-07", "non-positive values"),
    ],
    ids=["gap", "nan", "inf", "zero", "negative"],
)
def test_appended_refuses_bad_update_data(values, start, match):
    state = SeriesState.start("a", _daily(np.arange(1.0, 7.0)), None, "log_return", keep=4)
    with pytest.raises(ValueError, match=match):
        state.appended(_daily(values, start=start), None, keep=4)


def test_appended_refuses_update_data_with_a_gap_of_their_own():
    # Continuing from the cutoff, but with a date missing inside the new data.
    state = SeriesState.start("a", _daily(np.arange(1.0, 7.0)), None, "log_return", keep=4)
    new = pd.Series([7.0, 8.0], index=pd.to_datetime(["2020-01-07", "2020-01-09"]))
    with pytest.raises(ValueError, match="instance 'a'.*irregular DatetimeIndex"):
        state.appended(new, None, keep=4)


def test_appended_accepts_non_positive_values_under_difference():
    state = SeriesState.start(SINGLE, _daily(np.arange(1.0, 7.0)), None, "difference", keep=4)
    later = state.appended(_daily([0.0, -3.0], start="2020-01-07"), None, keep=4)
    np.testing.assert_array_equal(later.tail.to_numpy(), [5.0, 6.0, 0.0, -3.0])


# ------------------------------------------------------------ levels, features
@pytest.mark.parametrize("kind", ["log_return", "difference", "none"])
def test_to_levels_inverts_increments_exactly(kind):
    state = SeriesState.start("a", _daily([3.0, 5.0, 4.0, 8.0]), None, kind, keep=3)
    future = np.array([[9.0, 7.5, 12.0], [2.0, 8.0, 8.0]])  # e.g. two quantile rows
    last = np.full((2, 1), 8.0)
    # Increments along the last axis, as the network outputs them for steps 1..h.
    steps = future if kind == "none" else to_increments(np.hstack([last, future]), kind)
    np.testing.assert_allclose(state.to_levels(steps), future, rtol=1e-12)
    np.testing.assert_allclose(state.to_levels(steps[0]), future[0], rtol=1e-12)  # 1-D too


def test_to_levels_refuses_levels_beyond_float64():
    state = SeriesState.start("a", _daily([3.0, 5.0, 4.0, 8.0]), None, "log_return", keep=3)
    with pytest.raises(ValueError, match="not finite in float64.*Rescale it"):
        state.to_levels(np.array([800.0]))


def test_features_are_the_tail_increments_with_next_step_covariates():
    y = _daily([2.0, 4.0, 3.0, 6.0, 9.0])
    state = SeriesState.start("a", y, None, "log_return", keep=4)
    np.testing.assert_allclose(state.features(), np.log([3 / 4, 6 / 3, 9 / 6]), rtol=1e-12)
    none = SeriesState.start("a", y, None, "none", keep=4)
    np.testing.assert_array_equal(none.features(), [4.0, 3.0, 6.0, 9.0])
    X = pd.DataFrame({"u": [0.0, 10.0, 20.0, 30.0, 40.0], "v": 1.0}, index=y.index)
    with_x = SeriesState.start("a", y, X, "difference", keep=4)
    z = with_x.features()
    assert z.shape == (3, 3)
    np.testing.assert_array_equal(z[:, 0], [-1.0, 3.0, 3.0])
    # Row t pairs the increment at t with the covariates of t + 1 ...
    np.testing.assert_array_equal(z[:-1, 1:], [[30.0, 1.0], [40.0, 1.0]])
    assert np.all(np.isnan(z[-1, 1:]))  # ... unknown for the last row until predict
    np.testing.assert_array_equal(with_x.features(np.array([50.0, 2.0]))[-1], [3.0, 50.0, 2.0])
