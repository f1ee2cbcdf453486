"""Risk scoring shared by ``risk.py`` and ``scale_prior.py``.

Targets at rolling origins, GARCH(1,1)-t quantiles (the reference), the
package's quantiles from a pretrained state (fit on a history, then
``predict_quantiles`` and ``update`` one origin at a time) and the pinball loss.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from _reporting import to_panel
from scipy import stats

from sk_metalstm import MetaLSTMForecaster

#: Quantile levels of the CRPS grid; ``ALPHAS`` (the pinball and VaR levels) are among them.
GRID = np.round(np.arange(1, 100) / 100, 2)
ALPHAS = [0.01, 0.05, 0.10, 0.90, 0.95, 0.99]
COLUMNS = [int(np.flatnonzero(GRID == a)[0]) for a in ALPHAS]
HORIZONS = [1, 5]


def targets(r: np.ndarray, history: int, n_origins: int, steps: int) -> np.ndarray:
    """(series, origins): the sum of the ``steps`` increments after each origin."""
    return np.stack(
        [r[:, history + j : history + j + steps].sum(axis=1) for j in range(n_origins)], axis=1
    )


def garch_t(
    r: np.ndarray, history: int, n_origins: int, refit: int
) -> tuple[dict[int, np.ndarray], int]:
    """GARCH(1,1)-t quantiles per horizon, refitted every ``refit`` origins; and failed fits.

    A k-day quantile is that of the fitted (unit-variance) t scaled by the root
    of the summed expected daily variances: an approximation, since a sum of
    GARCH-t increments is not t-distributed.
    """
    from arch import arch_model
    from arch.utility.exceptions import DataScaleWarning

    warnings.simplefilter("ignore", DataScaleWarning)  # FX: 100 * r is small; kept as specified
    out = {k: np.empty((r.shape[0], n_origins, len(GRID))) for k in HORIZONS}
    failed = 0
    for s in range(r.shape[0]):
        x = 100 * r[s]
        for j in range(n_origins):
            t = history + j  # index of the first target increment
            if j % refit == 0:
                res = arch_model(x[t - history : t], vol="GARCH", p=1, q=1, dist="t").fit(
                    disp="off", show_warning=False
                )
                failed += int(res.convergence_flag != 0)
                mu, omega, a, b, nu = (
                    res.params[k] for k in ("mu", "omega", "alpha[1]", "beta[1]", "nu")
                )
                sigma2 = res.conditional_volatility[-1] ** 2
                last = x[t - 1]
                # t shocks scaled to unit variance.
                z = stats.t.ppf(GRID, nu) * np.sqrt((nu - 2) / nu)
            # Filter one day: variance of increment t given increments up to t - 1.
            sigma2 = omega + a * (last - mu) ** 2 + b * sigma2
            for k in HORIZONS:
                # E[sigma2_{t+i}] decays to the long-run level at rate a + b.
                persistence = a + b
                if persistence < 1:
                    long_run = omega / (1 - persistence)
                    path = long_run + persistence ** np.arange(k) * (sigma2 - long_run)
                else:
                    path = sigma2 + omega * np.arange(k)
                out[k][s, j] = (k * mu + np.sqrt(path.sum()) * z) / 100
            last = x[t]
    return out, failed


def package_quantiles(
    state: Any, group: dict[str, Any], n_origins: int
) -> dict[int, np.ndarray]:
    """{steps: (series, origins, grid)} increment quantiles from a pretrained state.

    The forecaster models the levels with ``group["transform"]``; its level
    quantiles are scored as the group's increments (``group["kind"]``), so a
    rate modelled in log returns is scored on its changes like the baselines.
    """
    wide, history, kind = group["wide"], group["history"], group["kind"]
    model = MetaLSTMForecaster.from_pretrained(state, verbose=0, transform=group["transform"])
    model.fit(to_panel(wide.iloc[: history + 1]), fh=HORIZONS)
    out: dict[int, list[np.ndarray]] = {k: [] for k in HORIZONS}
    for j in range(n_origins):
        t = history + 1 + j  # rows 0..t-1 are known
        last = wide.iloc[t - 1].to_numpy()[:, None]
        q = model.predict_quantiles(fh=HORIZONS, alpha=list(GRID))
        steps = q.index.get_level_values(-1)
        for k, when in zip(HORIZONS, sorted(steps.unique()), strict=True):
            level = q[steps == when].droplevel(-1).reindex(wide.columns).to_numpy()
            out[k].append(np.log(level / last) if kind == "log_return" else level - last)
        model.update(to_panel(wide.iloc[[t]]))
    return {k: np.stack(v, axis=1) for k, v in out.items()}


def pinball(y: np.ndarray, q: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Mean pinball loss over ``levels``: y (series, origins), q (series, origins, levels)."""
    diff = y[..., None] - q
    return np.maximum(levels * diff, (levels - 1) * diff).mean(axis=-1)


def log_score(y: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Negative log density of y (series, origins) under the distribution of ``q``.

    ``q`` (series, origins, len(GRID)) is made a distribution the way
    ``predict_proba`` makes one (``QuantileGrid``: linear between the grid's
    quantiles, exponential tails beyond), for every method alike.
    """
    from sk_metalstm.quantile_grid import QuantileGrid

    flat = np.maximum.accumulate(q.reshape(-1, 1, q.shape[-1]), axis=-1)
    dist = QuantileGrid(GRID, flat)
    return -dist.log_pdf(y.reshape(-1, 1)).to_numpy().reshape(y.shape)
