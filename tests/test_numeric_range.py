"""Series of any magnitude give finite, scale-consistent forecasts, or a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sk_metalstm import MetaLSTMForecaster


@pytest.mark.parametrize("magnitude", [1e-8, 1e-16, 1e200])
def test_difference_forecasts_scale_with_the_series(airline, tiny, magnitude):
    # Regression: prices around 1e200 with transform="difference" gave inf/NaN
    # forecasts (the root-mean-square scale overflowed).
    tiny.update(horizon=2, transform="difference")
    base = MetaLSTMForecaster(**tiny).fit(airline).predict(fh=[1, 2])
    scaled = airline * magnitude
    before = scaled.copy()
    pred = MetaLSTMForecaster(**tiny).fit(scaled).predict(fh=[1, 2])
    assert np.all(np.isfinite(pred))
    np.testing.assert_allclose(pred.to_numpy() / magnitude, base.to_numpy(), rtol=1e-6)
    pd.testing.assert_series_equal(scaled, before)


def test_forecast_beyond_float64_is_a_clear_error(airline, tiny):
    # A steady 5% growth ending just below the largest float64: the next level
    # cannot be represented.
    growth = np.exp(0.05 * np.arange(-len(airline) + 1, 1))
    noise = 1 + 1e-4 * np.random.default_rng(0).standard_normal(len(airline))
    y = pd.Series(1.78e308 * growth * noise, index=airline.index)
    forecaster = MetaLSTMForecaster(horizon=1, transform="log_return", **tiny).fit(y)
    with pytest.raises(ValueError, match="not finite in float64"):
        forecaster.predict(fh=[1])


def test_irregular_datetime_index_is_a_clear_error(tiny):
    # Regression: a business-day series with dropped dates and no freq crashed
    # with "TypeError: unsupported operand type(s) for *: 'int' and 'NoneType'".
    index = pd.bdate_range("2020-01-01", periods=120).delete([10, 50, 51, 90])
    y = pd.Series(100 + np.cumsum(np.random.default_rng(0).normal(size=len(index))), index=index)
    before = y.copy()
    with pytest.raises(ValueError, match="irregular DatetimeIndex"):
        MetaLSTMForecaster(**tiny).fit(y)
    pd.testing.assert_series_equal(y, before)
    # Filling the gaps, as the message says, works.
    filled = y.asfreq("B").ffill()
    assert np.all(np.isfinite(MetaLSTMForecaster(**tiny).fit(filled).predict(fh=[1])))
