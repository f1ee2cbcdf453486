"""Shared helpers for the dataset loaders: file access, argument checks, shaping.

Only numpy, pandas and the standard library are used here on purpose: the data
files ship with the package, so loading must not need the packages the data
originally came from.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence, Set
from importlib import resources

import numpy as np
import pandas as pd

DateLike = str | dt.date | pd.Timestamp | pd.Period | None

_DATA_PACKAGE = "sk_metalstm.datasets"


@functools.cache
def _read_cached(filename: str, index_kind: str) -> pd.DataFrame:
    path = resources.files(_DATA_PACKAGE).joinpath("data", filename)
    with path.open("rb") as fh:
        df = pd.read_csv(fh, compression="gzip", index_col=0)
    if index_kind == "date":
        df.index = pd.DatetimeIndex(pd.to_datetime(df.index), name="time")
    else:
        df.index = pd.PeriodIndex(df.index, freq=index_kind, name="time")
    return df.astype("float64")


def read_data_file(filename: str, index_kind: str) -> pd.DataFrame:
    """Read a shipped gzip CSV file into a wide DataFrame (time x series).

    Parameters
    ----------
    filename : str
        Name of the file inside ``sk_metalstm/datasets/data``.
    index_kind : str
        ``"date"`` for a DatetimeIndex, otherwise a period frequency (``"M"``,
        ``"Q"``) for a PeriodIndex.

    Returns
    -------
    pd.DataFrame
        A fresh copy, so callers may modify it without touching the cache.
    """
    return _read_cached(filename, index_kind).copy()


def select_names(
    requested: str | Iterable[str] | None,
    available: Sequence[str],
    default: Sequence[str],
    kind: str,
) -> tuple[list[str], bool]:
    """Validate requested series names.

    Parameters
    ----------
    requested : str, iterable of str or None
        A single name, several names, or None for ``default``.
    available : sequence of str
        Valid names.
    default : sequence of str
        Names used when ``requested`` is None.
    kind : str
        What the names are (``"ticker"``, ``"currency"``), for error messages.

    Returns
    -------
    names : list of str
        Upper-cased, validated names in the order requested.
    single : bool
        True if a single name was passed as a string.
    """
    if requested is None:
        return list(default), False
    parameter = "currencies" if kind == "currency" else f"{kind}s"  # as the loaders name it
    single = isinstance(requested, str)
    items = [requested] if single else requested
    if isinstance(items, Set | Mapping):
        # Their order is not the user's (a set's changes with PYTHONHASHSEED),
        # and a mapping's values would be dropped unseen.
        raise TypeError(
            f"{parameter} must be a string, a list or tuple of strings, or None; got a "
            f"{type(requested).__name__}, whose order is not the one requested. "
            f"Pass a list, e.g. sorted({parameter})."
        )
    if not isinstance(items, Iterable) or isinstance(items, bytes | bytearray):
        # bytes iterate as integers: "must be a string, got 77" named no mistake.
        raise TypeError(
            f"{parameter} must be a string, a list or tuple of strings, or None; "
            f"got {type(requested).__name__}."
        )
    names = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"Each {kind} must be a string, got {item!r}.")
        names.append(item.strip().upper())
    if not names:
        raise ValueError(f"No {kind} requested: pass at least one {kind}.")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"Unknown {kind}(s) {unknown}. Valid choices are: {sorted(available)}.")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"Duplicate {kind}(s) requested: {dupes}.")
    return names, single


def _as_timestamp(value: DateLike, name: str, is_end: bool) -> pd.Timestamp | None:
    """Parse a bound; partial strings ("2020", "2020-06") cover their whole span."""
    if value is None:
        return None
    check_not_a_number(value, name)
    given = value
    if isinstance(value, str):
        try:
            # Period infers the resolution from the string, so end="2020"
            # means the end of 2020, as in pandas' partial-string indexing.
            value = pd.Period(value)
        except (ValueError, TypeError):
            pass
    if isinstance(value, pd.Period):
        return value.end_time if is_end else value.start_time
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"Cannot parse {name}={given!r} as a date.") from exc
    if stamp is pd.NaT:
        raise ValueError(f"Cannot parse {name}={given!r} as a date.")
    # The data are calendar dates: a zone-aware bound means its own wall-clock
    # date (as a string with an offset already does), not a comparison error.
    return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp


def check_not_a_number(value: object, name: str) -> None:
    """Refuse a number as a date: pandas reads ``2020`` as 2020 ns after 1970."""
    if isinstance(value, int | float | np.number) and not isinstance(value, bool):
        raise ValueError(
            f"{name}={value!r} is a number, not a date; pass a date string such as "
            "'2020' or '2020-01-31', or a Timestamp."
        )


def _fmt(label: object) -> str:
    return str(label.date()) if isinstance(label, pd.Timestamp) else str(label)


def slice_dates(df: pd.DataFrame, start: DateLike, end: DateLike) -> pd.DataFrame:
    """Select rows between ``start`` and ``end`` (inclusive), checking order.

    A partial date string covers its whole span, as in pandas' partial-string
    indexing: ``end="2020"`` keeps all of 2020. For a PeriodIndex the period
    containing ``start`` (``end``) is the first (last) one kept, so
    ``start="2001-02-15"`` keeps February 2001 in monthly data.

    Parameters
    ----------
    df : pd.DataFrame
        Wide frame with a DatetimeIndex or PeriodIndex.
    start, end : str, date, Timestamp, Period or None
        Inclusive bounds; None means unbounded.

    Returns
    -------
    pd.DataFrame
        The selected rows.
    """
    t0 = _as_timestamp(start, "start", is_end=False)
    t1 = _as_timestamp(end, "end", is_end=True)
    if t0 is not None and t1 is not None and t0 > t1:
        raise ValueError(f"start ({start}) is after end ({end}).")
    if isinstance(df.index, pd.PeriodIndex):
        freq = df.index.freq
        p0 = None if t0 is None else pd.Period(t0, freq=freq)
        p1 = None if t1 is None else pd.Period(t1, freq=freq)
        out = df.loc[p0:p1]
    else:
        out = df.loc[t0:t1]
    if out.empty:
        raise ValueError(
            f"No data between start={start} and end={end}: the selected series "
            f"cover {_fmt(df.index[0])} to {_fmt(df.index[-1])}."
        )
    return out


def business_days_between(df: pd.DataFrame, start: DateLike, end: DateLike) -> pd.DataFrame:
    """Trading-day data ``df`` on business days, from ``start`` to ``end``.

    The index starts at the first trading day on or after ``start`` and ends
    at the last business day on or before ``end`` inside the data: a holiday
    at the end of the range is kept (with the previous trading day's value),
    as it is everywhere else in the index.
    """
    traded = slice_dates(df, start, end)  # checks the bounds, finds the first trading day
    until = _as_timestamp(end, "end", is_end=True)
    return to_business_days(df).loc[traded.index[0] : until]


def to_business_days(df: pd.DataFrame) -> pd.DataFrame:
    """Reindex trading-day data to a regular business-day ("B") index.

    Exchange or TARGET holidays get the previous day's value (forward fill):
    sktime forecasters need a regular index with a frequency, and carrying the
    last published price is what a trader would see on a closed market day.

    Parameters
    ----------
    df : pd.DataFrame
        Wide frame on trading days, no missing values.

    Returns
    -------
    pd.DataFrame
        Wide frame with ``freq="B"``.
    """
    idx = pd.date_range(df.index[0], df.index[-1], freq="B", name=df.index.name)
    return df.reindex(idx).ffill()


def wide_to_output(
    wide: pd.DataFrame,
    names: list[str],
    single: bool,
    as_panel: bool,
    instance_name: str,
    value_name: str,
) -> pd.Series | pd.DataFrame:
    """Turn a wide frame into a Series, a ``pd-multiindex`` panel or a wide frame.

    Parameters
    ----------
    wide : pd.DataFrame
        Time x series frame without missing values.
    names : list of str
        Columns to return, in order.
    single : bool
        Return ``wide[names[0]]`` as a Series.
    as_panel : bool
        Return a long panel (MultiIndex ``(instance_name, "time")``, one column
        ``value_name``) rather than the wide frame.
    instance_name : str
        Name of the first index level of the panel.
    value_name : str
        Name of the Series or of the panel's single column.

    Returns
    -------
    pd.Series or pd.DataFrame
        The requested shape.
    """
    if not isinstance(as_panel, bool | np.bool_):
        raise TypeError(f"as_panel must be a bool, got {as_panel!r}.")
    wide = wide[names]
    if single:
        s = wide[names[0]].copy()
        s.name = names[0]
        return s
    if not as_panel:
        wide = wide.copy()
        wide.columns = pd.Index(names, name=instance_name)
        return wide
    return wide_to_panel(wide, instance_name, value_name)


def wide_to_panel(wide: pd.DataFrame, instance_name: str, value_name: str) -> pd.DataFrame:
    """Stack a time x series frame into an sktime ``pd-multiindex`` panel.

    Parameters
    ----------
    wide : pd.DataFrame
        Time x series frame.
    instance_name : str
        Name of the instance (first) index level.
    value_name : str
        Name of the single column.

    Returns
    -------
    pd.DataFrame
        Panel indexed by ``(instance_name, "time")``, instances in column order.
    """
    time = wide.index.rename("time")
    index = pd.MultiIndex.from_product([pd.Index(wide.columns, name=instance_name), time])
    # Column-major ravel matches from_product order: all times of series 0 first.
    values = wide.to_numpy(dtype="float64").ravel(order="F")
    return pd.DataFrame({value_name: values}, index=index)
