"""The hidden-regime family of ``few_shot.py``, shared with ``regime_ceiling.py``.

Log-returns follow an AR(1) whose coefficient and volatility switch between a
trending calm regime and a mean-reverting turbulent one, on a hidden Markov
chain; each series draws its own two coefficients. The Hamilton filter gives
the best forecast from past returns when the parameters are known (the
oracle), and averaged over the prior's coefficients, the Bayes-optimal one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: The family's prior: per-series coefficients of the calm (trending) and
#: turbulent (mean-reverting) regime, uniform on these ranges; volatilities and
#: the probability of staying in a regime are shared by every series.
REGIME_PHI_RANGES = ((0.1, 0.6), (-0.6, -0.1))
REGIME_SIGMAS = (0.008, 0.02)
REGIME_STAY = 0.98


def regime_returns(n: int, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """``n`` series of ``t`` returns, their oracle forecasts, and the AR order (1)."""
    phis = np.stack([rng.uniform(lo, hi, n) for lo, hi in REGIME_PHI_RANGES], axis=1)
    sigmas = np.tile(REGIME_SIGMAS, (n, 1))
    state = rng.integers(0, 2, n)
    r = np.zeros((n, t))
    rows = np.arange(n)
    for k in range(1, t):
        state = np.where(rng.random(n) < REGIME_STAY, state, 1 - state)
        r[:, k] = phis[rows, state] * r[:, k - 1] + sigmas[rows, state] * rng.standard_normal(n)
    return r, hamilton_filter(r, phis, sigmas, REGIME_STAY).forecasts, 1


class Filtered(NamedTuple):
    """What ``hamilton_filter`` returns; every array ends in the time axis ``t``
    (``predicted`` then in the regime axis)."""

    #: The forecast of ``r[:, k]`` from the returns before it.
    forecasts: np.ndarray
    #: The log density of the returns before ``k`` under the parameters.
    log_likelihood: np.ndarray
    #: P(regime at ``k`` | returns before ``k``) (0.5 at ``k = 0``), only if asked for.
    predicted: np.ndarray | None


def hamilton_filter(
    r: np.ndarray, phis: np.ndarray, sigmas: np.ndarray, stay: float, keep_predicted: bool = False
) -> Filtered:
    """Optimal one-step forecasts of a two-regime AR(1) given its parameters.

    The regime is hidden: the best forecast from the past alone weighs each
    regime's forecast by its predicted probability (Hamilton 1989).

    Parameters
    ----------
    r : ndarray (n, t)
        Returns of ``n`` series.
    phis, sigmas : ndarray, broadcastable to (n, ..., 2)
        Each regime's coefficient and volatility; the middle axes (if any)
        hold alternative parameter sets, filtered side by side.
    stay : float
        Probability of staying in the current regime.
    keep_predicted : bool, default=False
        Also return every step's predicted regime probabilities.
    """
    n, t = r.shape
    column = (n, *(1,) * (phis.ndim - 1))  # a return per series, against every parameter set
    shape = np.broadcast_shapes(phis.shape, sigmas.shape, column)
    prob = np.full(shape, 0.5)  # P(regime at k-1 | returns up to k-1)
    forecasts = np.zeros((*prob.shape[:-1], t))
    log_likelihood = np.zeros_like(forecasts)
    predicted_all = np.full((*prob.shape[:-1], t, 2), 0.5) if keep_predicted else None
    for k in range(1, t):
        predicted = stay * prob + (1 - stay) * prob[..., ::-1]
        if predicted_all is not None:
            predicted_all[..., k, :] = predicted
        mean = phis * r[:, k - 1].reshape(column)
        forecasts[..., k] = np.sum(predicted * mean, axis=-1)
        density = predicted * np.exp(-0.5 * ((r[:, k].reshape(column) - mean) / sigmas) ** 2)
        density /= sigmas * np.sqrt(2 * np.pi)
        total = density.sum(axis=-1)
        if k + 1 < t:
            log_likelihood[..., k + 1] = log_likelihood[..., k] + np.log(total)
        prob = density / total[..., None]
    return Filtered(forecasts, log_likelihood, predicted_all)


def bayes_regime(returns: np.ndarray, grid: int = 26) -> np.ndarray:
    """The Bayes-optimal one-step forecasts of the regime family (an upper bound).

    Knows what no learner is told: the family's prior (coefficient ranges,
    volatilities, staying probability). Each forecast averages the Hamilton
    filter's forecasts over a ``grid`` x ``grid`` lattice of the two
    coefficients (cell midpoints of the uniform prior), weighted by their
    posterior given the returns before it. In expectation no forecaster of
    this family does better from the same returns; meta-learning at its best
    approximates it.
    """
    (c_lo, c_hi), (t_lo, t_hi) = REGIME_PHI_RANGES
    cells = (np.arange(grid) + 0.5) / grid
    calm, turbulent = np.meshgrid(c_lo + cells * (c_hi - c_lo), t_lo + cells * (t_hi - t_lo))
    phis = np.stack([calm.ravel(), turbulent.ravel()], axis=1)[None]  # (1, grid^2, 2)
    forecasts, log_likelihood, _ = hamilton_filter(
        returns, phis, np.asarray(REGIME_SIGMAS), REGIME_STAY
    )
    weight = np.exp(log_likelihood - log_likelihood.max(axis=1, keepdims=True))
    return np.sum(weight * forecasts, axis=1) / weight.sum(axis=1)
