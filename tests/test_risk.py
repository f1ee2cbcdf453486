"""Risk forecasts on a generated GARCH(1, 1) process, whose true conditional law is known.

One small forecaster is pretrained on a panel of GARCH returns; unseen series are
then forecast at rolling origins (``update`` one day at a time). The truth at
each origin is the variance of the sum of the next ``k`` log-returns given the
past: ``sum_j E[h_{t+j}]`` with ``E[h_{t+j}] = v + (alpha + beta)^(j-1) (h_{t+1} - v)``
(``v`` the long-run variance), which grows with ``k`` more slowly than ``k h_{t+1}``
after a turbulent day and faster after a calm one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sk_metalstm import MetaLSTMForecaster
from sk_metalstm.datasets import make_garch_returns

OMEGA, ALPHA, BETA = 1e-5, 0.12, 0.85
HORIZON, N_TRAIN, N_TEST, LENGTH, HISTORY, N_ORIGINS = 5, 24, 8, 1000, 400, 40


def _prices(returns: pd.DataFrame) -> pd.DataFrame:
    levels = 100 * np.exp(returns["return"].groupby(level=0).cumsum())
    return levels.to_frame("price")


@pytest.fixture(scope="module")
def garch_forecasts():
    returns, vol = make_garch_returns(
        LENGTH,
        N_TRAIN + N_TEST,
        omega=OMEGA,
        alpha=ALPHA,
        beta=BETA,
        random_state=0,
        return_volatility=True,
    )
    prices = _prices(returns)
    names = prices.index.get_level_values(0).unique()
    train, test = prices.loc[list(names[:N_TRAIN])], prices.loc[list(names[N_TRAIN:])]
    forecaster = MetaLSTMForecaster(
        horizon=HORIZON,
        hidden_size=16,
        base_max_epochs=6,
        max_epochs=3,
        tasks_per_epoch=512,
        random_state=0,
        verbose=0,
    )
    forecaster.pretrain(train)
    times = test.index.get_level_values(1).unique()
    forecaster.fit(test[test.index.get_level_values(1) <= times[HISTORY - 1]])
    alpha = [stats.norm.cdf(-1.0), 0.5, stats.norm.cdf(1.0)]
    spreads, truths, inside = [], [], []
    long_run = OMEGA / (1 - ALPHA - BETA)
    decay = (ALPHA + BETA) ** np.arange(HORIZON)
    r = returns["return"].unstack(0)[list(names[N_TRAIN:])].to_numpy()
    h = vol["volatility"].unstack(0)[list(names[N_TRAIN:])].to_numpy() ** 2
    for j in range(N_ORIGINS):
        t = HISTORY + j  # first unseen return
        q = forecaster.predict_quantiles(fh=list(range(1, HORIZON + 1)), alpha=alpha)
        last = test.xs(times[t - 1], level=1)["price"].to_numpy()
        log_q = np.log(q.to_numpy().reshape(N_TEST, HORIZON, 3) / last[:, None, None])
        # +-1 standard deviation quantiles of the cumulative log-return.
        spreads.append((log_q[..., 2] - log_q[..., 0]) / 2)
        truths.append(np.sqrt(np.cumsum(long_run + decay * (h[t][:, None] - long_run), axis=1)))
        realised = np.cumsum(r[t : t + HORIZON], axis=0).T
        inside.append((realised >= log_q[..., 0]) & (realised <= log_q[..., 2]))
        forecaster.update(test[test.index.get_level_values(1) == times[t]])
    return np.array(spreads), np.array(truths), np.array(inside)


def test_risk_grows_with_the_step_as_the_true_garch_variance(garch_forecasts):
    predicted, true, _ = garch_forecasts  # (origins, series, steps)
    # Every forecast's spread grows with the step.
    assert np.all(np.diff(predicted, axis=-1) > 0)
    # Its level is right at every step, not only the first.
    ratio = np.mean(predicted / true, axis=(0, 1))
    np.testing.assert_array_less(np.abs(np.log(ratio)), np.log(1.3))
    # The growth from step 1 to step 5 follows the truth's.
    growth, true_growth = predicted[..., -1] / predicted[..., 0], true[..., -1] / true[..., 0]
    assert np.abs(np.log(growth.mean() / true_growth.mean())) < np.log(1.15)


def test_risk_follows_volatility_clustering(garch_forecasts):
    predicted, true, inside = garch_forecasts
    # Across series and days, the forecast scale moves with the true one.
    corr = np.corrcoef(np.log(predicted[..., 0]).ravel(), np.log(true[..., 0]).ravel())[0, 1]
    assert corr > 0.8
    # The +-1 s.d. band holds about 68 % of the realised cumulative returns.
    assert 0.55 < inside.mean() < 0.8
