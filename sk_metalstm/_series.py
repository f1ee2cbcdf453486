"""Series and panels as the forecaster reads them: one series per instance, checked.

sktime hands a forecaster a ``pd.Series`` or a (hierarchical) panel with a
``MultiIndex`` whose last level is time. These helpers split both (and the
exogenous ``X`` that goes with them) into per-instance pieces, and check what
forecasting needs of each: enough points, finite values, a sorted, unique and
regular time index, one frequency across a panel.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from sk_metalstm._stacklevel import caller_stacklevel

__all__ = [
    "SINGLE",
    "checked_instances",
    "check_common_frequency",
    "check_continues",
    "check_regular",
    "check_series",
    "frequency",
    "instance_frames",
    "split_instances",
    "time_index_kind",
    "warn_if_increments",
    "where",
]


class _SingleSeries:
    """The key of the only series of non-panel data (never shown to users).

    Not a string: a panel instance may be named anything, and a name equal to
    the key made the panel look like a single series.
    """

    def __repr__(self) -> str:
        return "SINGLE"

    def __reduce__(self) -> str:
        # Pickled and deep-copied as a reference to the module's one instance.
        return "SINGLE"


SINGLE = _SingleSeries()


def where(key: Any) -> str:
    """`` (instance 'a')`` for panel series, empty for a single series (error messages)."""
    return "" if key is SINGLE else f" (instance {key!r})"


def _instance_groups(data: pd.Series | pd.DataFrame) -> Iterator[tuple[Any, Any]]:
    """(instance key, its rows indexed by time) for plain or panel ``data``."""
    if not isinstance(data.index, pd.MultiIndex):
        yield SINGLE, data
        return
    levels = list(range(data.index.nlevels - 1))
    for level in levels:
        labels = data.index.get_level_values(level)
        if labels.hasnans:  # groupby would drop those rows silently
            name = data.index.names[level]
            at = f" {name!r}" if name is not None else f" {level}"
            raise ValueError(
                f"The instance level{at} of the index has a missing (NaN) label: "
                "give every instance a name."
            )
    for key, group in data.groupby(level=levels, sort=False):
        if isinstance(key, tuple) and len(key) == 1:
            key = key[0]  # pandas gives 1-tuples; key instances by their name
        yield key, group.droplevel(levels)


def split_instances(y: pd.Series | pd.DataFrame) -> dict[Any, pd.Series]:
    """One ``pd.Series`` per instance of a series or a (hierarchical) panel.

    A panel with several columns (accepted by ``pretrain``) gives one series per
    (instance, column).
    """
    if isinstance(y, pd.Series):
        return {SINGLE: y}
    pieces = {}
    for key, group in _instance_groups(y):
        levels = key if isinstance(key, tuple) else (key,)
        for column in y.columns:
            name = key if y.shape[1] == 1 else (*levels, column)
            pieces[name] = group[column]
    return pieces


def instance_frames(X: pd.DataFrame) -> dict[Any, pd.DataFrame]:
    """One covariate DataFrame per instance of ``X`` (``SINGLE`` for a plain frame)."""
    return dict(_instance_groups(X))


def check_series(series: pd.Series, key: Any, min_length: int, rule: str) -> None:
    """Raise ``ValueError`` naming what makes ``series`` unusable for forecasting.

    ``rule`` spells out ``min_length`` for the message (e.g.
    ``"window_length + horizon + 1"``).
    """
    values = series.to_numpy(dtype=np.float64)
    at = where(key)
    if len(values) == 0:
        raise ValueError(
            f"Series{at} is empty; MetaLSTMForecaster needs at least {rule} = {min_length} points."
        )
    if len(values) < min_length:
        raise ValueError(
            f"Series{at} has {len(values)} points; MetaLSTMForecaster needs at least "
            f"{rule} = {min_length}."
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"Series{at} contains NaN or infinite values.")
    if not series.index.is_unique:
        raise ValueError(f"Series{at} has a duplicated time index.")
    if not series.index.is_monotonic_increasing:
        raise ValueError(f"Series{at} has an unsorted time index; sort it first.")
    if np.ptp(values) == 0:
        raise ValueError(f"Series{at} is constant; there is nothing to forecast beyond its value.")


def frequency(index: pd.Index) -> pd.DateOffset | None:
    """The time frequency of ``index``: its own, else inferred; ``None`` if irregular."""
    freq = getattr(index, "freq", None)
    if freq is None and isinstance(index, pd.DatetimeIndex) and len(index) >= 3:
        try:
            freq = pd.infer_freq(index)
        except (TypeError, ValueError):
            freq = None
    return None if freq is None else pd.tseries.frequencies.to_offset(freq)


def time_index_kind(index: pd.Index) -> str:
    """What kind of time an index holds, as a user would name it."""
    if isinstance(index, pd.DatetimeIndex):
        return f"DatetimeIndex (time zone {index.tz})" if index.tz else "DatetimeIndex"
    if isinstance(index, pd.PeriodIndex):
        return f"PeriodIndex (freq {index.freqstr})"
    return "integer index" if pd.api.types.is_integer_dtype(index) else type(index).__name__


def check_regular(index: pd.Index, key: Any) -> None:
    """Forecast times must be derivable from the index.

    A DatetimeIndex needs a frequency; an integer index must advance by 1,
    since sktime counts integer horizons in index units.
    """
    if isinstance(index, pd.DatetimeIndex) and frequency(index) is None:
        raise ValueError(
            f"The series{where(key)} has an irregular DatetimeIndex (no freq, and none can be "
            "inferred, e.g. dates missing from a business-day series), so forecast dates "
            "cannot be derived. Fill the gaps at the series' own frequency (e.g. "
            "y.asfreq('B').ffill() for business days, 'MS' for month starts; in a panel, "
            "series by series), or index it by position (y.reset_index(drop=True))."
        )
    if pd.api.types.is_unsigned_integer_dtype(index):
        raise ValueError(
            f"The series{where(key)} has an unsigned integer index ({index.dtype}), whose "
            "forecast times sktime cannot represent; convert it with "
            "y.index.astype('int64'), or use y.reset_index(drop=True)."
        )
    if pd.api.types.is_integer_dtype(index) and len(index) > 1:
        steps = np.diff(index.to_numpy())
        if np.any(steps != 1):
            at = int(np.flatnonzero(steps != 1)[0])
            raise ValueError(
                f"The integer index of the series{where(key)} does not advance by 1 (from "
                f"{index[at]} to {index[at + 1]}): sktime counts integer horizons in index "
                "units, so forecasts would land on times that are not in the series' grid. "
                "Use y.reset_index(drop=True), or a DatetimeIndex/PeriodIndex with a freq."
            )


def check_continues(seen: pd.Index, new: pd.Index, key: Any) -> None:
    """Refuse update data that leave a gap after the last time point seen.

    For dates and periods with a known frequency, and integer indexes (step 1):
    there the next point is defined, and a gap would otherwise be reported as
    an irregular index of data that are themselves regular.
    """
    if pd.api.types.is_integer_dtype(seen):
        freq: Any = 1
    elif isinstance(seen, pd.DatetimeIndex | pd.PeriodIndex):
        freq = frequency(seen)
        if freq is None:
            return
    else:
        return
    later, expected = new[new > seen[-1]], seen[-1] + freq
    if len(later) and later[0] != expected:
        raise ValueError(
            f"update data{where(key)} start at {later[0]}, but the point after the last "
            f"one seen ({seen[-1]}) is {expected}: update must continue the "
            "series without a gap. Pass the missing points too (filled, e.g. with the "
            "last value, where there are none)."
        )


def check_common_frequency(pieces: dict[Any, pd.Series]) -> None:
    """Reject a panel whose series have different (known) time frequencies."""
    frequencies: dict[str, Any] = {}
    for key, series in pieces.items():
        freq = frequency(series.index)
        if freq is not None:
            frequencies.setdefault(freq.freqstr, key)
    if len(frequencies) > 1:
        found = ", ".join(f"{f!r} (e.g. instance {k!r})" for f, k in frequencies.items())
        raise ValueError(
            f"The series of the panel have different frequencies: {found}. A panel "
            "forecast needs one frequency; resample the series to a common one, or fit "
            "one forecaster per frequency (pretrain may mix frequencies)."
        )


def checked_instances(
    y: pd.Series | pd.DataFrame, min_length: int, rule: str, same_frequency: bool
) -> dict[Any, pd.Series]:
    """``split_instances`` with every series checked (``check_series``).

    ``same_frequency`` also rejects irregular dates, and panels whose series have
    different frequencies (their forecasts would need one horizon each).
    """
    pieces = split_instances(y)
    if not pieces:
        raise ValueError(f"y is empty; MetaLSTMForecaster needs at least {min_length} points.")
    for key, series in pieces.items():
        check_series(series, key, min_length, rule)
        if same_frequency:
            check_regular(series.index, key)
    if same_frequency and len(pieces) > 1:
        check_common_frequency(pieces)
    return pieces


#: Price levels, rates and exchange rates are persistent: their lag-1
#: autocorrelation is close to 1 over any stretch. Returns and changes are not.
_INCREMENT_AUTOCORRELATION = 0.5
#: Returns change sign about every other step; a negative rate near its floor
#: (persistent or not) rarely crosses zero.
_INCREMENT_SIGN_CHANGES = 0.2
#: Fewer points say too little about persistence.
_INCREMENT_MIN_POINTS = 30


def lag1_autocorrelation(values: np.ndarray) -> float:
    """Lag-1 autocorrelation of ``values`` (NaN for a constant series)."""
    centred = values - values.mean()
    denominator = float(centred @ centred)
    return float(centred[1:] @ centred[:-1]) / denominator if denominator > 0 else np.nan


def warn_if_increments(pieces: dict[Any, pd.Series], transform: str) -> None:
    """Warn when ``transform="auto"`` would difference series that look like returns.

    Such a series (negative values, no persistence) gets ``"difference"``, and
    its forecast is then centred on its last value: yesterday's return.
    """
    if transform != "auto":
        return
    found = []
    for key, series in pieces.items():
        values = series.to_numpy(dtype=np.float64)
        if len(values) < _INCREMENT_MIN_POINTS or np.all(values > 0):
            continue
        sign_changes = np.mean(np.signbit(values[1:]) != np.signbit(values[:-1]))
        rho = lag1_autocorrelation(values)
        if rho < _INCREMENT_AUTOCORRELATION and sign_changes >= _INCREMENT_SIGN_CHANGES:
            found.append((key, rho))
    if not found:
        return
    key, rho = found[0]
    which = (
        "y looks"
        if key is SINGLE
        else f"{len(found)} series of y (first: instance {key!r}) look"
    )
    warnings.warn(
        f"{which} like returns or changes, not levels: crossing zero often, with "
        f"a lag-1 autocorrelation of {rho:.2f}, where prices and rates are close to 1. "
        "transform='auto' differences such a series, so its forecasts are centred on its "
        "last value. The forecaster models levels: pass prices (for log returns r, "
        "100 * np.exp(r.cumsum())), or choose transform= yourself.",
        UserWarning,
        stacklevel=caller_stacklevel(),
    )
