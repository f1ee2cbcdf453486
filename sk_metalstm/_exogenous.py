"""Exogenous covariates: alignment with the target's increments (pandas/numpy only).

Row ``t`` of a feature matrix pairs the target increment at time ``t`` with the
covariates of the *next* time point ``t + 1``: covariates are known in advance
(calendar effects, other assets' lagged returns), so the last input row of a
forecast carries the covariates of the first forecast step. That row is filled
in at predict time from the ``X`` passed to ``predict``.

``X`` is split per instance the way ``y`` is (``sk_metalstm._series``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sktime.forecasting.base import ForecastingHorizon

from sk_metalstm._series import SINGLE, instance_frames, time_index_kind, where

__all__ = [
    "check_columns",
    "check_exogenous",
    "check_time_index",
    "exogenous_pieces",
    "feature_matrix",
    "first_step_covariates",
]


#: Beyond this a column's variance overflows float64 (values are squared).
_LARGEST_COVARIATE = 1e150


def check_exogenous(X: pd.DataFrame, where: str) -> None:
    """Reject non-numeric, non-finite or duplicated covariates with a message naming them."""
    non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if non_numeric:
        raise ValueError(f"X{where} has non-numeric columns {non_numeric}; encode them first.")
    values = X.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"X{where} contains NaN or infinite values.")
    largest = float(np.max(np.abs(values), initial=0.0))
    if largest > _LARGEST_COVARIATE:  # its variance would overflow float64
        raise ValueError(
            f"X{where} has values up to {largest:.3g}, too large to standardise in "
            "float64; rescale those columns (e.g. divide by a power of ten)."
        )
    duplicated = X.index.duplicated()
    if duplicated.any():  # X.loc would return several rows for one time point
        raise ValueError(
            f"X{where} has a duplicated time index, e.g. {X.index[duplicated][0]!r}; "
            "give each time point one row."
        )


def check_time_index(x_index: pd.Index, times: pd.Index, where: str) -> None:
    """``X`` must be indexed by the same kind of time as ``y``.

    pandas finds a Timestamp in a PeriodIndex but not the reverse, so mixed
    kinds were refused at fit as missing rows and accepted at predict.
    """
    if time_index_kind(x_index) != time_index_kind(times):
        if isinstance(x_index, pd.DatetimeIndex) and isinstance(times, pd.DatetimeIndex):
            # Only the time zones differ; a panel's X converts its time level.
            level = ", level=-1" if where else ""
            zone = repr(str(times.tz)) if times.tz else "None"
            method = "tz_convert" if x_index.tz and times.tz else "tz_localize"
            fix = f"X.{method}({zone}{level})"
        else:
            fix = "X.to_timestamp() or X.to_period()"
        raise ValueError(
            f"X{where} is indexed by {time_index_kind(x_index)}, but y by "
            f"{time_index_kind(times)}; index X by the same kind of time as y "
            f"(e.g. {fix})."
        )


def feature_matrix(
    increments: np.ndarray, times: pd.Index, X: pd.DataFrame | None, where: str
) -> np.ndarray:
    """Stack increments with the next time point's covariates.

    Parameters
    ----------
    increments : 1-D array
        Target increments at ``times``.
    times : pd.Index
        Time point of each increment.
    X : DataFrame or None
        Covariates indexed by time; must cover ``times[1:]``.
    where : str
        Names the series in error messages.

    Returns
    -------
    array
        ``increments`` unchanged without ``X``; else (len, 1 + n_columns), whose
        last row has NaN features until predict supplies them.
    """
    if X is None:
        return increments
    check_time_index(X.index, times, where)
    next_times = times[1:]
    missing = next_times.difference(X.index)
    if len(missing):
        raise ValueError(
            f"X{where} has no rows for {len(missing)} time point(s) of y, e.g. "
            f"{list(missing[:3])}; X must cover every time point of y."
        )
    features = np.full((len(increments), X.shape[1]), np.nan)
    features[:-1] = X.loc[next_times].to_numpy(dtype=np.float64)
    return np.column_stack([increments, features])


def exogenous_pieces(X: pd.DataFrame | None, keys: list[Any]) -> dict[Any, pd.DataFrame | None]:
    """The covariates of each series in ``keys`` (``None`` without ``X``)."""
    if X is None:
        return dict.fromkeys(keys)
    check_exogenous(X, "")
    frames = instance_frames(X)
    pieces = {}
    for key in keys:
        # A multi-column pretrain panel names series (instance..., column):
        # only such tuples fall back to their instance (a label "ABC" is not "AB").
        owner = key
        if key not in frames and isinstance(key, tuple):
            owner = key[:-1] if len(key) > 2 else key[0]
        if owner not in frames:
            # A tuple is a hierarchical instance or (instance, column): name both.
            also = f", nor for {owner!r}" if owner != key else ""
            raise ValueError(f"X has no rows for instance {key!r} of y{also}.")
        pieces[key] = frames[owner]
    return pieces


def check_columns(expected: list[str] | None, X: pd.DataFrame | None) -> None:
    """``X`` must have the columns the meta-learner was trained with (or be absent)."""
    given = None if X is None else list(X.columns)
    if expected is not None and given is None:
        raise ValueError(
            f"The meta-learner was trained with exogenous X (columns {expected}); "
            "pass X with the same columns."
        )
    if expected is None and given is not None:
        raise ValueError(
            "The meta-learner was trained without exogenous X, so X cannot be "
            "used; pretrain with X, or leave X out."
        )
    if not _same_names(expected, given):
        raise ValueError(f"X has columns {given}, but the meta-learner expects {expected}.")


def _same_names(expected: list[Any] | None, given: list[Any] | None) -> bool:
    # pandas names a None column NaN; a saved or unpickled state holds another
    # NaN object, which list equality does not count as the same name.
    if expected is None or given is None:
        return expected is given
    return len(expected) == len(given) and all(
        a == b or (pd.isna(a) and pd.isna(b)) for a, b in zip(expected, given, strict=True)
    )


def first_step_covariates(
    X: pd.DataFrame | None, expected: list[str] | None, cutoffs: dict[Any, pd.Index], freq: Any
) -> dict[Any, np.ndarray | None]:
    """Covariates of the first time point after each series' cutoff, from ``X``.

    ``expected`` are the columns the meta-learner was trained with (``None``:
    no covariates); ``freq`` is the forecasting horizon's (``None``: each
    cutoff's).
    """
    if expected is None:
        if X is not None:
            # fit refuses such X; predict keeps sktime's pass-through of X working.
            warnings.warn(
                "X passed to predict is ignored: the meta-learner was trained without "
                "exogenous X (pretrain with X to use covariates).",
                UserWarning,
                stacklevel=4,
            )
        return dict.fromkeys(cutoffs)
    if X is None:
        raise ValueError(
            "This forecaster uses exogenous X: pass X to predict (and to predict_interval, "
            "predict_quantiles, predict_var, predict_proba), covering the "
            "forecast period from the first step after the cutoff."
        )
    check_columns(expected, X)
    check_exogenous(X, " passed to predict")
    frames = instance_frames(X)
    rows = {}
    for key, cutoff in cutoffs.items():
        if key is not SINGLE and key not in frames:
            # A plain X for a panel y would give every instance one series'
            # covariates; fit refuses it too (through sktime).
            got = "a single series" if SINGLE in frames else "a panel without it"
            raise ValueError(
                f"X has no rows for instance {key!r} of y (X is {got}): a panel y needs X "
                "with the same instance levels in its index, covering each instance's "
                "forecast period."
            )
        if key in frames:
            check_time_index(frames[key].index, cutoff, where(key))
        first = ForecastingHorizon(
            [1], is_relative=True, freq=freq or getattr(cutoff, "freq", None)
        )
        t1 = first.to_absolute_index(cutoff)[0]
        if key not in frames or t1 not in frames[key].index:
            index = frames[key].index if key in frames else None
            numpy_hint = (
                " (a numpy X is indexed 0, 1, ... by sktime, not by the forecast's time "
                "points: pass a DataFrame indexed like the forecast period)"
                if isinstance(index, pd.RangeIndex) and index.start == 0 and len(index)
                else ""
            )
            raise ValueError(
                f"X{where(key)} has no row for {t1}, the first step after the cutoff; "
                "X must cover the forecast period from that step on (the forecaster reads "
                "that step's covariates for every step of fh, also when fh starts "
                f"later){numpy_hint}."
            )
        rows[key] = frames[key].loc[t1].to_numpy(dtype=np.float64)
    return rows
