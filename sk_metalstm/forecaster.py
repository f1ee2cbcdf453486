"""MetaLSTMForecaster: sktime orchestration of pretrain (meta-train), fit (adapt), predict.

The work itself lives elsewhere: splitting and checking series
(``_series``), covariates (``_exogenous``), per-series state
(``_series_state``), meta-training (``meta.training``), adaptation and
forecasting with a learner (``meta.adaptation``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sktime.forecasting.base import BaseForecaster, ForecastingHorizon

from sk_metalstm._exogenous import (
    check_columns,
    exogenous_pieces,
    feature_matrix,
    first_step_covariates,
)
from sk_metalstm._series import (
    SINGLE,
    check_common_frequency,
    check_regular,
    check_series,
    split_instances,
    where,
)
from sk_metalstm._series_state import SeriesState
from sk_metalstm._torch_runtime import check_device, resolve_device, seed_from, torch_runtime
from sk_metalstm._validation import check_bool, check_choice, check_int, check_real
from sk_metalstm.exceptions import InvalidParameterError
from sk_metalstm.meta import META_LEARNERS
from sk_metalstm.meta.adaptation import adapt_to_supports, forecast_window
from sk_metalstm.meta.state import MetaState
from sk_metalstm.meta.training import meta_train
from sk_metalstm.windowing import (
    TRANSFORMS,
    TaskLayout,
    resolve_transform,
    support_for_adaptation,
    to_increments,
)

__all__ = ["MetaLSTMForecaster"]


class MetaLSTMForecaster(BaseForecaster):
    """Meta-learned LSTM forecaster: meta-train across series, adapt to each one.

    The method has three steps, mapped onto sktime's API:

    1. ``pretrain(y_panel)`` trains a pooled base LSTM on tasks cut from every
       series of the panel (a task is a support set of windows and a later
       query set from one series and time block);
    2. then trains a meta-learner over the same tasks: starting from the pooled
       weights, it learns an initialisation and an update rule such that a few
       updates on a task's support set make the network good on its query set;
    3. ``fit(y)`` adapts the base weights to ``y`` with the meta-learner (on its
       ``support_size`` most recent windows), ``predict(fh)`` forecasts with the
       adapted network, and ``update(y_new)`` adapts again on the new data,
       without re-running meta-training.

    Without a prior ``pretrain``, ``fit`` meta-trains on tasks cut from ``y``
    itself (all its instances when ``y`` is a panel).

    Each series is transformed to increments so that prices, rates and exchange
    rates are comparable (``transform``), and each task is scaled with statistics
    of its support set only. Forecasts are mapped back exactly to the user's
    scale. Forecasts are direct multi-step: one network output per step up to
    ``horizon``.

    Parameters
    ----------
    window_length : int, default=20
        Number of past increments the network reads.
    horizon : int or None, default=None
        Largest forecast step (one network output per step). ``None`` takes the
        largest step of the ``fh`` passed to ``pretrain``/``fit`` (1 without one).
        ``predict`` raises for ``fh`` beyond it.
    hidden_size : int, default=32
        LSTM hidden units.
    num_layers : int, default=1
        Stacked LSTM layers.
    meta_learner : {"ridge", "lstm", "metasgd", "maml", "reptile", "finetune", \
"none"}, default="ridge"
        How the base network is adapted. ``"ridge"``: a closed-form ridge
        output layer per series on the LSTM's features and recent lags, shrunk
        toward the pooled one with meta-learned strengths, kept only where
        leave-one-out error on the series' own windows says it helps (R2-D2 /
        ANIL style); ``"lstm"``: a learned coordinate-wise LSTM update rule
        (Ravi & Larochelle 2017, extended); ``"metasgd"``: learned
        initialisation and per-weight step sizes; ``"maml"``: learned
        initialisation, SGD steps; ``"reptile"``: Reptile; ``"finetune"``:
        plain SGD from the pooled weights (not meta-trained); ``"none"``: the
        pooled LSTM, no adaptation. The default measured best on generated
        families and within noise of the pooled model on held-out real series
        (``benchmarks/few_shot.py``, ``benchmarks/held_out_real.py``; see the
        docs), and is the cheapest to train and to adapt.
    inner_steps : int, default=5
        Update-rule applications per adaptation, during meta-training and
        (unless ``adapt_steps`` says otherwise) at fit/update time. Learned
        initialisations help only at the step count they were trained for.
        Not used by ``"ridge"`` (a closed-form solve).
    inner_lr : float, default=0.1
        Inner step size: fixed for ``"maml"``, ``"reptile"`` and ``"finetune"``,
        the starting value of the learned step sizes of ``"metasgd"`` and
        ``"lstm"``.
    first_order : bool, default=True
        Ignore second derivatives in the meta-gradient (about 10x cheaper on CPU).
    support_size : int, default=100
        Windows in a task's support set, and the number of recent windows used
        to adapt at fit/update time (fewer if the series is shorter), so that
        meta-training tasks look like deployment.
    query_size : int, default=8
        Windows in a task's query set.
    task_stride : int or None, default=None
        Step between consecutive tasks of a series; ``None`` uses ``query_size``.
    tasks_per_batch : int, default=32
        Tasks per meta-training batch (batched with ``torch.func.vmap``).
    tasks_per_epoch : int or None, default=1024
        Tasks drawn at random for each epoch of steps 1 and 2, so that an
        epoch costs the same on a panel of any size; ``None`` visits every
        task once per epoch.
    max_epochs : int, default=20
        Meta-training epochs (step 2).
    base_max_epochs : int, default=20
        Pooled base-network epochs (step 1).
    n_iter_no_change : int or None, default=6
        Stop a phase after this many epochs without a better meta-validation
        loss (needs ``validation_fraction > 0``); the best epoch's weights are
        kept. ``None`` runs every epoch. (3 stopped the pooled phase too early
        on noisy validation losses: measured in ``benchmarks/few_shot.py``.)
    max_time : float or None, default=None
        Time budget of ``pretrain`` in seconds (both phases; the pooled phase
        gets its share by epochs). Training stops at the first batch past it
        and keeps the best weights so far.
    lr : float or None, default=None
        Outer learning rate (Adam) for steps 1 and 2; ``None`` gives 1e-3, and
        0.5 (plain SGD) for Reptile's interpolation step.
    gradient_clip : float or None, default=1.0
        Max norm of meta-gradients (and pooled gradients); ``None`` disables it.
    validation_fraction : float, default=0.1
        Fraction of each series' latest tasks held out for a meta-validation
        loss (``valid_loss``: early stopping, best-epoch weights, interval
        calibration). Never shuffled; 0 trains on every task.
    callbacks : list or None, default=None
        skorch callbacks for meta-training (step 2), e.g. ``EarlyStopping``,
        ``Checkpoint``, LR schedulers.
    adapt_steps : int or None, default=None
        Update-rule applications at fit/update time; ``None`` uses the count the
        meta-learner was trained with. Lets a pretrained learner be tuned.
        ``0`` keeps the learned initialisation (for ``"ridge"``, the prior head).
    transform : {"auto", "log_return", "difference", "none"}, default="auto"
        How each series becomes increments. ``"auto"``: log-returns when all
        values are positive (prices, FX), differences otherwise. It cannot tell a
        price from a positive interest rate: pass ``"difference"`` for rates,
        whose relative changes explode near zero.
    pretrained : MetaState or None, default=None
        A meta-trained state (``pretrained_state_`` of a pretrained forecaster).
        ``fit`` then skips meta-training. Because it is a parameter, it survives
        ``set_params`` and ``clone``: meta-train once, then tune or backtest
        adaptation settings (``adapt_steps``, ``support_size``) with
        ``ForecastingGridSearchCV`` or ``evaluate``.
    random_state : int, RandomState or None, default=None
        Seeds meta-training; fixed values give repeatable results on CPU.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where meta-training and adaptation run. Fitted state is kept on CPU.
    num_threads : int or None, default=1
        torch intra-op threads while this forecaster computes (restored after).
        Small LSTMs gain nothing from more; on a busy 2-core machine torch's
        default was 10-17x slower. ``None`` keeps torch's setting.
    verbose : int, default=1
        ``1`` prints a progress line with the time left every few seconds
        while ``pretrain`` (or a meta-training ``fit``) runs; runs shorter than
        that print nothing. ``2`` adds skorch's epoch table and progress bar;
        ``0`` is silent.

    Attributes
    ----------
    pretrained_state_ : MetaState
        The meta-trained learner and its settings (pass to ``pretrained=``).
    adapted_params_ : dict
        Adapted parameters per series (key ``None`` for a single series):
        network weights, or the ridge head (``"ridge.weight"``) for
        ``"ridge"``. Read-only, from the per-series state.

    Examples
    --------
    >>> from sktime.datasets import load_airline
    >>> from sk_metalstm import MetaLSTMForecaster
    >>> y = load_airline()
    >>> forecaster = MetaLSTMForecaster(
    ...     window_length=12, horizon=3, hidden_size=8, support_size=16,
    ...     query_size=4, max_epochs=2, base_max_epochs=2, random_state=0,
    ... )
    >>> forecaster.fit(y)
    MetaLSTMForecaster(...)
    >>> forecaster.predict(fh=[1, 2, 3]).shape
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
        "capability:insample": False,
        "capability:pred_int": True,
        "capability:pred_int:insample": False,
        "capability:missing_values": False,
        "capability:update": True,
        "capability:pretrain": True,
        "capability:random_state": True,
        "requires-fh-in-fit": False,
        "fit_is_empty": False,
    }

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
    def _check_params(self) -> None:
        positive = ("window_length", "hidden_size", "num_layers", "support_size", "query_size")
        for name in (*positive, "tasks_per_batch"):
            check_int(name, getattr(self, name), 1)
        for name in ("inner_steps", "max_epochs", "base_max_epochs", "verbose"):
            check_int(name, getattr(self, name), 0)
        for name in (
            "horizon",
            "task_stride",
            "tasks_per_epoch",
            "n_iter_no_change",
            "num_threads",
        ):
            check_int(name, getattr(self, name), 1, allow_none=True)
        check_int("adapt_steps", self.adapt_steps, 0, allow_none=True)
        check_choice("meta_learner", self.meta_learner, META_LEARNERS)
        check_choice("transform", self.transform, TRANSFORMS)
        check_real(
            "validation_fraction", self.validation_fraction, low=0.0, high=1.0, high_open=True
        )
        check_real("inner_lr", self.inner_lr, low=0.0, low_open=True)
        for name in ("lr", "gradient_clip", "max_time"):
            check_real(name, getattr(self, name), low=0.0, low_open=True, allow_none=True)
        check_bool("first_order", self.first_order)
        if self.callbacks is not None and not isinstance(self.callbacks, (list, tuple)):
            raise InvalidParameterError(
                "callbacks must be None or a list of skorch callbacks, got "
                f"{type(self.callbacks).__name__}."
            )
        check_device(self.device)
        if self.pretrained is not None:
            if not isinstance(self.pretrained, MetaState):
                raise TypeError(
                    "pretrained must be a MetaState (a pretrained forecaster's "
                    f"pretrained_state_), got {type(self.pretrained).__name__}."
                )
            mismatches = self.pretrained.mismatches(self.get_params(deep=False))
            if mismatches:
                detail = ", ".join(
                    f"{k}={v[0]!r} (state has {v[1]!r})" for k, v in mismatches.items()
                )
                raise ValueError(
                    f"pretrained state does not match this forecaster: {detail}. "
                    "Use MetaLSTMForecaster.from_pretrained(state, ...) to copy them."
                )

    def _resolve_horizon(self, fh: ForecastingHorizon | None, cutoff: Any = None) -> None:
        """Fix the horizon: a pretrained state's, the parameter, or ``fh``'s reach."""
        state = getattr(self, "pretrained_state_", None) or self.pretrained
        if state is not None:
            self._horizon = state.config["horizon"]
        elif self.horizon is not None:
            self._horizon = self.horizon
        elif fh is not None and (fh.is_relative or cutoff is not None):
            steps = fh.to_relative(cutoff) if cutoff is not None else fh
            self._horizon = max(1, int(np.max(steps.to_numpy())))
        else:
            self._horizon = 1

    def _layout(self) -> TaskLayout:
        return TaskLayout(
            window_length=self.window_length,
            horizon=self._horizon,
            support_size=self.support_size,
            query_size=self.query_size,
            centre=self.transform == "none",
        )

    def _split_series(self, y: Any, same_frequency: bool = True) -> dict[Any, pd.Series]:
        """One checked ``pd.Series`` per instance.

        ``same_frequency`` rejects irregular dates, and panels whose series have
        different frequencies (their forecasts would need one horizon each);
        ``pretrain`` allows both, since tasks are cut from each series alone.
        """
        pieces = split_instances(y)
        # One complete window of increments, plus the level the first one needs.
        needs_level = self.transform != "none"
        min_length = self.window_length + self._horizon + needs_level
        rule = "window_length + horizon" + (" + 1" if needs_level else "")
        if not pieces:
            raise ValueError(f"y is empty; MetaLSTMForecaster needs at least {min_length} points.")
        for key, series in pieces.items():
            check_series(series, key, min_length, rule)
            if same_frequency:
                check_regular(series.index, key)
        if same_frequency and len(pieces) > 1:
            check_common_frequency(pieces)
        return pieces

    @property
    def _exog_columns(self) -> list[str] | None:
        return self.pretrained_state_.config.get("exog_columns")

    # ---------------------------------------------------------- meta-training
    def _meta_train(self, y: Any, X: Any, warm_start: MetaState | None) -> MetaState:
        pieces = self._split_series(y, same_frequency=False)
        x_pieces = exogenous_pieces(X, list(pieces))
        features = []
        for key, series in pieces.items():
            values = series.to_numpy(dtype=np.float64)
            kind = resolve_transform(values, self.transform)
            times = series.index if kind == "none" else series.index[1:]
            z = feature_matrix(to_increments(values, kind), times, x_pieces[key], where(key))
            features.append(z)
        config = self.get_params(deep=False)
        for key in ("pretrained", "callbacks"):
            config.pop(key)
        config["horizon"] = self._horizon
        config["exog_columns"] = None if X is None else list(X.columns)
        with torch_runtime(seed_from(self.random_state), self.num_threads):
            return meta_train(
                features,
                layout=self._layout(),
                config=config,
                callbacks=self.callbacks,
                device=resolve_device(self.device),
                warm_start=warm_start,
            )

    def _pretrain(self, y: pd.DataFrame, X: Any = None, fh: Any = None) -> MetaLSTMForecaster:
        """Steps 1 and 2 on every series of the panel ``y``."""
        self._check_params()
        self._resolve_horizon(fh)
        self.pretrained_state_ = self._meta_train(y, X, warm_start=None)
        return self

    def _pretrain_update(
        self, y: pd.DataFrame, X: Any = None, fh: Any = None
    ) -> MetaLSTMForecaster:
        """Continue meta-training (step 2) on more series."""
        # A clone of a pretrained forecaster carries pretrained_state_ but not
        # the private horizon, so resolve it again (from the state).
        self._check_params()
        self._resolve_horizon(fh)
        check_columns(self._exog_columns, X)
        self.pretrained_state_ = self._meta_train(y, X, warm_start=self.pretrained_state_)
        return self

    @classmethod
    def from_pretrained(cls, state: MetaState, **params: Any) -> MetaLSTMForecaster:
        """A new forecaster that adapts with ``state``, with its architecture settings.

        Parameters
        ----------
        state : MetaState
            ``pretrained_state_`` of a pretrained (or fitted) forecaster.
        **params
            Further parameters, e.g. ``adapt_steps`` or ``support_size``.
        """
        names = set(cls.get_param_names())
        settings = {k: v for k, v in state.config.items() if k in names}
        return cls(**{**settings, **params, "pretrained": state})

    # ------------------------------------------------------------ adaptation
    def _fit(self, y: Any, X: Any = None, fh: Any = None) -> MetaLSTMForecaster:
        """Step 3: adapt to ``y`` (meta-training first if nothing is pretrained)."""
        self._check_params()
        self._resolve_horizon(fh, self.cutoff)
        pieces = self._split_series(y)
        if self.pretrained is not None:
            self.pretrained_state_ = self.pretrained
        elif not hasattr(self, "pretrained_state_"):
            self.pretrained_state_ = self._meta_train(y, X, warm_start=None)
        check_columns(self._exog_columns, X)
        x_pieces = exogenous_pieces(X, list(pieces))
        self._is_panel = not isinstance(y, pd.Series)
        self._y_name = y.name if isinstance(y, pd.Series) else None
        self._panel_names = None if isinstance(y, pd.Series) else (y.index.names, y.columns)
        # The transform is chosen (and checked) on the whole series, once: its
        # tail alone could hide a non-positive price from "log_return".
        states = [
            SeriesState.start(
                key,
                series,
                x_pieces[key],
                resolve_transform(series.to_numpy(dtype=np.float64), self.transform),
                self._keep,
            )
            for key, series in pieces.items()
        ]
        self._states = self._adapted(states)
        self._committed_cutoff = self._cutoff
        return self

    @property
    def _keep(self) -> int:
        # What adaptation and prediction ever read: support windows + one level.
        return self.support_size + self.window_length + self._horizon

    def _adapted(self, states: list[SeriesState]) -> dict[Any, SeriesState]:
        """``states`` adapted by the learned update rule, keyed by series."""
        layout = self._layout()
        supports = [support_for_adaptation(state.features(), layout) for state in states]
        steps = self.adapt_steps
        if steps is None:
            steps = self.pretrained_state_.config["inner_steps"]
        params = adapt_to_supports(
            self.pretrained_state_.learner,
            supports,
            steps=steps,
            device=resolve_device(self.device),
            num_threads=self.num_threads,
            labels=[where(state.key) for state in states],
        )
        return {
            state.key: state.adapted(support, p)
            for state, support, p in zip(states, supports, params, strict=True)
        }

    @property
    def adapted_params_(self) -> dict[Any, dict[str, Any]]:
        """Adapted parameters per series (key ``None`` for a single series)."""
        return {None if k == SINGLE else k: s.params for k, s in self._states.items()}

    # -------------------------------------------------------------- predict
    def _increments(self, state: SeriesState, x_next: np.ndarray | None) -> np.ndarray:
        """Forecast increments for steps 1..horizon, in the series' own scale."""
        out = forecast_window(
            self.pretrained_state_.learner,
            state.params,
            state.scaled_window(self.window_length, x_next),
            self.num_threads,
        )
        loc, scale = state.target_scale
        return out * scale + loc

    def _first_step_covariates(self, X: pd.DataFrame | None) -> dict[Any, np.ndarray | None]:
        if self._exog_columns is None:
            return dict.fromkeys(self._states)
        if X is None:
            raise ValueError(
                "This forecaster uses exogenous X: pass X to predict, covering the "
                "forecast period from the first step after the cutoff."
            )
        check_columns(self._exog_columns, X)
        cutoffs = {key: state.cutoff for key, state in self._states.items()}
        return first_step_covariates(X, cutoffs, getattr(self._fh, "freq", None))

    def _per_series(self, fh: ForecastingHorizon) -> list[tuple[SeriesState, np.ndarray, Any]]:
        """(state, steps, output index) for every fitted series."""
        out = []
        for state in self._states.values():
            # A relative fh counts from each series' own last point, whose
            # cutoff carries the frequency sktime's may lack.
            steps, index = self._steps(fh, state.cutoff)
            if self._is_panel:
                prefix = state.key if isinstance(state.key, tuple) else (state.key,)
                index = pd.MultiIndex.from_tuples(
                    [(*prefix, t) for t in index], names=self._panel_names[0]
                )
            out.append((state, steps, index))
        return out

    def _predict(self, fh: ForecastingHorizon, X: Any = None) -> pd.Series | pd.DataFrame:
        """Forecast the steps in ``fh`` (1..horizon) for every fitted series."""
        x_next = self._first_step_covariates(X)
        frames = []
        for state, steps, index in self._per_series(fh):
            values = state.to_levels(self._increments(state, x_next[state.key]))[steps - 1]
            if not self._is_panel:
                return pd.Series(values, index=index, name=self._y_name)
            frames.append(pd.DataFrame({self._panel_names[1][0]: values}, index=index))
        return pd.concat(frames)

    def _predict_quantiles(
        self, fh: ForecastingHorizon, X: Any = None, alpha: list[float] | None = None
    ) -> pd.DataFrame:
        """Quantiles from query-window residuals, scaled by each series' support scale.

        Split-conformal calibration: residuals of the adapted network on
        meta-training query windows (held-out tasks when ``validation_fraction``
        > 0), in task scale, cumulated over steps for increment transforms.
        """
        residuals = self.pretrained_state_.residuals
        if residuals is None:
            raise ValueError("This pretrained state has no calibration residuals; pretrain again.")
        columns = self._get_columns(method="predict_quantiles", alpha=alpha)
        x_next = self._first_step_covariates(X)
        frames = []
        for state, steps, index in self._per_series(fh):
            increments = self._increments(state, x_next[state.key])
            scale = state.target_scale[1]
            if state.kind == "none":
                values = increments[None, :] + np.quantile(residuals["step"], alpha, axis=0) * scale
            else:
                # Quantiles of the cumulated increments map monotonically to levels.
                spread = np.quantile(residuals["cumulative"], alpha, axis=0) * scale
                cumulative = np.cumsum(increments)[None, :] + spread
                values = state.to_levels(np.diff(cumulative, axis=1, prepend=0.0))
            frames.append(pd.DataFrame(values[:, steps - 1].T, index=index, columns=columns))
        return pd.concat(frames)

    def _steps(self, fh: ForecastingHorizon, cutoff: pd.Index) -> tuple[np.ndarray, pd.Index]:
        """Forecast steps (1-based) and absolute index of ``fh`` after ``cutoff``."""
        # A relative fh already holds the steps; converting costs milliseconds.
        steps = (fh if fh.is_relative else fh.to_relative(cutoff)).to_numpy()
        if np.any(steps < 1):
            raise ValueError(
                "MetaLSTMForecaster forecasts out of sample only; fh must lie after "
                f"the cutoff, got relative steps {steps.tolist()}."
            )
        if np.any(steps > self._horizon):
            raise ValueError(
                f"fh reaches {int(steps.max())} steps ahead, beyond horizon={self._horizon}. "
                f"Set horizon >= {int(steps.max())} (or pass that fh to fit) and refit."
            )
        return steps, fh.to_absolute_index(cutoff)

    # --------------------------------------------------------------- update
    def _update(self, y: Any, X: Any = None, update_params: bool = True) -> MetaLSTMForecaster:
        """Append ``y`` and, with ``update_params``, adapt again (no meta-training)."""
        # New states replace the old only when every series succeeded; sktime
        # moves the cutoff before calling _update, so a failure moves it back.
        try:
            pieces = split_instances(y)
            if self._exog_columns is not None:
                check_columns(self._exog_columns, X)
            x_pieces = exogenous_pieces(X if self._exog_columns else None, list(pieces))
            states = []
            for key, series in pieces.items():
                if key not in self._states:
                    raise ValueError(f"update got an instance {key!r} that fit did not see.")
                state = self._states[key]
                self._check_update(series, state)
                states.append(state.appended(series, x_pieces[key], self._keep))
            new = self._adapted(states) if update_params else {s.key: s for s in states}
        except Exception:
            if getattr(self, "_committed_cutoff", None) is not None:
                self._set_cutoff(self._committed_cutoff)
            raise
        self._states = {**self._states, **new}
        self._committed_cutoff = self._cutoff
        return self

    @staticmethod
    def _check_update(series: pd.Series, state: SeriesState) -> None:
        values = series.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"update data{where(state.key)} contain NaN or infinite values.")
        if state.kind == "log_return" and np.any(values <= 0):
            raise ValueError(
                f"update data{where(state.key)} have non-positive values, but the series "
                "was fitted with log-returns; refit with transform='difference'."
            )

    # ------------------------------------------------------------ test params
    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict[str, Any]]:
        """Tiny configurations for sktime's estimator checks."""
        # Small enough for sktime's 10-point test panels with fh up to 3 steps.
        tiny = {
            "window_length": 2,
            "hidden_size": 4,
            "support_size": 2,
            "query_size": 1,
            "tasks_per_batch": 8,
            "max_epochs": 1,
            "base_max_epochs": 1,
            "inner_steps": 1,
            "random_state": 0,
        }
        return [
            {**tiny, "meta_learner": "ridge"},
            {**tiny, "meta_learner": "metasgd"},
            {**tiny, "meta_learner": "lstm", "transform": "difference"},
        ]
