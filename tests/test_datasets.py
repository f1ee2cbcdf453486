"""Tests for sk_metalstm.datasets: shipped real data and synthetic generators."""

from __future__ import annotations

import ast
import doctest
import json
import os
import subprocess
import sys
from decimal import Decimal
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sktime.datatypes import check_is_mtype
from sktime.forecasting.naive import NaiveForecaster

import sk_metalstm.datasets as ds
from sk_metalstm.datasets import (
    load_exchange_rates,
    load_interest_rates,
    load_stock_prices,
    make_ar_returns_panel,
    make_garch_returns,
    make_regime_switching_panel,
)

DATA_DIR = Path(ds.__file__).parent / "data"


def _assert_mtype(obj, mtype):
    valid, msg, _ = check_is_mtype(obj, mtype, return_metadata=[])
    assert valid, msg


def _assert_clean_panel(panel: pd.DataFrame, column: str) -> None:
    _assert_mtype(panel, "pd-multiindex")
    assert list(panel.columns) == [column]
    assert not panel.isna().any().any()
    lengths = set()
    for name in panel.index.get_level_values(0).unique():
        idx = panel.loc[name].index
        assert idx.is_monotonic_increasing and idx.is_unique
        lengths.add(len(idx))
    # Loaders clip multi-series selections to a common span.
    assert len(lengths) == 1


def _assert_forecastable(y: pd.Series) -> None:
    _assert_mtype(y, "pd.Series")
    assert not y.isna().any()
    assert y.index.is_monotonic_increasing and y.index.is_unique
    assert y.index.freq is not None
    pred = NaiveForecaster().fit(y).predict(fh=[1, 2])
    assert len(pred) == 2 and np.isfinite(pred.to_numpy()).all()


# --------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------


def test_stock_prices_default_panel():
    panel = load_stock_prices()
    _assert_clean_panel(panel, "price")
    assert panel.index.names == ["ticker", "time"]
    tickers = panel.index.get_level_values("ticker").unique()
    assert len(tickers) == 20 and "AAPL" in tickers
    assert (panel["price"] > 0).all()
    aapl = panel.loc["AAPL"].index
    assert aapl[0] == pd.Timestamp("1990-01-02")
    assert aapl[-1] == pd.Timestamp("2022-12-28")
    assert aapl.freqstr == "B"


def test_stock_prices_single_and_selection():
    y = load_stock_prices("msft", start="2015-03-01", end="2016-06-30")
    assert y.name == "MSFT"
    assert y.index[0] >= pd.Timestamp("2015-03-01")
    assert y.index[-1] <= pd.Timestamp("2016-06-30")
    _assert_forecastable(y)

    panel = load_stock_prices(["KO", "AAPL"], start="2020-01-01")
    assert list(panel.index.get_level_values(0).unique()) == ["KO", "AAPL"]
    np.testing.assert_allclose(
        panel.loc["AAPL", "price"].to_numpy(),
        load_stock_prices("AAPL", start="2020-01-01").to_numpy(),
    )

    wide = load_stock_prices(("JPM", "BAC"), end="2000-12-31", as_panel=False)
    _assert_mtype(wide, "pd.DataFrame")
    assert list(wide.columns) == ["JPM", "BAC"]
    assert wide.index.freqstr == "B"


def test_partial_date_bounds():
    y = load_stock_prices("KO", start="2019-12", end="2020")
    assert y.index[0] == pd.Timestamp("2019-12-02")
    assert y.index[-1] == pd.Timestamp("2020-12-31")
    fx = load_exchange_rates("USD", start=pd.Timestamp("2020-03-02"), end="2020-03")
    assert fx.index[0] == pd.Timestamp("2020-03-02")
    assert fx.index[-1] == pd.Timestamp("2020-03-31")
    with pytest.raises(ValueError, match="after"):
        load_exchange_rates("USD", start="2021", end="2020-06")


def test_stock_prices_holidays_forward_filled():
    y = load_stock_prices("AAPL", start="2019-12-20", end="2020-01-10")
    # 2019-12-25 and 2020-01-01 are NYSE holidays: previous close carried.
    assert y["2019-12-25"] == y["2019-12-24"]
    assert y["2020-01-01"] == y["2019-12-31"]


@pytest.mark.parametrize(
    ("load", "start", "end"),
    [
        (lambda **k: load_stock_prices("MSFT", **k), "2019-12-30", "2020-01-01"),
        (lambda **k: load_exchange_rates("USD", **k), "2020-12-21", "2020-12-25"),
    ],
    ids=["nyse_new_year", "target_christmas"],
)
def test_an_end_on_a_holiday_keeps_it_like_any_other_holiday(load, start, end):
    # The range was cut on trading days before holidays were filled in: an end
    # on a holiday left that day out, although a wider range shows it.
    y = load(start=start, end=end)
    assert y.index[-1] == pd.Timestamp(end)
    wider = load(start=start, end=pd.Timestamp(end) + pd.Timedelta(days=10))
    pd.testing.assert_series_equal(y, wider[:end], check_freq=False)


def test_exchange_rates_default_panel():
    panel = load_exchange_rates()
    _assert_clean_panel(panel, "rate")
    currencies = panel.index.get_level_values("currency").unique()
    assert len(currencies) == 17
    assert {"USD", "JPY", "GBP", "CHF"} <= set(currencies)
    assert (panel["rate"] > 0).all()
    usd = panel.loc["USD", "rate"]
    assert usd.index[0] == pd.Timestamp("1999-01-04")
    # EUR/USD has stayed within 0.8 - 1.7 since the euro's launch.
    assert usd.between(0.8, 1.7).all()


def test_exchange_rates_common_span_and_single():
    # ILS is quoted from 2011 only: the panel is clipped to the common span.
    panel = load_exchange_rates(["usd", "ILS"], end="2012-12-31")
    _assert_clean_panel(panel, "rate")
    assert panel.loc["USD"].index[0] == pd.Timestamp("2011-01-03")

    y = load_exchange_rates("CNY", start="2018-01-01", end="2019-12-31")
    assert y.name == "CNY" and y.between(6.5, 9.0).all()
    _assert_forecastable(y)

    wide = load_exchange_rates(["GBP", "JPY"], start="2020", as_panel=False)
    _assert_mtype(wide, "pd.DataFrame")
    assert not wide.isna().any().any()


def test_interest_rates_default_quarterly_panel():
    panel = load_interest_rates()
    _assert_clean_panel(panel, "rate")
    assert list(panel.index.get_level_values(0).unique()) == ["TB3MS", "AAA", "BAA"]
    tb = panel.loc["TB3MS"].index
    assert isinstance(tb, pd.PeriodIndex) and tb.freqstr.startswith("Q")
    assert tb[0] == pd.Period("1959Q1") and tb[-1] == pd.Period("2009Q3")
    assert panel["rate"].between(0, 25).all()


def test_interest_rates_monthly_and_aggregation():
    monthly = load_interest_rates(["AAA", "BAA"], as_panel=False)
    _assert_mtype(monthly, "pd.DataFrame")
    assert monthly.index.freqstr == "M"
    assert monthly.index[0] == pd.Period("1919-01", "M")
    assert (monthly["BAA"] > monthly["AAA"]).all()

    quarterly = load_interest_rates(["AAA"], freq="Q", as_panel=False)
    expected = monthly.loc["1990-01":"1990-03", "AAA"].mean()
    assert quarterly.loc[pd.Period("1990Q1"), "AAA"] == pytest.approx(expected)
    # Without TB3MS the quarters span 1919-2018, in order (they ran 1959Q1 ...
    # 2009Q3, 1919Q1 ..., and end="1920" kept 1959-2009 as well).
    _assert_mtype(quarterly, "pd.DataFrame")
    assert quarterly.index[0] == pd.Period("1919Q1") and quarterly.index[-1] == pd.Period("2018Q4")
    early = load_interest_rates("AAA", freq="Q", end="1920")
    assert early.index[-1] == pd.Period("1920Q4") and len(early) == 8
    _assert_forecastable(early)

    y = load_interest_rates("baa", start="1980-05-15", end="1985")
    assert y.index[0] == pd.Period("1980-05", "M")
    # A partial date covers its whole span, as in pandas indexing.
    assert y.index[-1] == pd.Period("1985-12", "M")
    _assert_forecastable(y)
    _assert_forecastable(load_interest_rates("TB3MS"))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: load_stock_prices(["AAPL", "NOPE"]), r"Unknown ticker.*AAPL"),
        (lambda: load_stock_prices("AAPL", start="2010", end="2009"), "after"),
        (lambda: load_stock_prices(["KO", "ko"]), "Duplicate"),
        (lambda: load_stock_prices([]), "No ticker"),
        (lambda: load_stock_prices("AAPL", start="2030-01-01"), "No data"),
        (lambda: load_stock_prices("AAPL", start="not a date"), "Cannot parse"),
        # pandas reads a number as nanoseconds after 1970: all data, silently.
        (lambda: load_stock_prices("AAPL", start=2020), "is a number, not a date"),
        (lambda: load_exchange_rates("USD", end=2020.5), "is a number, not a date"),
        (lambda: load_stock_prices("AAPL", start=""), "Cannot parse start=''"),
        (lambda: make_ar_returns_panel(start=2020), "is a number, not a date"),
        (lambda: make_ar_returns_panel(start="not a date"), "Cannot parse"),
        (lambda: load_exchange_rates("XYZ"), r"Unknown currency.*USD"),
        (lambda: load_exchange_rates("ISK"), r"Unknown currency"),
        (lambda: load_interest_rates("LIBOR"), r"Unknown name.*TB3MS"),
        (lambda: load_interest_rates("TB3MS", freq="M"), "only available quarterly"),
        (lambda: load_interest_rates("AAA", freq="D"), "freq must be"),
    ],
)
def test_loader_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "load", [load_stock_prices, load_exchange_rates, load_interest_rates], ids=lambda f: f.__name__
)
def test_loaders_read_a_zone_aware_bound_as_its_calendar_date(load):
    # A tz-aware Timestamp raised pandas' naive/aware comparison error in two
    # loaders; a string with an offset already meant its wall-clock date.
    name = {"load_stock_prices": "AAPL", "load_exchange_rates": "USD"}.get(load.__name__, "AAA")
    aware = pd.Timestamp("2010-01-05", tz="Asia/Tokyo")  # still 2010-01-04 in UTC
    expected = load(name, start="2010-01-05", end="2010-06")
    pd.testing.assert_series_equal(load(name, start=aware, end="2010-06"), expected)


def test_loader_type_errors():
    with pytest.raises(TypeError):
        load_stock_prices(5)
    with pytest.raises(TypeError):
        load_exchange_rates(["USD", 3])
    with pytest.raises(TypeError):
        load_stock_prices(["KO", "PEP"], as_panel="yes")
    # bytes iterate as integers ("must be a string, got 77").
    with pytest.raises(TypeError, match="tickers must be a string.*got bytes"):
        load_stock_prices(b"MSFT")


def test_loaders_return_independent_copies():
    y = load_stock_prices("KO")
    y.iloc[:] = -1.0
    assert (load_stock_prices("KO") > 0).all()


def test_loaders_need_no_source_packages():
    # Block the packages the data came from: loading must still work.
    code = (
        "import sys\n"
        "for m in ('skfolio', 'currency_converter', 'arch'):\n"
        "    sys.modules[m] = None\n"
        "from sk_metalstm.datasets import (load_stock_prices, load_exchange_rates,\n"
        "    load_interest_rates, make_ar_returns_panel)\n"
        "assert len(load_stock_prices()) > 0\n"
        "assert len(load_exchange_rates()) > 0\n"
        "assert len(load_interest_rates()) > 0\n"
        "assert len(make_ar_returns_panel(2, 10, random_state=0)) == 20\n"
        "print('ok')\n"
    )
    # Make the package importable in the child however pytest found it.
    root = str(Path(ds.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_dataset_modules_import_only_numpy_pandas_stdlib():
    allowed = {"numpy", "pandas"} | set(sys.stdlib_module_names)
    for path in Path(ds.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [node.module.split(".")[0]]
            else:
                continue
            assert set(roots) <= allowed, f"{path.name} imports {roots}"


def test_data_files_small_and_documented():
    files = sorted(p for p in DATA_DIR.iterdir() if p.suffix == ".gz")
    assert sum(p.stat().st_size for p in files) < 3 * 2**20
    provenance = json.loads((DATA_DIR / "PROVENANCE.json").read_text())
    assert set(provenance["files"]) == {p.name for p in files}
    for entry in provenance["files"].values():
        for key in ("source_package", "source_version", "source_licence"):
            assert entry[key]
        assert entry["transformation"]
    # Shipped as package data, reachable through importlib.resources.
    res = resources.files("sk_metalstm.datasets").joinpath("data", files[0].name)
    assert res.is_file()


@pytest.mark.parametrize("module", [ds._loaders, ds._generators])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------
# Generators
# --------------------------------------------------------------------------


def test_ar_panel_shape_determinism_and_params():
    y, params = make_ar_returns_panel(5, 300, random_state=3, return_params=True)
    _assert_clean_panel(y, "price")
    assert y.shape == (1500, 1)
    assert (y["price"] > 0).all()
    assert y.loc["series_0"].index.freqstr == "B"
    assert list(params.columns) == ["phi", "sigma"]
    assert list(params.index) == list(y.index.get_level_values(0).unique())
    assert params["phi"].between(-0.6, 0.6).all()
    assert params["sigma"].between(0.005, 0.03).all()

    pd.testing.assert_frame_equal(y, make_ar_returns_panel(5, 300, random_state=3))
    other = make_ar_returns_panel(5, 300, random_state=4)
    assert not np.allclose(y.to_numpy(), other.to_numpy())
    gen = make_ar_returns_panel(5, 300, random_state=np.random.default_rng(3))
    pd.testing.assert_frame_equal(y, gen)


def test_ar_panel_sample_coefficient_matches_truth():
    y, params = make_ar_returns_panel(
        4, 20_000, phi_range=(-0.8, 0.8), random_state=0, return_params=True
    )
    for name, (phi, _sigma) in params.iterrows():
        r = np.diff(np.log(y.loc[name, "price"].to_numpy()))
        phi_hat = np.dot(r[1:], r[:-1]) / np.dot(r[:-1], r[:-1])
        # Standard error is sqrt((1 - phi^2) / n) < 0.01 here.
        assert phi_hat == pytest.approx(phi, abs=0.04)


def test_ar_panel_integer_index_and_errors():
    y = make_ar_returns_panel(2, 10, random_state=0, start=None)
    _assert_mtype(y, "pd-multiindex")
    assert list(y.loc["series_0"].index) == list(range(10))
    with pytest.raises(ValueError, match="phi_range"):
        make_ar_returns_panel(2, 10, phi_range=(-1.2, 0.5))
    with pytest.raises(ValueError, match="sigma_range"):
        make_ar_returns_panel(2, 10, sigma_range=(0.0, 0.1))
    with pytest.raises(ValueError, match="n_timepoints"):
        make_ar_returns_panel(2, 1)
    with pytest.raises(TypeError, match="n_series"):
        make_ar_returns_panel(2.5, 10)


def test_regime_switching_panel():
    y, params = make_regime_switching_panel(
        n_series=4, n_timepoints=2000, random_state=7, return_params=True
    )
    _assert_clean_panel(y, "price")
    assert (y["price"] > 0).all()
    assert params.index.equals(y.index)
    assert set(params["regime"].unique()) == {0, 1}
    # Each regime's parameters are the ones in force whenever it is active.
    assert params.groupby("regime")["sigma"].nunique().eq(1).all()

    # Realised return volatility is higher in the high-sigma regime.
    by_regime = {0: [], 1: []}
    for name in y.index.get_level_values(0).unique():
        r = np.diff(np.log(y.loc[name, "price"].to_numpy()))
        reg = params.loc[name, "regime"].to_numpy()[1:]
        for k in by_regime:
            by_regime[k].append(r[reg == k])
    vol = {k: np.concatenate(v).std() for k, v in by_regime.items()}
    assert vol[1] > 2 * vol[0]

    same = make_regime_switching_panel(n_series=4, n_timepoints=2000, random_state=7)
    pd.testing.assert_frame_equal(y, same)
    diff = make_regime_switching_panel(n_series=4, n_timepoints=2000, random_state=8)
    assert not np.allclose(y.to_numpy(), diff.to_numpy())


def test_regime_switching_options_and_errors():
    _, params = make_regime_switching_panel(
        n_series=3,
        n_timepoints=400,
        n_regimes=3,
        common_regimes=True,
        random_state=0,
        return_params=True,
    )
    paths = params["regime"].unstack(level=0)
    assert (paths.nunique(axis=1) == 1).all()

    trans = np.array([[0.0, 1.0], [1.0, 0.0]])
    _, p = make_regime_switching_panel(
        1, 50, transition_matrix=trans, random_state=0, return_params=True
    )
    assert (np.diff(p["regime"].to_numpy()) != 0).all()

    with pytest.raises(ValueError, match="transition_matrix"):
        make_regime_switching_panel(transition_matrix=np.eye(3))
    with pytest.raises(ValueError, match="phis"):
        make_regime_switching_panel(phis=[0.5, 1.5])
    with pytest.raises(ValueError, match="sigmas"):
        make_regime_switching_panel(sigmas=[0.01])


def test_garch_returns():
    r, vol = make_garch_returns(20_000, random_state=0, return_volatility=True)
    _assert_forecastable(r)
    assert vol.index.equals(r.index) and (vol > 0).all()
    # Sample variance matches the unconditional omega / (1 - alpha - beta).
    assert r.std() == pytest.approx(np.sqrt(2e-6 / 0.02), rel=0.1)
    # Volatility clustering: squared returns are autocorrelated.
    sq = r.to_numpy() ** 2
    assert np.corrcoef(sq[1:], sq[:-1])[0, 1] > 0.05

    panel = make_garch_returns(100, n_series=3, random_state=1)
    _assert_clean_panel(panel, "return")
    pd.testing.assert_frame_equal(panel, make_garch_returns(100, n_series=3, random_state=1))
    with pytest.raises(ValueError, match="stationary"):
        make_garch_returns(100, alpha=0.2, beta=0.85)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: make_regime_switching_panel(2, 20, phis=[np.nan, 0.1]), "phis"),
        (lambda: make_regime_switching_panel(2, 20, sigmas=[np.nan, 0.1]), "sigmas"),
        (lambda: make_regime_switching_panel(2, 20, persistence="high"), "persistence"),
        (lambda: make_garch_returns(20, omega=np.nan), "omega must be finite"),
        (lambda: make_garch_returns(20, mu=np.inf), "mu must be finite"),
        (lambda: make_ar_returns_panel(phi_range=(np.nan, 0.2)), "phi_range must hold finite"),
        (lambda: make_garch_returns(20, omega="0.1"), "omega must be a number, got '0.1'"),
        (lambda: make_ar_returns_panel(phi_range=("-0.2", 0.2)), "phi_range must be a pair"),
        (lambda: make_regime_switching_panel(phis=["0.4", "-0.4"]), "phis must hold numbers"),
        (lambda: make_regime_switching_panel(sigmas=["0.01", 0.03]), "sigmas must hold numbers"),
        (
            lambda: make_regime_switching_panel(transition_matrix=[["0.9", "0.1"], [0.1, 0.9]]),
            "transition_matrix must hold numbers",
        ),
        (
            lambda: make_regime_switching_panel(transition_matrix=[[1.0], [0.1, 0.9]]),
            "transition_matrix must hold numbers",
        ),
    ],
    ids=[
        "phis_nan", "sigmas_nan", "persistence_str", "omega_nan", "mu_inf", "phi_range_nan",
        "omega_text", "phi_range_text", "phis_text", "sigmas_text", "transition_text",
        "transition_ragged",
    ],
)
def test_generators_refuse_non_finite_parameters(call, match):
    # NaN compares False, so it slipped past the range checks into NaN prices.
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: make_ar_returns_panel(2, 500, sigma_range=(10, 1000), random_state=1),
            "sigma_range=\\(10, 1000\\)",
        ),
        (
            lambda: make_regime_switching_panel(2, 500, sigmas=[10.0, 500.0], random_state=1),
            "sigmas=\\[10.0, 500.0\\]",
        ),
    ],
    ids=["ar_sigma_range", "regime_sigmas"],
)
def test_generators_refuse_volatilities_that_overflow_prices(call, match):
    # Finite but absurd volatilities gave inf or 0 prices behind a numpy warning.
    # (Seeded: with these ranges about 1 draw in 20 stays finite.)
    with pytest.raises(ValueError, match=match + ".*prices leave float64's range"):
        call()


def test_garch_returns_refuse_a_variance_that_overflows():
    # omega=1e306 gave 930 of 1,000 returns inf behind a numpy warning.
    with pytest.raises(ValueError, match="omega=1e.306 makes the variance leave float64"):
        make_garch_returns(1000, omega=1e306, random_state=0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: make_ar_returns_panel(2, 20, return_params="no"),
        lambda: make_regime_switching_panel(2, 20, return_params="no"),
        lambda: make_regime_switching_panel(2, 20, common_regimes=1),
        lambda: make_garch_returns(20, return_volatility="no"),
    ],
    ids=["ar_return_params", "regime_return_params", "common_regimes", "return_volatility"],
)
def test_generators_refuse_non_bool_switches(call):
    # "no" is truthy: it returned the parameters it was meant to withhold.
    with pytest.raises(ValueError, match="must be True or False"):
        call()


@pytest.mark.parametrize("seed", [-1, 1.5, "a"])
def test_generators_name_a_bad_random_state(seed):
    # numpy's own messages ("expected non-negative integer") named no parameter.
    for make in (make_ar_returns_panel, make_regime_switching_panel, make_garch_returns):
        with pytest.raises(ValueError, match="random_state must be None, an integer >= 0"):
            make(random_state=seed)


@pytest.mark.parametrize("names", [{"KO", "PG"}, frozenset({"KO"}), {"KO": 1}])
def test_loaders_refuse_unordered_name_containers(names):
    # A set's order changes with PYTHONHASHSEED ("tickers in the order
    # requested" did not hold), and a dict's values were dropped unseen.
    with pytest.raises(TypeError, match="whose order is not the one requested"):
        load_stock_prices(names)


@pytest.mark.parametrize(
    ("loader", "parameter"),
    [(load_stock_prices, "tickers"), (load_exchange_rates, "currencies")],
)
def test_loader_type_errors_name_the_parameter(loader, parameter):
    # The message said "currencys", built from the name of one item.
    with pytest.raises(TypeError, match=f"^{parameter} must be a string"):
        loader(3.0)


def test_a_regime_chain_that_never_switches_starts_in_every_regime():
    # With persistence=1 the eigenvector picked as "the" stationary
    # distribution put every series in regime 0, for good.
    _, params = make_regime_switching_panel(
        200, 5, persistence=1.0, random_state=0, return_params=True
    )
    first = params["regime"].groupby(level=0).first()
    assert set(first) == {0, 1}
    assert abs(first.mean() - 0.5) < 0.1


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        # Two closed classes: uniform start, then each class's own stationary law.
        ([[1, 0, 0], [0, 0.9, 0.1], [0, 0.2, 0.8]], [1 / 3, 4 / 9, 2 / 9]),
        # Transient regimes start with probability 0 (the eigenvector had -1e-17).
        ([[0.2, 0.4, 0.2, 0.2], [0.2, 0, 0.1, 0.7], [0, 0, 0.1, 0.9], [0, 0, 0.2, 0.8]],
         [0, 0, 2 / 11, 9 / 11]),
        # float32 rows summing to 0.99999998 gave NaN probabilities.
        (np.array([[0.9, 0.1], [0.1, 0.9]], dtype=np.float32), [0.5, 0.5]),
    ],
    ids=["two_closed_classes", "transient", "float32"],
)
def test_regime_chains_start_from_their_stationary_distribution(matrix, expected):
    # Squaring the lazy chain 64 times without renormalising put all the mass
    # in one closed class at random, or failed with "Probabilities contain NaN".
    _, params = make_regime_switching_panel(
        20_000, 2, n_regimes=len(expected), transition_matrix=matrix, random_state=0,
        return_params=True,
    )
    first = params["regime"].groupby(level=0).first()
    shares = np.bincount(first, minlength=len(expected)) / len(first)
    np.testing.assert_allclose(shares, expected, atol=0.015)


@pytest.mark.parametrize("persistence", [1 - 1e-12, np.float32(0.09), Decimal("0.98")])
def test_regime_persistence_close_to_one_or_in_other_number_types(persistence):
    _, params = make_regime_switching_panel(
        2_000, 3, persistence=persistence, random_state=0, return_params=True
    )
    shares = np.bincount(params["regime"].groupby(level=0).first()) / 2_000
    np.testing.assert_allclose(shares, [0.5, 0.5], atol=0.05)


def test_regime_persistence_is_checked_with_a_transition_matrix_too():
    with pytest.raises(ValueError, match="persistence must be in \\[0, 1\\]"):
        make_regime_switching_panel(transition_matrix=np.eye(2) * 0 + 0.5, persistence=7.0)
    with pytest.raises(ValueError, match="got row sums \\[0.9, 1.0\\]"):
        make_regime_switching_panel(transition_matrix=[[0.8, 0.1], [0.5, 0.5]])
