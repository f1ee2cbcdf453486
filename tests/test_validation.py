from fractions import Fraction

import numpy as np
import pytest

from sk_metalstm._validation import (
    check_bool,
    check_choice,
    check_float32_range,
    check_int,
    check_ndim,
    check_real,
)
from sk_metalstm.exceptions import InvalidParameterError


def test_check_ndim_names_the_layout():
    with pytest.raises(ValueError, match="X must be 2-D or 3-D; got a 1-D array of shape"):
        check_ndim(np.zeros(3), (2, 3), "X")
    check_ndim(np.zeros((2, 3)), (2, 3), "X")


@pytest.mark.parametrize(
    ("check", "match"),
    [
        (lambda: check_int("n", 0, 1), r"n must be an integer >= 1; got 0\."),
        (lambda: check_int("n", 2.5, 1), "n must be an integer >= 1; got 2.5"),
        (lambda: check_int("n", True, 0), "got True"),  # a bool is not a count
        (lambda: check_int("n", "3", 0, allow_none=True), "n must be None or an integer >= 0"),
        (lambda: check_real("p", 1.0, low=0.0, high=1.0, high_open=True), r"\[0.0, 1.0\)"),
        (lambda: check_real("p", float("nan"), low=0.0), "p must be a number"),
        (lambda: check_real("p", 0.0, low=0.0, low_open=True), r"\(0.0, inf\); got 0.0"),
        (lambda: check_real("p", "fast", allow_none=True), "p must be None or a number"),
        # Beyond float: numpy's isfinite raised a bare TypeError naming no parameter.
        (lambda: check_real("p", 10**400, high=1.0), r"p must be a number in \(-inf, 1.0\]"),
        (lambda: check_choice("kind", "sqrt", ("log", "none")), "Unknown kind 'sqrt'; choose"),
        (lambda: check_choice("kind", ["log"], ("log",)), "Unknown kind"),  # unhashable
        # An array compared element-wise: numpy's "truth value ... is ambiguous".
        (lambda: check_choice("kind", np.array(["log", "none"]), ("log", "none")), "Unknown kind"),
        (lambda: check_choice("kind", np.array(["log"]), ("log", "none")), "Unknown kind"),
        (lambda: check_bool("flag", "yes"), "flag must be True or False; got 'yes'"),
    ],
)
def test_parameter_checks_name_the_parameter_and_value(check, match):
    with pytest.raises(InvalidParameterError, match=match) as info:
        check()
    # scikit-learn's convention: callers may catch either ValueError or TypeError.
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_check_float32_range_says_to_scale():
    with pytest.raises(ValueError, match=r"y has values up to 1e\+200, beyond float32"):
        check_float32_range(np.array([1.0, -1e200]), "y")


def test_parameter_checks_accept_valid_values():
    check_int("n", np.int64(3), 1)
    check_int("n", None, 1, allow_none=True)
    check_real("p", 1, low=0.0)
    check_real("p", Fraction(1, 100), low=0.0)  # scikit-learn's Interval(Real) takes it
    check_real("p", None, allow_none=True)
    check_choice("kind", "log", ("log", "none"))
    check_bool("flag", np.bool_(False))
    check_float32_range(np.array([3e38, -1.0]), "X")
    check_float32_range(np.array([]), "X")


def test_invalid_parameter_error_is_both_value_and_type_error():
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidParameterError, TypeError)
