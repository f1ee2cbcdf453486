"""Save and load fitted or pretrained estimators.

Both estimators pickle; these helpers add what plain ``pickle`` lacks: files
written on a GPU machine load on a CPU-only one (every tensor is mapped to the
CPU), and the file records the package version it was written with.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch

import sk_metalstm

__all__ = ["save", "load"]

_FORMAT = "sk_metalstm/1"


def save(estimator: Any, path: str | os.PathLike[str]) -> None:
    """Write ``estimator`` (any state: new, pretrained, fitted) to ``path``.

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
    """Read an estimator written by ``save``.

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

    Notes
    -----
    Loading unpickles arbitrary Python objects: only load files you trust.
    """
    # weights_only=False: an estimator is more than tensors. See the note above.
    payload = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{os.fspath(path)!r} was not written by sk_metalstm.persistence.save.")
    if payload["version"] != sk_metalstm.__version__:
        warnings.warn(
            f"{os.fspath(path)!r} was written by sk_metalstm {payload['version']}; "
            f"this is {sk_metalstm.__version__}. Check its predictions.",
            UserWarning,
            stacklevel=2,
        )
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
