"""Forecasts of fitted series: steps, output index, point forecasts and quantiles.

Forecasts are direct multi-step: the adapted network outputs increments for
steps 1..horizon, which map back exactly to levels. Quantiles are
split-conformal: residuals of adapted networks on meta-training query windows,
in task scale, scaled by each series' support scale.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sktime.forecasting.base import ForecastingHorizon

from sk_metalstm._series_state import SeriesState
from sk_metalstm.meta.adaptation import forecast_windows
from sk_metalstm.meta.base import MetaLearner

__all__ = [
    "forecast_steps",
    "forecasts",
    "increments",
    "output_index",
    "quantile_levels",
    "resolve_horizon",
]


def resolve_horizon(
    state: Any, horizon: int | None, fh: ForecastingHorizon | None, cutoff: Any = None
) -> int:
    """The largest forecast step: a pretrained ``state``'s, ``horizon``, or ``fh``'s reach."""
    if state is not None:
        return int(state.config["horizon"])
    if horizon is not None:
        return int(horizon)
    if fh is not None and (fh.is_relative or cutoff is not None):
        steps = fh.to_relative(cutoff) if cutoff is not None else fh
        return max(1, int(np.max(steps.to_numpy())))
    return 1


def forecast_steps(
    fh: ForecastingHorizon, cutoff: pd.Index, horizon: int
) -> tuple[np.ndarray, pd.Index]:
    """Forecast steps (1-based) and absolute index of ``fh`` after ``cutoff``."""
    # A relative fh already holds the steps; converting costs milliseconds.
    steps = (fh if fh.is_relative else fh.to_relative(cutoff)).to_numpy()
    if np.any(steps < 1):
        raise ValueError(
            "MetaLSTMForecaster forecasts out of sample only; fh must lie after "
            f"the cutoff, got relative steps {steps.tolist()}."
        )
    if np.any(steps > horizon):
        raise ValueError(
            f"fh reaches {int(steps.max())} steps ahead, beyond horizon={horizon}. "
            f"Set horizon >= {int(steps.max())} (or pass that fh to fit) and refit."
        )
    return steps, fh.to_absolute_index(cutoff)


def output_index(parts: Sequence[tuple[Any, pd.Index]], names: Sequence[Any] | None) -> pd.Index:
    """The index of forecasts for ``parts`` of (series key, forecast times).

    ``names`` ``None`` (a single series) gives the times themselves; a panel's
    rows are (instance..., time) tuples, built in one call for all series.
    """
    if names is None:
        return parts[0][1]
    rows = [
        (*(key if isinstance(key, tuple) else (key,)), t) for key, times in parts for t in times
    ]
    return pd.MultiIndex.from_tuples(rows, names=names)


def increments(
    states: Sequence[SeriesState],
    learner: MetaLearner,
    window_length: int,
    num_threads: int | None,
    x_next: dict[Any, np.ndarray | None],
) -> np.ndarray:
    """Forecast increments (n_series, horizon) in each series' own scale, in one batch."""
    windows = np.stack([s.scaled_window(window_length, x_next[s.key]) for s in states])
    out = forecast_windows(learner, [s.params for s in states], windows, num_threads)
    scales = np.array([s.target_scale for s in states])
    return out * scales[:, 1:] + scales[:, :1]


def quantile_levels(
    state: SeriesState, central: np.ndarray, residuals: dict[str, np.ndarray], alpha: list[float]
) -> np.ndarray:
    """Level quantiles (len(alpha), horizon) around the central increments.

    For increment transforms the quantiles of the cumulated increments are
    used: they map monotonically to levels, so quantiles never cross.
    """
    scale = state.target_scale[1]
    if state.kind == "none":
        return central[None, :] + np.quantile(residuals["step"], alpha, axis=0) * scale
    spread = np.quantile(residuals["cumulative"], alpha, axis=0) * scale
    cumulative = np.cumsum(central)[None, :] + spread
    return state.to_levels(np.diff(cumulative, axis=1, prepend=0.0))


def forecasts(
    states: Sequence[SeriesState],
    learner: MetaLearner,
    fh: ForecastingHorizon,
    *,
    horizon: int,
    window_length: int,
    num_threads: int | None,
    x_next: dict[Any, np.ndarray | None],
) -> Iterator[tuple[SeriesState, np.ndarray, pd.Index, np.ndarray]]:
    """(state, steps, forecast times, central increments) for every series.

    A relative ``fh`` counts from each series' own last point, whose cutoff
    carries the frequency that sktime's may lack.
    """
    central = increments(states, learner, window_length, num_threads, x_next)
    for state, row in zip(states, central, strict=True):
        steps, times = forecast_steps(fh, state.cutoff, horizon)
        yield state, steps, times, row
