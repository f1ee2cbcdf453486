"""MetaLSTMForecaster: sktime orchestration of pretrain, fit (adapt), predict and update.

The work is done in ``_series``, ``_series_state``, ``_prediction``, ``_exogenous``,
``meta.training`` and ``meta.adaptation``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sktime.forecasting.base import BaseForecaster, ForecastingHorizon

from sk_metalstm._exogenous import check_columns, exogenous_pieces, first_step_covariates
from sk_metalstm._prediction import (
    check_reach,
    forecasts,
    grid_distribution,
    in_whole_steps,
    level_variance,
    levels_at,
    output_index,
    per_series,
    proba_levels,
    relative_steps,
    residual_quantiles,
    resolve_horizon,
    variance_levels,
)
from sk_metalstm._safe_calls import SafeSktimeCalls
from sk_metalstm._series import (
    SINGLE,
    check_regular,
    checked_instances,
    frequency,
    split_instances,
    warn_if_increments,
)
from sk_metalstm._series_state import (
    SeriesState,
    adapt_states,
    appended_states,
    started_states,
    training_features,
)
from sk_metalstm._torch_runtime import check_device, resolve_device, seed_from, torch_runtime
from sk_metalstm._validation import (
    Bool,
    InstanceOf,
    Int,
    ListOf,
    OneOf,
    Real,
    Verbosity,
    validate_params,
)
from sk_metalstm.meta import META_LEARNERS
from sk_metalstm.meta.state import MetaState
from sk_metalstm.meta.training import meta_train
from sk_metalstm.windowing import TRANSFORMS, TaskLayout

__all__ = ["MetaLSTMForecaster"]


class MetaLSTMForecaster(SafeSktimeCalls, BaseForecaster):
    """Meta-learned LSTM forecaster: meta-train across series, adapt to each one.

    1. ``pretrain(y_panel)`` trains a pooled base LSTM on tasks (a support set
       of windows and a later query set) cut from every series of a panel;
    2. then meta-trains a learner that adapts the base network to a task's
       support set so that it does well on the query set;
    3. ``fit(y)`` adapts to ``y``'s ``support_size`` most recent windows,
       ``predict(fh)`` forecasts with the adapted network, and ``update(y_new)``
       adapts again, without meta-training. Without ``pretrain``, ``fit``
       meta-trains on ``y`` itself.

    Forecasts are direct multi-step. With exogenous ``X`` (given to
    ``pretrain``/``fit``), a forecast reads the covariates of the first step
    after the cutoff only: ``X`` at predict time must have that row, also when
    ``fh`` starts later. The user guide explains every option.

    Parameters
    ----------
    window_length : int, default=20
        Past increments the network reads.
    horizon : int or None, default=None
        Largest forecast step; ``None``: the largest step of the ``fh`` given to
        ``pretrain`` or ``fit``, and 1 when they get none (a later ``predict``
        with a longer ``fh`` is then refused: set ``horizon`` or pass ``fh``).
    hidden_size : int, default=32
        LSTM hidden units.
    num_layers : int, default=1
        Stacked LSTM layers.
    meta_learner : {"ridge", "lstm", "metasgd", "maml", "reptile", "finetune", \
"none"}, default="ridge"
        How the base network adapts: ``"ridge"`` a closed-form ridge head per
        series, shrunk toward the pooled one with meta-learned strengths
        (R2-D2/ANIL style; the default, measured best and cheapest, see the
        benchmarks); ``"lstm"`` a learned LSTM update rule (Ravi & Larochelle
        2017); ``"metasgd"``, ``"maml"``, ``"reptile"``; ``"finetune"`` plain
        SGD from the pooled weights; ``"none"`` the pooled LSTM.
    inner_steps : int, default=5
        Update-rule applications per adaptation (not used by ``"ridge"``).
    inner_lr : float, default=0.1
        Inner step size (the starting value of learned ones).
    first_order : bool, default=True
        Ignore second derivatives in the meta-gradient (about 10x cheaper).
    support_size : int, default=100
        Windows in a task's support set, and adapted on at fit/update time.
    query_size : int, default=8
        Windows in a task's query set.
    task_stride : int or None, default=None
        Step between a series' tasks; ``None`` uses ``query_size``.
    tasks_per_batch : int, default=32
        Tasks per meta-training batch.
    tasks_per_epoch : int or None, default=1024
        Tasks drawn per epoch of steps 1 and 2; ``None`` visits every task.
    max_epochs : int, default=20
        Meta-training epochs (step 2).
    base_max_epochs : int, default=20
        Pooled base-network epochs (step 1).
    n_iter_no_change : int or None, default=6
        Early stopping patience (epochs) on the validation loss; best weights kept.
    max_time : float or None, default=None
        Time budget of ``pretrain`` in seconds; the best weights so far are
        kept. Calibration stops at it too, after at least 256 held-out tasks:
        a floor of a few seconds past the budget for the gradient learners,
        which adapt each task by inner steps (about 7 s on 4 bundled stocks).
    lr : float or None, default=None
        Outer learning rate of steps 1 and 2 (``None``: 1e-3; 0.5 for Reptile).
    gradient_clip : float or None, default=1.0
        Max gradient norm in steps 1 and 2; ``None`` disables clipping.
    validation_fraction : float, default=0.1
        Each series' latest tasks held out: early stopping, and calibration of
        intervals and of the weight of forecast locations (0: no change, the
        random walk, for increments).
    callbacks : list or None, default=None
        skorch callbacks for meta-training (step 2); for the pooled training
        (step 1) when nothing is meta-trained after it (``meta_learner`` "none"
        or "finetune", or ``max_epochs=0``).
    adapt_steps : int or None, default=None
        Update-rule applications at fit/update (``None``: as at pretrain, i.e.
        ``inner_steps`` for the gradient learners; ``"ridge"`` solves its head
        for any value but 0, which keeps the prior head).
    transform : {"auto", "log_return", "difference", "none"}, default="auto"
        Increments; ``"auto"``: log-returns if all values are positive, else differences.
    pretrained : MetaState or None, default=None
        A meta-trained state (``pretrained_state_``); ``fit`` then adapts only,
        and ``pretrain`` continues meta-training from it (the state passed in
        is not modified).
    random_state : int, RandomState or None, default=None
        Seeds meta-training; fixed values give repeatable results on CPU.
    device : {"cpu", "cuda", "mps", "auto"}, "cuda:N" or torch.device, default="cpu"
        Where meta-training and adaptation run; ``"auto"`` picks CUDA when
        available.
    num_threads : int or None, default=1
        torch threads during this forecaster's calls (``None``: torch's setting).
    verbose : int or bool, default=1
        ``1``: progress with the time left during meta-training; ``2``: skorch's too.

    Attributes
    ----------
    pretrained_state_ : MetaState
        The meta-trained learner and its settings (pass to ``pretrained=``).
    adapted_params_ : dict
        Adapted parameters per series (key ``None`` for a single series).

    Examples
    --------
    >>> from sktime.datasets import load_airline
    >>> from sk_metalstm import MetaLSTMForecaster
    >>> forecaster = MetaLSTMForecaster(
    ...     window_length=12, horizon=3, hidden_size=8, support_size=16,
    ...     query_size=4, max_epochs=2, base_max_epochs=2, random_state=0,
    ... )
    >>> forecaster.fit(load_airline()).predict(fh=[1, 2, 3]).shape
    (3,)
    """

    _tags = {
        "authors": ["sk_metalstm developers"],
        "maintainers": ["sk_metalstm developers"],
        "python_dependencies": ["torch", "skorch"],
        "object_type": "forecaster",
        "scitype:y": "univariate",
        "y_inner_mtype": ["pd.Series", "pd-multiindex", "pd_multiindex_hier"],
        "X_inner_mtype": ["pd.DataFrame", "pd-multiindex", "pd_multiindex_hier"],
        "capability:exogenous": True,
        # The network reads the covariates of the first step after the cutoff.
        "capability:non_contiguous_X": False,
        "capability:insample": False,
        "capability:pred_int": True,
        "capability:pred_int:insample": False,
        "capability:missing_values": False,
        # Covariates are standardised numbers: encode categories first.
        "capability:categorical_in_X": False,
        "capability:update": True,
        "capability:pretrain": True,
        # Kept when fit starts over (sktime resets the rest).
        "pretrain:fitted_params": ["pretrained_state_"],
        "capability:random_state": True,
        # Repeatable only with random_state set (sktime's "deterministic" means always).
        "property:randomness": "derandomized",
        "requires-fh-in-fit": False,
        "fit_is_empty": False,
    }

    # Set by fit; a forecaster pickled by 0.1.0, which had no such attribute,
    # reads this default (its forecasts then rebuild instance levels as before).
    _level_dtypes: Sequence[Any] = ()

    # The forecaster keeps the history it needs itself (the tail of each series),
    # so sktime need not store every observation (its default changes in 1.3).
    _config = {"remember_data": False}

    def __init__(
        self,
        window_length: int = 20,
        horizon: int | None = None,
        hidden_size: int = 32,
        num_layers: int = 1,
        meta_learner: str = "ridge",
        inner_steps: int = 5,
        inner_lr: float = 0.1,
        first_order: bool = True,
        support_size: int = 100,
        query_size: int = 8,
        task_stride: int | None = None,
        tasks_per_batch: int = 32,
        tasks_per_epoch: int | None = 1024,
        max_epochs: int = 20,
        base_max_epochs: int = 20,
        n_iter_no_change: int | None = 6,
        max_time: float | None = None,
        lr: float | None = None,
        gradient_clip: float | None = 1.0,
        validation_fraction: float = 0.1,
        callbacks: Sequence[Any] | None = None,
        adapt_steps: int | None = None,
        transform: str = "auto",
        pretrained: MetaState | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        num_threads: int | None = 1,
        verbose: int = 1,
    ) -> None:
        self.window_length = window_length
        self.horizon = horizon
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.meta_learner = meta_learner
        self.inner_steps = inner_steps
        self.inner_lr = inner_lr
        self.first_order = first_order
        self.support_size = support_size
        self.query_size = query_size
        self.task_stride = task_stride
        self.tasks_per_batch = tasks_per_batch
        self.tasks_per_epoch = tasks_per_epoch
        self.max_epochs = max_epochs
        self.base_max_epochs = base_max_epochs
        self.n_iter_no_change = n_iter_no_change
        self.max_time = max_time
        self.lr = lr
        self.gradient_clip = gradient_clip
        self.validation_fraction = validation_fraction
        self.callbacks = callbacks
        self.adapt_steps = adapt_steps
        self.transform = transform
        self.pretrained = pretrained
        self.random_state = random_state
        self.device = device
        self.num_threads = num_threads
        self.verbose = verbose
        super().__init__()
        # sktime creates these only when remember_data is on at construction;
        # a user may switch it on later with set_config.
        self._y = None
        self._X = None

    # ------------------------------------------------------------------ checks
    _parameter_constraints = {
        **dict.fromkeys(
            ("window_length", "hidden_size", "num_layers", "support_size", "query_size"), Int(1)
        ),
        "tasks_per_batch": Int(1),
        **dict.fromkeys(("inner_steps", "max_epochs", "base_max_epochs"), Int(0)),
        "verbose": Verbosity(),
        **dict.fromkeys(
            ("horizon", "task_stride", "tasks_per_epoch", "n_iter_no_change", "num_threads"),
            Int(1, none=True),
        ),
        "adapt_steps": Int(0, none=True),
        "meta_learner": OneOf(META_LEARNERS),
        "transform": OneOf(TRANSFORMS),
        "validation_fraction": Real(0.0, 1.0, high_open=True),
        "inner_lr": Real(0.0, low_open=True),
        **dict.fromkeys(("lr", "gradient_clip", "max_time"), Real(0.0, low_open=True, none=True)),
        "first_order": Bool(),
        "callbacks": ListOf("skorch callbacks"),
        "pretrained": InstanceOf(MetaState, "a pretrained forecaster's pretrained_state_"),
    }

    def _check_params(self) -> None:
        params = self.get_params(deep=False)
        validate_params(params, self._parameter_constraints)
        check_device(self.device)
        if self.pretrained is not None:
            self.pretrained.check_matches(params)

    def _resolve_horizon(self, fh: ForecastingHorizon | None, cutoffs: Any = ()) -> None:
        state = getattr(self, "pretrained_state_", None) or self.pretrained
        self._horizon = resolve_horizon(state, self.horizon, fh, cutoffs)

    def _layout(self) -> TaskLayout:
        return TaskLayout(
            window_length=self.window_length,
            horizon=self._horizon,
            support_size=self.support_size,
            query_size=self.query_size,
            centre=self.transform == "none",
        )

    def _split_series(self, y: Any, same_frequency: bool = True) -> dict[Any, pd.Series]:
        """One checked series per instance (``pretrain`` allows mixed frequencies)."""
        # One complete window of increments, plus the level the first one needs.
        needs_level = self.transform != "none"
        min_length = self.window_length + self._horizon + needs_level
        rule = "window_length + horizon" + (" + 1" if needs_level else "")
        pieces = checked_instances(y, min_length, rule, same_frequency)
        warn_if_increments(pieces, self.transform)
        return pieces

    @property
    def _exog_columns(self) -> list[str] | None:
        return self.pretrained_state_.config.get("exog_columns")

    # ---------------------------------------------------------- meta-training
    def _meta_train(self, y: Any, X: Any, warm_start: MetaState | None) -> MetaState:
        """Steps 1 and 2 on every series of ``y`` (step 2 only from a ``warm_start``)."""
        if warm_start is not None:
            check_columns(warm_start.config.get("exog_columns"), X)
        pieces = self._split_series(y, same_frequency=False)
        features = training_features(pieces, exogenous_pieces(X, list(pieces)), self.transform)
        # Plain Python numbers: torch refuses numpy integers (a grid from np.arange)
        # for sizes, and the state's config is saved as JSON.
        config = {
            k: v.item() if isinstance(v, np.generic) else v
            for k, v in self.get_params(deep=False).items()
            if k != "pretrained"
        }
        # The state must not share the caller's generator: continuing from it
        # would advance theirs (and the state's record of it would move).
        config["random_state"] = copy.deepcopy(config["random_state"])
        config.update(horizon=self._horizon, exog_columns=None if X is None else list(X.columns))
        config.pop("callbacks")
        device = resolve_device(self.device)
        with torch_runtime(seed_from(self.random_state), self.num_threads, device):
            return meta_train(
                features,
                layout=self._layout(),
                config=config,
                callbacks=self.callbacks,
                device=device,
                warm_start=warm_start,
            )

    def _pretrain(self, y: pd.DataFrame, X: Any = None, fh: Any = None) -> MetaLSTMForecaster:
        """Steps 1 and 2 on every series of the panel ``y`` (step 2 only from ``pretrained``)."""
        self._start_pretrain(y, fh, continues_state=self.pretrained is not None)
        self.pretrained_state_ = self._meta_train(y, X, warm_start=self.pretrained)
        return self

    def _pretrain_update(self, y: Any, X: Any = None, fh: Any = None) -> MetaLSTMForecaster:
        """Continue meta-training (step 2) on more series."""
        self._start_pretrain(y, fh, continues_state=True)
        self.pretrained_state_ = self._meta_train(y, X, self.pretrained_state_)
        # After a fit, sktime does not count an attribute that existed before
        # pretrain as pretrained, and the next fit would discard the state.
        attrs = getattr(self, "_pretrained_attrs", None) or []
        if "pretrained_state_" not in attrs:
            self._pretrained_attrs = [*attrs, "pretrained_state_"]
        return self

    def _start_pretrain(self, y: Any, fh: ForecastingHorizon | None, continues_state: bool) -> None:
        """Check what ``pretrain`` got and set the horizon, before any training."""
        if y is None:  # sktime's pretrain passes it on (a no-op for its own forecasters)
            raise ValueError(
                "pretrain needs the series to train on: a panel (pd-multiindex) of one or "
                "more series, got y=None."
            )
        self._check_params()
        cutoffs = list(_instance_cutoffs(y, fh).values())
        self._resolve_horizon(fh, cutoffs)
        # A continued state keeps its horizon: an fh beyond it was silently
        # ignored. Relative steps only: an absolute fh counts from the series
        # fit will get (fit checks it there), not from this panel's end.
        if not continues_state or fh is None or not fh.is_relative:
            return
        if not (in_whole_steps(fh) or cutoffs):
            return
        reach = resolve_horizon(None, None, fh, cutoffs)
        if reach > self._horizon:
            raise ValueError(
                f"pretrain continues a state whose horizon is {self._horizon}, but fh "
                f"reaches {reach} steps ahead; pretrain a new forecaster (without the "
                f"state) with horizon >= {reach}."
            )

    @classmethod
    def from_pretrained(cls, state: MetaState, **params: Any) -> MetaLSTMForecaster:
        """A forecaster adapting with ``state``, with its settings; ``params`` override them.

        Parameters
        ----------
        state : MetaState
            A ``pretrained_state_`` (or ``load_pretrained``'s result).
        **params
            Forecaster parameters replacing the state's; the settings fixed by
            pretraining (architecture, ``meta_learner``, learner settings) are
            refused at fit if they differ.

        Returns
        -------
        MetaLSTMForecaster
            Unfitted: ``fit`` adapts without meta-training.

        Raises
        ------
        TypeError
            If ``state`` is not a ``MetaState`` (e.g. a forecaster: pass its
            ``pretrained_state_``).
        """
        if not isinstance(state, MetaState):
            hint = (
                " (a forecaster: pass its pretrained_state_)"
                if isinstance(state, MetaLSTMForecaster)
                else ""
            )
            raise TypeError(
                f"from_pretrained needs a MetaState, got {type(state).__name__}{hint}."
            )
        names = set(cls.get_param_names())
        settings = {k: copy.deepcopy(v) for k, v in state.config.items() if k in names}
        return cls(**{**settings, **params, "pretrained": state})

    # ------------------------------------------------------------ adaptation
    def _fit(self, y: Any, X: Any = None, fh: Any = None) -> MetaLSTMForecaster:
        """Step 3: adapt to ``y`` (meta-training first if nothing is pretrained)."""
        had_state = hasattr(self, "pretrained_state_")
        try:
            return self._adapt_to(y, X, fh)
        except BaseException:
            # sktime stores fh before _fit and keeps it while the forecaster is
            # pretrained: a refused fh would be reused by the next fit(y).
            self._fh = None
            # A state meta-trained by this failed call would be taken for a
            # pretrained one: the next pretrain continued it (and its horizon).
            if not had_state:
                vars(self).pop("pretrained_state_", None)
            raise

    def _adapt_to(self, y: Any, X: Any, fh: Any) -> MetaLSTMForecaster:
        self._check_params()
        # Each series' own end: in a panel an absolute fh is further from the
        # series that ends first than from sktime's cutoff (the latest end).
        cutoffs = _instance_cutoffs(y, fh, strict_dates=True)
        self._resolve_horizon(fh, list(cutoffs.values()))
        self._horizon_pretrained = self.pretrained is not None or hasattr(
            self, "pretrained_state_"
        )
        for key, cutoff in cutoffs.items():  # fail now, not at the first predict
            steps = relative_steps(fh, cutoff)
            check_reach(steps, self._horizon, self._horizon_pretrained, series=key)
        pieces = self._split_series(y)
        # A state from pretrain (which starts from ``pretrained``) is the newest.
        if not hasattr(self, "pretrained_state_"):
            if self.pretrained is not None:
                self.pretrained_state_ = self.pretrained
            else:
                self.pretrained_state_ = self._meta_train(y, X, warm_start=None)
        check_columns(self._exog_columns, X)
        x_pieces = exogenous_pieces(X, list(pieces))
        self._is_panel = not isinstance(y, pd.Series)
        self._y_name = y.name if isinstance(y, pd.Series) else None
        self._panel_names = None if isinstance(y, pd.Series) else (y.index.names, y.columns)
        # Forecast indexes are rebuilt from labels; a categorical level would come back as str.
        levels = [] if isinstance(y, pd.Series) else y.index.levels[:-1]
        self._level_dtypes = [level.dtype for level in levels]
        self._states = self._adapted(started_states(pieces, x_pieces, self.transform, self._keep))
        self._commit()
        return self

    @property
    def _keep(self) -> int:
        # What adaptation and prediction ever read: support windows + one level.
        return self.support_size + self.window_length + self._horizon

    def _adapted(self, states: list[SeriesState]) -> dict[Any, SeriesState]:
        # None: the learner's own rule, as at pretrain (its inner_steps; "ridge",
        # which ignores inner_steps, solves its head even when inner_steps=0).
        steps = self.adapt_steps
        learner, device = self.pretrained_state_.learner, resolve_device(self.device)
        threads = self.num_threads
        return adapt_states(
            states, learner, self._layout(), steps=steps, device=device, num_threads=threads
        )

    @property
    def adapted_params_(self) -> dict[Any, dict[str, Any]]:
        """Adapted parameters per series (key ``None`` for a single series)."""
        self.check_is_fitted()
        if getattr(self, "_is_vectorized", False):
            raise AttributeError(
                "adapted_params_: this forecaster was fitted on a y of several columns, "
                "which sktime fits one forecaster per column; read each column's "
                "adapted_params_ from forecasters_ (or get_fitted_params())."
            )
        return {None if k is SINGLE else k: s.params for k, s in self._states.items()}

    # -------------------------------------------------------------- predict
    def _forecasts(self, fh: ForecastingHorizon, X: Any) -> Any:
        cutoffs = {key: state.cutoff for key, state in self._states.items()}
        x_next = first_step_covariates(
            X, self._exog_columns, cutoffs, getattr(self._fh, "freq", None)
        )
        return forecasts(
            list(self._states.values()),
            self.pretrained_state_.learner,
            fh,
            horizon=self._horizon,
            window_length=self.window_length,
            num_threads=self.num_threads,
            x_next=x_next,
            location_weight=self.pretrained_state_.location_weight,
            pretrained=getattr(self, "_horizon_pretrained", False),
        )

    def _predict(self, fh: ForecastingHorizon, X: Any = None) -> pd.Series | pd.DataFrame:
        """Forecast the steps in ``fh`` (1..horizon) for every fitted series."""
        parts, values = [], []
        for state, steps, times, forecast in self._forecasts(fh, X):
            parts.append((state.key, times))
            values.append(state.to_levels(forecast.location)[steps - 1])
        index = output_index(parts, self._index_names, self._level_dtypes)
        if not self._is_panel:
            return pd.Series(values[0], index=index, name=self._y_name)
        return pd.DataFrame({self._panel_names[1][0]: np.concatenate(values)}, index=index)

    def _predict_quantiles(
        self, fh: ForecastingHorizon, X: Any = None, alpha: list[float] | None = None
    ) -> pd.DataFrame:
        """Forecast scale times calibrated residual quantiles (``_prediction``)."""
        quantiles = residual_quantiles(self._residuals(), alpha)
        index, values = self._per_series(fh, X, lambda s, f, _: levels_at(s, f, quantiles))
        columns = self._get_columns(method="predict_quantiles", alpha=alpha)
        return pd.DataFrame(np.concatenate(values, axis=1).T, index=index, columns=columns)

    def _predict_var(self, fh: ForecastingHorizon, X: Any = None, cov: bool = False) -> Any:
        """Variance of the forecast distribution of each level (``_prediction``)."""
        if cov:
            raise NotImplementedError("MetaLSTMForecaster gives marginal variances (cov=False).")
        # The residual distribution as its quantile function at many levels:
        # with few residuals its tails reach beyond them (``_conformal``).
        sample = residual_quantiles(self._residuals(), variance_levels())
        index, values = self._per_series(fh, X, lambda s, f, _: level_variance(s, f, sample))
        columns = self._get_columns(method="predict_var")
        return pd.DataFrame(np.concatenate(values), index=index, columns=columns)

    def _predict_proba(self, fh: ForecastingHorizon, X: Any = None, marginal: bool = True) -> Any:
        """The calibrated forecast distribution, a ``QuantileGrid`` (``_prediction``).

        Its ``ppf`` is ``predict_quantiles`` at every multiple of 0.005 from
        0.005 to 0.995, linear in between, with exponential tails beyond; it
        has a density, so log scores are defined as well as CRPS.
        """
        if not marginal:
            raise NotImplementedError(
                "MetaLSTMForecaster gives marginal distributions of each step (marginal=True)."
            )
        quantiles = residual_quantiles(self._residuals(), proba_levels())
        index, values = self._per_series(fh, X, lambda s, f, _: levels_at(s, f, quantiles))
        columns = self._get_columns(method="predict_var")
        return grid_distribution(index, np.concatenate(values, axis=1), columns)

    def _per_series(self, fh: ForecastingHorizon, X: Any, values_of: Any) -> Any:
        residuals = self._residuals()
        return per_series(
            self._forecasts(fh, X), values_of, residuals, self._index_names, self._level_dtypes
        )

    def _residuals(self) -> dict[str, np.ndarray]:
        residuals = self.pretrained_state_.residuals
        if residuals is None:
            raise ValueError("This pretrained state has no calibration residuals; pretrain again.")
        return residuals

    @property
    def _index_names(self) -> list[Any] | None:
        return list(self._panel_names[0]) if self._is_panel else None

    # --------------------------------------------------------------- update
    def _check_backtest_after_cutoff(self, y: Any, cv: Any) -> None:
        """Refuse a backtest whose first origin lies inside the history the states hold.

        sktime moves the cutoff back to the end of ``cv``'s first window in
        ``y``; the states cannot go back (revisions do not move the forecast
        origin), so every origin before their end was forecast from it:
        duplicate forecasts under one label, silently. An origin at the end
        itself is forecast correctly.
        """
        if not isinstance(y, pd.Series | pd.DataFrame):
            return  # numpy rows are refused by update
        if getattr(self, "_is_vectorized", False):  # one forecaster per column of y
            inner = self.forecasters_
            if len(inner) == 1 and isinstance(y, pd.DataFrame):
                for column in inner.columns.intersection(y.columns):
                    inner[column].iloc[0]._check_backtest_after_cutoff(y[[column]], cv)
            return
        try:
            first_window = next(iter(cv.split(y)))[0]
        except (AttributeError, StopIteration, TypeError, ValueError):  # sktime says what is wrong
            return
        for key, series in split_instances(y.iloc[first_window]).items():
            state = self._states.get(key)
            if state is None or not len(series):
                continue  # unseen instances are refused by update
            origin, end = series.index[-1], state.cutoff[0]
            try:
                inside = bool(origin < end)
            except TypeError:  # another kind of index: update refuses it
                continue
            if inside:
                where = "" if key is SINGLE else f" for {key!r}"
                raise ValueError(
                    f"update_predict's first forecast origin is {origin}{where}, but the "
                    f"forecaster has already seen the series up to {end}: it forecasts only "
                    "from the latest point it has seen, so every origin before that would "
                    "be forecast from it. Pass the observations from the cutoff on, or fit "
                    "on the data before the first origin to backtest from."
                )

    def _update(self, y: Any, X: Any = None, update_params: bool = True) -> MetaLSTMForecaster:
        """Append ``y`` and, with ``update_params``, adapt again (no meta-training)."""
        if not isinstance(y, pd.Series | pd.DataFrame):  # sktime's vectorised columns
            raise ValueError(
                "update got several columns, but fit got one univariate series (or "
                "panel); pass the new rows in the layout fit got."
            )
        self._check_numpy_update(y)
        pieces = split_instances(y)
        if self._exog_columns is not None:
            check_columns(self._exog_columns, X)
        elif X is not None:
            warnings.warn(
                "X passed to update is ignored: the meta-learner was trained without "
                "exogenous X (pretrain with X to use covariates).",
                UserWarning,
                stacklevel=3,
            )
        x_pieces = exogenous_pieces(X if self._exog_columns else None, list(pieces))
        states = appended_states(self._states, pieces, x_pieces, self._keep)
        new = self._adapted(states) if update_params else {s.key: s for s in states}
        self._states = {**self._states, **new}
        # Forecasts are named after the latest data, as sktime names intervals.
        if isinstance(y, pd.Series):
            self._y_name = y.name
        elif self._panel_names is not None:
            self._panel_names = (y.index.names, y.columns)
        committed = getattr(self, "_committed_cutoff", None)
        if committed is not None and self._cutoff[0] < committed[0]:
            # Data that revise the past do not move the forecast origin back:
            # the states still end at the latest point seen.
            self._set_cutoff(committed)
        self._align_cutoff_frequency()
        self._commit()
        return self

    def _check_numpy_update(self, y: pd.Series | pd.DataFrame) -> None:
        """Refuse a numpy update that would only revise the start of the series.

        sktime indexes a numpy array's rows 0, 1, ...: new observations passed
        that way land on the first time points, are taken as revisions of
        data the forecaster no longer uses, and the update silently does
        nothing. (A numpy array holding the whole history reaches past the
        cutoff and appends as expected.)
        """
        committed = getattr(self, "_committed_cutoff", None)
        mtype = str(getattr(self, "_y_mtype_last_seen", ""))
        times = y.index.get_level_values(-1) if isinstance(y.index, pd.MultiIndex) else y.index
        if (
            mtype.startswith(("np.", "numpy"))  # a 2-D array, or numpy3D for a panel
            and committed is not None
            and pd.api.types.is_integer(committed[0])  # other index kinds are refused later
            and len(times)
            and times.max() <= committed[0]
        ):
            n = len(times.unique())
            raise ValueError(
                f"update got a numpy array of {n} time point(s); sktime reads them as "
                f"time points 0 to {n - 1}, all at or before the cutoff "
                f"({committed[0]}), so they would only revise old data. numpy carries no "
                "time index: pass the new observations in pandas, indexed after the "
                f"cutoff (e.g. index=range({committed[0] + 1}, {committed[0] + 1 + n})), "
                "or the whole history as one array."
            )

    def _set_cutoff_from_y(self, y: Any) -> None:
        """Set the cutoff from new data, with the frequency of the series fit saw.

        ``update_predict`` checks its fh against this cutoff before ``_update``
        runs, so the frequency is put right here too (see below).
        """
        super()._set_cutoff_from_y(y)
        if getattr(self, "_is_fitted", False) and getattr(self, "_states", None):
            self._align_cutoff_frequency()

    def _align_cutoff_frequency(self) -> None:
        """Give sktime's cutoff the frequency of the series the states hold.

        sktime infers the cutoff's frequency from the update's rows alone:
        three business days in a row read as daily, and every ``fh`` built
        from that cutoff then clashes with the series' own frequency.
        """
        cutoff = self._cutoff
        cutoffs = [state.cutoff for state in self._states.values()]
        # Other index kinds (an update indexed unlike fit) are refused in _update.
        if not isinstance(cutoff, pd.DatetimeIndex) or not all(
            isinstance(c, pd.DatetimeIndex) for c in cutoffs
        ):
            return
        freqs = {c.freq for c in cutoffs}
        freq = freqs.pop() if len(freqs) == 1 else None
        if freq is not None and cutoff.freq != freq and freq.is_on_offset(cutoff[0]):
            self._set_cutoff(pd.date_range(cutoff[0], periods=1, freq=freq, name=cutoff.name))

    def _commit(self) -> None:
        """Remember the cutoff of the data now taken (revisions do not move it back)."""
        self._committed_cutoff = self._cutoff

    # ------------------------------------------------------------ test params
    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict[str, Any]]:
        """Tiny configurations for sktime's estimator checks."""
        # Small enough for sktime's 10-point test panels with fh up to 3 steps.
        tiny = dict(window_length=2, hidden_size=4, support_size=2, query_size=1)
        tiny.update(tasks_per_batch=8, max_epochs=1, base_max_epochs=1, inner_steps=1)
        tiny.update(random_state=0)
        return [
            {**tiny, "meta_learner": "ridge"},
            {**tiny, "meta_learner": "metasgd"},
            {**tiny, "meta_learner": "lstm", "transform": "difference"},
        ]


def _instance_cutoffs(
    y: Any, fh: ForecastingHorizon | None, strict_dates: bool = False
) -> dict[Any, pd.Index]:
    """Each series' last time point with its frequency, as an absolute ``fh`` counts from it.

    Integer relative steps are the same from every cutoff: then only the
    first series' is needed. Series whose dates have no frequency are left
    out (``pretrain`` takes them); with ``strict_dates`` (``fit``, which needs
    regular dates), a dated or time-span ``fh`` that no series can count is
    refused as the irregular dates it meets.
    """
    if fh is None:
        return {}
    pieces = split_instances(y)
    if in_whole_steps(fh):
        pieces = dict([next(iter(pieces.items()))]) if pieces else {}
    cutoffs, undated = {}, None
    for key, series in pieces.items():
        last = series.index[-1:]
        if isinstance(last, pd.DatetimeIndex):
            freq = frequency(series.index)
            if freq is None:
                undated = undated or (key, series.index)
                continue
            last = pd.DatetimeIndex(last, freq=freq)
        cutoffs[key] = last
    if strict_dates and not cutoffs and undated is not None and not in_whole_steps(fh):
        # fit needs regular dates anyway: name them, not the fh ("pass integer
        # steps" would only meet the same refusal). pretrain takes such series.
        check_regular(undated[1], undated[0])
    return cutoffs
