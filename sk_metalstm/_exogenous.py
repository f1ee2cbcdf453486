"""Exogenous covariates: alignment with the target's increments (pandas/numpy only).

Row ``t`` of a feature matrix pairs the target increment at time ``t`` with the
covariates of the *next* time point ``t + 1``: covariates are known in advance
(calendar effects, other assets' lagged returns), so the last input row of a
forecast carries the covariates of the first forecast step. That row is filled
in at predict time from the ``X`` passed to ``predict``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["instance_frames", "feature_matrix", "check_exogenous"]


def instance_frames(X: pd.DataFrame, single_key: Any) -> dict[Any, pd.DataFrame]:
    """One DataFrame per instance of ``X`` (``single_key`` for a plain frame)."""
    if not isinstance(X.index, pd.MultiIndex):
        return {single_key: X}
    levels = list(range(X.index.nlevels - 1))
    frames = {}
    for key, group in X.groupby(level=levels, sort=False):
        if isinstance(key, tuple) and len(key) == 1:
            key = key[0]
        frames[key] = group.droplevel(levels)
    return frames


def check_exogenous(X: pd.DataFrame, where: str) -> None:
    """Reject non-numeric or non-finite covariates with a message naming them."""
    non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if non_numeric:
        raise ValueError(f"X{where} has non-numeric columns {non_numeric}; encode them first.")
    values = X.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"X{where} contains NaN or infinite values.")


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
