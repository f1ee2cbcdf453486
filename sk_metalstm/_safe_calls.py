"""sktime's public calls made all-or-nothing, and deep copies made independent.

sktime's public ``update``, ``update_predict(_single)`` and ``pretrain`` record
the new data (cutoff, input metadata) before the forecaster's private methods
can refuse them, and its per-column fits (several columns of y) keep one
forecaster per column in a DataFrame that copies share. ``SafeSktimeCalls``
overrides those public methods with sktime's signatures, so that a refused or
interrupted call leaves the forecaster as it was.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import numpy as np
import pandas as pd
from sktime.forecasting.base import BaseForecaster
from sktime.split import ExpandingWindowSplitter

from sk_metalstm._transaction import restored_on_error

__all__ = ["SafeSktimeCalls"]


class SafeSktimeCalls:
    """Mixin placed before ``BaseForecaster``: transactional public calls.

    A subclass may override ``_check_backtest_after_cutoff(y, cv)`` to refuse
    a backtest before it starts.
    """

    def pretrain(self, y: Any, X: Any = None, fh: Any = None) -> Any:
        """Steps 1 and 2: meta-train on the panel ``y``; sktime's ``pretrain``.

        On a new forecaster, trains from scratch (or from ``pretrained``); on
        a pretrained or fitted one, continues meta-training on the new series.
        A call that raises (refused data, an error in a callback, Ctrl-C)
        leaves the forecaster as it was.

        Parameters
        ----------
        y : pd.DataFrame with a MultiIndex (instance, time)
            The panel of series to meta-train on (several columns: one series each).
        X : pd.DataFrame, optional
            Exogenous covariates, indexed like ``y``.
        fh : ForecastingHorizon or int or list of int, optional
            Sets the horizon when ``horizon`` is None.

        Returns
        -------
        self : the forecaster
        """
        with self._restored_on_error():
            return super().pretrain(y, X=X, fh=fh)

    def update(self, y: Any, X: Any = None, update_params: bool = True) -> Any:
        """Append new observations and, with ``update_params``, adapt again; sktime's ``update``.

        No meta-training: the pretrained learner adapts to the longer series.
        A call that raises (refused data, Ctrl-C) leaves the forecaster as it
        was: neither the cutoff nor the data move.

        Parameters
        ----------
        y : pd.Series or pd.DataFrame
            New observations, after the cutoff, in the layout ``fit`` got
            (rows at or before the cutoff revise old data).
        X : pd.DataFrame, optional
            Exogenous covariates for the new rows (used if pretrained with X).
        update_params : bool, default=True
            Adapt to the longer series; False only appends the data.

        Returns
        -------
        self : the forecaster
        """
        self._check_update_columns(y)
        with self._restored_on_error():
            return super().update(y, X=X, update_params=update_params)

    def update_predict_single(
        self, y: Any = None, fh: Any = None, X: Any = None, update_params: bool = True
    ) -> Any:
        """Update with ``y``, then forecast ``fh``; sktime's ``update_predict_single``.

        A call that raises leaves the forecaster as it was (sktime moves the
        cutoff before the update is checked).

        Parameters
        ----------
        y : pd.Series or pd.DataFrame, optional
            New observations, as for ``update``.
        fh : ForecastingHorizon or int or list of int, optional
            Steps to forecast from the new cutoff.
        X : pd.DataFrame, optional
            Exogenous covariates for the new rows and the forecast.
        update_params : bool, default=True
            Adapt again to the longer series.

        Returns
        -------
        pd.Series or pd.DataFrame
            The forecasts, as ``predict``'s.
        """
        with self._restored_on_error():
            return super().update_predict_single(y=y, fh=fh, X=X, update_params=update_params)

    def _check_update_columns(self, y: Any) -> None:
        """Refuse new rows of other columns than a per-column fit was fitted on.

        sktime matches the columns by position: swapped columns fed each
        column's state the other's prices, silently, and fewer columns failed
        inside sktime ("no attribute 'vectorize_est'").
        """
        if not (getattr(self, "_is_vectorized", False) and isinstance(y, pd.DataFrame)):
            return
        fitted = list(self.forecasters_.columns)
        if list(y.columns) != fitted:
            raise ValueError(
                f"update got the columns {list(y.columns)}, but the forecaster was fitted "
                f"on {fitted} (one forecaster per column): pass new rows for every one of "
                "those columns, under the same names and in the same order."
            )

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        """An independent copy, per-column forecasters included.

        A pandas deep copy of ``forecasters_`` (one forecaster per column of a
        multi-column y) shares the forecasters in it: updating a copy moved
        the original's columns on, and sktime's ``update_predict`` reset did too.
        """
        memo = {} if memo is None else memo
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        for name, value in vars(self).items():
            vars(copied)[name] = copy.deepcopy(value, memo)
        inner = vars(self).get("forecasters_")
        if isinstance(inner, pd.DataFrame):
            cells = copied.forecasters_
            for row, column in np.ndindex(inner.shape):
                cells.iat[row, column] = copy.deepcopy(inner.iat[row, column], memo)
        return copied

    def _restored_on_error(self) -> contextlib.ExitStack:
        """Put this forecaster back as it was if the block raises, and its per-column ones.

        On a y of several columns sktime updates one inner forecaster per
        column in place: a column refused after another was taken left the
        columns at different cutoffs, and predict failed.
        """
        stack = contextlib.ExitStack()
        stack.enter_context(restored_on_error(self))
        inner = getattr(self, "forecasters_", None)
        if getattr(self, "_is_vectorized", False) and isinstance(inner, pd.DataFrame):
            for forecaster in inner.to_numpy().ravel():
                stack.enter_context(restored_on_error(forecaster))
        return stack

    def update_predict(
        self,
        y: Any,
        cv: Any = None,
        X: Any = None,
        update_params: bool = True,
        reset_forecaster: bool = True,
    ) -> Any:
        """Forecast from each origin of a backtest over ``y``, updating between; sktime's.

        The forecaster forecasts only from the latest point it has seen: a
        backtest whose first origin (the end of ``cv``'s first window in
        ``y``) lies before the cutoff is refused. A call that raises leaves
        the forecaster as it was.

        Parameters
        ----------
        y : pd.Series or pd.DataFrame
            The test observations, in the layout ``fit`` got.
        cv : sktime splitter, optional
            The origins (default: every point of ``y``, one step ahead).
        X : pd.DataFrame, optional
            Exogenous covariates for ``y``'s rows.
        update_params : bool, default=True
            Adapt again at each update.
        reset_forecaster : bool, default=True
            Backtest on a copy, leaving this forecaster as it was.

        Returns
        -------
        pd.Series or pd.DataFrame
            The forecasts of every origin, as sktime's ``update_predict``.
        """
        self.check_is_fitted()
        cv = ExpandingWindowSplitter(initial_window=1) if cv is None else cv  # sktime's default
        self._check_backtest_after_cutoff(y, cv)
        self._check_update_columns(y)
        if reset_forecaster:
            # On a copy from the start: sktime checks y on this forecaster
            # first, recording its name (later intervals were named after the
            # backtest's y), and then copies it. sktime's own reset still runs
            # on the copy: it formats the forecasts as the y fit got (without
            # it a one-column frame's came back as an unnamed Series).
            # __deepcopy__ copies per-column forecasters too.
            return BaseForecaster.update_predict(
                copy.deepcopy(self), y, cv=cv, X=X, update_params=update_params
            )
        # Without reset_forecaster sktime moves this forecaster's cutoff to
        # y's start before the first update: a refused step must not leave it there.
        with self._restored_on_error():
            return super().update_predict(
                y, cv=cv, X=X, update_params=update_params, reset_forecaster=reset_forecaster
            )

    def _check_backtest_after_cutoff(self, y: Any, cv: Any) -> None:
        """Refuse a backtest (``update_predict``) before it starts; by default nothing."""
