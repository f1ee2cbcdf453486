"""The names of the package's file formats, and the version check all of them share."""

from __future__ import annotations

import os
import warnings
from typing import Any

import sk_metalstm

#: ``save``/``load`` (a pickle: trusted files only).
PICKLE_FORMAT = "sk_metalstm/1"
# /2: distributional networks (location and scale outputs, a volatility input).
# /3: the ridge learner's scale memory and the calibrated location weight.
STATE_FORMAT = "sk_metalstm.meta_state/3"
REGRESSOR_FORMAT = "sk_metalstm.regressor/1"
#: What each safe format holds, and the function that reads it.
SAFE_FORMATS = {
    STATE_FORMAT: ("a pretrained MetaState", "load_pretrained"),
    REGRESSOR_FORMAT: ("a fitted LSTMBaseRegressor", "load_regressor"),
}
SAFE_KEYS = ("format", "version", "config", "tensors")


def shown(path: Any) -> str:
    """How messages name a file: its quoted path, or an open file's name."""
    if isinstance(path, str | os.PathLike):
        return repr(os.fspath(path))
    name = getattr(path, "name", None)  # an open file (a BytesIO has none)
    return repr(name) if isinstance(name, str) else "the open file"


def check_version(path: Any, version: str, stacklevel: int = 3) -> None:
    """Warn (pointing ``stacklevel`` frames up) if another version wrote ``path``."""
    if version != sk_metalstm.__version__:
        warnings.warn(
            f"{shown(path)} was written by sk_metalstm {version}; "
            f"this is {sk_metalstm.__version__}. Check its predictions.",
            UserWarning,
            stacklevel=stacklevel,
        )
