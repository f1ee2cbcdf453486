"""Synthetic financial panels with known data-generating parameters.

The generators are pure numpy/pandas and deterministic given ``random_state``.
They return sktime ``pd-multiindex`` panels (or a ``pd.Series``) on a
business-day index, and optionally the true parameters so that oracle forecasts
can be computed in tests and teaching material.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._validation import check_bool, check_int
from ._utils import check_not_a_number, wide_to_panel

__all__ = [
    "make_ar_returns_panel",
    "make_garch_returns",
    "make_regime_switching_panel",
]

_INITIAL_PRICE = 100.0

SeriesOrPanel = pd.Series | pd.DataFrame


def _checked_int(value: object, name: str, minimum: int) -> int:
    check_int(name, value, minimum)
    return int(value)


def _generator(random_state: object) -> np.random.Generator:
    """The numpy Generator for ``random_state``, with an error that names the parameter."""
    try:
        return np.random.default_rng(random_state)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "random_state must be None, an integer >= 0, a numpy Generator or "
            f"SeedSequence; got {random_state!r}."
        ) from exc


def _finite(value: object, name: str) -> float:
    """``value`` as a finite float (NaN compares False and slips past range checks).

    Strings are refused although ``float("0.1")`` would read them: a quoted
    number is a mistake upstream, as it is for scikit-learn's parameters.
    """
    if isinstance(value, str | bytes | bool | np.bool_):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}.") from exc
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return number


def _numbers(value: object, name: str) -> np.ndarray:
    """``value`` as a float array; quoted numbers are refused, as ``_finite`` refuses them."""
    try:
        array = np.asarray(value)
    except ValueError:  # ragged
        array = np.asarray(None)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold numbers, got {value!r}.")
    return array.astype(float)


def _check_range(
    value: Sequence[float], name: str, low: float, high: float, open_low: bool
) -> tuple[float, float]:
    try:
        if isinstance(value, str | bytes) or any(isinstance(v, str | bytes) for v in value):
            raise TypeError("text")
        a, b = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}.") from exc
    if not (np.isfinite(a) and np.isfinite(b)):
        raise ValueError(f"{name} must hold finite numbers, got {value!r}.")
    below = a <= low if open_low else a < low
    if a > b or below or b >= high:
        bracket = "(" if open_low else "["
        raise ValueError(
            f"{name} must satisfy low <= high within {bracket}{low}, {high}), got {value!r}."
        )
    return a, b


def _time_index(n_timepoints: int, start: str | pd.Timestamp | None) -> pd.Index:
    """Business-day index from ``start``, or a RangeIndex when start is None."""
    if start is None:
        return pd.RangeIndex(n_timepoints, name="time")
    check_not_a_number(start, "start")
    try:
        return pd.date_range(start, periods=n_timepoints, freq="B", name="time")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"Cannot parse start={start!r} as a date.") from exc


def _instance_names(n_series: int) -> pd.Index:
    # Zero padding keeps lexicographic and numeric order identical.
    width = len(str(n_series - 1))
    return pd.Index([f"series_{i:0{width}d}" for i in range(n_series)])


def _prices(log_returns: np.ndarray, volatility: str) -> np.ndarray:
    """Map log-returns (time x series) to prices 100 * exp(cumsum).

    Raises ``ValueError`` naming ``volatility`` (the parameter that set the
    returns' size) when prices leave float64's range: finite but absurd
    volatilities must not become inf or 0 prices behind a numpy warning.
    """
    with np.errstate(over="ignore", under="ignore"):
        prices = _INITIAL_PRICE * np.exp(np.cumsum(log_returns, axis=0))
    if not np.all(np.isfinite(prices) & (prices > 0)):
        raise ValueError(
            f"{volatility} makes the cumulative log-returns so large that prices leave "
            "float64's range (inf or 0); daily log-return volatilities are about 0.005-0.05."
        )
    return prices


def make_ar_returns_panel(
    n_series: int = 20,
    n_timepoints: int = 500,
    phi_range: tuple[float, float] = (-0.6, 0.6),
    sigma_range: tuple[float, float] = (0.005, 0.03),
    random_state: int | np.random.Generator | None = None,
    return_params: bool = False,
    start: str | pd.Timestamp | None = "2000-01-03",
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Make a price panel whose log-returns are AR(1) with per-series parameters.

    Series ``i`` has log-returns ``r_t = phi_i * r_{t-1} + sigma_i * e_t`` with
    ``e_t`` i.i.d. standard normal, ``phi_i`` uniform on ``phi_range`` and
    ``sigma_i`` log-uniform on ``sigma_range``. The first return is drawn from
    the stationary distribution ``N(0, sigma_i**2 / (1 - phi_i**2))`` and prices
    are ``100 * exp(cumsum(r))``.

    This is the panel where meta-learning matters: a short window cannot pin
    ``phi_i`` down, a long history (or many related series) can. With
    ``return_params=True`` the optimal one-step forecast of the next log-return
    is ``phi_i * r_T`` (oracle).

    Parameters
    ----------
    n_series : int, default=20
        Number of series (instances), >= 1.
    n_timepoints : int, default=500
        Number of prices per series, >= 2.
    phi_range : tuple of float, default=(-0.6, 0.6)
        Range of AR(1) coefficients, within (-1, 1) for stationarity.
    sigma_range : tuple of float, default=(0.005, 0.03)
        Range of innovation standard deviations of the daily log-returns, > 0.
    random_state : int, numpy Generator or None, default=None
        Seed or generator; a fixed int gives identical output on every call.
    return_params : bool, default=False
        Also return the true parameters.
    start : str, Timestamp or None, default="2000-01-03"
        First date of a business-day (``freq="B"``) index; None gives an
        integer ``RangeIndex``.

    Returns
    -------
    prices : pd.DataFrame
        sktime ``pd-multiindex`` panel indexed by ``("series", "time")`` with
        one column ``"price"``; instances ``series_0 ...`` (zero-padded to
        equal width: ``series_00 ... series_19`` for 20 series).
    params : pd.DataFrame
        Only if ``return_params``: indexed by series, columns ``"phi"`` and
        ``"sigma"``.

    Raises
    ------
    InvalidParameterError
        If a count is not an integer >= 1 (a ``ValueError`` subclass).
    ValueError
        If a range, a number or ``start`` is invalid (e.g. ``phi_range``
        outside (-1, 1)), naming the parameter.

    Examples
    --------
    >>> from sk_metalstm.datasets import make_ar_returns_panel
    >>> y, params = make_ar_returns_panel(3, 250, random_state=0, return_params=True)
    >>> y.shape, list(params.columns)
    ((750, 1), ['phi', 'sigma'])
    """
    n_series = _checked_int(n_series, "n_series", 1)
    n_timepoints = _checked_int(n_timepoints, "n_timepoints", 2)
    check_bool("return_params", return_params)
    phi_lo, phi_hi = _check_range(phi_range, "phi_range", -1.0, 1.0, open_low=True)
    sig_lo, sig_hi = _check_range(sigma_range, "sigma_range", 0.0, np.inf, True)
    rng = _generator(random_state)

    phi = rng.uniform(phi_lo, phi_hi, size=n_series)
    # Log-uniform: volatilities span orders of magnitude more naturally.
    sigma = np.exp(rng.uniform(np.log(sig_lo), np.log(sig_hi), size=n_series))
    eps = rng.standard_normal((n_timepoints, n_series))

    r = np.empty((n_timepoints, n_series))
    r[0] = sigma / np.sqrt(1.0 - phi**2) * eps[0]
    for t in range(1, n_timepoints):
        r[t] = phi * r[t - 1] + sigma * eps[t]

    names = _instance_names(n_series)
    wide = pd.DataFrame(
        _prices(r, f"sigma_range={sigma_range!r}"), index=_time_index(n_timepoints, start)
    )
    wide.columns = names
    panel = wide_to_panel(wide, "series", "price")
    if not return_params:
        return panel
    params = pd.DataFrame({"phi": phi, "sigma": sigma}, index=names.rename("series"))
    return panel, params


def _default_regime_params(n_regimes: int) -> tuple[np.ndarray, np.ndarray]:
    # Calm regimes trend (positive phi, low vol); turbulent ones mean-revert
    # (negative phi, high vol), a stylised fact of equity returns.
    phis = np.linspace(0.4, -0.4, n_regimes) if n_regimes > 1 else np.array([0.0])
    sigmas = np.geomspace(0.007, 0.03, n_regimes)
    return phis, sigmas


def _stationary_distribution(transition: np.ndarray) -> np.ndarray:
    """The chain's stationary distribution; for a chain with several, the one reached from uniform.

    A chain that can never leave some regimes (``persistence=1``, or any
    reducible matrix) has many stationary distributions, and an eigenvector
    picked among them put every series in regime 0. Then the long-run
    distribution of the lazy chain ``(P + I) / 2`` started uniformly is used.
    """
    vals, vecs = np.linalg.eig(transition.T)
    if np.sum(np.abs(vals - 1.0) < 1e-9) == 1:
        v = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
        v = np.clip(v / v.sum(), 0.0, None)  # transient regimes come out as -1e-17
        return v / v.sum()
    lazy = (transition + np.eye(len(transition))) / 2
    for _ in range(64):  # lazy ** (2 ** 64): converged however slowly the chain mixes
        lazy = lazy @ lazy
        # Renormalised: each squaring doubled the rows' rounding error, and after
        # 64 the classes' masses were off by factors of e^2000 (or NaN).
        lazy /= lazy.sum(axis=1, keepdims=True)
    v = np.full(len(transition), 1.0 / len(transition)) @ lazy
    return v / v.sum()


def make_regime_switching_panel(
    n_series: int = 10,
    n_timepoints: int = 500,
    n_regimes: int = 2,
    phis: Sequence[float] | None = None,
    sigmas: Sequence[float] | None = None,
    transition_matrix: np.ndarray | None = None,
    persistence: float = 0.98,
    common_regimes: bool = False,
    random_state: int | np.random.Generator | None = None,
    return_params: bool = False,
    start: str | pd.Timestamp | None = "2000-01-03",
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Make a price panel whose AR(1) log-returns switch regimes (Markov chain).

    A hidden regime ``s_t`` follows a Markov chain with the given transition
    matrix, started from its stationary distribution (for a chain with
    several, such as ``persistence=1``, the one reached from a uniform start:
    with ``persistence=1`` each series keeps a regime drawn uniformly). Log-returns follow
    ``r_t = phis[s_t] * r_{t-1} + sigmas[s_t] * e_t`` with ``e_t`` i.i.d.
    standard normal, and prices are ``100 * exp(cumsum(r))``.

    Parameters
    ----------
    n_series : int, default=10
        Number of series, >= 1.
    n_timepoints : int, default=500
        Number of prices per series, >= 2.
    n_regimes : int, default=2
        Number of regimes, >= 1.
    phis : sequence of float or None, default=None
        AR(1) coefficient per regime, each in (-1, 1). None spreads them
        evenly from 0.4 (first, calm regime) to -0.4 (last, turbulent regime);
        with one regime, 0.0.
    sigmas : sequence of float or None, default=None
        Innovation standard deviation per regime, > 0. None spaces them
        geometrically from 0.007 to 0.03; with one regime, 0.007.
    transition_matrix : array of shape (n_regimes, n_regimes) or None, default=None
        Row-stochastic matrix, ``[i, j]`` = P(next regime j | regime i). None
        stays with probability ``persistence`` and moves to each other regime
        with equal probability.
    persistence : float, default=0.98
        Probability of staying in a regime when ``transition_matrix`` is None;
        0.98 gives regimes lasting 50 business days on average.
    common_regimes : bool, default=False
        If True all series share one regime path (a market-wide state);
        otherwise each series has its own chain.
    random_state : int, numpy Generator or None, default=None
        Seed or generator; a fixed int gives identical output on every call.
    return_params : bool, default=False
        Also return the true per-timepoint parameters.
    start : str, Timestamp or None, default="2000-01-03"
        As in ``make_ar_returns_panel``.

    Returns
    -------
    prices : pd.DataFrame
        sktime ``pd-multiindex`` panel indexed by ``("series", "time")`` with
        one column ``"price"``.
    params : pd.DataFrame
        Only if ``return_params``: same index as ``prices``, columns
        ``"regime"`` (int), ``"phi"`` and ``"sigma"`` in force at each time.

    Raises
    ------
    InvalidParameterError
        If a count is not an integer >= 1 (a ``ValueError`` subclass).
    ValueError
        If ``phis``, ``sigmas``, ``persistence`` or ``transition_matrix`` do
        not describe a valid chain (e.g. ``persistence`` outside [0, 1]),
        naming the parameter.

    Examples
    --------
    >>> from sk_metalstm.datasets import make_regime_switching_panel
    >>> y, params = make_regime_switching_panel(
    ...     n_series=2, n_timepoints=300, random_state=1, return_params=True
    ... )
    >>> sorted(params["regime"].unique().tolist())
    [0, 1]
    """
    n_series = _checked_int(n_series, "n_series", 1)
    n_timepoints = _checked_int(n_timepoints, "n_timepoints", 2)
    n_regimes = _checked_int(n_regimes, "n_regimes", 1)
    check_bool("return_params", return_params)
    check_bool("common_regimes", common_regimes)
    default_phis, default_sigmas = _default_regime_params(n_regimes)
    phis_arr = default_phis if phis is None else _numbers(phis, "phis")
    sigmas_arr = default_sigmas if sigmas is None else _numbers(sigmas, "sigmas")
    if phis_arr.shape != (n_regimes,) or not np.all(np.abs(phis_arr) < 1):
        raise ValueError(f"phis must hold {n_regimes} values in (-1, 1), got {phis!r}.")
    if sigmas_arr.shape != (n_regimes,) or not np.all((sigmas_arr > 0) & np.isfinite(sigmas_arr)):
        raise ValueError(f"sigmas must hold {n_regimes} finite positive values, got {sigmas!r}.")
    # A float64 from here on: float32 or Decimal values built a matrix the
    # stationary distribution could not be computed from.
    stay = _finite(persistence, "persistence")
    if not 0.0 <= stay <= 1.0:
        raise ValueError(f"persistence must be in [0, 1], got {persistence!r}.")
    if transition_matrix is None:
        if n_regimes == 1:
            trans = np.ones((1, 1))
        else:
            off = (1.0 - stay) / (n_regimes - 1)
            trans = np.full((n_regimes, n_regimes), off)
            np.fill_diagonal(trans, stay)
    else:
        trans = _numbers(transition_matrix, "transition_matrix")
        if trans.shape != (n_regimes, n_regimes):
            found = f"shape {trans.shape}"
        elif np.any(trans < 0):
            found = f"a negative entry ({trans.min():g})"
        elif not np.allclose(trans.sum(axis=1), 1.0):
            found = f"row sums {np.round(trans.sum(axis=1), 6).tolist()}"
        else:
            found = None
        if found is not None:
            raise ValueError(
                f"transition_matrix must be a ({n_regimes}, {n_regimes}) "
                f"non-negative matrix whose rows sum to 1; got {found}."
            )
        # Rows within np.allclose of 1 (float32 input, rounding) sum to 1 exactly.
        trans = trans.astype(np.float64) / trans.sum(axis=1, keepdims=True)
    rng = _generator(random_state)

    n_chains = 1 if common_regimes else n_series
    stationary = _stationary_distribution(trans)
    cum = np.cumsum(trans, axis=1)
    regimes = np.empty((n_timepoints, n_chains), dtype=np.int64)
    regimes[0] = rng.choice(n_regimes, size=n_chains, p=stationary)
    u = rng.random((n_timepoints, n_chains))
    for t in range(1, n_timepoints):
        # Inverse-CDF draw of the next state for all chains at once.
        nxt = (u[t][:, None] > cum[regimes[t - 1]]).sum(axis=1)
        regimes[t] = np.minimum(nxt, n_regimes - 1)
    if common_regimes:
        regimes = np.repeat(regimes, n_series, axis=1)

    phi_t, sigma_t = phis_arr[regimes], sigmas_arr[regimes]
    eps = rng.standard_normal((n_timepoints, n_series))
    r = np.empty((n_timepoints, n_series))
    r[0] = sigma_t[0] / np.sqrt(1.0 - phi_t[0] ** 2) * eps[0]
    for t in range(1, n_timepoints):
        r[t] = phi_t[t] * r[t - 1] + sigma_t[t] * eps[t]

    index = _time_index(n_timepoints, start)
    names = _instance_names(n_series)

    def _panel(values: np.ndarray, column: str) -> pd.DataFrame:
        wide = pd.DataFrame(values, index=index)
        wide.columns = names
        return wide_to_panel(wide, "series", column)

    prices = _panel(_prices(r, f"sigmas={sigmas_arr.tolist()!r}"), "price")
    if not return_params:
        return prices
    params = pd.DataFrame(
        {
            "regime": regimes.ravel(order="F"),
            "phi": phi_t.ravel(order="F"),
            "sigma": sigma_t.ravel(order="F"),
        },
        index=prices.index,
    )
    return prices, params


def make_garch_returns(
    n_timepoints: int = 1000,
    n_series: int | None = None,
    omega: float = 2e-6,
    alpha: float = 0.08,
    beta: float = 0.9,
    mu: float = 0.0,
    random_state: int | np.random.Generator | None = None,
    return_volatility: bool = False,
    start: str | pd.Timestamp | None = "2000-01-03",
) -> SeriesOrPanel | tuple[SeriesOrPanel, SeriesOrPanel]:
    """Make GARCH(1, 1) log-returns with normal innovations.

    ``r_t = mu + sqrt(h_t) * e_t`` with ``h_t = omega + alpha * (r_{t-1} -
    mu)**2 + beta * h_{t-1}``, started at the unconditional variance
    ``omega / (1 - alpha - beta)``. The defaults give about 1 % daily volatility
    with the persistent volatility clustering of equity returns.

    Parameters
    ----------
    n_timepoints : int, default=1000
        Number of returns per series, >= 2.
    n_series : int or None, default=None
        None returns a single ``pd.Series``; an int returns a panel of that
        many independent series.
    omega : float, default=2e-6
        Constant of the variance equation, > 0.
    alpha : float, default=0.08
        Reaction to the last squared shock, >= 0.
    beta : float, default=0.9
        Persistence of the variance, >= 0; ``alpha + beta`` must be < 1.
    mu : float, default=0.0
        Mean daily log-return.
    random_state : int, numpy Generator or None, default=None
        Seed or generator; a fixed int gives identical output on every call.
    return_volatility : bool, default=False
        Also return the true conditional standard deviation ``sqrt(h_t)``.
    start : str, Timestamp or None, default="2000-01-03"
        First date of a business-day (``freq="B"``) index; None gives an
        integer ``RangeIndex``.

    Returns
    -------
    returns : pd.Series or pd.DataFrame
        Series named ``"return"``, or a ``pd-multiindex`` panel indexed by
        ``("series", "time")`` with one column ``"return"``.
    volatility : pd.Series or pd.DataFrame
        Only if ``return_volatility``: same shape, named ``"volatility"``.

    Raises
    ------
    InvalidParameterError
        If a count is not an integer >= 1 (a ``ValueError`` subclass).
    ValueError
        If the GARCH parameters are not stationary (``omega > 0``,
        ``alpha, beta >= 0``, ``alpha + beta < 1``) or a number is invalid.

    Examples
    --------
    >>> from sk_metalstm.datasets import make_garch_returns
    >>> r = make_garch_returns(500, random_state=0)
    >>> r.index.freqstr, len(r)
    ('B', 500)
    """
    n_timepoints = _checked_int(n_timepoints, "n_timepoints", 2)
    single = n_series is None
    n = 1 if single else _checked_int(n_series, "n_series", 1)
    check_bool("return_volatility", return_volatility)
    omega, alpha, beta, mu = (
        _finite(v, k) for k, v in {"omega": omega, "alpha": alpha, "beta": beta, "mu": mu}.items()
    )
    if omega <= 0 or alpha < 0 or beta < 0 or alpha + beta >= 1:
        raise ValueError(
            "Need omega > 0, alpha >= 0, beta >= 0 and alpha + beta < 1 for a "
            f"stationary GARCH(1, 1), got omega={omega}, alpha={alpha}, "
            f"beta={beta}."
        )
    rng = _generator(random_state)
    eps = rng.standard_normal((n_timepoints, n))
    h = np.empty((n_timepoints, n))
    shocks = np.empty((n_timepoints, n))
    h[0] = omega / (1.0 - alpha - beta)
    shocks[0] = np.sqrt(h[0]) * eps[0]
    with np.errstate(over="ignore", invalid="ignore"):  # reported below by name
        for t in range(1, n_timepoints):
            h[t] = omega + alpha * shocks[t - 1] ** 2 + beta * h[t - 1]
            shocks[t] = np.sqrt(h[t]) * eps[t]
    returns, vol = mu + shocks, np.sqrt(h)
    if not (np.all(np.isfinite(returns)) and np.all(np.isfinite(vol))):
        raise ValueError(
            f"omega={omega} makes the variance leave float64's range (squared returns "
            "overflow); choose a smaller omega (2e-6 is about 1 % daily volatility)."
        )

    index = _time_index(n_timepoints, start)
    if single:
        out = pd.Series(returns[:, 0], index=index, name="return")
        vol_out = pd.Series(vol[:, 0], index=index, name="volatility")
    else:
        names = _instance_names(n)
        out = wide_to_panel(pd.DataFrame(returns, index=index, columns=names), "series", "return")
        vol_out = wide_to_panel(
            pd.DataFrame(vol, index=index, columns=names), "series", "volatility"
        )
    return (out, vol_out) if return_volatility else out
