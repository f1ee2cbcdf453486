"""Forecasts of fitted series: steps, output index, point forecasts, quantiles, variances.

Forecasts are direct multi-step: the adapted network outputs a location and a
scale for the increment of each step 1..horizon (``sk_metalstm.distribution``);
locations map back exactly to levels. The forecast distribution of the level
``k`` steps ahead is ``sum of locations + cumulative scale * Z_k``, with ``Z_k``
the distribution of standardised calibration residuals (``meta/calibration.py``;
its quantiles from ``_conformal.py``), mapped through the inverse transform.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sktime.forecasting.base import ForecastingHorizon

from sk_metalstm._conformal import conformal_quantiles
from sk_metalstm._series import SINGLE, where
from sk_metalstm._series_state import SeriesState
from sk_metalstm._stacklevel import caller_stacklevel
from sk_metalstm.distribution import location as location_of
from sk_metalstm.distribution import scale_of_outputs
from sk_metalstm.meta.adaptation import forecast_windows
from sk_metalstm.meta.base import MetaLearner
from sk_metalstm.meta.calibration import cumulative_scale
from sk_metalstm.windowing import SCALED_BOUND

__all__ = [
    "FLAT_SCALE_FLOOR",
    "Forecast",
    "check_reach",
    "forecast_steps",
    "forecasts",
    "grid_distribution",
    "in_whole_steps",
    "increments",
    "level_variance",
    "levels_at",
    "output_index",
    "per_series",
    "proba_levels",
    "quantile_levels",
    "relative_steps",
    "residual_quantiles",
    "resolve_horizon",
    "variance_levels",
]


class Forecast(NamedTuple):
    """One series' forecast increments for steps 1..horizon, in the series' own units."""

    location: np.ndarray
    scale: np.ndarray


def resolve_horizon(
    state: Any,
    horizon: int | None,
    fh: ForecastingHorizon | None,
    cutoffs: Sequence[pd.Index] = (),
) -> int:
    """The largest forecast step: a pretrained ``state``'s, ``horizon``, or ``fh``'s reach.

    An absolute ``fh`` reaches furthest from the series that ends first, so its
    reach is the largest over every series' own cutoff in ``cutoffs``.
    """
    if state is not None:
        return int(state.config["horizon"])
    if horizon is not None:
        return int(horizon)
    if fh is not None and len(cutoffs):
        return max(1, *(int(np.max(relative_steps(fh, cutoff))) for cutoff in cutoffs))
    if fh is None:
        return 1
    if fh.is_relative and _whole_steps(fh.to_numpy()):
        return max(1, int(np.max(fh.to_numpy())))
    # No cutoff to count from: only pretrain gets here, on series whose dates
    # have no frequency (fit refuses those first). An absolute fh was read as
    # one step ahead, silently.
    kind = "time spans" if fh.is_relative else "absolute times"
    raise ValueError(
        f"fh {_shown(fh)} is given in {kind}, which count as steps only on "
        "series with a regular frequency, and no series here has one; pass integer "
        "steps as fh (or set horizon)."
    )


def _whole_steps(values: np.ndarray) -> bool:
    # dtype kind, not issubdtype: numpy counts timedelta64 as a signed integer.
    return values.dtype.kind in "iu"


def in_whole_steps(fh: ForecastingHorizon) -> bool:
    """Whether ``fh`` holds relative integer steps: the same from every cutoff."""
    return bool(fh.is_relative) and _whole_steps(fh.to_numpy())


def relative_steps(fh: ForecastingHorizon, cutoff: pd.Index) -> np.ndarray:
    """Integer steps of ``fh`` after ``cutoff`` (a timedelta ``fh`` counted in periods)."""
    # A relative integer fh already holds the steps; converting costs milliseconds.
    if in_whole_steps(fh):
        return fh.to_numpy()
    dated = _steps_on_date_grid(fh, cutoff)
    if dated is not None:
        return dated
    try:
        steps = fh.to_absolute(cutoff).to_relative(cutoff).to_numpy()
    except TypeError:  # pandas: a timedelta cannot be added to monthly (etc.) periods
        raise ValueError(
            f"fh {_shown(fh)} (time spans) cannot be counted in steps of the series' "
            f"frequency ({fh.freq}); pass integer steps or absolute times on its grid."
        ) from None
    # sktime rounds a time between two grid points to a whole step; the
    # round trip back to times shows it (a month-end series asked for the 15th).
    on_grid = _whole_steps(steps) and _times(
        ForecastingHorizon(steps, is_relative=True, freq=fh.freq), cutoff
    ).equals(_times(fh, cutoff))
    if not on_grid:
        raise _off_grid(fh, cutoff)
    return steps


#: Calendar steps counted on an explicit grid at most (beyond, sktime's count).
_MAX_GRID = 1_000_000


def _steps_on_date_grid(fh: ForecastingHorizon, cutoff: pd.Index) -> np.ndarray | None:
    """Steps of an absolute ``fh`` of dates after a dated cutoff, counted on its grid.

    sktime counts them through periods, which drop the time zone (across a
    daylight-saving change, or for the same instants written in another zone,
    valid times came back a step off and were refused) and which for business
    days pandas has deprecated (a FutureWarning on every call). None where this
    does not apply (not dates, one side zoned and the other not, fh not all
    after the cutoff, no frequency).
    """
    if not (isinstance(cutoff, pd.DatetimeIndex) and fh.freq):
        return None
    times = fh.to_pandas()
    if not isinstance(times, pd.DatetimeIndex) or (times.tz is None) != (cutoff.tz is None):
        return None
    if cutoff.tz is not None:
        times = times.tz_convert(cutoff.tz)
    if times.min() <= cutoff[0]:
        return None  # in-sample steps: refused with sktime's count
    freq = pd.tseries.frequencies.to_offset(fh.freq)
    # A fixed duration: arithmetic, no grid. (A day is a Tick before pandas 3,
    # but a calendar day in a time zone: 23 or 25 hours across DST.)
    if isinstance(freq, pd.offsets.Tick) and not isinstance(freq, pd.offsets.Day):
        elapsed = (times - cutoff[0]).as_unit("ns").asi8
        step = pd.Timedelta(freq).value
        steps = np.where(elapsed % step == 0, elapsed // step, -1)
    else:
        # Calendar steps (days, business days, months) are at least about an
        # hour: a grid longer than this is a reach far beyond any horizon.
        if (times.max() - cutoff[0]) / pd.Timedelta(hours=1) > _MAX_GRID:
            return None
        try:
            grid = pd.date_range(cutoff[0], times.max(), freq=freq)
        except ValueError:  # a wall-clock grid through a daylight-saving gap: sktime's count
            return None
        steps = grid.get_indexer(times)
    if np.any(steps < 0):
        raise _off_grid(fh, cutoff)
    return steps


def _off_grid(fh: ForecastingHorizon, cutoff: pd.Index) -> ValueError:
    """The error for an ``fh`` that does not fall on the series' grid."""
    return ValueError(
        f"fh {_shown(fh)} cannot be counted in whole steps of the series' "
        f"frequency ({fh.freq}) after the cutoff {cutoff[0]}; pass integer steps "
        "or absolute times on its grid."
    )


def _times(fh: ForecastingHorizon, cutoff: pd.Index) -> pd.Index:
    """``fh`` as absolute times (any datetime unit), for comparing two horizons."""
    absolute = fh.to_absolute_index(cutoff)
    # pandas >= 2 keeps each index's own unit (us, ns); pandas 1.5 has only ns.
    return absolute.as_unit("ns") if hasattr(absolute, "as_unit") else absolute


def _shown(fh: ForecastingHorizon) -> list[Any]:
    return [str(v) for v in fh.to_pandas()] if not in_whole_steps(fh) else fh.to_numpy().tolist()


def check_reach(steps: np.ndarray, horizon: int, pretrained: bool, series: Any = SINGLE) -> None:
    """Raise unless every step lies in 1..``horizon``, saying what to change.

    ``series`` is named in a panel: its steps to an absolute ``fh`` depend on
    where that series ends.
    """
    at = where(series)
    if np.any(steps < 1):
        raise ValueError(
            "MetaLSTMForecaster forecasts out of sample only; fh must lie after "
            f"the cutoff{at}, got relative steps {steps.tolist()}."
        )
    if np.any(steps > horizon):
        reach = int(steps.max())
        if pretrained:
            raise ValueError(
                f"fh reaches {reach} steps ahead{at}, beyond the pretrained state's "
                f"horizon={horizon}; pretrain again with horizon >= {reach} (a new "
                "forecaster: continuing this state keeps its horizon)."
            )
        raise ValueError(
            f"fh reaches {reach} steps ahead{at}, beyond horizon={horizon} (what this "
            f"forecaster was fitted for). Refit with horizon >= {reach}, or with "
            "horizon=None and this fh passed to fit."
        )


#: The forecast scale of a step is at least this fraction of the typical move
#: of the history given to ``fit``. A series that stopped moving (a stale
#: quote, a peg, a policy rate at its floor) has support residuals of zero, and
#: adaptation would shrink its forecast distribution to a point.
FLAT_SCALE_FLOOR = 0.05


def forecast_steps(
    fh: ForecastingHorizon,
    cutoff: pd.Index,
    horizon: int,
    pretrained: bool = False,
    series: Any = SINGLE,
) -> tuple[np.ndarray, pd.Index]:
    """Forecast steps (1-based) and absolute index of ``fh`` after ``cutoff``."""
    steps = relative_steps(fh, cutoff)
    check_reach(steps, horizon, pretrained, series)
    return steps, fh.to_absolute_index(cutoff)


def output_index(
    parts: Sequence[tuple[Any, pd.Index]],
    names: Sequence[Any] | None,
    level_dtypes: Sequence[Any] = (),
) -> pd.Index:
    """The index of forecasts for ``parts`` of (series key, forecast times).

    ``names`` ``None`` (a single series) gives the times themselves; a panel's
    rows are (instance..., time) tuples, built in one call for all series.
    ``level_dtypes`` are the fitted panel's instance levels' dtypes (e.g. a
    categorical), which labels rebuilt from tuples lose.
    """
    if names is None:
        return parts[0][1]
    # One instance level: a key is one label, even a tuple (unpacked it would
    # make more levels than names).
    hierarchical = len(names) > 2
    rows = [(*(key if hierarchical else (key,)), t) for key, times in parts for t in times]
    index = pd.MultiIndex.from_tuples(rows, names=names)
    for level, dtype in enumerate(level_dtypes):
        if index.levels[level].dtype != dtype:
            try:
                index = index.set_levels(index.levels[level].astype(dtype), level=level)
            except (TypeError, ValueError):  # labels the fitted dtype cannot hold
                pass
    return index


def increments(
    states: Sequence[SeriesState],
    learner: MetaLearner,
    window_length: int,
    num_threads: int | None,
    x_next: dict[Any, np.ndarray | None],
    location_weight: np.ndarray | None = None,
) -> list[Forecast]:
    """Forecast increments of every series in its own units, in one batch.

    ``location_weight`` (horizon,) multiplies the network's locations: the
    calibrated weight of a ``MetaState`` (``meta/calibration.py``).
    """
    windows = np.stack([s.scaled_window(window_length, x_next[s.key]) for s in states])
    _bound_covariates(windows, [s.key for s in states])
    out = forecast_windows(learner, [s.params for s in states], windows, num_threads)
    stats = np.array([s.target_scale for s in states])
    weight = 1.0 if location_weight is None else np.asarray(location_weight)
    locations = weight * location_of(out) * stats[:, 1:] + stats[:, :1]
    scales = scale_of_outputs(out) * stats[:, 1:]
    floors = FLAT_SCALE_FLOOR * np.array([s.history_scale for s in states])[:, None]
    flat = np.any(scales < floors, axis=1)
    if np.any(flat):
        _warn_flat([s.key for s, f in zip(states, flat, strict=True) if f])
        scales = np.maximum(scales, floors)
    return [Forecast(loc, scale) for loc, scale in zip(locations, scales, strict=True)]


def _bound_covariates(windows: np.ndarray, keys: list[Any]) -> None:
    """Clip scaled covariates to the bound training clipped them to, with a warning.

    Beyond it the network never saw a value; a covariate 1e6 or 1e300 times its
    usual spread would get the same forecast, so the user is told.
    """
    if windows.ndim < 3:  # no covariates: (series, time) windows of the target alone
        return
    covariates = windows[..., 1:]
    far = np.abs(covariates) > SCALED_BOUND
    if not far.any():
        return
    first = int(np.argmax(far.any(axis=(1, 2))))
    warnings.warn(
        f"X{where(keys[first])} lies up to {np.max(np.abs(covariates)):.3g} standard "
        "deviations from the covariates of the series' recent windows; training saw "
        f"at most {SCALED_BOUND:g}, so it is clipped there and the forecast treats it as "
        "an extreme value, not by its size.",
        UserWarning,
        stacklevel=caller_stacklevel(),
    )
    np.clip(covariates, -SCALED_BOUND, SCALED_BOUND, out=covariates)


def _warn_flat(keys: list[Any]) -> None:
    more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
    warnings.warn(
        f"The series{where(keys[0])}{more} barely moved lately (a stale quote, a peg, a "
        "rate at its floor?): its forecast scale fell below "
        f"{FLAT_SCALE_FLOOR:.0%} of the typical move of the history given to fit, and "
        "is bounded there instead of shrinking the forecast distribution to a point.",
        UserWarning,
        stacklevel=caller_stacklevel(),
    )


def _spread(
    state: SeriesState, forecast: Forecast, residuals: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, scale, standardised residuals) of what maps monotonically to the level.

    The step itself for ``"none"``; the running sum of increments otherwise.
    """
    if state.kind == "none":
        return forecast.location, forecast.scale, residuals["step"]
    return (
        np.cumsum(forecast.location),
        cumulative_scale(forecast.scale),
        residuals["cumulative"],
    )


def _to_levels(state: SeriesState, cumulative: np.ndarray) -> np.ndarray:
    if state.kind == "none":
        return cumulative
    return state.to_levels(np.diff(cumulative, axis=-1, prepend=0.0))


def residual_quantiles(residuals: dict[str, np.ndarray], alpha: list[float]) -> dict:
    """Quantiles (len(alpha), horizon) of each kind of standardised residual.

    They do not depend on the series: computed once, they serve a whole panel.
    """
    return {kind: conformal_quantiles(z, alpha) for kind, z in residuals.items()}


def quantile_levels(
    state: SeriesState, forecast: Forecast, residuals: dict[str, np.ndarray], alpha: list[float]
) -> np.ndarray:
    """Level quantiles (len(alpha), horizon).

    Quantiles of the (cumulated) increments map monotonically to levels, and a
    positive scale keeps the residual quantiles' order: they never cross.
    """
    return levels_at(state, forecast, residual_quantiles(residuals, alpha))


def levels_at(
    state: SeriesState, forecast: Forecast, quantiles: dict[str, np.ndarray]
) -> np.ndarray:
    """``quantile_levels`` from ``residual_quantiles`` computed beforehand."""
    centre, scale, z = _spread(state, forecast, quantiles)
    return _to_levels(state, centre[None, :] + z * scale[None, :])


def per_series(
    predicted: Iterable[tuple[SeriesState, np.ndarray, pd.Index, Forecast]],
    values_of: Callable[[SeriesState, Forecast, dict[str, np.ndarray]], np.ndarray],
    residuals: dict[str, np.ndarray],
    names: Sequence[Any] | None,
    level_dtypes: Sequence[Any] = (),
) -> tuple[pd.Index, list[np.ndarray]]:
    """Forecast index, and ``values_of(state, forecast, residuals)`` at each series' steps."""
    parts, values = [], []
    for state, steps, times, forecast in predicted:
        parts.append((state.key, times))
        values.append(values_of(state, forecast, residuals)[..., steps - 1])
    return output_index(parts, names, level_dtypes), values


def grid_distribution(index: pd.Index, quantiles: np.ndarray, columns: pd.Index) -> Any:
    """The forecast distribution over rows ``index`` from its quantiles (levels, rows).

    ``quantiles`` holds each forecast's quantiles at ``proba_levels()``; the
    result, a ``QuantileGrid``, interpolates linearly between them and has
    exponential tails beyond, so it has a density (a finite log score) and
    its ``ppf`` is ``predict_quantiles``' value at every grid level.
    """
    from sk_metalstm.quantile_grid import QuantileGrid  # needs skpro (optional)

    values = np.asarray(quantiles, dtype=float).T[:, None, :]
    # Rounding can put two neighbouring quantiles of a flat forecast 1 ulp
    # out of order; the distribution needs them sorted.
    return QuantileGrid(proba_levels(), np.maximum.accumulate(values, axis=-1), index, columns)


#: Quantile levels that represent a forecast distribution in ``predict_proba``:
#: k / PROBA_LEVELS for k = 1 ... PROBA_LEVELS - 1.
PROBA_LEVELS = 200


def proba_levels() -> list[float]:
    """The ``PROBA_LEVELS - 1`` levels k / n strictly inside (0, 1): 0.005 ... 0.995."""
    # Plain floats: the distribution shows them in its repr and get_params.
    return (np.arange(1, PROBA_LEVELS) / PROBA_LEVELS).tolist()


def variance_levels() -> np.ndarray:
    """2000 equally spaced midpoint levels: the residual distribution as equal-weight points."""
    return (np.arange(2000) + 0.5) / 2000


def level_variance(
    state: SeriesState, forecast: Forecast, residuals: dict[str, np.ndarray]
) -> np.ndarray:
    """Variance (horizon,) of the forecast distribution of the level at each step.

    For log-returns the level is ``last * exp(C)``: its variance is taken over
    the calibrated residual distribution, not a Gaussian approximation.
    ``residuals`` are best its quantiles at ``variance_levels()`` (equally
    likely, tails included), so that the variance is that of the distribution
    ``predict_quantiles`` describes. ``predict_proba``'s grid (linear between
    its levels, exponential tails read from them) has a variance a few percent
    off it (measured 97-101 %).
    """
    centre, scale, z = _spread(state, forecast, residuals)
    with np.errstate(over="ignore"):  # reported below as a clear error
        if state.kind != "log_return":
            variance = np.var(z, axis=0) * scale**2
        else:
            # numpy's float64: a Python float's square raises OverflowError instead of inf.
            last = np.float64(state.tail.iloc[-1])
            growth = np.exp(centre[None, :] + z * scale[None, :])
            variance = last**2 * np.var(growth, axis=0)
    if not np.all(np.isfinite(variance)):
        raise ValueError(
            f"The forecast variance of the series{where(state.key)} is not finite in "
            "float64: the series is too large for its squared scale. Rescale it (e.g. "
            "divide by a power of ten) and refit."
        )
    return variance


def forecasts(
    states: Sequence[SeriesState],
    learner: MetaLearner,
    fh: ForecastingHorizon,
    *,
    horizon: int,
    window_length: int,
    num_threads: int | None,
    x_next: dict[Any, np.ndarray | None],
    location_weight: np.ndarray | None = None,
    pretrained: bool = False,
) -> Iterator[tuple[SeriesState, np.ndarray, pd.Index, Forecast]]:
    """(state, steps, forecast times, forecast increments) for every series.

    A relative ``fh`` counts from each series' own last point, whose cutoff
    carries the frequency that sktime's may lack. ``pretrained``: the horizon
    was fixed by ``pretrain`` (only pretraining again can extend it).
    """
    predicted = increments(states, learner, window_length, num_threads, x_next, location_weight)
    # Series of a panel mostly share their cutoff: sktime's conversion of fh to
    # times cost about a millisecond per series, most of predict on a panel.
    known: dict[tuple[Any, ...], tuple[np.ndarray, pd.Index]] = {}
    for state, forecast in zip(states, predicted, strict=True):
        cutoff = state.cutoff
        key = (cutoff[0], getattr(cutoff, "freq", None), type(cutoff), cutoff.dtype)
        if key not in known:
            known[key] = forecast_steps(fh, cutoff, horizon, pretrained, series=state.key)
        steps, times = known[key]
        yield state, steps, times, forecast
