"""Offline financial data sets and synthetic panel generators.

Real data (shipped as small gzip CSV files, no network or extra packages needed):

- :func:`load_stock_prices` -- daily adjusted prices of 20 S&P 500 companies.
- :func:`load_exchange_rates` -- daily ECB euro reference rates.
- :func:`load_interest_rates` -- US T-bill rate and Moody's AAA/BAA yields.

Synthetic data with known parameters, for tests and teaching:

- :func:`make_ar_returns_panel` -- per-series AR(1) log-returns.
- :func:`make_regime_switching_panel` -- Markov regime-switching AR(1).
- :func:`make_garch_returns` -- GARCH(1, 1) returns.

All loaders and generators return sktime-ready objects: a ``pd.Series`` or a
``pd-multiindex`` panel (two-level MultiIndex ``(instance, time)``, one column).
"""

from ._generators import (
    make_ar_returns_panel,
    make_garch_returns,
    make_regime_switching_panel,
)
from ._loaders import load_exchange_rates, load_interest_rates, load_stock_prices

__all__ = [
    "load_exchange_rates",
    "load_interest_rates",
    "load_stock_prices",
    "make_ar_returns_panel",
    "make_garch_returns",
    "make_regime_switching_panel",
]
