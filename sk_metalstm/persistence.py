"""Save and load fitted or pretrained estimators.

Two formats:

- ``save`` / ``load`` store a whole estimator (any state: new, pretrained,
  fitted) with ``pickle``. Convenient, but **loading unpickles arbitrary Python
  objects and can run code**: only ``load`` files you wrote yourself or fully
  trust.
- ``save_pretrained`` / ``load_pretrained`` (a ``MetaState``, what ``pretrain``
  produces) and ``save_regressor`` / ``load_regressor`` (a fitted
  ``LSTMBaseRegressor``) store plain tensors and a JSON description, and read
  them with ``torch.load(..., weights_only=True)``: loading runs no code from
  the file, so these are the formats to share models in.

Both record the package version they were written with, and files written on a
GPU machine load on a CPU-only one.

The safe format is one ``torch.save`` file holding a dict of exactly four
entries: ``"format"`` (``"sk_metalstm.meta_state/3"`` or
``"sk_metalstm.regressor/1"``), ``"version"`` (the package version),
``"config"`` (a JSON string: architecture, settings, fitted attributes,
training history) and ``"tensors"`` (a flat ``{name: Tensor}`` dict). One file,
rather than a JSON file beside a tensor file, cannot be split or mismatched when
passed around; and ``torch``'s weights-only unpickler, which refuses every
Python object but tensors and plain containers, is already a dependency.
"""

from __future__ import annotations

import inspect
import json
import os
import pickle
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

import sk_metalstm
from sk_metalstm._torch_runtime import resolve_device
from sk_metalstm.distribution import n_outputs
from sk_metalstm.meta import META_LEARNERS
from sk_metalstm.meta.base import MetaLearner
from sk_metalstm.meta.state import ARCHITECTURE_KEYS, MetaState
from sk_metalstm.networks import LSTMNetwork
from sk_metalstm.regressor import LSTMBaseRegressor

if TYPE_CHECKING:
    from sk_metalstm.forecaster import MetaLSTMForecaster

__all__ = ["save", "load", "save_pretrained", "load_pretrained", "save_regressor", "load_regressor"]

_FORMAT = "sk_metalstm/1"
# /2: distributional networks (location and scale outputs, a volatility input).
# /3: the ridge learner's scale memory and the calibrated location weight.
_STATE_FORMAT = "sk_metalstm.meta_state/3"
_REGRESSOR_FORMAT = "sk_metalstm.regressor/1"
#: What each safe format holds, and the function that reads it.
_SAFE_FORMATS = {
    _STATE_FORMAT: ("a pretrained MetaState", "load_pretrained"),
    _REGRESSOR_FORMAT: ("a fitted LSTMBaseRegressor", "load_regressor"),
}
_SAFE_KEYS = ("format", "version", "config", "tensors")
#: Fitted attributes of ``LSTMBaseRegressor`` that ``predict`` needs (positive ints).
_REGRESSOR_FITTED = ("n_features_in_", "sequence_length_", "n_sequence_features_", "n_outputs_")
#: Its float64 scaling statistics (lists in the JSON), their length and their value
#: in files written before it standardised (it then trained on raw values).
_REGRESSOR_SCALING = {
    "x_mean_": ("n_sequence_features_", 0.0),
    "x_scale_": ("n_sequence_features_", 1.0),
    "y_mean_": ("n_outputs_", 0.0),
    "y_scale_": ("n_outputs_", 1.0),
}


def save(estimator: Any, path: str | os.PathLike[str]) -> None:
    """Write ``estimator`` (any state: new, pretrained, fitted) to ``path`` with pickle.

    The file can only be read with ``load``, which unpickles it: fine for your
    own files, not for sharing. To give a model to someone else, use
    ``save_pretrained`` or ``save_regressor``, whose files run no code when
    loaded.

    Parameters
    ----------
    estimator : LSTMBaseRegressor or MetaLSTMForecaster
        The object to store; it is not modified.
    path : str or path-like
        Destination file.

    Examples
    --------
    >>> from sk_metalstm import LSTMBaseRegressor
    >>> from sk_metalstm.persistence import save, load
    >>> import numpy as np, tempfile, os
    >>> X, y = np.random.rand(40, 5), np.random.rand(40)
    >>> model = LSTMBaseRegressor(hidden_size=4, max_epochs=2, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
    >>> save(model, path)
    >>> bool(np.allclose(load(path).predict(X), model.predict(X)))
    True
    """
    payload = {"format": _FORMAT, "version": sk_metalstm.__version__, "estimator": estimator}
    torch.save(payload, path)


def load(path: str | os.PathLike[str], map_location: str = "cpu") -> Any:
    """Read an estimator written by ``save``. **Unsafe for untrusted files.**

    Warnings
    --------
    This unpickles the file: a crafted file runs arbitrary code on your machine
    as soon as it is loaded. Only load files you wrote yourself or fully trust;
    for shared models use ``load_pretrained`` or ``load_regressor``.

    Parameters
    ----------
    path : str or path-like
        File written by ``save``.
    map_location : str, default="cpu"
        Where tensors go; the default makes GPU-trained models usable anywhere.

    Returns
    -------
    estimator
        The stored estimator, ready to ``predict``.

    Raises
    ------
    ValueError
        If the file was not written by ``save``.
    """
    # weights_only=False: an estimator is more than tensors. See the warning above.
    payload = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{os.fspath(path)!r} was not written by sk_metalstm.persistence.save.")
    _check_version(path, payload["version"])
    estimator = payload["estimator"]
    _move_to(estimator, map_location)
    return estimator


def _move_to(estimator: Any, device: str) -> None:
    """Let a GPU-trained forecaster keep working (``update``) where it was loaded.

    Its fitted tensors are kept on the CPU already; only the ``device`` setting
    would send later adaptation to a GPU the machine may lack. It is changed in
    place, not through ``set_params``, which would reset the fitted state. The
    regressor's skorch net maps itself to the CPU when no GPU is present.
    """
    if hasattr(estimator, "pretrained_state_") and str(estimator.device).startswith("cuda"):
        if device == "cpu" or not torch.cuda.is_available():
            estimator.device = "cpu"


# ============================================================ safe: pretrained state
def save_pretrained(state: MetaState | MetaLSTMForecaster, path: str | os.PathLike[str]) -> None:
    """Write a pretrained ``MetaState`` to ``path`` in the safe (code-free) format.

    Stores the learner's tensors (``state_dict``), the settings it was trained
    with (``state.config``), its calibration (residuals and location weights)
    and its training history; ``load_pretrained`` rebuilds an identical state
    without running any code from the file.

    Parameters
    ----------
    state : MetaState or MetaLSTMForecaster
        The state, or a pretrained (or fitted) forecaster, whose
        ``pretrained_state_`` is written. Nothing is modified.
    path : str or path-like
        Destination file.

    Raises
    ------
    ValueError
        If the forecaster has no pretrained state, the learner is not one of
        the package's meta-learners, or a setting in ``state.config`` cannot
        be written as JSON (e.g. an ``exog_columns`` entry that is not a
        string or number).

    Warns
    -----
    UserWarning
        If ``config["random_state"]`` is a ``RandomState`` instance: it is
        stored as ``None`` (it only seeded the training that produced the state).

    Notes
    -----
    Training history entries that are not JSON values (numbers, strings,
    booleans, None, lists, dicts) are left out; 0-d tensors and numpy scalars
    are stored as numbers.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sktime.datasets import load_airline
    >>> from sk_metalstm import MetaLSTMForecaster
    >>> from sk_metalstm.persistence import load_pretrained, save_pretrained
    >>> y, path = load_airline(), os.path.join(tempfile.mkdtemp(), "pretrained.pt")
    >>> forecaster = MetaLSTMForecaster(
    ...     window_length=6, horizon=3, hidden_size=4, support_size=8, query_size=2,
    ...     max_epochs=1, base_max_epochs=1, random_state=0, verbose=0,
    ... ).fit(y)
    >>> save_pretrained(forecaster, path)  # or forecaster.pretrained_state_
    >>> state = load_pretrained(path)      # runs no code from the file
    >>> shared = MetaLSTMForecaster.from_pretrained(state).fit(y)
    >>> bool(np.array_equal(shared.predict(fh=[1, 2, 3]), forecaster.predict(fh=[1, 2, 3])))
    True
    """
    if not isinstance(state, MetaState):
        owner = type(state).__name__
        state = getattr(state, "pretrained_state_", None)
        if not isinstance(state, MetaState):
            raise ValueError(
                f"save_pretrained needs a MetaState or a pretrained forecaster; this "
                f"{owner} has no pretrained_state_ (call pretrain or fit first)."
            )
    learner = state.learner
    name = _learner_name(learner)
    config = _config_to_json(state.config)
    if config.get("meta_learner") != name:
        raise ValueError(
            f"state.config['meta_learner'] is {config.get('meta_learner')!r} but the "
            f"learner is a {type(learner).__name__} ({name!r})."
        )
    tensors = {f"learner.{k}": _plain_tensor(v) for k, v in learner.state_dict().items()}
    residuals = None
    if state.residuals is not None:
        residuals = sorted(state.residuals)
        for key in residuals:
            value = np.ascontiguousarray(state.residuals[key])
            tensors[f"residuals.{key}"] = torch.from_numpy(value.copy())
    if state.location_weight is not None:
        weight = np.asarray(state.location_weight, dtype=np.float64)
        tensors["location_weight"] = torch.from_numpy(weight.copy())
    description = {
        "learner": {
            "name": name,
            "options": _learner_options(learner),
            "training": bool(learner.training),
        },
        "config": config,
        "residuals": residuals,
        "history": [_history_to_json(h) for h in state.history],
    }
    _write(path, _STATE_FORMAT, description, tensors)


def load_pretrained(path: str | os.PathLike[str]) -> MetaState:
    """Read a ``MetaState`` written by ``save_pretrained``, running no code from the file.

    The file is read with ``torch.load(..., weights_only=True)``; the learner
    is rebuilt from the stored settings (as ``pretrain`` builds it) and its
    weights loaded with ``load_state_dict(strict=True)``. Tensors are read onto
    the CPU, where ``pretrain`` leaves a learner (the forecaster moves it to
    its ``device`` itself), so files written on a GPU machine load anywhere. A
    state trained with ``device="cuda"`` comes back with ``config["device"]``
    set to ``"cpu"`` when this machine has no GPU, so that
    ``MetaLSTMForecaster.from_pretrained`` works here.

    Parameters
    ----------
    path : str or path-like
        File written by ``save_pretrained``.

    Returns
    -------
    MetaState
        Pass it to ``MetaLSTMForecaster.from_pretrained`` or
        ``MetaLSTMForecaster(pretrained=...)``; it forecasts exactly as the
        saved state. ``history`` holds skorch ``History`` objects (JSON values
        only).

    Raises
    ------
    ValueError
        If the file is not a safe sk_metalstm file (e.g. a pickle holding
        Python objects, which is refused unopened), holds something else
        (e.g. a regressor), lacks entries, or its settings do not match its
        tensors.

    Warns
    -----
    UserWarning
        If the file was written by another version of sk_metalstm.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> from sktime.datasets import load_airline
    >>> from sk_metalstm import MetaLSTMForecaster, persistence
    >>> y = load_airline()
    >>> panel = pd.concat({"a": y, "b": 2 * y}, names=["series", "time"]).to_frame("y")
    >>> forecaster = MetaLSTMForecaster(
    ...     window_length=6, horizon=3, hidden_size=4, support_size=8, query_size=2,
    ...     max_epochs=1, base_max_epochs=1, random_state=0, verbose=0,
    ... ).pretrain(panel)
    >>> path = os.path.join(tempfile.mkdtemp(), "pretrained.pt")
    >>> persistence.save_pretrained(forecaster.pretrained_state_, path)
    >>> state = persistence.load_pretrained(path)
    >>> state.config["meta_learner"], type(state.learner).__name__
    ('ridge', 'RidgeHeadLearner')
    >>> MetaLSTMForecaster.from_pretrained(state).fit(y).predict(fh=[1, 2, 3]).shape
    (3,)
    """
    description, tensors = _read(path, _STATE_FORMAT)
    learner_info = _field(description, "learner", dict, path)
    config = _field(description, "config", dict, path)
    name = _field(learner_info, "name", str, path)
    if name not in META_LEARNERS:
        raise ValueError(
            f"{os.fspath(path)!r} holds an unknown meta_learner {name!r}; "
            f"this version knows {sorted(META_LEARNERS)}."
        )
    missing = [k for k in (*ARCHITECTURE_KEYS, "inner_steps") if k not in config]
    if missing:
        raise ValueError(f"{os.fspath(path)!r}: its config lacks the setting(s) {missing}.")
    if config.get("meta_learner") != name:
        raise ValueError(
            f"{os.fspath(path)!r} is inconsistent: its config says meta_learner="
            f"{config.get('meta_learner')!r} but its learner is {name!r}."
        )
    options = _field(learner_info, "options", dict, path)
    with torch.random.fork_rng(devices=[]):  # random initialisation, overwritten below
        learner = _build_learner(name, _network_from_config(config, path), options, path)
    weights = {k[len("learner.") :]: v for k, v in tensors.items() if k.startswith("learner.")}
    _load_weights(learner, weights, path)
    learner.train(bool(learner_info.get("training", False)))

    residual_keys = description.get("residuals")
    residuals = None
    if residual_keys is not None:
        if not isinstance(residual_keys, list) or not all(
            isinstance(k, str) for k in residual_keys
        ):
            raise ValueError(f"{os.fspath(path)!r}: 'residuals' must be a list of names.")
        missing = [k for k in residual_keys if f"residuals.{k}" not in tensors]
        if missing:
            raise ValueError(f"{os.fspath(path)!r} lacks the residual tensor(s) {missing}.")
        residuals = {k: tensors[f"residuals.{k}"].numpy() for k in residual_keys}
        for key, values in residuals.items():
            if values.ndim != 2 or values.shape[1] != config["horizon"]:
                raise ValueError(
                    f"{os.fspath(path)!r}: residuals {key!r} must have shape (n, horizon="
                    f"{config['horizon']}), got {values.shape}."
                )
    known = {f"residuals.{k}" for k in residual_keys or []} | {"location_weight"}
    extra = sorted(k for k in tensors if not k.startswith("learner.") and k not in known)
    if extra:
        raise ValueError(f"{os.fspath(path)!r} holds unexpected tensors {extra}.")
    location_weight = None
    if "location_weight" in tensors:
        location_weight = tensors["location_weight"].numpy()
        if location_weight.shape != (config["horizon"],):
            raise ValueError(
                f"{os.fspath(path)!r}: location_weight must have shape (horizon="
                f"{config['horizon']},), got {tuple(location_weight.shape)}."
            )

    history = _field(description, "history", list, path, default=[])
    if str(config.get("device", "cpu")).startswith("cuda") and not torch.cuda.is_available():
        config["device"] = "cpu"
    return MetaState(
        learner=learner,
        config=config,
        history=_history_from_json(history, path),
        residuals=residuals,
        location_weight=location_weight,
    )


# ================================================================= safe: regressor
def save_regressor(regressor: LSTMBaseRegressor, path: str | os.PathLike[str]) -> None:
    """Write a fitted ``LSTMBaseRegressor`` to ``path`` in the safe (code-free) format.

    Stores the hyperparameters (``get_params()``, as JSON), the network's
    ``state_dict``, the fitted attributes ``predict`` needs and the training
    history; ``load_regressor`` rebuilds a regressor that predicts identically
    without running any code from the file.

    Parameters
    ----------
    regressor : LSTMBaseRegressor
        A fitted regressor; it is not modified.
    path : str or path-like
        Destination file.

    Raises
    ------
    ValueError
        If the regressor is not fitted, or a hyperparameter cannot be stored
        as JSON: ``callbacks`` other than ``None`` or ``[]`` (callback objects
        are code), a ``RandomState`` as ``random_state``, an optimizer class
        from outside ``torch.optim``. The message names the parameter; set it
        with ``set_params`` (this does not change the fitted network) or use
        ``save``, for trusted files only.

    Notes
    -----
    Training history entries that are not JSON values are left out. A
    ``torch.optim`` optimizer class is stored by name.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn.datasets import make_regression
    >>> from sk_metalstm import LSTMBaseRegressor
    >>> from sk_metalstm.persistence import save_regressor
    >>> X, y = make_regression(n_samples=30, n_features=4, random_state=0)
    >>> regressor = LSTMBaseRegressor(hidden_size=4, max_epochs=1).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_regressor(regressor, Path(folder) / "regressor.pt")
    """
    if not isinstance(regressor, LSTMBaseRegressor):
        raise ValueError(
            f"save_regressor needs an LSTMBaseRegressor, got {type(regressor).__name__}; "
            "for a pretrained forecaster use save_pretrained."
        )
    if not hasattr(regressor, "net_"):
        raise ValueError("save_regressor needs a fitted LSTMBaseRegressor; call fit first.")
    params = {}
    for key, value in regressor.get_params(deep=False).items():
        if key == "optimizer" and isinstance(value, type):
            value = _optimizer_name(value)
        params[key] = _param_to_json(key, value, "LSTMBaseRegressor parameter")
    fitted = {k: int(getattr(regressor, k)) for k in _REGRESSOR_FITTED}
    fitted["y_was_1d"] = bool(regressor._y_was_1d)
    fitted["batch_size_"] = int(regressor.batch_size_)
    # JSON writes floats so that they read back exactly.
    fitted.update({k: [float(v) for v in getattr(regressor, k)] for k in _REGRESSOR_SCALING})
    if hasattr(regressor, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(n) for n in regressor.feature_names_in_]
    tensors = {
        f"module.{k}": _plain_tensor(v) for k, v in regressor.net_.module_.state_dict().items()
    }
    description = {
        "params": params,
        "fitted": fitted,
        "history": _history_to_json(regressor.net_.history),
    }
    _write(path, _REGRESSOR_FORMAT, description, tensors)


def load_regressor(path: str | os.PathLike[str], map_location: str = "cpu") -> LSTMBaseRegressor:
    """Read a regressor written by ``save_regressor``, running no code from the file.

    The file is read with ``torch.load(..., weights_only=True)``; the regressor
    is rebuilt from its stored parameters, its skorch net initialised and the
    network's weights loaded with ``load_state_dict(strict=True)``.

    Parameters
    ----------
    path : str or path-like
        File written by ``save_regressor``.
    map_location : str, default="cpu"
        Device of the restored network (``net_.device``); the default makes
        GPU-trained models usable anywhere. The ``device`` parameter is kept
        as saved: it is what a new ``fit`` would use.

    Returns
    -------
    LSTMBaseRegressor
        Fitted, predicting exactly as the saved one.

    Raises
    ------
    ValueError
        If the file is not a safe sk_metalstm file (e.g. a pickle holding
        Python objects, which is refused unopened), holds something else
        (e.g. a pretrained state), lacks entries, has invalid parameters, or
        its parameters do not match its tensors.

    Warns
    -----
    UserWarning
        As ``load_pretrained``, for a file from another package version.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sk_metalstm import LSTMBaseRegressor
    >>> from sk_metalstm.persistence import load_regressor, save_regressor
    >>> X, y = np.random.rand(40, 5), np.random.rand(40)
    >>> model = LSTMBaseRegressor(hidden_size=4, max_epochs=2, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "regressor.pt")
    >>> save_regressor(model, path)
    >>> loaded = load_regressor(path)  # runs no code from the file
    >>> loaded.n_features_in_, loaded.net_.device
    (5, 'cpu')
    >>> bool(np.array_equal(loaded.predict(X), model.predict(X)))
    True
    """
    map_location = resolve_device(map_location)  # a clear error for a missing GPU
    description, tensors = _read(path, _REGRESSOR_FORMAT, map_location)
    params = dict(_field(description, "params", dict, path))
    names = set(LSTMBaseRegressor._get_param_names())
    if set(params) != names:
        unknown, missing = sorted(set(params) - names), sorted(names - set(params))
        raise ValueError(
            f"{os.fspath(path)!r} has parameters that do not match LSTMBaseRegressor's "
            f"(unknown: {unknown}, missing: {missing})."
        )
    optimizer = params["optimizer"]
    if isinstance(optimizer, str) and optimizer.startswith("torch.optim."):
        params["optimizer"] = _optimizer_class(optimizer, path)
    regressor = LSTMBaseRegressor(**params)
    regressor._check_params()  # a hand-edited file gets the same checks as fit
    fitted = _field(description, "fitted", dict, path)
    for key in _REGRESSOR_FITTED:
        value = fitted.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"{os.fspath(path)!r}: fitted attribute {key} must be a positive integer, "
                f"got {value!r}."
            )
        setattr(regressor, key, value)
    regressor._y_was_1d = bool(fitted.get("y_was_1d", False))
    # Files written before batch_size_ existed had an integer batch_size.
    batch_size = fitted.get("batch_size_", params["batch_size"])
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(
            f"{os.fspath(path)!r}: fitted attribute batch_size_ must be a positive integer, "
            f"got {batch_size!r}."
        )
    regressor.batch_size_ = batch_size
    if "feature_names_in_" in fitted:
        names_in = fitted["feature_names_in_"]
        if not isinstance(names_in, list) or not all(isinstance(n, str) for n in names_in):
            raise ValueError(f"{os.fspath(path)!r}: feature_names_in_ must be a list of strings.")
        regressor.feature_names_in_ = np.asarray(names_in, dtype=object)
    # The net fit builds, without its (fit-only) validation split.
    net = regressor._make_net(train_split=None, device=map_location)
    with torch.random.fork_rng(devices=[]):  # random initialisation, overwritten below
        net.initialize()
    weights = {k.removeprefix("module."): v for k, v in tensors.items() if k.startswith("module.")}
    extra = sorted(k for k in tensors if not k.startswith("module."))
    if extra:
        raise ValueError(f"{os.fspath(path)!r} holds unexpected tensors {extra}.")
    _load_weights(net.module_, weights, path)
    net.module_.eval()
    # After the weights, so that a wrong n_outputs_ is reported as an architecture mismatch.
    for key, (size_key, old_value) in _REGRESSOR_SCALING.items():
        size = getattr(regressor, size_key)
        values = fitted.get(key, [old_value] * size)
        if not (
            isinstance(values, list)
            and len(values) == size
            and all(_is_number(v) and np.isfinite(v) for v in values)
            and (key.endswith("mean_") or all(v > 0 for v in values))
        ):
            raise ValueError(
                f"{os.fspath(path)!r}: fitted attribute {key} must be a list of {size} finite "
                f"numbers{'' if key.endswith('mean_') else ' > 0'}, got {values!r}."
            )
        setattr(regressor, key, np.asarray(values, dtype=np.float64))
    history = _field(description, "history", list, path, default=[])
    net.history = _history_from_json([history], path)[0]
    regressor.net_ = net
    return regressor


# ========================================================================= helpers
def _write(
    path: str | os.PathLike[str],
    fmt: str,
    description: dict[str, Any],
    tensors: dict[str, torch.Tensor],
) -> None:
    payload = {
        "format": fmt,
        "version": sk_metalstm.__version__,
        "config": json.dumps(description, allow_nan=True),
        "tensors": tensors,
    }
    torch.save(payload, path)


def _read(
    path: str | os.PathLike[str], fmt: str, map_location: str = "cpu"
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON description and tensors of a safe file of format ``fmt``, checked."""
    where = repr(os.fspath(path))
    try:
        with warnings.catch_warnings():
            # torch's notice about the pickle protocol of a foreign pickle.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except OSError:
        raise
    except pickle.UnpicklingError as error:
        reason = next(
            (line.strip() for line in str(error).splitlines() if "global" in line.lower()),
            "it holds objects other than tensors and plain containers",
        )
        raise ValueError(
            f"{where} is not a safe sk_metalstm file: it holds Python objects that could "
            f"run code when loaded, so it was not loaded ({reason}). Files written by "
            "sk_metalstm.persistence.save are pickles: open them with "
            "sk_metalstm.persistence.load only if you trust their source."
        ) from error
    except Exception as error:  # torch raises many types for a file that is not its own
        raise ValueError(
            f"{where} is not a safe sk_metalstm file: torch.load cannot read it "
            f"({type(error).__name__}: {error})."
        ) from error
    if not isinstance(payload, dict):
        raise ValueError(
            f"{where} is not a safe sk_metalstm file: it holds a {type(payload).__name__}, "
            "not a dict."
        )
    found = payload.get("format")
    if found != fmt:
        if found in _SAFE_FORMATS:
            what, reader = _SAFE_FORMATS[found]
            raise ValueError(f"{where} holds {what}; read it with {reader}.")
        if found == _FORMAT:
            raise ValueError(
                f"{where} was written by sk_metalstm.persistence.save (a pickle); open it "
                "with sk_metalstm.persistence.load, only if you trust its source."
            )
        raise ValueError(
            f"{where} is not a safe sk_metalstm file of format {fmt!r}: its format is {found!r}."
        )
    missing = [k for k in _SAFE_KEYS if k not in payload]
    if missing:
        raise ValueError(f"{where} is an incomplete sk_metalstm file: it lacks {missing}.")
    extra = sorted(str(k) for k in payload if k not in _SAFE_KEYS)
    if extra:
        raise ValueError(f"{where} holds unexpected entries {extra}.")
    if not isinstance(payload["version"], str):
        raise ValueError(f"{where}: 'version' must be a string, got {payload['version']!r}.")
    _check_version(path, payload["version"], stacklevel=4)
    if not isinstance(payload["config"], str):
        raise ValueError(f"{where}: 'config' must be a JSON string.")
    try:
        description = json.loads(payload["config"])
    except ValueError as error:
        raise ValueError(f"{where}: 'config' is not valid JSON ({error}).") from error
    if not isinstance(description, dict):
        raise ValueError(f"{where}: 'config' must be a JSON object.")
    tensors = payload["tensors"]
    if not isinstance(tensors, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()
    ):
        raise ValueError(f"{where}: 'tensors' must map names to tensors.")
    return description, tensors


def _check_version(path: str | os.PathLike[str], version: str, stacklevel: int = 3) -> None:
    """Warn (pointing ``stacklevel`` frames up) if another version wrote ``path``."""
    if version != sk_metalstm.__version__:
        warnings.warn(
            f"{os.fspath(path)!r} was written by sk_metalstm {version}; "
            f"this is {sk_metalstm.__version__}. Check its predictions.",
            UserWarning,
            stacklevel=stacklevel,
        )


def _field(
    mapping: dict[str, Any],
    key: str,
    kind: type,
    path: str | os.PathLike[str],
    default: Any = None,
) -> Any:
    """``mapping[key]``, which must be a ``kind`` (or absent when a default is given)."""
    if key not in mapping and default is not None:
        return default
    if key not in mapping:
        raise ValueError(f"{os.fspath(path)!r} is an incomplete sk_metalstm file: no {key!r}.")
    value = mapping[key]
    if not isinstance(value, kind):
        raise ValueError(f"{os.fspath(path)!r}: {key!r} must be a {kind.__name__}, got {value!r}.")
    return value


def _plain_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """A compact CPU copy (no shared storage, no autograd)."""
    return tensor.detach().to("cpu", copy=True).contiguous()


def _load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], path: Any) -> None:
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"{os.fspath(path)!r}: its tensors do not match the architecture its config "
            f"describes: {error}"
        ) from error


# -- JSON ---------------------------------------------------------------------------
class _NotJSON(TypeError):
    pass


def _to_json(value: Any, strict: bool = True) -> Any:
    """``value`` as plain JSON data (numpy scalars and 0-d tensors become numbers).

    ``strict`` refuses tuples (they would come back as lists, unequal to the
    original); otherwise they become lists.
    """
    if isinstance(value, np.generic | torch.Tensor) and value.ndim == 0:
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list) or (not strict and isinstance(value, tuple)):
        return [_to_json(v, strict) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _to_json(v, strict) for k, v in value.items()}
    raise _NotJSON(type(value).__name__)


def _param_to_json(key: str, value: Any, what: str) -> Any:
    try:
        return _to_json(value)
    except _NotJSON as error:
        raise ValueError(
            f"{what} {key}={value!r} cannot be stored safely (a {error} is not a JSON "
            "value). Set it to a plain value (e.g. with set_params) before saving, or "
            "use sk_metalstm.persistence.save (pickle; for trusted files only)."
        ) from None


def _config_to_json(config: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        if key == "random_state" and isinstance(value, np.random.RandomState):
            warnings.warn(
                "config['random_state'] is a RandomState instance, which cannot be stored "
                "safely; it is saved as None (it only seeded the training).",
                UserWarning,
                stacklevel=3,
            )
            value = None
        out[str(key)] = _param_to_json(f"config[{key!r}]", value, "The state's setting")
    return out


def _history_to_json(history: Any) -> list[Any]:
    """A skorch ``History`` as a list of JSON-able epoch dicts; other values are left out."""
    return [_lenient(epoch) for epoch in history if isinstance(epoch, dict)]


_DROP = object()


def _lenient(value: Any) -> Any:
    try:
        return _to_json(value, strict=False)
    except _NotJSON:
        pass
    if isinstance(value, dict):
        items = ((str(k), _lenient(v)) for k, v in value.items())
        return {k: v for k, v in items if v is not _DROP}
    if isinstance(value, list | tuple):
        return [v for v in map(_lenient, value) if v is not _DROP]
    return _DROP


def _history_from_json(histories: list[Any], path: Any) -> list[Any]:
    from skorch.history import History

    out = []
    for epochs in histories:
        if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
            raise ValueError(f"{os.fspath(path)!r}: a history must be a list of epoch dicts.")
        out.append(History(epochs))
    return out


# -- learners ----------------------------------------------------------------------
def _learner_name(learner: Any) -> str:
    for name, cls in META_LEARNERS.items():
        if type(learner) is cls:
            return name
    raise ValueError(
        f"save_pretrained stores the package's meta-learners only "
        f"({sorted(META_LEARNERS)}); got a {type(learner).__name__}."
    )


def _learner_options(learner: MetaLearner) -> dict[str, Any]:
    """Public plain attributes of ``learner`` (``inner_steps``, ``n_lags``...)."""
    options = {}
    for key, value in vars(learner).items():
        if key.startswith("_") or key == "training":
            continue
        options[key] = _param_to_json(key, value, f"{type(learner).__name__} attribute")
    return options


def _constructor_arguments(cls: type) -> set[str]:
    """Named ``__init__`` arguments of ``cls`` and of the bases it forwards ``**kwargs`` to."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters
        names |= {
            n
            for n, p in parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in ("self", "base")
        }
        if klass is MetaLearner or not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            break
    return names


#: Checks of the options the package's learners take (name -> test, what it must be).
_OPTION_CHECKS: dict[str, tuple[Any, str]] = {
    "inner_steps": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "n_lags": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "first_order": (lambda v: isinstance(v, bool), "a bool"),
    "vectorize": (lambda v: isinstance(v, bool), "a bool"),
    "inner_lr": (lambda v: _is_number(v), "a number"),
    "momentum": (lambda v: _is_number(v), "a number"),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _build_learner(
    name: str, network: LSTMNetwork, options: dict[str, Any], path: Any
) -> MetaLearner:
    """The learner ``name`` around ``network``, with ``options`` as constructed and set."""
    where = repr(os.fspath(path))
    for key, value in options.items():
        if key.startswith("_") or key == "training":
            raise ValueError(f"{where}: {key!r} is not a learner option.")
        check, expected = _OPTION_CHECKS.get(key, (lambda v: True, ""))
        if not check(value):
            raise ValueError(f"{where}: learner option {key} must be {expected}, got {value!r}.")
    cls = META_LEARNERS[name]
    accepted = _constructor_arguments(cls)
    try:
        learner = cls(network, **{k: v for k, v in options.items() if k in accepted})
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"{where}: cannot build the {name!r} learner from its options {options}: {error}"
        ) from error
    for key, value in options.items():
        if key in accepted:
            continue
        # Instance overrides of plain class settings (e.g. a ridge shrinkage_grid).
        current = getattr(learner, key, _DROP)
        if current is _DROP or callable(current) or isinstance(current, torch.nn.Module):
            raise ValueError(f"{where}: unknown {name!r} learner option {key!r}.")
        if isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        if not (isinstance(value, type(current)) or _is_number(value) and _is_number(current)):
            raise ValueError(
                f"{where}: learner option {key} must be a {type(current).__name__}, got {value!r}."
            )
        setattr(learner, key, value)
    return learner


def _network_from_config(config: dict[str, Any], path: Any) -> LSTMNetwork:
    """The base network ``pretrain`` builds for ``config`` (its weights are replaced)."""
    sizes = {}
    for key in ("hidden_size", "num_layers", "horizon"):
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"{os.fspath(path)!r}: config[{key!r}] must be a positive integer, got {value!r}."
            )
        sizes[key] = value
    exog = config.get("exog_columns")
    if exog is not None and not isinstance(exog, list):
        raise ValueError(f"{os.fspath(path)!r}: config['exog_columns'] must be a list or null.")
    # The target, the exogenous columns and the volatility channel (``distribution``).
    input_size = 2 + len(exog or [])
    return LSTMNetwork(
        input_size, sizes["hidden_size"], sizes["num_layers"], n_outputs(sizes["horizon"])
    )


# -- optimizers --------------------------------------------------------------------
def _optimizer_name(cls: type) -> Any:
    """``"torch.optim.<Name>"`` for torch's own optimizers; other classes are refused later."""
    name = getattr(cls, "__name__", "")
    if getattr(torch.optim, name, None) is cls:
        return f"torch.optim.{name}"
    return cls


def _optimizer_class(name: str, path: Any) -> type[torch.optim.Optimizer]:
    short = name.removeprefix("torch.optim.")
    cls = vars(torch.optim).get(short)  # no attribute hooks run for a crafted name
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ValueError(f"{os.fspath(path)!r}: unknown optimizer {name!r}.")
    return cls
