"""Series -> increments -> windows -> tasks, with per-task scaling (numpy only).

Vocabulary
----------
increments
    The series on a comparable scale: log-returns for positive prices,
    first differences for rates, or the raw levels. ``from_increments`` maps
    forecasts back exactly.
window ``i``
    Inputs ``z[i : i + L]`` and targets ``z[i + L : i + L + h]`` for window length
    ``L`` and horizon ``h`` (direct multi-step).
task
    One (series, time block): ``S`` consecutive *support* windows, then ``Q``
    *query* windows whose targets all lie strictly after every support target.
    The first query window is exactly the one a forecaster sees at predict time
    after adapting on the ``S`` most recent complete windows, so meta-training
    and deployment match.
scale
    Each task is scaled by the root-mean-square of its support values only (no
    look-ahead). Increments are not centred: a drift estimated from a short
    support set is mostly noise. Raw levels are centred and scaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "TRANSFORMS",
    "TaskLayout",
    "resolve_transform",
    "to_increments",
    "from_increments",
    "sliding_windows",
    "task_starts",
    "cut_task",
    "support_for_adaptation",
    "root_mean_square",
    "SCALED_BOUND",
]

TRANSFORMS = ("auto", "log_return", "difference", "none")
_MIN_SCALE = 1e-12
#: Scaled values are clipped to +-SCALED_BOUND: a support set of near-constant prices
#: (a stale quote, a trading halt) would otherwise scale a later move to 1e8
#: and dominate every training batch it lands in.
SCALED_BOUND = 20.0


def resolve_transform(values: np.ndarray, transform: str, where: str = "") -> str:
    """Pick the concrete transform for one series.

    ``"auto"`` gives log-returns when every value is positive (prices, FX rates)
    and differences otherwise (interest rates can be zero or negative).
    ``where`` names the series in errors (e.g. ``" (instance 'b')"``).
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"Unknown transform {transform!r}; choose one of {TRANSFORMS}.")
    if transform == "auto":
        return "log_return" if np.all(values > 0) else "difference"
    if transform == "log_return" and not np.all(values > 0):
        raise ValueError(
            f"transform='log_return' needs strictly positive values, but the series{where} "
            f"has a minimum of {float(np.min(values))!r}; use transform='difference' or 'auto'."
        )
    return transform


def to_increments(values: np.ndarray, kind: str) -> np.ndarray:
    """Transform levels to increments (length ``n - 1``, or ``n`` for ``"none"``)."""
    values = np.asarray(values, dtype=np.float64)
    if kind == "log_return":
        return np.diff(np.log(values))
    if kind == "difference":
        return np.diff(values)
    if kind == "none":
        return values.copy()
    raise ValueError(f"Unknown transform {kind!r}.")


def from_increments(last_level: float, increments: np.ndarray, kind: str) -> np.ndarray:
    """Map forecast increments for steps 1..h back to levels.

    The exact inverse of ``to_increments``: feeding the true increments after
    ``last_level`` reproduces the true levels.
    """
    increments = np.asarray(increments, dtype=np.float64)
    if kind == "log_return":
        return last_level * np.exp(np.cumsum(increments))
    if kind == "difference":
        return last_level + np.cumsum(increments)
    if kind == "none":
        return increments.copy()
    raise ValueError(f"Unknown transform {kind!r}.")


def sliding_windows(
    z: np.ndarray, window_length: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """All complete windows of ``z``, oldest first.

    ``z`` is 1-D (increments), or 2-D (time, features) with the increments in
    column 0 and exogenous features after it. Inputs are (n, L) or (n, L, d);
    targets are always (n, h), from column 0.
    """
    n_windows = len(z) - window_length - horizon + 1
    if z.ndim == 1:
        if n_windows < 1:
            return np.empty((0, window_length)), np.empty((0, horizon))
        frames = np.lib.stride_tricks.sliding_window_view(z, window_length + horizon)
        frames = frames[:n_windows]
        return frames[:, :window_length].copy(), frames[:, window_length:].copy()
    if n_windows < 1:
        return np.empty((0, window_length, z.shape[1])), np.empty((0, horizon))
    frames = np.lib.stride_tricks.sliding_window_view(z, window_length + horizon, axis=0)
    frames = frames[:n_windows].transpose(0, 2, 1)  # (n, L + h, d)
    return frames[:, :window_length].copy(), frames[:, window_length:, 0].copy()


@dataclass(frozen=True)
class TaskLayout:
    """Sizes that define a task.

    Parameters
    ----------
    window_length, horizon, support_size, query_size : int
        ``L``, ``h``, ``S`` and ``Q`` in the module docstring.
    centre : bool
        Centre values by the support mean (used for raw levels only).
    """

    window_length: int
    horizon: int
    support_size: int
    query_size: int
    centre: bool = False

    @property
    def query_offset(self) -> int:
        """Windows between the first support window and the first query window."""
        return self.support_size + self.horizon - 1

    @property
    def span(self) -> int:
        """Number of increments one task covers."""
        n_windows = self.query_offset + self.query_size
        return n_windows + self.window_length + self.horizon - 1


def task_starts(n_increments: int, layout: TaskLayout, stride: int) -> np.ndarray:
    """First-window positions of every task that fits in a series."""
    last = n_increments - layout.span
    if last < 0:
        return np.empty(0, dtype=np.int64)
    return np.arange(0, last + 1, max(1, stride), dtype=np.int64)


def root_mean_square(values: np.ndarray) -> float:
    """RMS without overflow: squaring values near 1e200 would give inf."""
    peak = float(np.max(np.abs(values))) if len(values) else 0.0
    if peak == 0.0 or not np.isfinite(peak):
        return peak
    return peak * float(np.sqrt(np.mean((values / peak) ** 2)))


def _scale_stats(values: np.ndarray, centre: bool) -> tuple[Any, Any]:
    """Location and scale of the target (and of each exogenous column, if any).

    Scalars for 1-D ``values``; arrays of one entry per column for 2-D ones,
    where exogenous columns are always centred and standardised, and a
    constant column is left unscaled.
    """
    target = values if values.ndim == 1 else values[:, 0]
    loc = float(np.mean(target)) if centre else 0.0
    # Any positive spread is the series' own unit, however small (increments
    # of 1e-14 train as increments of 1 do); only a flat stretch, whose
    # increments are all 0 and scale to 0 anyway, takes the floor.
    rms = root_mean_square(target - loc)
    scale = rms if rms > 0 else _MIN_SCALE
    if values.ndim == 1:
        return loc, scale
    # The last row's features (those of the next, not yet observed, time point)
    # may be unknown (NaN) at fit time; they are not support inputs anyway.
    features = values[:, 1:]
    f_loc = np.nanmean(features, axis=0)
    f_scale = np.nanstd(features, axis=0)
    # A column is constant when its spread is rounding noise next to its
    # values (relative, so covariates in tiny units are still standardised).
    f_scale = np.where(f_scale > _MIN_SCALE * np.abs(f_loc), f_scale, 1.0)
    return np.r_[loc, f_loc], np.r_[scale, f_scale]


def _target_stat(stat: Any) -> float:
    return float(np.atleast_1d(stat)[0])


def _scaled(values: np.ndarray, loc: Any, scale: Any) -> np.ndarray:
    """``(values - loc) / scale`` in float64, clipped to +-``SCALED_BOUND``, as float32."""
    return np.clip((values - loc) / scale, -SCALED_BOUND, SCALED_BOUND).astype(np.float32)


def cut_task(z: np.ndarray, start: int, layout: TaskLayout) -> dict[str, np.ndarray]:
    """Cut one scaled task from increments ``z`` starting at window ``start``.

    Returns
    -------
    dict
        ``support_x`` (S, L), ``support_y`` (S, h), ``query_x`` (Q, L),
        ``query_y`` (Q, h), all float32 and scaled with support statistics only,
        plus ``loc`` and ``scale`` (float64).
    """
    L, h = layout.window_length, layout.horizon
    block = z[start : start + layout.span]
    x, y = sliding_windows(block, L, h)
    support_end = layout.support_size - 1 + L + h  # values the support set sees
    loc, scale = _scale_stats(block[:support_end], layout.centre)
    y_loc, y_scale = _target_stat(loc), _target_stat(scale)
    q0 = layout.query_offset
    return {
        "support_x": _scaled(x[: layout.support_size], loc, scale),
        "support_y": _scaled(y[: layout.support_size], y_loc, y_scale),
        "query_x": _scaled(x[q0 : q0 + layout.query_size], loc, scale),
        "query_y": _scaled(y[q0 : q0 + layout.query_size], y_loc, y_scale),
        # float64: the statistics of a series near 1e200 overflow float32.
        "loc": np.float64(y_loc),
        "scale": np.float64(y_scale),
    }


def support_for_adaptation(z: np.ndarray, layout: TaskLayout) -> dict[str, np.ndarray]:
    """Support set (the most recent complete windows) and the next query input.

    Used at fit/update time: up to ``S`` windows whose targets are all observed,
    and the window of the last ``L`` increments whose forecast is wanted.

    Raises
    ------
    ValueError
        If ``z`` holds fewer than ``L + h`` increments (no complete window).
    """
    L, h = layout.window_length, layout.horizon
    x, y = sliding_windows(z, L, h)
    if len(x) == 0:
        raise ValueError(
            f"Need at least window_length + horizon = {L + h} increments to adapt, got {len(z)}."
        )
    x, y = x[-layout.support_size :], y[-layout.support_size :]
    support_values = z[len(z) - len(x) - L - h + 1 :]
    loc, scale = _scale_stats(support_values, layout.centre)
    y_loc, y_scale = _target_stat(loc), _target_stat(scale)
    return {
        "support_x": _scaled(x, loc, scale),
        "support_y": _scaled(y, y_loc, y_scale),
        "query_x": _scaled(z[-L:][None], loc, scale),
        "loc": loc,
        "scale": scale,
    }
