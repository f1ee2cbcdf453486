"""``save``/``load``: a whole estimator, pickled. For files you trust only."""

from __future__ import annotations

import os
from typing import Any

import torch

import sk_metalstm
from sk_metalstm._torch_runtime import resolve_device
from sk_metalstm.persistence._formats import PICKLE_FORMAT, SAFE_FORMATS, check_version, shown
from sk_metalstm.persistence._safe_file import check_archive, check_destination, file_path


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

    Raises
    ------
    IsADirectoryError
        If ``path`` is a folder.
    FileNotFoundError
        If the folder of ``path`` does not exist.

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
    payload = {"format": PICKLE_FORMAT, "version": sk_metalstm.__version__, "estimator": estimator}
    check_destination(path)
    torch.save(payload, path)


def load(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
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
    map_location : str, torch.device, dict or callable, default="cpu"
        Where tensors go (``"auto"``: a GPU when one is visible; a dict or a
        function as ``torch.load`` takes them); the default makes GPU-trained
        models usable anywhere.

    Returns
    -------
    estimator
        The stored estimator, ready to ``predict``.

    Raises
    ------
    ValueError
        If the file was not written by ``save`` (or is truncated or corrupt), or
        ``map_location`` names a device this machine does not have.
    InvalidParameterError
        If ``map_location`` is not a torch device.

    Warns
    -----
    UserWarning
        If the file was written by another version of sk_metalstm.
    """
    if not hasattr(path, "read"):  # an open file goes to torch.load as it is
        path = file_path(path)  # a bytes path failed as "another sk_metalstm version"
    where = shown(path)
    check_archive(path)
    if not (isinstance(map_location, dict) or callable(map_location)):
        # torch's own error for a bad or missing device read as a corrupt file
        # here; a dict or a function goes to torch.load as it is.
        map_location = resolve_device(map_location)
    # weights_only=False: an estimator is more than tensors. See the warning above.
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (ModuleNotFoundError, AttributeError) as error:
        # The pickle names a class or module that this version does not have.
        raise ValueError(
            f"{where} holds objects of another sk_metalstm version that "
            f"this one cannot rebuild ({type(error).__name__}: {error}). Load it with "
            "the version that wrote it and share the model with save_pretrained or "
            "save_regressor, or fit it again."
        ) from error
    except Exception as error:  # truncated, empty or foreign files: many error types
        raise ValueError(
            f"{where} was not written by sk_metalstm.persistence.save, or is "
            f"truncated or corrupt: torch.load cannot read it ({type(error).__name__})."
        ) from error
    found = payload.get("format") if isinstance(payload, dict) else None
    if found in SAFE_FORMATS:
        what, reader = SAFE_FORMATS[found]
        raise ValueError(f"{where} holds {what} in the safe format; read it with {reader}.")
    if found != PICKLE_FORMAT:
        raise ValueError(f"{where} was not written by sk_metalstm.persistence.save.")
    missing = [key for key in ("version", "estimator") if key not in payload]
    if missing:
        raise ValueError(
            f"{where} is incomplete: it has no {' and no '.join(map(repr, missing))} entry, "
            "which sk_metalstm.persistence.save always writes."
        )
    check_version(path, payload["version"])
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
