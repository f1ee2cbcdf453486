"""``save_pretrained``/``load_pretrained``: a ``MetaState`` in the safe format."""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from sk_metalstm._torch_runtime import float32_default
from sk_metalstm.distribution import n_outputs
from sk_metalstm.meta import META_LEARNERS
from sk_metalstm.meta.base import MetaLearner
from sk_metalstm.meta.state import ARCHITECTURE_KEYS, MetaState
from sk_metalstm.networks import LSTMNetwork
from sk_metalstm.persistence._formats import STATE_FORMAT
from sk_metalstm.persistence._json import (
    config_to_json,
    history_from_json,
    history_to_json,
    param_to_json,
)
from sk_metalstm.persistence._safe_file import (
    check_sizes,
    field,
    is_int,
    is_number,
    load_weights,
    plain_tensor,
    read_safe,
    write_safe,
)

if TYPE_CHECKING:
    from sk_metalstm.forecaster import MetaLSTMForecaster

#: Marks an attribute a learner does not have.
_MISSING = object()


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
    TypeError
        If ``state`` is neither a ``MetaState`` nor a ``MetaLSTMForecaster``.
    sklearn.exceptions.NotFittedError
        If the forecaster has no pretrained state (a ``ValueError``).
    ValueError
        If the learner is not one of the package's meta-learners, a setting
        in ``state.config`` cannot be written as JSON (e.g. an
        ``exog_columns`` entry that is not a string or number), or a tensor
        holds NaN or infinite values (nothing is written then); also for a
        forecaster fitted on a y of several columns (one state per column:
        the message says where they are).

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
        # Imported here: the estimators' modules are heavier than the file format.
        from sk_metalstm.forecaster import MetaLSTMForecaster
        from sk_metalstm.regressor import LSTMBaseRegressor

        owner = state
        if not isinstance(owner, MetaLSTMForecaster):
            regressor = isinstance(owner, LSTMBaseRegressor)
            hint = "; for a regressor use save_regressor" if regressor else ""
            raise TypeError(
                "save_pretrained needs a MetaState or a pretrained MetaLSTMForecaster, "
                f"got {type(owner).__name__}{hint}."
            )
        state = getattr(owner, "pretrained_state_", None)
        if state is None and getattr(owner, "_is_vectorized", False):
            raise ValueError(
                "save_pretrained: this forecaster was fitted on a y of several columns, "
                "which sktime fits one forecaster per column, each with its own state; "
                "save a column's, e.g. forecaster.forecasters_.iloc[0, 0]."
            )
        if not isinstance(state, MetaState):
            raise NotFittedError(
                "save_pretrained needs a pretrained MetaLSTMForecaster; this one has no "
                "pretrained_state_ (call pretrain or fit first)."
            )
    learner = state.learner
    name = _learner_name(learner)
    config = config_to_json(state.config)
    if config.get("meta_learner") != name:
        raise ValueError(
            f"state.config['meta_learner'] is {config.get('meta_learner')!r} but the "
            f"learner is a {type(learner).__name__} ({name!r})."
        )
    tensors = {f"learner.{k}": plain_tensor(v) for k, v in learner.state_dict().items()}
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
        "history": [history_to_json(h) for h in state.history],
    }
    write_safe(path, STATE_FORMAT, description, tensors)


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
    description, tensors = read_safe(path, STATE_FORMAT)
    learner_info = field(description, "learner", dict, path)
    config = field(description, "config", dict, path)
    name = field(learner_info, "name", str, path)
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
    options = field(learner_info, "options", dict, path)
    weights = {k[len("learner.") :]: v for k, v in tensors.items() if k.startswith("learner.")}
    # Random initialisation, overwritten below; built in float32 as training builds it.
    with torch.random.fork_rng(devices=[]), float32_default():
        learner = _build_learner(name, _network_from_config(config, path, weights), options, path)
    load_weights(learner, weights, path)
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

    history = field(description, "history", list, path, default=[])
    if str(config.get("device", "cpu")).startswith("cuda") and not torch.cuda.is_available():
        config["device"] = "cpu"
    return MetaState(
        learner=learner,
        config=config,
        history=history_from_json(history, path),
        residuals=residuals,
        location_weight=location_weight,
    )


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
        options[key] = param_to_json(key, value, f"{type(learner).__name__} attribute")
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
    "inner_steps": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "n_lags": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "first_order": (lambda v: isinstance(v, bool), "a bool"),
    "vectorize": (lambda v: isinstance(v, bool), "a bool"),
    "inner_lr": (lambda v: is_number(v), "a number"),
    "momentum": (lambda v: is_number(v), "a number"),
}


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
        current = getattr(learner, key, _MISSING)
        if current is _MISSING or callable(current) or isinstance(current, torch.nn.Module):
            raise ValueError(f"{where}: unknown {name!r} learner option {key!r}.")
        if isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        numbers = isinstance(current, tuple) and all(is_number(c) for c in current)
        if numbers and not all(is_number(v) for v in value):  # () keeps the prior head
            raise ValueError(f"{where}: learner option {key} must be numbers, got {value!r}.")
        if not (isinstance(value, type(current)) or is_number(value) and is_number(current)):
            raise ValueError(
                f"{where}: learner option {key} must be a {type(current).__name__}, got {value!r}."
            )
        setattr(learner, key, value)
    return learner


def _network_from_config(
    config: dict[str, Any], path: Any, weights: dict[str, torch.Tensor]
) -> LSTMNetwork:
    """The base network ``pretrain`` builds for ``config``, to be given ``weights``."""
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
    check_sizes(path, weights, {**sizes, "input_size": input_size})
    return LSTMNetwork(
        input_size, sizes["hidden_size"], sizes["num_layers"], n_outputs(sizes["horizon"])
    )
