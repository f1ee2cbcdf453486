"""_series: splitting series and panels into instances, and checking each one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sk_metalstm._series import (
    SINGLE,
    check_common_frequency,
    check_regular,
    check_series,
    checked_instances,
    frequency,
    instance_frames,
    split_instances,
)

DAYS = pd.date_range("2020-01-01", periods=6, freq="D")


def _series(values=(1.0, 2.0, 4.0, 3.0, 5.0, 6.0), index=DAYS) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=np.float64), index=index)


def _panel(pieces: dict, names: list[str], columns: dict | None = None) -> pd.DataFrame:
    frame = pd.concat(pieces, names=names).to_frame("y")
    return frame.assign(**columns) if columns else frame


# -------------------------------------------------------------- split_instances
def test_split_series_is_one_single_instance():
    y = _series()
    pieces = split_instances(y)
    assert list(pieces) == [SINGLE]
    assert pieces[SINGLE] is y


def test_split_single_column_panel_keys_instances_by_name():
    y = _series()
    panel = _panel({"a": y, "b": 2 * y}, ["instance", "time"])
    pieces = split_instances(panel)
    assert list(pieces) == ["a", "b"]  # names, not pandas' 1-tuples
    for key, factor in (("a", 1), ("b", 2)):
        assert not isinstance(pieces[key].index, pd.MultiIndex)  # time only
        pd.testing.assert_index_equal(pieces[key].index, y.index.rename("time"))
        np.testing.assert_array_equal(pieces[key].to_numpy(), factor * y.to_numpy())


def test_split_multi_column_panel_gives_one_series_per_instance_and_column():
    y = _series()
    panel = _panel({"a": y, "b": 2 * y}, ["instance", "time"], {"z": lambda d: 10 * d["y"]})
    pieces = split_instances(panel)
    assert list(pieces) == [("a", "y"), ("a", "z"), ("b", "y"), ("b", "z")]
    np.testing.assert_array_equal(pieces[("b", "z")].to_numpy(), 20 * y.to_numpy())
    assert pieces[("a", "y")].name == "y"


def test_split_hierarchical_panel_keys_by_every_instance_level():
    y = _series()
    pieces = {("r1", "a"): y, ("r1", "b"): 2 * y, ("r2", "a"): 3 * y}
    panel = _panel(pieces, ["region", "store", "time"])
    split = split_instances(panel)
    assert list(split) == [("r1", "a"), ("r1", "b"), ("r2", "a")]
    np.testing.assert_array_equal(split[("r2", "a")].to_numpy(), 3 * y.to_numpy())
    assert list(split[("r1", "b")].index) == list(y.index)  # both instance levels dropped
    # With several columns the column name is appended to the instance levels.
    wide = split_instances(panel.assign(z=1.0))
    assert list(wide)[:2] == [("r1", "a", "y"), ("r1", "a", "z")]
    assert len(wide) == 6


def test_instance_frames_split_covariates_like_y():
    y = _series()
    X = _panel({"a": y, "b": 2 * y}, ["instance", "time"], {"z": lambda d: -d["y"]})
    frames = instance_frames(X)
    assert list(frames) == ["a", "b"]
    assert list(frames["b"].columns) == ["y", "z"]  # every column stays together
    np.testing.assert_array_equal(frames["b"]["z"].to_numpy(), -2 * y.to_numpy())
    assert not isinstance(frames["a"].index, pd.MultiIndex)
    plain = y.to_frame("x")
    assert list(instance_frames(plain)) == [SINGLE]
    pd.testing.assert_frame_equal(instance_frames(plain)[SINGLE], plain)


# ----------------------------------------------------------------- check_series
@pytest.mark.parametrize(
    "values,index,match",
    [
        ([], DAYS[:0], "is empty; MetaLSTMForecaster needs at least w \\+ h = 4 points"),
        ([1.0, 2.0, 3.0], DAYS[:3], "has 3 points; MetaLSTMForecaster needs at least w \\+ h = 4"),
        ([1.0, np.nan, 3.0, 4.0], DAYS[:4], "contains NaN or infinite values"),
        ([1.0, np.inf, 3.0, 4.0], DAYS[:4], "contains NaN or infinite values"),
        ([1.0, 2.0, 3.0, 4.0], DAYS[[0, 1, 1, 2]], "has a duplicated time index"),
        ([1.0, 2.0, 3.0, 4.0], DAYS[[0, 2, 1, 3]], "has an unsorted time index; sort it first"),
        ([2.5, 2.5, 2.5, 2.5], DAYS[:4], "is constant; there is nothing to forecast"),
    ],
    ids=["empty", "too_short", "nan", "inf", "duplicated", "unsorted", "constant"],
)
def test_check_series_names_the_problem_and_the_instance(values, index, match):
    series = _series(values, index)
    with pytest.raises(ValueError, match=f"^Series \\(instance 'a'\\) {match}"):
        check_series(series, "a", 4, "w + h")
    with pytest.raises(ValueError, match=f"^Series {match}"):  # a single series: no instance
        check_series(series, SINGLE, 4, "w + h")


def test_check_series_accepts_a_usable_series():
    check_series(_series(), "a", 6, "w + h")  # exactly the minimum length
    check_series(_series().reset_index(drop=True), SINGLE, 4, "w + h")


# ------------------------------------------------------------------- frequencies
def test_frequency_of_regular_inferable_and_irregular_indexes():
    assert frequency(DAYS) == pd.offsets.Day()
    # A DatetimeIndex without freq (e.g. read from a file) whose dates imply one.
    bare = pd.DatetimeIndex(list(DAYS))
    assert bare.freq is None and frequency(bare) == pd.offsets.Day()
    business = pd.bdate_range("2024-01-01", periods=10)
    assert frequency(pd.DatetimeIndex(list(business))) == pd.offsets.BDay()
    assert frequency(business.delete(3)) is None  # a missing business day
    assert frequency(pd.DatetimeIndex(list(DAYS[:2]))) is None  # too few dates to infer
    assert frequency(pd.period_range("2000-01", periods=4, freq="M")) == pd.offsets.MonthEnd()
    assert frequency(pd.RangeIndex(5)) is None


def test_check_regular_refuses_irregular_dates_and_integer_steps_other_than_one():
    check_regular(DAYS, "a")
    check_regular(pd.DatetimeIndex(list(DAYS)), "a")  # inferable
    check_regular(pd.RangeIndex(5), "a")
    check_regular(pd.Index([2001, 2002, 2003]), "a")  # years as integers
    # sktime would put the next forecast at 11, a time the series never has.
    with pytest.raises(ValueError, match="does not advance by 1 \\(from 0 to 5\\)"):
        check_regular(pd.Index([0, 5, 10]), "a")
    with pytest.raises(ValueError, match="from 2 to 4"):
        check_regular(pd.Index([1, 2, 4, 5]), "a")
    irregular = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-05", "2020-01-06"])
    with pytest.raises(ValueError, match="series \\(instance 'a'\\) has an irregular") as info:
        check_regular(irregular, "a")
    assert "asfreq('B')" in str(info.value) and "reset_index(drop=True)" in str(info.value)
    with pytest.raises(ValueError, match="^The series has an irregular DatetimeIndex"):
        check_regular(irregular, SINGLE)


def test_check_common_frequency():
    daily = _series()
    weekly = _series(index=pd.date_range("2020-01-05", periods=6, freq="W"))
    check_common_frequency({"a": daily, "b": 2 * daily})
    # Series without a known frequency (no dates) do not count as another one.
    check_common_frequency({"a": daily, "b": daily.reset_index(drop=True)})
    with pytest.raises(
        ValueError, match="different frequencies: 'D' \\(e.g. instance 'a'\\), 'W-SUN'"
    ):
        check_common_frequency({"a": daily, "c": daily, "b": weekly})


def test_checked_instances_checks_every_series():
    y = _series()
    weekly = _series(index=pd.date_range("2020-01-05", periods=6, freq="W"))
    mixed = pd.concat({"a": y, "b": weekly}, names=["instance", "time"]).to_frame("y")
    assert list(checked_instances(mixed, 4, "w + h", same_frequency=False)) == ["a", "b"]
    with pytest.raises(ValueError, match="different frequencies"):
        checked_instances(mixed, 4, "w + h", same_frequency=True)
    with pytest.raises(ValueError, match="instance 'a'.* has 6 points.*= 7"):
        checked_instances(mixed, 7, "w + h", same_frequency=False)
    with pytest.raises(ValueError, match="^y is empty"):
        checked_instances(mixed.iloc[:0], 4, "w + h", same_frequency=False)
