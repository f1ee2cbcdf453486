"""scikit-learn regressor around ``LSTMNetwork``, trained through skorch.

``LSTMBaseRegressor`` is a plain ``BaseEstimator``: ``__init__`` stores the
hyperparameters and ``fit`` builds a fresh skorch ``NeuralNetRegressor`` from
them. Subclassing ``NeuralNetRegressor`` directly would break ``clone``,
``get_params`` and most of scikit-learn's estimator checks, because skorch nets
keep their own parameter routing (``module__*``, ``optimizer__*``) and accept
input shapes and dtypes scikit-learn does not expect.
"""

from __future__ import annotations

import copy
import inspect
import numbers
from typing import Any, Literal

import numpy as np
import torch
from sklearn import config_context, get_config
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import assert_all_finite, check_is_fitted, validate_data
from skorch import NeuralNetRegressor
from skorch.helper import predefined_split

from sk_metalstm._tensor_batches import TensorBatches, pass_through
from sk_metalstm._torch_runtime import check_device, resolve_device, seed_from, torch_runtime
from sk_metalstm._validation import (
    check_bool,
    check_choice,
    check_int,
    check_ndim,
    check_real,
    check_verbose,
)
from sk_metalstm.callbacks import check_no_validation_monitor, training_callbacks
from sk_metalstm.exceptions import InvalidParameterError
from sk_metalstm.networks import LSTMNetwork

__all__ = ["LSTMBaseRegressor"]

_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}
_LAG_ORDERS = ("oldest_first", "newest_first")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: A column whose standard deviation is below this fraction of its largest
#: magnitude is constant up to float64 rounding (see ``_fit_scaling``).
_CONSTANT_STD = 16 * float(np.finfo(np.float64).eps)
#: Rows per forward pass in ``predict`` when ``batch_size="auto"``. The
#: float64 predictions do not depend on it; larger batches are a little faster.
_PREDICT_BATCH = 256
_X_LAYOUT = (
    "Expected (n_samples, sequence_length) for univariate sequences or "
    "(n_samples, sequence_length, n_features)."
)


class LSTMBaseRegressor(RegressorMixin, BaseEstimator):
    """LSTM regressor on fixed-length sequences, with a scikit-learn API.

    Each row of ``X`` is one input sequence; the network (``LSTMNetwork``) reads
    it step by step and maps its last hidden state to the target(s). Training
    uses skorch (mini-batch gradient descent on the mean squared error) and can
    be extended with skorch callbacks (early stopping, LR schedules,
    checkpoints).

    **Time order.** The columns of ``X`` (axis 1) are time steps. With
    ``lag_order="oldest_first"`` (default) column 0 is the oldest value and the
    last column the newest; this is what sktime's ``make_reduction`` (both
    ``"recursive"`` and ``"direct"`` strategies) passes. sktime's
    ``RecursiveReductionForecaster`` and ``DirectReductionForecaster`` pass
    lags newest first: use ``lag_order="newest_first"`` there, and the columns
    are reversed before they reach the LSTM, which always sees the oldest step
    first.

    **Scaling.** ``fit`` standardises the inputs (per feature of a time step,
    over all samples and steps) and the targets (per output) in float64, and
    ``predict`` inverts it, so data of any level or magnitude within float64
    train alike, with no scaler needed. A constant feature or target is
    divided by its magnitude (by 1 if it is zero) instead of its zero standard
    deviation. The network itself, the losses in ``history_`` and
    ``net_.predict`` work in these standardised units.

    **Prediction** runs the network in float64 (a float64 copy of the float32
    weights), so each row's prediction is the same whichever rows are
    predicted with it; in float32 it varied by about 1e-7 with the batch. On
    CPU it takes about 3.4x the float32 time for large batches (0.14 s instead
    of 0.04 s for 10,000 sequences of 20 steps, default size, one thread);
    single rows cost about the same (0.6 ms).

    Parameters
    ----------
    hidden_size : int, default=32
        Hidden units per LSTM layer.
    num_layers : int, default=1
        Number of stacked LSTM layers.
    dropout : float, default=0.0
        Dropout in [0, 1) between stacked layers and before the linear head
        (training only).
    max_epochs : int, default=50
        Number of passes over the training data (fewer if an early-stopping
        callback stops training).
    lr : float, default=3e-3
        Learning rate of the optimizer. Why 3e-3: with the ``"auto"`` batch
        size it learns small data sets (scikit-learn's check data, 200 rows:
        training R^2 0.64-0.88 over 20 seeds; lr 1e-3 with batches of 64
        reached 0.3), while on 2,000 windows of a noisy AR(2) series it scores
        0.39-0.40 held out against 0.41 for 1e-3; 5e-3 (0.33-0.37) and 1e-2
        (0.18-0.23) overfit there. Small noisy data sets can overfit too: hold
        out a ``validation_fraction`` and stop early, or lower ``lr``.
    batch_size : int or "auto", default="auto"
        Mini-batch size for training (``batch_size_`` after ``fit``) and
        prediction. ``"auto"`` aims at 16 batches per epoch, within 8 to 64
        rows: ``min(64, max(8, n_train // 16))``, so that small data sets get
        enough optimiser steps; it predicts in batches of 256. Predictions do
        not depend on the prediction batch size.
    optimizer : {"adam", "adamw", "sgd"} or torch optimizer class, default="adam"
        Optimizer.
    weight_decay : float, default=0.0
        L2 penalty (decoupled for ``"adamw"``). Must be 0 for an optimizer
        that takes none (``torch.optim.LBFGS``).
    gradient_clip : float or None, default=None
        If set, gradients are rescaled so their global L2 norm is at most this
        value (skorch's ``GradientNormClipping``); helps with exploding
        gradients on long sequences.
    shuffle : bool, default=True
        Shuffle the training samples between epochs. Each sample is a whole
        window, so shuffling windows does not leak future values into the past;
        the validation split (below) is never shuffled.
    validation_fraction : float, default=0.0
        If > 0, the **last** ``validation_fraction`` of the samples (in the
        order given, i.e. time order for windowed series) is held out and its
        loss recorded as ``valid_loss`` in ``history_`` every epoch; needed by
        callbacks that monitor ``valid_loss`` such as ``EarlyStopping``. The
        model is then trained on the earlier samples only.
    lag_order : {"oldest_first", "newest_first"}, default="oldest_first"
        Time order of the columns of ``X``, see "Time order" above.
    callbacks : list or None, default=None
        skorch callbacks, as instances or ``(name, callback)`` tuples. They are
        deep-copied at each ``fit``, so the objects passed here are never
        modified and the estimator can be refitted or cloned safely. A
        ``StopOnNonFiniteLoss`` callback is always added: a NaN or infinite
        loss stops ``fit`` with ``TrainingDiverged`` (and leaves the estimator
        unfitted) instead of producing NaN predictions.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, dropout and shuffling. Training seeds
        torch's process-wide RNG and restores its state afterwards, so the
        caller's torch RNG is left unchanged. With an int, repeated fits on CPU
        give identical models, unless another thread draws from torch's RNG
        during the fit (the package's own calls take turns).
    device : {"cpu", "cuda", "mps", "auto"}, "cuda:N" or torch.device, default="cpu"
        Torch device; ``"auto"`` picks CUDA when available.
    num_threads : int or None, default=1
        Intra-op torch threads during ``fit`` and ``predict`` (restored
        afterwards). Small LSTMs gain nothing from more threads, and torch's
        default of one thread per core made a tiny LSTM train 10-17x slower on
        a 2-core machine while another process was busy. ``None`` keeps torch's
        setting.
    verbose : int or bool, default=0
        ``0`` prints nothing; ``> 0`` shows skorch's progress bar and its
        per-epoch table of losses.

    Attributes
    ----------
    net_ : skorch.NeuralNetRegressor
        The fitted skorch net (its ``module_`` is the ``LSTMNetwork``).
    n_features_in_ : int
        ``X.shape[1]`` seen during ``fit``, i.e. the sequence length
        (scikit-learn's convention for the second axis).
    feature_names_in_ : ndarray of str
        Column names of ``X``, only set when ``X`` was a DataFrame with string
        column names.
    sequence_length_ : int
        Number of time steps per sequence.
    n_sequence_features_ : int
        Features per time step (1 for 2-D ``X``).
    n_outputs_ : int
        Number of targets.
    x_mean_, x_scale_ : ndarray of shape (n_sequence_features_,)
        float64 mean and scale (> 0) of each feature of a time step in the
        training rows (those before a ``validation_fraction`` split); the
        network sees ``(X - x_mean_) / x_scale_``.
    y_mean_, y_scale_ : ndarray of shape (n_outputs_,)
        float64 mean and scale (> 0) of each target; predictions are the
        network's output times ``y_scale_`` plus ``y_mean_``.
    batch_size_ : int
        Mini-batch size used in training (``batch_size``, or the value
        ``"auto"`` chose).
    lag_order_ : {"oldest_first", "newest_first"}
        The column order ``fit`` read ``X`` in (``lag_order`` at fit time);
        ``predict`` reads ``X`` the same way.
    history_ : skorch.History
        Per-epoch training record (``train_loss``, ``valid_loss``, ``dur``...,
        losses in standardised units), a view of ``net_.history``.

    See Also
    --------
    sk_metalstm.networks.LSTMNetwork : The underlying torch module.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_metalstm import LSTMBaseRegressor
    >>> rng = np.random.default_rng(0)
    >>> series = np.sin(np.arange(300) / 5) + 0.05 * rng.standard_normal(300)
    >>> X = np.lib.stride_tricks.sliding_window_view(series[:-1], 10)
    >>> y = series[10:]
    >>> reg = LSTMBaseRegressor(hidden_size=8, max_epochs=20, lr=1e-2,
    ...                         random_state=0)
    >>> reg.fit(X[:200], y[:200])
    LSTMBaseRegressor(hidden_size=8, lr=0.01, max_epochs=20, random_state=0)
    >>> reg.predict(X[200:]).shape
    (90,)
    >>> reg.score(X[200:], y[200:]) > 0.5
    True
    """

    def __init__(
        self,
        hidden_size: int = 32,
        num_layers: int = 1,
        dropout: float = 0.0,
        max_epochs: int = 50,
        lr: float = 3e-3,
        batch_size: int | Literal["auto"] = "auto",
        optimizer: str | type[torch.optim.Optimizer] = "adam",
        weight_decay: float = 0.0,
        gradient_clip: float | None = None,
        shuffle: bool = True,
        validation_fraction: float = 0.0,
        lag_order: Literal["oldest_first", "newest_first"] = "oldest_first",
        callbacks: list[Any] | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        num_threads: int | None = 1,
        verbose: int = 0,
    ) -> None:
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.gradient_clip = gradient_clip
        self.shuffle = shuffle
        self.validation_fraction = validation_fraction
        self.lag_order = lag_order
        self.callbacks = callbacks
        self.random_state = random_state
        self.device = device
        self.num_threads = num_threads
        self.verbose = verbose

    # ------------------------------------------------------------------ API

    def fit(self, X: Any, y: Any) -> LSTMBaseRegressor:
        """Train a new network on ``X`` and ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, sequence_length) or \
(n_samples, sequence_length, n_features)
            Input sequences (numpy array, DataFrame or nested lists). 2-D input
            is read as univariate sequences. Columns are time steps, ordered as
            set by ``lag_order``.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets; 2-D for several outputs (e.g. direct multi-step forecasts).

        Returns
        -------
        self : LSTMBaseRegressor
            The fitted estimator.
        """
        # A fit that fails (bad data, a missing GPU, divergence) leaves the
        # estimator unfitted: neither the older net with the new data's
        # scaling, nor fitted attributes that make check_is_fitted pass.
        self._forget_fit()
        try:
            return self._fit(X, y)
        except BaseException:
            self._forget_fit()
            raise

    def _fit(self, X: Any, y: Any) -> LSTMBaseRegressor:
        self._check_params()
        _precheck_ndim(X)
        X, y = validate_data(
            self,
            X,
            y,
            reset=True,
            allow_nd=True,
            dtype=(np.float64, np.float32),
            multi_output=True,
            y_numeric=True,
        )
        _check_sequences(X)
        # Fixed at fit, as the scaling is: set_params after fit must not change
        # how predict reads the columns of X.
        self.lag_order_ = self.lag_order
        X3 = self._to_sequences(X)
        # skorch would broadcast a 1-D target against the (n, 1) output in the
        # MSE loss and silently train on the wrong objective.
        y2 = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        # A None in a list or object array passes scikit-learn's check as an
        # object and only becomes NaN here (training would then "diverge"); so
        # does any NaN under sklearn's assume_finite=True, which skips that check.
        with config_context(assume_finite=False):
            assert_all_finite(y2, input_name="y")

        self.sequence_length_ = X3.shape[1]
        self.n_sequence_features_ = X3.shape[2]
        self.n_outputs_ = y2.shape[1]
        self._y_was_1d = y.ndim == 1
        # Why standardise: the output layer starts near zero and Adam moves each
        # weight by about lr per step, so raw targets far from 0 or 1 (a level
        # of 400, a scale of 1e-4) take many epochs just to reach the right
        # magnitude. Statistics are computed in float64 from the data scaled
        # by its peak, so any finite float64 values can be trained on; from the
        # training rows only, so that a validation split stays unseen.
        n_train = self._n_train(len(X3))
        self.x_mean_, self.x_scale_ = _fit_scaling(
            X3[:n_train].reshape(-1, self.n_sequence_features_)
        )
        self.y_mean_, self.y_scale_ = _fit_scaling(y2[:n_train])
        X_std = self._standardise_X(X3)
        y_std = _standardise(y2, self.y_mean_, self.y_scale_).astype(np.float32)

        X_train, y_train, train_split = self._time_ordered_split(X_std, y_std, n_train)
        if train_split is None:
            check_no_validation_monitor(self.callbacks)
        self.batch_size_ = _training_batch_size(self.batch_size, len(X_train))
        device = resolve_device(self.device)
        net = self._make_net(train_split, device)
        # Always draw an explicit seed (from numpy's global RNG when
        # random_state is None, as scikit-learn does) so that fitting never
        # consumes or reseeds torch's global RNG.
        with torch_runtime(seed_from(self.random_state), self.num_threads, device):
            net.fit(X_train, y_train)
        self.net_ = net
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predict targets for the sequences in ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, sequence_length) or \
(n_samples, sequence_length, n_features)
            Input sequences laid out as in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            float64 predictions; 1-D if ``y`` was 1-D in ``fit``.
        """
        check_is_fitted(self, "net_")
        _precheck_ndim(X)
        X = validate_data(self, X, reset=False, allow_nd=True, dtype=(np.float64, np.float32))
        _check_sequences(X)
        X3 = self._to_sequences(X)
        if X3.shape[2] != self.n_sequence_features_:
            raise ValueError(
                f"X has {X3.shape[2]} feature(s) per time step, but "
                f"{type(self).__name__} was fitted with "
                f"{self.n_sequence_features_}."
            )
        X_std = self._standardise_X(X3)
        # Threads are a resource of this call, like scikit-learn's n_jobs, so
        # the current value counts, checked as fit checks it.
        check_int("num_threads", self.num_threads, 1, allow_none=True)
        with torch_runtime(None, self.num_threads):
            y_std = self._predict_float64(X_std)
        with np.errstate(over="ignore", invalid="ignore"):
            y_pred = y_std * self.y_scale_ + self.y_mean_
        if not np.all(np.isfinite(y_pred)):
            raise ValueError(
                "The predictions are not finite in float64: the targets seen in fit lie "
                "so close to float64's limit (about 1.8e308) that the network's output, "
                "rescaled to them, overflows. Rescale y (e.g. divide it by a power of "
                "ten) and refit."
            )
        return y_pred.ravel() if self._y_was_1d else y_pred

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted once a fit has finished: ``check_is_fitted`` asks this."""
        return "net_" in self.__dict__

    def _forget_fit(self) -> None:
        """Remove every fitted attribute (those ending in ``_``, and ``_y_was_1d``)."""
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("__")]:
            delattr(self, name)
        self.__dict__.pop("_y_was_1d", None)

    @property
    def history_(self) -> Any:
        """Per-epoch training history of the fitted skorch net."""
        check_is_fitted(self, "net_")
        return self.net_.history

    def __setstate__(self, state: dict[str, Any]) -> None:  # noqa: D105
        # A regressor pickled before fit standardised (no y_scale_) has a network
        # trained on raw values and an integer batch_size: restore it as such.
        if "net_" in state and "y_scale_" not in state:
            n_features, n_outputs = state["n_sequence_features_"], state["n_outputs_"]
            state.update(
                x_mean_=np.zeros(n_features),
                x_scale_=np.ones(n_features),
                y_mean_=np.zeros(n_outputs),
                y_scale_=np.ones(n_outputs),
                batch_size_=int(state["batch_size"]),
            )
        # Pickled before lag_order_ existed: predict read the parameter.
        if "net_" in state and "lag_order_" not in state:
            state["lag_order_"] = state.get("lag_order", "oldest_first")
        super().__setstate__(state)

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        return tags

    # ------------------------------------------------------------- helpers

    def _check_params(self) -> None:
        """Raise ``InvalidParameterError`` for hyperparameters outside their domain."""
        for name in ("hidden_size", "num_layers", "max_epochs"):
            check_int(name, getattr(self, name), 1)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            try:
                check_int("batch_size", self.batch_size, 1)
            except InvalidParameterError:
                raise InvalidParameterError(
                    f"batch_size must be 'auto' or an integer >= 1; got {self.batch_size!r}."
                ) from None
        check_verbose(self.verbose)
        check_int("num_threads", self.num_threads, 1, allow_none=True)
        for name in ("dropout", "validation_fraction"):
            check_real(name, getattr(self, name), low=0.0, high=1.0, high_open=True)
        check_real("lr", self.lr, low=0.0, low_open=True)
        check_real("weight_decay", self.weight_decay, low=0.0)
        check_real("gradient_clip", self.gradient_clip, low=0.0, low_open=True, allow_none=True)
        check_choice("lag_order", self.lag_order, _LAG_ORDERS)
        check_bool("shuffle", self.shuffle)
        if self.weight_decay and not _takes_weight_decay(self._optimizer_class()):
            raise InvalidParameterError(
                f"weight_decay={self.weight_decay!r} but optimizer "
                f"{self._optimizer_class().__name__} has no weight_decay parameter; "
                "use weight_decay=0.0 with it."
            )
        if self.callbacks is not None and not isinstance(self.callbacks, list | tuple):
            raise InvalidParameterError(
                "callbacks must be None or a list of skorch callbacks or "
                f"(name, callback) tuples; got {type(self.callbacks).__name__}."
            )
        check_device(self.device)

    def _make_net(self, train_split: Any, device: str) -> NeuralNetRegressor:
        """The skorch net for the fitted shapes (``fit``, and loading a saved fit)."""
        return NeuralNetRegressor(
            module=LSTMNetwork,
            module__input_size=self.n_sequence_features_,
            module__hidden_size=int(self.hidden_size),
            module__num_layers=int(self.num_layers),
            module__output_size=self.n_outputs_,
            module__dropout=float(self.dropout),
            criterion=torch.nn.MSELoss,
            **self._optimizer_params(),
            lr=float(self.lr),
            max_epochs=int(self.max_epochs),
            batch_size=self.batch_size_,
            iterator_train__shuffle=bool(self.shuffle),
            # Whole mini-batches per fetch instead of per-row indexing + collation.
            dataset=TensorBatches,
            iterator_train__collate_fn=pass_through,
            iterator_valid__collate_fn=pass_through,
            train_split=train_split,
            callbacks=self._build_callbacks(),
            device=device,
            verbose=int(self.verbose),
        )

    def _optimizer_params(self) -> dict[str, Any]:
        """The ``optimizer`` and its arguments for skorch (LBFGS takes no weight decay)."""
        optimizer = self._optimizer_class()
        params: dict[str, Any] = {"optimizer": optimizer}
        if _takes_weight_decay(optimizer):
            params["optimizer__weight_decay"] = float(self.weight_decay)
        return params

    def _optimizer_class(self) -> type[torch.optim.Optimizer]:
        if isinstance(self.optimizer, type) and issubclass(self.optimizer, torch.optim.Optimizer):
            return self.optimizer
        if isinstance(self.optimizer, str) and self.optimizer.lower() in _OPTIMIZERS:
            return _OPTIMIZERS[self.optimizer.lower()]
        raise InvalidParameterError(
            f"Unknown optimizer {self.optimizer!r}; choose one of {sorted(_OPTIMIZERS)} or a "
            "torch.optim.Optimizer subclass."
        )

    def _to_sequences(self, X: np.ndarray) -> np.ndarray:
        """A (n, time, features) float64 view or copy of ``X``, oldest step first.

        Never modified in place: the standardised arrays are new.
        """
        X3 = X[:, :, np.newaxis] if X.ndim == 2 else X
        if self.lag_order_ == "newest_first":
            X3 = X3[:, ::-1, :]
        # NaN or inf get here only under sklearn's assume_finite=True, which skips
        # validate_data's check; they were blamed on values beyond float32's range.
        if get_config()["assume_finite"]:
            with config_context(assume_finite=False):
                assert_all_finite(X3, input_name="X")
        return np.asarray(X3, dtype=np.float64)

    def _standardise_X(self, X3: np.ndarray) -> np.ndarray:
        """``X3`` standardised with the statistics of ``fit``: a new C-ordered float32 array.

        Raises ``ValueError`` if a standardised value is beyond float32's range,
        in which the network was trained: such inputs lie about 1e38 standard
        deviations from the data seen in fit, and only ``predict`` can meet them.
        """
        X_std = _standardise(X3, self.x_mean_, self.x_scale_)
        peak = float(np.max(np.abs(X_std))) if X_std.size else 0.0
        if not peak <= _FLOAT32_MAX:  # also catches NaN from an overflow
            raise ValueError(
                f"X has values up to {float(np.max(np.abs(X3))):.3g}; standardised with the "
                f"mean and scale of the data seen in fit they reach {peak:.3g}, beyond "
                f"float32's range ({_FLOAT32_MAX:.3g}) in which the network was trained. "
                "These inputs are far outside the data it was fitted on."
            )
        # A new C-ordered copy: read-only inputs (e.g. memmaps) become writable for torch.
        return np.ascontiguousarray(X_std, dtype=np.float32)

    def _predict_float64(self, X_std: np.ndarray) -> np.ndarray:
        """The network's (standardised) outputs for ``X_std``, computed in float64.

        Why float64: a float32 matmul rounds differently for different batch
        sizes (the kernels block the work differently), so a row's float32
        prediction changed by about 1e-7 relative with the rows predicted
        alongside it (scikit-learn's ``check_methods_subset_invariance``).
        In float64 that variation is about 1e-16, far below any tolerance. The
        float32 weights convert to float64 exactly; a private copy is used so
        that the fitted net stays float32 (for skorch's ``partial_fit``) and
        concurrent predictions never share state. It is rebuilt per call
        (about 0.5 ms for the default size) so it can never be stale.
        """
        module = self.net_.module_
        device = next(module.parameters()).device
        if device.type == "mps":  # MPS has no float64
            device = torch.device("cpu")
        module = copy.deepcopy(module).to(device=device, dtype=torch.float64).eval()
        # The fitted batch size, not the live parameter (set_params after fit
        # takes effect at the next fit); at least _PREDICT_BATCH rows at a
        # time, as float64 outputs do not depend on how rows are batched.
        size = max(self.batch_size_, _PREDICT_BATCH)
        outputs = []
        with torch.no_grad():
            for start in range(0, len(X_std), size):
                batch = torch.from_numpy(X_std[start : start + size])
                outputs.append(module(batch.to(device, torch.float64)).cpu().numpy())
        return np.concatenate(outputs).astype(np.float64, copy=False)

    def _n_train(self, n_samples: int) -> int:
        """Number of samples left for training once the validation split is held out."""
        n_train = n_samples - int(np.ceil(self.validation_fraction * n_samples))
        if n_train < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no training "
                f"samples out of {n_samples} sample{'s' * (n_samples != 1)}."
            )
        return n_train

    def _time_ordered_split(
        self, X3: np.ndarray, y2: np.ndarray, n_train: int
    ) -> tuple[np.ndarray, np.ndarray, Any]:
        """Hold out the samples after the first ``n_train`` for validation (never shuffled)."""
        if n_train == len(X3):
            return X3, y2, None
        valid = TensorBatches(X3[n_train:], y2[n_train:])
        return X3[:n_train], y2[:n_train], predefined_split(valid)

    def _build_callbacks(self) -> list[Any]:
        # A NaN/inf loss stops training with TrainingDiverged: never NaN predictions.
        return training_callbacks(
            self.callbacks, gradient_clip=self.gradient_clip, progress_bar=self.verbose > 0
        )


def _precheck_ndim(X: Any) -> None:
    """Reject arrays with more than 3 dimensions, or fewer than 2, before any state is set."""
    ndim = getattr(X, "ndim", None)
    if ndim is None and isinstance(X, (list, tuple, numbers.Number)):
        try:
            ndim = np.ndim(X)
        except ValueError:  # ragged nested lists: scikit-learn's check names them
            return
    if not isinstance(ndim, int):
        return
    if ndim > 3:
        check_ndim(X, (2, 3), "X", _X_LAYOUT)
    if ndim < 2:
        # scikit-learn's hint, reshape(-1, 1), would make sequences of length 1.
        raise ValueError(
            f"X must be 2-D or 3-D; got a {ndim}-D array of shape {np.shape(X)}. {_X_LAYOUT} "
            "Reshape your data: X.reshape(1, -1) if it is one sequence; a whole series "
            "must first be cut into windows (one row per window)."
        )


def _check_sequences(X: np.ndarray) -> None:
    """Sequences need a time step and a feature."""
    check_ndim(X, (2, 3), "X", _X_LAYOUT)
    if X.shape[1] == 0 or (X.ndim == 3 and X.shape[2] == 0):
        raise ValueError(
            f"X of shape {X.shape} has no time steps or no features; each sample must be "
            "a sequence of at least one step with at least one feature."
        )


def _training_batch_size(batch_size: int | str, n_train: int) -> int:
    """The mini-batch size of ``fit``: ``batch_size``, or the ``"auto"`` rule.

    Why ``"auto"``: the number of optimiser steps an LSTM needs to find a
    pattern hardly depends on the size of the data set, but with a fixed batch
    of 64 a data set of 200 rows gets only 4 steps per epoch (200 in 50
    epochs), too few to learn scikit-learn's check data (R^2 about 0.3). About
    16 batches per epoch (batches of 8 to 64 rows) give small data sets
    enough steps, and leave data sets of 1,024 rows or more at 64, as before.
    """
    if isinstance(batch_size, str):  # "auto", checked in _check_params
        return int(min(64, max(8, n_train // 16)))
    return int(batch_size)


def _fit_scaling(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 mean and scale (> 0) of each column of the 2-D array ``values``.

    Computed on each column divided by its largest magnitude, so that no
    finite float64 data overflow (the squares in a plain standard deviation of
    values near 1e200 would). The scale is the standard deviation, except for
    a column that is constant up to rounding: its scale is its magnitude (or
    1 for zeros), so that nothing is divided by zero and later inputs are
    measured relative to that constant rather than in absolute units.
    """
    peak = np.max(np.abs(values), axis=0)
    unit = np.where(peak > 0, peak, 1.0)
    unit_values = values / unit
    mean = unit_values.mean(axis=0)
    std = unit_values.std(axis=0)
    # unit * std == 0: the product underflows for subnormal data.
    ratio = np.where((std <= _CONSTANT_STD) | (unit * std == 0), 1.0, std)
    return mean * unit, ratio * unit


def _standardise(values: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(values - mean) / scale`` in float64, as two divisions so the difference cannot overflow.

    ``mean / scale`` is bounded (about 1 / _CONSTANT_STD), so only values far
    outside the fitted range overflow, to inf, which the callers report.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.divide(values, scale)
        out -= mean / scale
    return out


def _takes_weight_decay(optimizer: type[torch.optim.Optimizer]) -> bool:
    """Whether ``optimizer(params, weight_decay=...)`` is accepted."""
    try:
        parameters = inspect.signature(optimizer).parameters
    except (TypeError, ValueError):  # no introspectable signature: let torch decide
        return True
    return "weight_decay" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
