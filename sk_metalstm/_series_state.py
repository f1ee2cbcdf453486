"""What the forecaster keeps of each fitted series between calls.

One immutable record per series: the most recent levels (and covariates) that
adaptation and prediction read, the transform chosen for the series, the
support-set scaling and the adapted parameters. ``update`` builds new records
and swaps them in only when every series succeeded, so a failed update
changes nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sk_metalstm._exogenous import feature_matrix
from sk_metalstm._series import (
    SINGLE,
    check_continues,
    check_regular,
    frequency,
    time_index_kind,
    where,
)
from sk_metalstm.meta.adaptation import adapt_to_supports
from sk_metalstm.meta.base import MetaLearner, Params
from sk_metalstm.windowing import (
    TaskLayout,
    from_increments,
    resolve_transform,
    root_mean_square,
    support_for_adaptation,
    to_increments,
)

__all__ = [
    "SeriesState",
    "adapt_states",
    "appended_states",
    "series_features",
    "started_states",
    "training_features",
]


def series_features(levels: pd.Series, x: pd.DataFrame | None, kind: str, key: Any) -> np.ndarray:
    """Increments of ``levels`` under ``kind``, with next-step covariates from ``x``."""
    values = levels.to_numpy(dtype=np.float64)
    times = levels.index if kind == "none" else levels.index[1:]
    return feature_matrix(to_increments(values, kind), times, x, where(key))


def _check_same_time_index(seen: pd.Index, new: pd.Index, key: Any) -> None:
    """Raise if ``update`` data are indexed by another kind of time than ``fit`` saw."""
    if len(new) and time_index_kind(seen) != time_index_kind(new):
        raise ValueError(
            f"update data{where(key)} are indexed by {time_index_kind(new)}, but fit "
            f"saw {time_index_kind(seen)}; pass updates indexed like the fitted series."
        )


def _typical_move(values: np.ndarray, kind: str) -> float:
    """RMS of a series' increments (of its centred levels for ``"none"``)."""
    z = to_increments(values, kind)
    return root_mean_square(z - z.mean() if kind == "none" else z)


def _last(frame: Any, keep: int) -> Any:
    """The last ``keep`` rows as float64, with a DatetimeIndex's implied frequency set."""
    tail = frame.iloc[-keep:].astype(np.float64)
    if isinstance(tail.index, pd.DatetimeIndex) and tail.index.freq is None:
        # Forecast dates come from the tail's frequency; a user's index may
        # only imply one (fit checked that it does).
        tail.index = pd.DatetimeIndex(tail.index, freq=frequency(frame.index))
    return tail.copy()


@dataclass(frozen=True)
class SeriesState:
    """One fitted series.

    Attributes
    ----------
    key : hashable
        The series' instance key (``SINGLE`` for a single series).
    tail : pd.Series
        The most recent levels: enough for the support windows plus one level.
    x_tail : pd.DataFrame or None
        Covariates at the times of ``tail`` (``None`` without exogenous ``X``).
    kind : str
        The transform resolved for the whole series (``"log_return"``...).
    history_scale : float
        The typical move (RMS increment) of the whole series given to ``fit``;
        a fraction of it bounds the forecast scale from below
        (``_prediction.FLAT_SCALE_FLOOR``).
    loc, scale : float or array, optional
        Support-set scaling of the last adaptation.
    params : dict, optional
        Adapted parameters of the last adaptation.
    """

    key: Any
    tail: pd.Series
    x_tail: pd.DataFrame | None
    kind: str
    history_scale: float = 0.0
    loc: Any = None
    scale: Any = None
    params: Params | None = None

    @classmethod
    def start(
        cls, key: Any, series: pd.Series, x: pd.DataFrame | None, transform: str, keep: int
    ) -> SeriesState:
        """The state of a newly fitted series, not yet adapted.

        The transform is resolved (and checked) on the whole series, once: its
        tail alone could hide a non-positive price from ``"log_return"``.
        """
        values = series.to_numpy(dtype=np.float64)
        kind = resolve_transform(values, transform, where(key))
        history_scale = _typical_move(values, kind)
        tail = _last(series, keep)
        x_tail = None if x is None else x.loc[x.index.intersection(tail.index)].copy()
        return cls(key, tail, x_tail, kind, history_scale)

    def appended(self, series: pd.Series, x: pd.DataFrame | None, keep: int) -> SeriesState:
        """A copy with new observations appended (later values win on repeated times)."""
        _check_same_time_index(self.tail.index, series.index, self.key)
        values = series.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"update data{where(self.key)} contain NaN or infinite values.")
        repeated = series.index.duplicated()
        if repeated.any():  # two values for one time: neither is a revision of the other
            raise ValueError(
                f"update data{where(self.key)} have a duplicated time index, e.g. "
                f"{series.index[repeated][0]!r}; give each time point one value."
            )
        if self.kind == "log_return" and np.any(values <= 0):
            raise ValueError(
                f"update data{where(self.key)} have non-positive values, but the series "
                "was fitted with log-returns; refit with transform='difference'."
            )
        check_continues(self.tail.index, series.index, self.key)
        # Revisions of points older than the kept tail cannot change the state
        # (forecasts read only the tail); joined to it they would leave a gap.
        series = series[series.index >= self.tail.index[0]]
        combined = pd.concat([self.tail, series.astype(np.float64)])
        combined = combined[~combined.index.duplicated(keep="last")].sort_index()
        check_regular(combined.index, self.key)
        tail = _last(combined, keep)
        x_tail = self.x_tail
        if x is not None and x_tail is not None:
            frames = pd.concat([x_tail, x])
            frames = frames[~frames.index.duplicated(keep="last")].sort_index()
            x_tail = frames.loc[frames.index.intersection(tail.index)]
        return dataclasses.replace(self, tail=tail, x_tail=x_tail)

    def adapted(self, support: dict[str, Any], params: Params) -> SeriesState:
        """A copy with the scaling and parameters of a new adaptation."""
        return dataclasses.replace(self, loc=support["loc"], scale=support["scale"], params=params)

    def features(self, x_next: np.ndarray | None = None) -> np.ndarray:
        """Increments of the tail, with next-step covariates (``x_next`` fills the last row)."""
        z = series_features(self.tail, self.x_tail, self.kind, self.key)
        if x_next is not None:
            z[-1, 1:] = x_next
        return z

    def scaled_window(self, window_length: int, x_next: np.ndarray | None = None) -> np.ndarray:
        """The most recent input window, in the support set's scale."""
        return (self.features(x_next)[-window_length:] - self.loc) / self.scale

    @property
    def target_scale(self) -> tuple[float, float]:
        """(loc, scale) of the target column."""
        return float(np.atleast_1d(self.loc)[0]), float(np.atleast_1d(self.scale)[0])

    @property
    def cutoff(self) -> pd.Index:
        """The series' last time point, with its frequency."""
        # The last entry of the tail's index keeps its frequency (sktime's
        # get_cutoff does the same at about a millisecond a call).
        return self.tail.index[-1:]

    def to_levels(self, increments: np.ndarray) -> np.ndarray:
        """Map increments for steps 1..k (last axis) to levels; ``"none"`` is levels already."""
        if self.kind == "none" or increments.size == 0:  # e.g. predict_quantiles(alpha=[])
            return increments
        last = float(self.tail.iloc[-1])
        with np.errstate(over="ignore"):  # reported below as a clear error
            levels = np.apply_along_axis(
                lambda inc: from_increments(last, inc, self.kind), -1, increments
            )
        if not np.all(np.isfinite(levels)):
            raise ValueError(
                f"The forecast of the series{where(self.key)} is not finite in float64 (its "
                f"last value is {last:.3g}): the series is too large to forecast on this "
                "scale. Rescale it (e.g. divide by a power of ten) and refit."
            )
        return levels


def adapt_states(
    states: list[SeriesState],
    learner: MetaLearner,
    layout: TaskLayout,
    *,
    steps: int | None,
    device: str,
    num_threads: int | None,
) -> dict[Any, SeriesState]:
    """``states`` adapted by ``learner`` on their most recent windows, keyed by series."""
    supports = [support_for_adaptation(state.features(), layout) for state in states]
    params = adapt_to_supports(
        learner,
        supports,
        steps=steps,
        device=device,
        num_threads=num_threads,
        labels=[where(state.key) for state in states],
    )
    return {
        state.key: state.adapted(support, p)
        for state, support, p in zip(states, supports, params, strict=True)
    }


def training_features(
    pieces: dict[Any, pd.Series], x_pieces: dict[Any, pd.DataFrame | None], transform: str
) -> list[np.ndarray]:
    """Increments (with covariates) of every series, each under its resolved transform."""
    return [
        series_features(
            s, x_pieces[k], resolve_transform(s.to_numpy(np.float64), transform, where(k)), k
        )
        for k, s in pieces.items()
    ]


def started_states(
    pieces: dict[Any, pd.Series],
    x_pieces: dict[Any, pd.DataFrame | None],
    transform: str,
    keep: int,
) -> list[SeriesState]:
    """A new, not yet adapted, state for every series."""
    return [SeriesState.start(k, s, x_pieces[k], transform, keep) for k, s in pieces.items()]


def appended_states(
    states: dict[Any, SeriesState],
    pieces: dict[Any, pd.Series],
    x_pieces: dict[Any, pd.DataFrame | None],
    keep: int,
) -> list[SeriesState]:
    """Copies of the states of the series in ``pieces`` with their new observations."""
    out = []
    for key, series in pieces.items():
        if key not in states:
            raise ValueError(_unseen_instance_message(key, states))
        out.append(states[key].appended(series, x_pieces[key], keep))
    return out


def _unseen_instance_message(key: Any, states: dict[Any, SeriesState]) -> str:
    """Why ``update`` cannot place ``key``: a layout unlike fit's, or a new instance."""
    if key is SINGLE:
        return (
            "update got a single series, but fit got a panel of instances "
            f"{list(states)[:5]}: pass the new rows as a panel with the same "
            "(instance, time) index."
        )
    if SINGLE in states:
        return "update got a panel, but fit got a single series: pass the new rows as a Series."
    fitted = {_index_levels(k) for k in states}
    if len(fitted) == 1 and _index_levels(key) not in fitted:
        return (
            f"update got a panel with {_index_levels(key)} index levels (instance {key!r}), "
            f"but fit got {fitted.pop()}: pass the new rows with the index levels fit got."
        )
    return f"update got an instance {key!r} that fit did not see."


def _index_levels(key: Any) -> int:
    """Index levels of a panel whose instance is ``key``: instance levels and time."""
    return (len(key) if isinstance(key, tuple) else 1) + 1
