"""Checks with messages that name the problem: parameters and arrays.

The one place where the package validates parameter values (both estimators
and the data generators call these in ``fit``/at call time, never in
``__init__``), plus the array checks scikit-learn's ``check_array`` does not
say clearly for sequence data. Every function leaves its input untouched.
Errors are ``InvalidParameterError``: a ``ValueError`` and a ``TypeError``, as
in scikit-learn.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sk_metalstm.exceptions import InvalidParameterError

__all__ = [
    "Bool",
    "InstanceOf",
    "Int",
    "ListOf",
    "OneOf",
    "Real",
    "Verbosity",
    "check_bool",
    "check_choice",
    "check_float32_range",
    "check_int",
    "check_ndim",
    "check_real",
    "check_verbose",
    "validate_params",
]

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_ndim(array: np.ndarray, allowed: Sequence[int], name: str = "X", hint: str = "") -> None:
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
        message = f"{name} must be {expected}; got a {ndim}-D array of shape {np.shape(array)}."
        raise ValueError(f"{message} {hint}".strip())


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


def _none_or(allow_none: bool) -> str:
    return "None or " if allow_none else ""


def check_int(name: str, value: Any, minimum: int, *, allow_none: bool = False) -> None:
    """Raise unless ``value`` is an integer (not a bool) >= ``minimum``."""
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool | np.bool_)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise InvalidParameterError(
            f"{name} must be {_none_or(allow_none)}an integer >= {minimum}; got {value!r}."
        )


def check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> None:
    """Raise unless ``value`` is a finite real number in the given interval."""
    if value is None and allow_none:
        return
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    ok = ok and _finite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        interval = "(" if low_open or low is None else "["
        interval += f"{'-inf' if low is None else low}, {'inf' if high is None else high}"
        interval += ")" if high_open or high is None else "]"
        raise InvalidParameterError(
            f"{name} must be {_none_or(allow_none)}a number in {interval}; got {value!r}."
        )


def _finite(value: numbers.Real) -> bool:
    # float() takes what numpy's isfinite cannot (a Fraction, an int beyond float).
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def check_choice(name: str, value: Any, choices: Collection[Any]) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    # An unhashable value (a list; an array, which would compare element-wise)
    # is no option's name.
    known = isinstance(value, Hashable) and value in choices
    if not known:
        raise InvalidParameterError(f"Unknown {name} {value!r}; choose one of {sorted(choices)}.")


def check_verbose(value: Any) -> None:
    """Raise unless ``verbose`` is a bool or an integer >= 0.

    ``True``/``False`` are accepted as 1/0, as scikit-learn and skorch do.
    """
    if isinstance(value, bool | np.bool_):
        return
    try:
        check_int("verbose", value, 0)
    except InvalidParameterError:
        raise InvalidParameterError(
            f"verbose must be True, False or an integer >= 0; got {value!r}."
        ) from None


def check_bool(name: str, value: Any) -> None:
    """Raise unless ``value`` is ``True`` or ``False``."""
    if not isinstance(value, bool | np.bool_):
        raise InvalidParameterError(f"{name} must be True or False; got {value!r}.")


# -- declarative constraints, as scikit-learn's ``_parameter_constraints`` ----------
@dataclass(frozen=True)
class Int:
    """An integer >= ``minimum`` (or ``None`` when ``none``)."""

    minimum: int
    none: bool = False

    def check(self, name: str, value: Any) -> None:  # noqa: D102
        check_int(name, value, self.minimum, allow_none=self.none)


@dataclass(frozen=True)
class Real:
    """A finite number in an interval (or ``None`` when ``none``)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    none: bool = False

    def check(self, name: str, value: Any) -> None:  # noqa: D102
        check_real(
            name,
            value,
            low=self.low,
            high=self.high,
            low_open=self.low_open,
            high_open=self.high_open,
            allow_none=self.none,
        )


@dataclass(frozen=True)
class OneOf:
    """One of ``choices``."""

    choices: Collection[Any]

    def check(self, name: str, value: Any) -> None:  # noqa: D102
        check_choice(name, value, self.choices)


@dataclass(frozen=True)
class Bool:
    """``True`` or ``False``."""

    def check(self, name: str, value: Any) -> None:  # noqa: D102
        check_bool(name, value)


@dataclass(frozen=True)
class Verbosity:
    """A bool or an integer >= 0 (``verbose``)."""

    def check(self, name: str, value: Any) -> None:  # noqa: D102
        check_verbose(value)


@dataclass(frozen=True)
class ListOf:
    """``None`` or a list (or tuple) of ``what``."""

    what: str

    def check(self, name: str, value: Any) -> None:  # noqa: D102
        if value is not None and not isinstance(value, list | tuple):
            raise InvalidParameterError(
                f"{name} must be None or a list of {self.what}, got {type(value).__name__}."
            )


@dataclass(frozen=True)
class InstanceOf:
    """``None`` or an instance of ``cls`` (``hint`` says where one comes from)."""

    cls: type
    hint: str

    def check(self, name: str, value: Any) -> None:  # noqa: D102
        if value is not None and not isinstance(value, self.cls):
            raise InvalidParameterError(
                f"{name} must be None or a {self.cls.__name__} ({self.hint}), "
                f"got {type(value).__name__}."
            )


def validate_params(params: Mapping[str, Any], constraints: Mapping[str, Any]) -> None:
    """Check every parameter that has a constraint; raise on the first violation."""
    for name, rule in constraints.items():
        rule.check(name, params[name])
