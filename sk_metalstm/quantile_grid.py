"""The forecast distribution of ``predict_proba``: quantiles on a grid, with a density.

A forecast distribution is known through its quantiles at a grid of levels.
``QuantileGrid`` makes it a continuous skpro distribution: the quantile
function is linear between grid levels (a histogram density, uniform between
neighbouring quantiles) and exponential beyond the outermost ones, so every
point has a positive, finite density and a log score (sktime's ``LogLoss``)
is defined. Mean, variance, ``cdf``, ``pdf`` and the energy terms of the CRPS
are exact for this shape, in closed form, with no sampling.

skpro is an optional dependency (``pip install "sk_metalstm[proba]"``): import
this module only where a distribution is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

try:
    from skpro.distributions.base import BaseDistribution
except ImportError as error:  # say which extra, not only which module
    raise ImportError(
        "predict_proba's distributions need skpro>=2.16: pip install \"sk_metalstm[proba]\" "
        "(or pip install skpro)."
    ) from error

__all__ = ["QuantileGrid"]

#: How far into the grid each exponential tail's scale is read: the quantile
#: at TAIL_SPAN times the outermost tail probability (0.5 % -> 5 %).
TAIL_SPAN = 10.0

# A zero tail scale (a degenerate forecast) is a point mass; the floor keeps
# the formulas finite there.
_TINY = np.finfo(float).tiny


class QuantileGrid(BaseDistribution):
    """Distribution given by its quantiles at a grid of levels.

    Between two grid levels the quantile function is linear (the density is
    constant); below the lowest level ``p_1`` and above the highest ``p_K``
    the tails are exponential, with scales read from the grid itself:
    ``(q(p_j) - q(p_1)) / log(p_j / p_1)`` where ``p_j`` is the level nearest
    ``TAIL_SPAN * p_1``, and likewise above. For a Gaussian read at 0.5 % and
    5 % this scale is 17 % wider than the Gaussian tail's own decay at 0.5 %
    (0.404 against 0.346 standard deviations), so beyond the grid the tails
    are heavier than Gaussian, on the cautious side for risk (the 0.01 %
    quantile -4.16 against -3.72). ``ppf`` equals the given quantiles at every
    grid level.

    Parameters
    ----------
    levels : array-like of float, shape (K,)
        Strictly increasing probabilities in (0, 1), K >= 2.
    quantiles : array-like of float, shape (n_rows, n_cols, K) or (K,)
        Quantiles of each entry at ``levels``, non-decreasing along the last
        axis. Equal neighbours put an atom at that value: ``pmf`` gives its
        mass, and ``pdf`` the density of the continuous part.
    index, columns : pd.Index or None, default=None
        Rows and columns of the distribution (for a 3-dimensional
        ``quantiles``); a 1-dimensional one makes a scalar distribution.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_metalstm.quantile_grid import QuantileGrid
    >>> d = QuantileGrid([0.1, 0.5, 0.9], np.array([[[-1.0, 0.0, 1.0]]]))
    >>> float(d.ppf(0.3).iloc[0, 0])
    -0.5
    """

    _tags = {
        "authors": ["sk_metalstm developers"],
        "maintainers": ["sk_metalstm developers"],
        "capabilities:approx": [],
        "capabilities:exact": [
            *("mean", "var", "energy", "pdf", "log_pdf", "cdf", "ppf", "pdfnorm"),
            *("pmf", "log_pmf"),
        ],
        # Equal neighbouring quantiles are atoms (a flat series' forecast is
        # one): "continuous" made skpro answer pmf = 0 there without asking.
        "distr:measuretype": "mixed",
        "distr:paramtype": "nonparametric",
        "broadcast_init": "off",
    }

    def __init__(self, levels: Any, quantiles: Any, index: Any = None, columns: Any = None):
        self.levels = levels
        self.quantiles = quantiles
        p = np.asarray(levels, dtype=float)
        q = np.asarray(quantiles, dtype=float)
        if p.ndim != 1 or len(p) < 2 or not (np.all(np.diff(p) > 0) and 0 < p[0] and p[-1] < 1):
            raise ValueError("levels must be at least two strictly increasing values in (0, 1).")
        if q.ndim not in (1, 3) or q.shape[-1] != len(p):
            raise ValueError(
                f"quantiles must have shape (n_rows, n_cols, {len(p)}) or ({len(p)},), "
                f"got {q.shape}."
            )
        if not np.all(np.isfinite(q)) or np.any(np.diff(q, axis=-1) < 0):
            raise ValueError("quantiles must be finite and non-decreasing along the levels.")
        if q.ndim == 3:
            index = pd.RangeIndex(q.shape[0]) if index is None else index
            columns = pd.RangeIndex(q.shape[1]) if columns is None else columns
        self._p, self._q = p, q
        self._lower_scale, self._upper_scale = _tail_scales(p, q)
        super().__init__(index=index, columns=columns)

    # ------------------------------------------------------------- subsetting
    def _loc(self, rowidx: Any = None, colidx: Any = None) -> QuantileGrid:
        # With MultiIndex rows, skpro's indexer passes ``loc[rows, columns]``
        # whole, as one row key (it exempts only its own Empirical), and
        # sktime's metrics on panels index exactly so: ``y_pred.loc[:, [name]]``.
        if colidx is None and _is_rows_and_columns(rowidx, self.index, self.columns):
            rowidx, colidx = rowidx
            if isinstance(rowidx, slice) and rowidx == slice(None):
                rowidx = None
        return super()._loc(rowidx, colidx)

    def _iloc(self, rowidx: Any = None, colidx: Any = None) -> QuantileGrid:
        if _is_position(rowidx) and _is_position(colidx):
            return self._iat(rowidx, colidx)
        rows = _positions(self.shape[0], rowidx)
        cols = _positions(self.shape[1], colidx)
        return QuantileGrid(
            self.levels,
            self._q[rows][:, cols],
            index=self.index.take(rows),
            columns=self.columns.take(cols),
        )

    def _iat(self, rowidx: Any = None, colidx: Any = None) -> QuantileGrid:
        return QuantileGrid(self.levels, self._q[rowidx, colidx])

    # ------------------------------------------------ quantile function, cdf
    def _ppf(self, p: np.ndarray) -> np.ndarray:
        levels, q = self._p, self._q
        k = np.clip(np.searchsorted(levels, p, side="right") - 1, 0, len(levels) - 2)
        t = (p - levels[k]) / (levels[k + 1] - levels[k])
        # (1 - t) a + t b returns a and b exactly at the grid levels.
        inner = (1 - t) * _at(q, k) + t * _at(q, k + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            below = q[..., 0] + self._lower_scale * np.log(p / levels[0])
            above = q[..., -1] - self._upper_scale * np.log((1 - p) / (1 - levels[-1]))
        return np.where(p < levels[0], below, np.where(p > levels[-1], above, inner))

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        levels, q = self._p, self._q
        k, a, b = self._segment(x)
        width = b - a
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(width > 0, (x - a) / width, 1.0)
        inner = levels[k] + np.clip(t, 0, 1) * (levels[k + 1] - levels[k])
        below = levels[0] * np.exp(np.minimum(x - q[..., 0], 0) / self._lower_scale)
        above = 1 - (1 - levels[-1]) * np.exp(-np.maximum(x - q[..., -1], 0) / self._upper_scale)
        return np.where(x < q[..., 0], below, np.where(x > q[..., -1], above, inner))

    def _log_pdf(self, x: np.ndarray) -> np.ndarray:
        levels, q = self._p, self._q
        k, a, b = self._segment(x)
        with np.errstate(divide="ignore"):
            # A zero-width segment is an atom: no continuous density there.
            inner = np.where(b > a, np.log(levels[k + 1] - levels[k]) - np.log(b - a), -np.inf)
        lo, hi = self._lower_scale, self._upper_scale
        below = np.log(levels[0] / lo) + np.minimum(x - q[..., 0], 0) / lo
        above = np.log((1 - levels[-1]) / hi) - np.maximum(x - q[..., -1], 0) / hi
        density = np.where(x < q[..., 0], below, np.where(x > q[..., -1], above, inner))
        # A missing value has no density (it fell into the first segment).
        return np.where(np.isnan(x), np.nan, density)

    def _pdf(self, x: np.ndarray) -> np.ndarray:
        return np.exp(self._log_pdf(x))

    def _pmf(self, x: np.ndarray) -> np.ndarray:
        """P(X = x): the levels spanned by quantiles equal to ``x`` (and a zero-scale tail)."""
        levels, q = self._p, self._q
        x = np.asarray(x, dtype=float)
        flat = (q[..., :-1] == x[..., None]) & (q[..., 1:] == x[..., None])
        mass = np.sum(np.where(flat, np.diff(levels), 0.0), axis=-1)
        mass = mass + np.where((q[..., 0] == x) & (self._lower_scale <= _TINY), levels[0], 0.0)
        mass = mass + np.where((q[..., -1] == x) & (self._upper_scale <= _TINY), 1 - levels[-1], 0)
        return np.where(np.isnan(x), np.nan, mass)

    def _log_pmf(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self._pmf(x))

    def _segment(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Index k and ends (q_k, q_k+1) of the grid segment that holds ``x``."""
        q = self._q
        k = np.clip(np.sum(q <= np.asarray(x)[..., None], axis=-1) - 1, 0, q.shape[-1] - 2)
        return k, _at(q, k), _at(q, k + 1)

    # --------------------------------------------------------------- moments
    def _mean(self) -> np.ndarray:
        shift = self._centre()
        return shift + self._raw_moment(1, shift)

    def _var(self) -> np.ndarray:
        mean = self._mean()
        return self._raw_moment(2, mean)

    def _centre(self) -> np.ndarray:
        # Moments are taken about the median: prices near 1e4 with a spread
        # near 1 would otherwise lose digits to cancellation.
        return _at(self._q, np.full(self._q.shape[:-1], self._q.shape[-1] // 2))

    def _raw_moment(self, order: int, about: np.ndarray) -> np.ndarray:
        """E[(X - about)^order] for order 1 or 2, exactly."""
        mass, a, b = self._pieces(about)
        lo, hi = self._lower_scale, self._upper_scale
        p1, pk = self._p[0], 1 - self._p[-1]
        lower, upper = a[..., 0], b[..., -1]
        if order == 1:
            inner = np.sum(mass * (a + b) / 2, axis=-1)
            return inner + p1 * (lower - lo) + pk * (upper + hi)
        inner = np.sum(mass * (a * a + a * b + b * b) / 3, axis=-1)
        tails = p1 * (lower**2 - 2 * lower * lo + 2 * lo**2)
        return inner + tails + pk * (upper**2 + 2 * upper * hi + 2 * hi**2)

    def _pieces(self, about: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Segment masses and segment ends, relative to ``about``."""
        q = self._q - np.asarray(about)[..., None]
        return np.diff(self._p), q[..., :-1], q[..., 1:]

    def pdfnorm(self, a: float = 2) -> pd.DataFrame | float:
        """The ``a``-norm of each entry's pdf, the integral of ``pdf ** a``, exactly.

        Over a segment the density is constant, ``dp / dq``; over a tail it is
        exponential. An atom (equal neighbouring quantiles) makes it infinite
        for ``a > 1``. (skpro's default estimates it by sampling, and on a
        panel grouped the samples by instance.)
        """
        mass, width = np.diff(self._p), np.diff(self._q, axis=-1)
        lo, hi = self._lower_scale, self._upper_scale
        # An atom (zero width, or a tail of zero scale) is an infinite norm.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            inner = np.where(width > 0, mass**a * width ** (1 - a), np.where(a > 1, np.inf, 0.0))
            tails = (self._p[0] / lo) ** a * lo / a + ((1 - self._p[-1]) / hi) ** a * hi / a
        norm = np.sum(inner, axis=-1) + tails
        if self.ndim == 0:
            return float(norm)
        return pd.DataFrame(norm, index=self.index, columns=self.columns)

    # ---------------------------------------------------------------- energy
    def _energy_self(self) -> np.ndarray:
        """E|X - X'| = 2 * integral over u of (2u - 1) Q(u)."""
        mass, a, b = self._pieces(self._centre())
        start = self._p[:-1]
        inner = np.sum(mass * ((2 * start - 1) * (a + b) / 2 + mass * (a + 2 * b) / 3), axis=-1)
        p1, pk = self._p[0], 1 - self._p[-1]
        lower = a[..., 0] * (p1**2 - p1) + self._lower_scale * p1 * (1 - p1 / 2)
        upper = b[..., -1] * (pk - pk**2) + self._upper_scale * pk * (1 - pk / 2)
        return _per_row(2 * (inner + lower + upper))

    def _energy_x(self, x: np.ndarray) -> np.ndarray:
        """E|X - x|: exact over each uniform segment and each exponential tail."""
        mass, a, b = self._pieces(x)  # the point is now at 0
        with np.errstate(divide="ignore", invalid="ignore"):
            straddle = (a * a + b * b) / (2 * (b - a))
        inside = np.where(a >= 0, (a + b) / 2, np.where(b <= 0, -(a + b) / 2, straddle))
        inner = np.sum(mass * inside, axis=-1)
        lo, hi = self._lower_scale, self._upper_scale
        lower = _exponential_distance(a[..., 0], lo, outward=-1)
        upper = _exponential_distance(b[..., -1], hi, outward=1)
        return _per_row(inner + self._p[0] * lower + (1 - self._p[-1]) * upper)

    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict[str, Any]]:
        """Two grids: a 2 x 2 frame, and a scalar with an atom (equal quantiles)."""
        levels = [0.05, 0.25, 0.5, 0.75, 0.95]
        base = np.array([-1.6, -0.7, 0.0, 0.6, 1.7])
        frame = np.stack([np.stack([base, 2 * base + 1]), np.stack([base - 3, 0.5 * base])])
        return [
            {
                "levels": levels,
                "quantiles": frame,
                "index": pd.RangeIndex(2),
                "columns": pd.Index(["a", "b"]),
            },
            {"levels": [0.1, 0.5, 0.6, 0.9], "quantiles": np.array([-1.0, 0.0, 0.0, 2.0])},
        ]


def _per_row(energy: np.ndarray) -> np.ndarray:
    """Per-row energy, as skpro wants it for a frame: the sum over its columns."""
    return energy if energy.ndim == 0 else energy.sum(axis=1)


def _is_position(selector: Any) -> bool:
    return isinstance(selector, int | np.integer)


def _is_rows_and_columns(key: Any, index: pd.Index, columns: pd.Index) -> bool:
    """Whether a MultiIndex row ``key`` is really a (rows, columns) pair."""
    if not (isinstance(index, pd.MultiIndex) and isinstance(key, tuple) and len(key) == 2):
        return False
    names = key[1] if isinstance(key[1], list | pd.Index | np.ndarray) else [key[1]]
    try:
        index.get_locs(key)
    except (KeyError, TypeError, ValueError):
        return all(name in columns for name in names)
    return False


def _positions(length: int, selector: Any) -> np.ndarray:
    """Integer positions picked by an iloc ``selector`` (None: all)."""
    positions = np.arange(length)
    return positions if selector is None else np.atleast_1d(positions[selector])


def _at(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``q[..., k]`` with one index per entry."""
    k = np.asarray(k)
    q = np.broadcast_to(q, np.broadcast_shapes(q.shape[:-1], k.shape) + q.shape[-1:])
    return np.take_along_axis(q, k[..., None], axis=-1)[..., 0]


def _tail_scales(levels: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exponential tail scales below the first and above the last grid level.

    Each is the log-probability slope of the quantile function between the
    outermost level and the one nearest ``TAIL_SPAN`` times its tail mass.
    """
    below = np.argmin(np.abs(levels - TAIL_SPAN * levels[0]))
    above = np.argmin(np.abs((1 - levels) - TAIL_SPAN * (1 - levels[-1])))
    below, above = max(int(below), 1), min(int(above), len(levels) - 2)
    lower = (q[..., below] - q[..., 0]) / np.log(levels[below] / levels[0])
    upper = (q[..., -1] - q[..., above]) / np.log((1 - levels[above]) / (1 - levels[-1]))
    return np.maximum(lower, _TINY), np.maximum(upper, _TINY)


def _exponential_distance(edge: np.ndarray, scale: np.ndarray, outward: int) -> np.ndarray:
    """E|Y| for Y = edge + outward * scale * E, E ~ Exp(1) (the point is at 0).

    Where the tail points away from 0 it is |edge| + scale; where 0 lies in
    the tail, at distance d from its edge, d - scale + 2 * scale * exp(-d / scale).
    """
    d = -outward * edge  # distance from the edge to 0, positive when 0 is in the tail
    away = np.abs(edge) + scale
    with np.errstate(over="ignore"):
        into = d - scale + 2 * scale * np.exp(-np.maximum(d, 0) / scale)
    return np.where(d > 0, into, away)
