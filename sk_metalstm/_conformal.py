"""Quantiles of standardised calibration residuals, valid for few residuals too.

``n`` held-out residuals say where the quantiles lie between the levels
``1 / (n + 1)`` and ``n / (n + 1)``: the i-th smallest residual is, on average,
the quantile at level ``i / (n + 1)`` (the plotting position that split-conformal
prediction uses). Beyond those levels the sample has nothing to say, and
``np.quantile``'s default would return its minimum or maximum: from the 16
residuals of a forecaster trained on one 250-day series, the 98 % interval was
the residuals' range and covered 87 % of Gaussian draws
(``benchmarks/small_calibration.py``). There the quantile function goes on as an exponential
tail whose scale is read from the ``k = ceil(sqrt(n))`` most extreme
residuals: ``(z_(k) - z_(1)) / log k``, the slope that an exponential tail has
between those plotting positions. With thousands of residuals (a pretrained
panel) the levels 0.005 ... 0.995 all lie inside, and only the plotting
position differs from ``np.quantile``'s default, by less than one residual.

One or two residuals (a tiny ``query_size`` on a short series) cannot place a
quantile at all: every level would sit on them, and intervals of any coverage
would coincide (zero width from one residual). There the quantiles are the
standard normal's, the distribution the network's location and scale were
trained to forecast (Gaussian likelihood).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

__all__ = ["conformal_quantiles"]


def conformal_quantiles(z: np.ndarray, alpha: list[float] | np.ndarray) -> np.ndarray:
    """Quantiles (len(alpha), ...) of the residuals ``z`` (n, ...) along axis 0.

    Inside ``[1 / (n + 1), n / (n + 1)]``: linear between the order statistics
    at their plotting positions ``i / (n + 1)`` (numpy's ``"weibull"``
    method). Beyond: exponential tails from the extreme residuals (module
    docstring). Monotone in ``alpha``, so quantiles never cross. Fewer than
    three residuals: standard normal quantiles.
    """
    z = np.sort(np.asarray(z, dtype=float), axis=0)
    levels = np.asarray(alpha, dtype=float)
    n = len(z)
    shape = (-1,) + (1,) * (z.ndim - 1)
    if n < 3:  # too few residuals to place any quantile: the network's own Gaussian
        gaussian = np.array([NormalDist().inv_cdf(float(a)) for a in levels]).reshape(shape)
        return np.broadcast_to(gaussian, (len(levels),) + z.shape[1:]).copy()
    inside = np.quantile(z, levels, axis=0, method="weibull")
    k = max(2, math.ceil(math.sqrt(n)))
    lower_scale = (z[k - 1] - z[0]) / math.log(k)
    upper_scale = (z[-1] - z[-k]) / math.log(k)
    first, last = 1 / (n + 1), n / (n + 1)
    level = levels.reshape(shape)
    with np.errstate(divide="ignore"):
        below = z[0] + lower_scale * np.log(level / first)
        above = z[-1] - upper_scale * np.log((1 - level) / (1 - last))
    return np.where(level < first, below, np.where(level > last, above, inside))
