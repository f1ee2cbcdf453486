"""Generic array checks with messages that name the problem.

scikit-learn's ``check_array`` covers 2-D tabular input; these helpers cover what
it does not say clearly for sequence data (allowed numbers of dimensions, 3-D
panels) and are shared by the estimators of this package. Every function leaves
its input untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "check_ndim",
    "check_numeric",
    "check_not_empty",
    "check_finite",
    "check_float32_range",
    "as_float_array",
]

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_ndim(
    array: np.ndarray, allowed: Sequence[int], name: str = "X", hint: str = ""
) -> None:
    """Raise ``ValueError`` unless ``array.ndim`` is one of ``allowed``.

    Parameters
    ----------
    array : ndarray
        Array to check.
    allowed : sequence of int
        Accepted numbers of dimensions.
    name : str, default="X"
        Name of the array in the error message.
    hint : str, default=""
        Appended to the message, e.g. the expected layout of the dimensions.
    """
    ndim = np.ndim(array)
    if ndim not in allowed:
        expected = " or ".join(f"{d}-D" for d in allowed)
        message = (
            f"{name} must be {expected}; got a {ndim}-D array of shape "
            f"{np.shape(array)}."
        )
        raise ValueError(f"{message} {hint}".strip())


def check_numeric(array: np.ndarray, name: str = "X") -> None:
    """Raise ``ValueError`` if ``array`` does not hold real numbers."""
    array = np.asarray(array)
    if array.dtype.kind in "biuf":
        return
    if array.dtype.kind == "c":
        raise ValueError(f"{name} holds complex numbers; real numbers are required.")
    if array.dtype.kind == "O":
        try:
            # Object arrays of plain numbers (e.g. from mixed lists) are fine.
            array.astype(np.float64)
            return
        except (TypeError, ValueError):
            pass
    raise ValueError(
        f"{name} must hold numbers; got dtype {array.dtype} "
        f"(first element {array.flat[0]!r})."
        if array.size
        else f"{name} must hold numbers; got dtype {array.dtype}."
    )


def check_not_empty(array: np.ndarray, name: str = "X") -> None:
    """Raise ``ValueError`` if ``array`` has no elements."""
    if np.size(array) == 0:
        raise ValueError(f"{name} is empty (shape {np.shape(array)}).")


def check_finite(array: np.ndarray, name: str = "X") -> None:
    """Raise ``ValueError`` naming how many NaN / infinite values ``array`` has."""
    array = np.asarray(array, dtype=np.float64)
    n_nan = int(np.isnan(array).sum())
    n_inf = int(np.isinf(array).sum())
    if n_nan or n_inf:
        problems = []
        if n_nan:
            problems.append(f"{n_nan} NaN value(s)")
        if n_inf:
            problems.append(f"{n_inf} infinite value(s)")
        raise ValueError(
            f"{name} contains {' and '.join(problems)}; impute or drop them first."
        )


def check_float32_range(array: np.ndarray, name: str = "X", hint: str = "") -> None:
    """Raise ``ValueError`` if ``array`` holds values that float32 cannot represent.

    Networks compute in float32, where such values become infinite; saying so
    beats a diverged training run or infinite predictions.
    """
    array = np.asarray(array)
    if array.size == 0:
        return
    peak = float(np.max(np.abs(array)))
    if peak > _FLOAT32_MAX:
        raise ValueError(
            f"{name} has values up to {peak:.3g}, beyond float32's range "
            f"({_FLOAT32_MAX:.3g}) in which the network computes. {hint}".strip()
        )


def as_float_array(
    array: object,
    name: str = "X",
    *,
    allowed_ndim: Sequence[int] | None = None,
    dtype: type = np.float64,
) -> np.ndarray:
    """Return a checked float copy of ``array`` (numpy, pandas or nested lists).

    Runs, in order, the numeric, dimension, emptiness and finiteness checks, so
    the first problem found is the one reported. The result never shares memory
    with the input, so callers may modify it freely.

    Parameters
    ----------
    array : array-like
        Input data.
    name : str, default="X"
        Name of the array in error messages.
    allowed_ndim : sequence of int or None, default=None
        Accepted numbers of dimensions; ``None`` accepts any.
    dtype : numpy float type, default=np.float64
        dtype of the returned array.

    Returns
    -------
    ndarray
        A new array of ``dtype``.
    """
    raw = np.asarray(array)
    check_numeric(raw, name)
    if allowed_ndim is not None:
        check_ndim(raw, allowed_ndim, name)
    check_not_empty(raw, name)
    out = np.array(raw, dtype=dtype, copy=True)
    check_finite(out, name)
    return out
