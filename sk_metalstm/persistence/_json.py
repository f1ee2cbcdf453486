"""Settings and training histories as plain JSON values, and back."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import torch


class NotJSON(TypeError):
    pass


def to_json(value: Any, strict: bool = True) -> Any:
    """``value`` as plain JSON data (numpy scalars and 0-d tensors become numbers).

    ``strict`` refuses tuples (they would come back as lists, unequal to the
    original); otherwise they become lists.
    """
    if isinstance(value, np.generic | torch.Tensor) and value.ndim == 0:
        value = value.item()
    if isinstance(value, torch.device):
        # A device setting means the same as its name ("cuda:1"); it loads as the name.
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list) or (not strict and isinstance(value, tuple)):
        return [to_json(v, strict) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: to_json(v, strict) for k, v in value.items()}
    raise NotJSON(type(value).__name__)


def param_to_json(
    key: str, value: Any, what: str, fix: str = "Set it to a plain value (e.g. with set_params)"
) -> Any:
    """``value`` as JSON, or a ``ValueError`` saying what cannot be stored and ``fix``."""
    try:
        return to_json(value)
    except NotJSON as error:
        raise ValueError(
            f"{what} {key}={value!r} cannot be stored safely (a {error} is not a JSON "
            f"value). {fix} before saving, or use sk_metalstm.persistence.save (pickle; "
            "for trusted files only)."
        ) from None


def config_to_json(config: dict[str, Any]) -> dict[str, Any]:
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
        # A state's settings are those it was pretrained with: only pretraining changes them.
        fix = (
            "Name the covariates with strings (X.columns = X.columns.map(str)) and pretrain again"
            if key == "exog_columns"
            else "Pretrain with a plain value"
        )
        out[str(key)] = param_to_json(f"config[{key!r}]", value, "The state's setting", fix)
    return out


def history_to_json(history: Any) -> list[Any]:
    """A skorch ``History`` as a list of JSON-able epoch dicts; other values are left out."""
    return [_lenient(epoch) for epoch in history if isinstance(epoch, dict)]


_DROP = object()


def _lenient(value: Any) -> Any:
    try:
        return to_json(value, strict=False)
    except NotJSON:
        pass
    if isinstance(value, dict):
        items = ((str(k), _lenient(v)) for k, v in value.items())
        return {k: v for k, v in items if v is not _DROP}
    if isinstance(value, list | tuple):
        return [v for v in map(_lenient, value) if v is not _DROP]
    return _DROP


def history_from_json(histories: list[Any], path: Any) -> list[Any]:
    from skorch.history import History

    out = []
    for epochs in histories:
        if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
            raise ValueError(f"{os.fspath(path)!r}: a history must be a list of epoch dicts.")
        out.append(History(epochs))
    return out
