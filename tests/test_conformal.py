"""Quantiles of calibration residuals: plotting positions inside, exponential tails beyond."""

import numpy as np
import pytest

from sk_metalstm._conformal import conformal_quantiles


def test_order_statistics_sit_at_their_plotting_positions():
    # The i-th smallest of n residuals is the quantile at i / (n + 1).
    z = np.array([3.0, -1.0, 0.5, 2.0, -2.5, 0.0, 1.0])  # n = 7: levels k / 8
    levels = np.arange(1, 8) / 8
    np.testing.assert_allclose(conformal_quantiles(z, levels), np.sort(z), rtol=1e-12)
    midway = conformal_quantiles(z, [1.5 / 8])[0]
    assert midway == pytest.approx((-2.5 + -1.0) / 2)


def test_beyond_the_sample_the_tails_go_on_instead_of_stopping_at_its_range():
    # 16 residuals (a forecaster trained on one 250-day series): np.quantile's
    # 1 % and 99 % are almost the sample's range; these lie beyond it.
    z = np.random.default_rng(0).standard_normal(16)
    q = conformal_quantiles(z, [0.001, 0.01, 0.05, 0.95, 0.99, 0.999])
    assert q[1] < z.min() and q[4] > z.max()
    assert np.all(np.diff(q) > 0)
    # Exponential: equal steps in log probability, equal steps in value.
    assert q[1] - q[0] == pytest.approx((q[2] - q[1]) * np.log(10) / np.log(5))
    assert np.all(np.isfinite(q))


def test_columns_are_steps_and_many_residuals_match_numpy():
    z = np.random.default_rng(1).standard_normal((5000, 3)) * [1.0, 2.0, 0.5]
    levels = [0.005, 0.05, 0.5, 0.95, 0.995]
    q = conformal_quantiles(z, levels)
    assert q.shape == (5, 3)
    # All levels inside [1/(n+1), n/(n+1)]: within a residual of np.quantile.
    np.testing.assert_allclose(q, np.quantile(z, levels, axis=0), atol=0.02)


@pytest.mark.parametrize("n", [1, 2])
def test_one_or_two_residuals_give_the_networks_gaussian(n):
    # They cannot place a quantile: every level sat on them, so a 50 % and a
    # 99 % interval coincided (from one residual, with zero width).
    z = np.linspace(-0.5, 0.3, n)[:, None].repeat(2, axis=1)
    q = conformal_quantiles(z, [0.005, 0.25, 0.5, 0.75, 0.995])
    expected = [-2.5758, -0.6745, 0.0, 0.6745, 2.5758]
    np.testing.assert_allclose(q, np.array(expected)[:, None].repeat(2, axis=1), atol=1e-4)
