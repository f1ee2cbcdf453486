"""``save_regressor``/``load_regressor``: a fitted ``LSTMBaseRegressor`` in the safe format."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from sk_metalstm._torch_runtime import float32_default, resolve_device
from sk_metalstm._validation import check_choice
from sk_metalstm.persistence._formats import REGRESSOR_FORMAT
from sk_metalstm.persistence._json import history_from_json, history_to_json, param_to_json
from sk_metalstm.persistence._safe_file import (
    check_sizes,
    field,
    is_number,
    load_weights,
    plain_tensor,
    read_safe,
    write_safe,
)
from sk_metalstm.regressor import _LAG_ORDERS, LSTMBaseRegressor

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
    TypeError
        If ``regressor`` is not an ``LSTMBaseRegressor``.
    sklearn.exceptions.NotFittedError
        If the regressor is not fitted (a ``ValueError``).
    ValueError
        If a hyperparameter cannot be stored as JSON: ``callbacks`` other
        than ``None`` or ``[]`` (callback objects are code), a
        ``RandomState`` as ``random_state``, an optimizer class
        from outside ``torch.optim``. The message names the parameter; set it
        with ``set_params`` (this does not change the fitted network) or use
        ``save``, for trusted files only. Also if a weight is NaN or
        infinite (nothing is written then).

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
        raise TypeError(
            f"save_regressor needs an LSTMBaseRegressor, got {type(regressor).__name__}; "
            "for a pretrained forecaster use save_pretrained."
        )
    if not hasattr(regressor, "net_"):
        raise NotFittedError("save_regressor needs a fitted LSTMBaseRegressor; call fit first.")
    _check_fitted_architecture(regressor)
    params = {}
    for key, value in regressor.get_params(deep=False).items():
        if key == "optimizer" and isinstance(value, type):
            value = _optimizer_name(value)
        params[key] = param_to_json(key, value, "LSTMBaseRegressor parameter")
    fitted = {k: int(getattr(regressor, k)) for k in _REGRESSOR_FITTED}
    fitted["y_was_1d"] = bool(regressor._y_was_1d)
    fitted["batch_size_"] = int(regressor.batch_size_)
    fitted["lag_order_"] = str(regressor.lag_order_)
    # JSON writes floats so that they read back exactly.
    fitted.update({k: [float(v) for v in getattr(regressor, k)] for k in _REGRESSOR_SCALING})
    if hasattr(regressor, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(n) for n in regressor.feature_names_in_]
    tensors = {
        f"module.{k}": plain_tensor(v) for k, v in regressor.net_.module_.state_dict().items()
    }
    description = {
        "params": params,
        "fitted": fitted,
        "history": history_to_json(regressor.net_.history),
    }
    write_safe(path, REGRESSOR_FORMAT, description, tensors)


def _check_fitted_architecture(regressor: LSTMBaseRegressor) -> None:
    """Refuse a regressor whose architecture parameters no longer match its network.

    ``load_regressor`` builds the network from the stored parameters: after
    ``set_params(hidden_size=...)`` on a fitted regressor (it takes effect at
    the next ``fit``) the file would hold weights of another shape.
    """
    lstm = regressor.net_.module_.lstm
    for name, fitted in (("hidden_size", lstm.hidden_size), ("num_layers", lstm.num_layers)):
        if int(getattr(regressor, name)) != fitted:
            raise ValueError(
                f"{name}={getattr(regressor, name)!r} was set after fit, but the fitted "
                f"network has {name}={fitted}: set it back, or fit again, before "
                "save_regressor (the file must describe the network it holds)."
            )


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
    description, tensors = read_safe(path, REGRESSOR_FORMAT, map_location)
    params = dict(field(description, "params", dict, path))
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
    fitted = field(description, "fitted", dict, path)
    for key in _REGRESSOR_FITTED:
        value = fitted.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"{os.fspath(path)!r}: fitted attribute {key} must be a positive integer, "
                f"got {value!r}."
            )
        setattr(regressor, key, value)
    # fit sets both from X's second axis; predict checks X against n_features_in_.
    if regressor.sequence_length_ != regressor.n_features_in_:
        raise ValueError(
            f"{os.fspath(path)!r}: sequence_length_ is {regressor.sequence_length_}, but "
            f"n_features_in_ is {regressor.n_features_in_}; fit sets both to the length "
            "of the sequences in X."
        )
    y_was_1d = fitted.get("y_was_1d", False)
    if not isinstance(y_was_1d, bool):  # bool("false") is True
        raise ValueError(f"{os.fspath(path)!r}: y_was_1d must be true or false, got {y_was_1d!r}.")
    regressor._y_was_1d = y_was_1d
    # Files written before batch_size_ existed had an integer batch_size.
    batch_size = fitted.get("batch_size_", params["batch_size"])
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(
            f"{os.fspath(path)!r}: fitted attribute batch_size_ must be a positive integer, "
            f"got {batch_size!r}."
        )
    regressor.batch_size_ = batch_size
    # Files written before lag_order_ existed: predict read the parameter.
    lag_order = fitted.get("lag_order_", params["lag_order"])
    check_choice("lag_order_", lag_order, _LAG_ORDERS)
    regressor.lag_order_ = lag_order
    if "feature_names_in_" in fitted:
        names_in = fitted["feature_names_in_"]
        if not isinstance(names_in, list) or not all(isinstance(n, str) for n in names_in):
            raise ValueError(f"{os.fspath(path)!r}: feature_names_in_ must be a list of strings.")
        if len(names_in) != regressor.n_features_in_:  # predict would check X against both
            raise ValueError(
                f"{os.fspath(path)!r}: feature_names_in_ has {len(names_in)} names, but "
                f"n_features_in_ is {regressor.n_features_in_}."
            )
        regressor.feature_names_in_ = np.asarray(names_in, dtype=object)
    weights = {k.removeprefix("module."): v for k, v in tensors.items() if k.startswith("module.")}
    sizes = ("hidden_size", "num_layers", "n_sequence_features_", "n_outputs_")
    check_sizes(path, weights, {k: getattr(regressor, k) for k in sizes})
    # The net fit builds, without its (fit-only) validation split.
    net = regressor._make_net(train_split=None, device=map_location)
    try:
        # Random initialisation, overwritten below; built in float32 as fit builds it.
        with torch.random.fork_rng(devices=[]), float32_default():
            net.initialize()
    except (TypeError, ValueError) as error:  # e.g. an optimizer that takes no lr
        raise ValueError(
            f"{os.fspath(path)!r}: its settings do not build a network and optimizer: {error}"
        ) from error
    extra = sorted(k for k in tensors if not k.startswith("module."))
    if extra:
        raise ValueError(f"{os.fspath(path)!r} holds unexpected tensors {extra}.")
    load_weights(net.module_, weights, path)
    net.module_.eval()
    # After the weights, so that a wrong n_outputs_ is reported as an architecture mismatch.
    for key, (size_key, old_value) in _REGRESSOR_SCALING.items():
        size = getattr(regressor, size_key)
        values = fitted.get(key, [old_value] * size)
        if not (
            isinstance(values, list)
            and len(values) == size
            and all(is_number(v) and np.isfinite(v) for v in values)
            and (key.endswith("mean_") or all(v > 0 for v in values))
        ):
            raise ValueError(
                f"{os.fspath(path)!r}: fitted attribute {key} must be a list of {size} finite "
                f"numbers{'' if key.endswith('mean_') else ' > 0'}, got {values!r}."
            )
        setattr(regressor, key, np.asarray(values, dtype=np.float64))
    history = field(description, "history", list, path, default=[])
    net.history = history_from_json([history], path)[0]
    regressor.net_ = net
    return regressor


def _optimizer_name(cls: type) -> Any:
    """``"torch.optim.<Name>"`` for torch's own optimizers; other classes are refused later."""
    name = getattr(cls, "__name__", "")
    if getattr(torch.optim, name, None) is cls:
        return f"torch.optim.{name}"
    return cls


def _optimizer_class(name: str, path: Any) -> type[torch.optim.Optimizer]:
    short = name.removeprefix("torch.optim.")
    cls = vars(torch.optim).get(short)  # no attribute hooks run for a crafted name
    if (
        not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer))
        or cls is torch.optim.Optimizer
    ):  # the abstract base class takes no settings
        raise ValueError(f"{os.fspath(path)!r}: unknown optimizer {name!r}.")
    return cls
