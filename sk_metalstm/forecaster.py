"""MetaLSTMForecaster: sktime orchestration of pretrain (meta-train), fit (adapt), predict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sktime.datatypes import get_cutoff
from sktime.forecasting.base import BaseForecaster, ForecastingHorizon

from sk_metalstm._exogenous import check_exogenous, feature_matrix, instance_frames
from sk_metalstm._torch_runtime import check_device, resolve_device, seed_from, torch_runtime
from sk_metalstm._validation import check_bool, check_choice, check_int, check_real
from sk_metalstm.exceptions import InvalidParameterError, TrainingDiverged
from sk_metalstm.meta import META_LEARNERS, MetaLearner
from sk_metalstm.meta.state import MetaState
from sk_metalstm.meta.tasks import with_feature_axis
from sk_metalstm.meta.training import meta_train
from sk_metalstm.windowing import (
    TRANSFORMS,
    TaskLayout,
    from_increments,
    resolve_transform,
    support_for_adaptation,
    to_increments,
)

__all__ = ["MetaLSTMForecaster"]

_SINGLE = "__single_series__"


def _where(key: Any) -> str:
    """`` (instance 'a')`` for panel series, empty for a single series (error messages)."""
    return "" if key == _SINGLE else f" (instance {key!r})"


def _instances(y: pd.Series | pd.DataFrame) -> dict[Any, pd.Series]:
    """Split a series or a (hierarchical) panel into one ``pd.Series`` per instance.

    A panel with several columns (accepted by ``pretrain``) gives one series per
    (instance, column).
    """
    if isinstance(y, pd.Series):
        return {_SINGLE: y}
    if not isinstance(y.index, pd.MultiIndex):
        return {_SINGLE: y.iloc[:, 0]}
    levels = list(range(y.index.nlevels - 1))
    pieces = {}
    for key, group in y.groupby(level=levels, sort=False):
        group = group.droplevel(levels)
        if isinstance(key, tuple) and len(key) == 1:
            key = key[0]  # pandas gives 1-tuples; key instances by their name
        for column in y.columns:
            name = key if y.shape[1] == 1 else (*np.atleast_1d(key), column)
            pieces[name] = group[column]
    return pieces


def _frequency(index: pd.Index) -> pd.DateOffset | None:
    """The time frequency of ``index``: its own, else inferred; ``None`` if irregular."""
    freq = getattr(index, "freq", None)
    if freq is None and isinstance(index, pd.DatetimeIndex) and len(index) >= 3:
        try:
            freq = pd.infer_freq(index)
        except (TypeError, ValueError):
            freq = None
    return None if freq is None else pd.tseries.frequencies.to_offset(freq)


def _check_regular(index: pd.Index, where: str) -> None:
    """Forecast dates need a frequency: reject a DatetimeIndex without one."""
    if isinstance(index, pd.DatetimeIndex) and _frequency(index) is None:
        raise ValueError(
            f"The series{where} has an irregular DatetimeIndex (no freq, and none can be "
            "inferred, e.g. dates missing from a business-day series), so forecast dates "
            "cannot be derived. Fill the gaps (y.asfreq('B').ffill()), or use a "
            "RangeIndex (y.reset_index(drop=True))."
        )


def _check_common_frequency(pieces: dict[Any, pd.Series]) -> None:
    """Reject a panel whose series have different (known) time frequencies."""
    frequencies = {}
    for key, series in pieces.items():
        freq = _frequency(series.index)
        if freq is not None:
            frequencies.setdefault(freq.freqstr, key)
    if len(frequencies) > 1:
        found = ", ".join(f"{f!r} (e.g. instance {k!r})" for f, k in frequencies.items())
        raise ValueError(
            f"The series of the panel have different frequencies: {found}. A panel "
            "forecast needs one frequency; resample the series to a common one, or fit "
            "one forecaster per frequency (pretrain may mix frequencies)."
        )


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
        ``"ridge"``.

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
        for name in ("horizon", "task_stride", "tasks_per_epoch", "n_iter_no_change"):
            check_int(name, getattr(self, name), 1, allow_none=True)
        check_int("num_threads", self.num_threads, 1, allow_none=True)
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

    @property
    def _min_length(self) -> int:
        # One complete window of increments, plus the level the first one needs.
        return self.window_length + self._horizon + (self.transform != "none")

    def _split_series(
        self, y: pd.Series | pd.DataFrame, same_frequency: bool = True
    ) -> dict[Any, pd.Series]:
        """One ``pd.Series`` per instance, each validated.

        ``same_frequency`` rejects panels whose series have different time
        frequencies: their forecasts would need one horizon per series.
        ``pretrain`` allows them, since tasks are cut from each series alone.
        """
        pieces = _instances(y)
        if not pieces:
            raise ValueError(
                f"y is empty; MetaLSTMForecaster needs at least {self._min_length} points "
                "per series."
            )
        for key, series in pieces.items():
            self._check_series(series, _where(key))
        if same_frequency:
            for key, series in pieces.items():
                _check_regular(series.index, _where(key))
            if len(pieces) > 1:
                _check_common_frequency(pieces)
        return pieces

    def _check_series(self, series: pd.Series, where: str) -> None:
        values = series.to_numpy(dtype=np.float64)
        if len(values) == 0:
            raise ValueError(
                f"Series{where} is empty; MetaLSTMForecaster needs at least "
                f"window_length + horizon{' + 1' if self.transform != 'none' else ''} = "
                f"{self._min_length} points."
            )
        if len(values) < self._min_length:
            raise ValueError(
                f"Series{where} has {len(values)} points; MetaLSTMForecaster needs at "
                f"least window_length + horizon{' + 1' if self.transform != 'none' else ''}"
                f" = {self._min_length}."
            )
        if not np.all(np.isfinite(values)):
            raise ValueError(f"Series{where} contains NaN or infinite values.")
        if not series.index.is_unique:
            raise ValueError(f"Series{where} has a duplicated time index.")
        if not series.index.is_monotonic_increasing:
            raise ValueError(f"Series{where} has an unsorted time index; sort it first.")
        if np.ptp(values) == 0:
            raise ValueError(
                f"Series{where} is constant; there is nothing to forecast beyond its value."
            )

    def _features(
        self, levels: pd.Series, X: pd.DataFrame | None, key: Any, kind: str | None = None
    ) -> tuple[np.ndarray, str]:
        """Increments of ``levels`` (with next-step covariates from ``X``) and the transform.

        ``kind`` is the transform already resolved for the series; by default it
        is resolved from ``levels``.
        """
        values = levels.to_numpy(dtype=np.float64)
        if kind is None:
            kind = resolve_transform(values, self.transform)
        times = levels.index if kind == "none" else levels.index[1:]
        return feature_matrix(to_increments(values, kind), times, X, _where(key)), kind

    def _exogenous_pieces(
        self, X: pd.DataFrame | None, keys: list[Any]
    ) -> dict[Any, pd.DataFrame | None]:
        """The covariates of each series in ``keys`` (``None`` without ``X``)."""
        if X is None:
            return dict.fromkeys(keys)
        check_exogenous(X, "")
        frames = instance_frames(X, _SINGLE)
        pieces = {}
        for key in keys:
            # A multi-column pretrain panel names series (instance..., column).
            owner = key if key in frames else (key[:-1] if len(key) > 2 else key[0])
            if owner not in frames:
                raise ValueError(f"X has no rows for instance {key!r} of y.")
            pieces[key] = frames[owner]
        return pieces

    # ---------------------------------------------------------- meta-training
    def _meta_train(
        self,
        pieces: dict[Any, pd.Series],
        x_pieces: dict[Any, pd.DataFrame | None],
        warm_start: MetaState | None,
    ) -> MetaState:
        features = [self._features(s, x_pieces[k], k)[0] for k, s in pieces.items()]
        config = self.get_params(deep=False)
        for key in ("pretrained", "callbacks"):
            config.pop(key)
        config["horizon"] = self._horizon
        first_x = next(iter(x_pieces.values()))
        config["exog_columns"] = None if first_x is None else list(first_x.columns)
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
        pieces = self._split_series(y, same_frequency=False)
        x_pieces = self._exogenous_pieces(X, list(pieces))
        self.pretrained_state_ = self._meta_train(pieces, x_pieces, warm_start=None)
        return self

    def _pretrain_update(
        self, y: pd.DataFrame, X: Any = None, fh: Any = None
    ) -> MetaLSTMForecaster:
        """Continue meta-training (step 2) on more series."""
        # A clone of a pretrained forecaster carries pretrained_state_ but not
        # the private horizon, so resolve it again (from the state).
        self._check_params()
        self._resolve_horizon(fh)
        pieces = self._split_series(y, same_frequency=False)
        x_pieces = self._exogenous_pieces(X, list(pieces))
        self._check_exogenous_matches(X)
        self.pretrained_state_ = self._meta_train(
            pieces, x_pieces, warm_start=self.pretrained_state_
        )
        return self

    def _check_exogenous_matches(self, X: pd.DataFrame | None) -> None:
        """``X`` must have the columns the meta-learner was trained with."""
        expected = self.pretrained_state_.config.get("exog_columns")
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
        if expected != given:
            raise ValueError(f"X has columns {given}, but the meta-learner expects {expected}.")

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
    def _fit(
        self, y: pd.Series | pd.DataFrame, X: Any = None, fh: Any = None
    ) -> MetaLSTMForecaster:
        """Step 3: adapt to ``y`` (meta-training first if nothing is pretrained)."""
        self._check_params()
        self._resolve_horizon(fh, self.cutoff)
        pieces = self._split_series(y)
        x_pieces = self._exogenous_pieces(X, list(pieces))
        if self.pretrained is not None:
            self.pretrained_state_ = self.pretrained
        elif not hasattr(self, "pretrained_state_"):
            self.pretrained_state_ = self._meta_train(pieces, x_pieces, warm_start=None)
        self._check_exogenous_matches(X)
        self._is_panel = not isinstance(y, pd.Series)
        self._y_name = y.name if isinstance(y, pd.Series) else None
        self._panel_names = None if isinstance(y, pd.Series) else (y.index.names, y.columns)
        # The transform is chosen (and checked) on the whole series, once: its
        # tail alone could hide a non-positive price from "log_return".
        self._kinds = {
            k: resolve_transform(s.to_numpy(dtype=np.float64), self.transform)
            for k, s in pieces.items()
        }
        self._tails = {k: self._tail(s) for k, s in pieces.items()}
        self._x_tails = {
            k: None if x is None else x.loc[x.index.intersection(self._tails[k].index)].copy()
            for k, x in x_pieces.items()
        }
        self._adapt(list(self._tails))
        self._committed_cutoff = self._cutoff
        return self

    def _tail(self, series: pd.Series) -> pd.Series:
        # What adaptation and prediction ever read: support windows + one level.
        keep = self.support_size + self.window_length + self._horizon
        tail = series.iloc[-keep:].astype(np.float64)
        if isinstance(tail.index, pd.DatetimeIndex) and tail.index.freq is None:
            # Forecast dates come from the tail's frequency; a user's index may
            # only imply one (fit checked that it does).
            freq = _frequency(series.index)
            tail.index = pd.DatetimeIndex(tail.index, freq=freq)
        return tail.copy()

    def _adapt(self, keys: list[Any]) -> None:
        """Adapt the learned initialisation to each series in ``keys``."""
        learner: MetaLearner = self.pretrained_state_.learner
        steps = self.adapt_steps
        if steps is None:
            steps = self.pretrained_state_.config["inner_steps"]
        layout = self._layout()
        device = resolve_device(self.device)
        prepared = {}
        for key in keys:
            z, _ = self._features(self._tails[key], self._x_tails[key], key, self._kinds[key])
            prepared[key] = support_for_adaptation(z, layout)
        # Series with equally many support windows are adapted in one vmap call.
        groups: dict[int, list[Any]] = {}
        for key, task in prepared.items():
            groups.setdefault(len(task["support_x"]), []).append(key)
        adapted = {}
        # Moving a module costs about a millisecond even when it is a no-op.
        on_device = device != "cpu"
        if on_device:
            learner.to(device)
        learner.eval()
        try:
            with torch_runtime(None, self.num_threads):
                for group in groups.values():
                    sx = torch.stack(
                        [
                            torch.from_numpy(with_feature_axis(prepared[k]["support_x"]))
                            for k in group
                        ]
                    )
                    sy = torch.stack([torch.from_numpy(prepared[k]["support_y"]) for k in group])
                    params = learner.adapt_for_inference(sx.to(device), sy.to(device), steps)
                    for i, key in enumerate(group):
                        adapted[key] = {n: p[i].detach().cpu() for n, p in params.items()}
        finally:
            if on_device:
                learner.cpu()
        # Nothing is stored unless every series adapted to finite weights.
        for key, params in adapted.items():
            if not all(torch.isfinite(p).all() for p in params.values()):
                raise TrainingDiverged(
                    f"Adapting to the series{_where(key)} gave non-finite weights, so "
                    "forecasts would be NaN. Lower inner_lr (for 'finetune', 'maml', "
                    "'reptile') or adapt_steps, or check the series for extreme values."
                )
        if not hasattr(self, "adapted_params_"):
            self.adapted_params_, self._scales = {}, {}
        for key, params in adapted.items():
            self.adapted_params_[self._public_key(key)] = params
            self._scales[key] = (prepared[key]["loc"], prepared[key]["scale"])

    @staticmethod
    def _public_key(key: Any) -> Any:
        return None if key == _SINGLE else key

    # -------------------------------------------------------------- predict
    def _central_increments(
        self, key: Any, x_next: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """Forecast increments for steps 1..horizon (user scale) and the support scale.

        ``x_next`` holds the covariates of the first forecast step, when the
        forecaster uses exogenous ``X``.
        """
        z, _ = self._features(self._tails[key], self._x_tails[key], key)
        if x_next is not None:
            z[-1, 1:] = x_next
        loc, scale = self._scales[key]
        window = (z[-self.window_length :] - loc) / scale
        window = torch.as_tensor(with_feature_axis(window[None]), dtype=torch.float32)
        params = self.adapted_params_[self._public_key(key)]
        learner = self.pretrained_state_.learner
        with torch.no_grad(), torch_runtime(None, self.num_threads):
            out = learner.forecast(params, window)[0].numpy()
        y_loc, y_scale = float(np.atleast_1d(loc)[0]), float(np.atleast_1d(scale)[0])
        return out.astype(np.float64) * y_scale + y_loc, y_scale

    def _next_covariates(self, X: pd.DataFrame | None) -> dict[Any, np.ndarray | None]:
        """Covariates of the first time point after each series' cutoff, from ``X``."""
        keys = list(self._tails)
        if self.pretrained_state_.config.get("exog_columns") is None:
            return dict.fromkeys(keys)
        if X is None:
            raise ValueError(
                "This forecaster uses exogenous X: pass X to predict, covering the "
                "forecast period from the first step after the cutoff."
            )
        self._check_exogenous_matches(X)
        check_exogenous(X, " passed to predict")
        frames = instance_frames(X, _SINGLE)
        rows = {}
        for key, tail in self._tails.items():
            owner = key if key in frames else _SINGLE
            first = ForecastingHorizon([1], is_relative=True, freq=self._fh_freq(tail))
            t1 = first.to_absolute_index(get_cutoff(tail, return_index=True))[0]
            if owner not in frames or t1 not in frames[owner].index:
                raise ValueError(
                    f"X{_where(key)} has no row for {t1}, the first step after the cutoff; "
                    "X must cover the forecast period from that step on."
                )
            rows[key] = frames[owner].loc[t1].to_numpy(dtype=np.float64)
        return rows

    def _fh_freq(self, tail: pd.Series) -> Any:
        return getattr(self._fh, "freq", None) or getattr(tail.index, "freq", None)

    def _to_levels(self, key: Any, increments: np.ndarray) -> np.ndarray:
        """Map increments for steps 1..k (last axis) to levels; ``"none"`` is levels already."""
        kind = self._kinds[key]
        if kind == "none":
            return increments
        last = float(self._tails[key].iloc[-1])
        with np.errstate(over="ignore"):  # reported below as a clear error
            levels = np.apply_along_axis(
                lambda inc: from_increments(last, inc, kind), -1, increments
            )
        if not np.all(np.isfinite(levels)):
            raise ValueError(
                f"The forecast of the series{_where(key)} is not finite in float64 (its "
                f"last value is {last:.3g}): the series is too large to forecast on this "
                "scale. Rescale it (e.g. divide by a power of ten) and refit."
            )
        return levels

    def _per_series(self, fh: ForecastingHorizon) -> list[tuple[Any, np.ndarray, pd.Index]]:
        """(key, steps, output index) for every fitted series."""
        if not self._is_panel:
            # The tail's cutoff carries the frequency that sktime's may lack
            # (an update with one date cannot show one).
            cutoff = get_cutoff(self._tails[_SINGLE], return_index=True)
            steps, index = self._steps(fh, cutoff)
            return [(_SINGLE, steps, index)]
        names = self._panel_names[0]
        out = []
        for key, tail in self._tails.items():
            # A relative fh counts from each series' own last point.
            steps, index = self._steps(fh, get_cutoff(tail, return_index=True))
            prefix = key if isinstance(key, tuple) else (key,)
            multi = pd.MultiIndex.from_tuples([(*prefix, t) for t in index], names=names)
            out.append((key, steps, multi))
        return out

    def _predict(self, fh: ForecastingHorizon, X: Any = None) -> pd.Series | pd.DataFrame:
        """Forecast the steps in ``fh`` (1..horizon) for every fitted series."""
        x_next = self._next_covariates(X)
        frames = []
        for key, steps, index in self._per_series(fh):
            values = self._to_levels(key, self._central_increments(key, x_next[key])[0])
            values = values[steps - 1]
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
        x_next = self._next_covariates(X)
        frames = []
        for key, steps, index in self._per_series(fh):
            increments, scale = self._central_increments(key, x_next[key])
            if self._kinds[key] == "none":
                spread = np.quantile(residuals["step"], alpha, axis=0) * scale
                values = increments[None, :] + spread
            else:
                # Quantiles of the cumulated increments map monotonically to levels.
                spread = np.quantile(residuals["cumulative"], alpha, axis=0) * scale
                cumulative = np.cumsum(increments)[None, :] + spread
                values = self._to_levels(key, np.diff(cumulative, axis=1, prepend=0.0))
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
    def _update(
        self, y: pd.Series | pd.DataFrame, X: Any = None, update_params: bool = True
    ) -> MetaLSTMForecaster:
        """Append ``y`` and, with ``update_params``, adapt again (no meta-training)."""
        # A failed update (bad data, diverging adaptation) leaves the forecaster as
        # it was, cutoff included (sktime moves the cutoff before calling _update).
        saved = dict(self._tails), dict(self._x_tails)
        try:
            pieces = self._split_series_update(y)
            uses_x = self.pretrained_state_.config.get("exog_columns") is not None
            x_pieces = self._exogenous_pieces(X if uses_x else None, list(pieces))
            if uses_x:
                self._check_exogenous_matches(X)
            self._append(pieces, x_pieces, uses_x)
            if update_params:
                self._adapt(list(pieces))
        except Exception:
            self._tails, self._x_tails = saved
            if getattr(self, "_committed_cutoff", None) is not None:
                self._set_cutoff(self._committed_cutoff)
            raise
        self._committed_cutoff = self._cutoff
        return self

    def _append(
        self,
        pieces: dict[Any, pd.Series],
        x_pieces: dict[Any, pd.DataFrame | None],
        uses_x: bool,
    ) -> None:
        """Append new observations (and covariates) to each series' kept tail."""
        for key, series in pieces.items():
            if key not in self._tails:
                raise ValueError(f"update got an instance {key!r} that fit did not see.")
            combined = pd.concat([self._tails[key], series.astype(np.float64)])
            combined = combined[~combined.index.duplicated(keep="last")].sort_index()
            _check_regular(combined.index, _where(key))
            self._tails[key] = self._tail(combined)
            if uses_x:
                x = pd.concat([self._x_tails[key], x_pieces[key]])
                x = x[~x.index.duplicated(keep="last")].sort_index()
                self._x_tails[key] = x.loc[x.index.intersection(self._tails[key].index)]

    def _split_series_update(self, y: pd.Series | pd.DataFrame) -> dict[Any, pd.Series]:
        pieces = _instances(y)
        for key, series in pieces.items():
            values = series.to_numpy(dtype=np.float64)
            if not np.all(np.isfinite(values)):
                raise ValueError(f"update data{_where(key)} contain NaN or infinite values.")
            if self._kinds.get(key) == "log_return" and np.any(values <= 0):
                raise ValueError(
                    f"update data{_where(key)} have non-positive values, but the series "
                    "was fitted with log-returns; refit with transform='difference'."
                )
        return pieces

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
