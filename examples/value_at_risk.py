"""Next-day Value-at-Risk for stocks and exchange rates, against GARCH(1,1)-t.

A risk desk's daily question: how much can this position lose tomorrow, with
95 % and 99 % confidence? The forecaster is pretrained on the other 33
bundled stocks and currencies (18 companies and 15 currencies; the ten years
before the backtest only), then, for two companies and two
currencies it never saw, it adapts to the last year of each and forecasts the
next day's 1 % and 5 % quantiles of the log return (``predict_quantiles``),
rolling forward one day at a time with ``update`` over the last 250 business
days. The 95 % (99 %) VaR is minus the 5 % (1 %) quantile.

Compared on the same days: GARCH(1,1) with Student-t shocks (``arch``),
refitted every month on the last year of returns and rolled forward daily with
those parameters in between. For each series and model the script prints the
exceedance rate (days whose loss beat the VaR: 5 % and 1 % are nominal) and
Kupiec's p-value (below 0.05: the rate is wrong), and saves
``examples/output/value_at_risk.png``: returns, both VaR bands, and the
exceedances of the forecaster's 99 % VaR marked.

Run: ``python examples/value_at_risk.py`` (about 3.5 minutes on 2 CPU cores;
the GARCH comparison needs ``pip install arch``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import EXAMPLES_EXTRA, OUTPUT_DIR, format_table, hide_sktime_notice, pyplot
from scipy import stats

hide_sktime_notice()

STOCKS, CURRENCIES = ["MSFT", "PFE"], ["JPY", "NOK"]
HISTORY = 250  # business days each series is fitted on before the first VaR
DAYS = 250  # VaR forecasts per series
LEVELS = {"VaR 95%": 0.05, "VaR 99%": 0.01}


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pretraining panel (other series, before the backtest) and the held-out prices."""
    from sk_metalstm.datasets import load_exchange_rates, load_stock_prices

    wide = pd.concat(
        [
            load_stock_prices()["price"].unstack(0),
            load_exchange_rates()["rate"].unstack(0),
        ],
        axis=1,
    )
    held_out = wide[STOCKS + CURRENCIES].dropna().iloc[-(HISTORY + DAYS + 1) :]
    first_day = held_out.index[HISTORY + 1]
    others = [c for c in wide.columns if c not in STOCKS + CURRENCIES]
    train = wide.loc[wide.index < first_day, others].iloc[-2500:]  # ten years
    panel = train.stack().swaplevel().sort_index().to_frame("price")
    panel.index.names = ["series", "time"]
    return panel, held_out


def forecaster_var(panel: pd.DataFrame, prices: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{series: frame of daily VaR (positive losses, log return)} from the forecaster."""
    from sk_metalstm import MetaLSTMForecaster

    model = MetaLSTMForecaster(horizon=1, random_state=0)  # the defaults
    model.pretrain(panel)
    history = prices.iloc[: HISTORY + 1]
    model.fit(history.stack().swaplevel().sort_index().to_frame("price"))
    rows = []
    for t in range(HISTORY + 1, len(prices)):
        q = model.predict_quantiles(fh=[1], alpha=list(LEVELS.values()))
        last = prices.iloc[t - 1]
        level = q.droplevel(-1).reindex(prices.columns).to_numpy()  # panel rows are sorted
        losses = -np.log(level / last.to_numpy()[:, None])
        rows.append(pd.DataFrame(losses, index=prices.columns, columns=list(LEVELS)))
        model.update(prices.iloc[[t]].stack().swaplevel().sort_index().to_frame("price"))
    days = prices.index[HISTORY + 1 :]
    return {s: pd.DataFrame([r.loc[s] for r in rows], index=days) for s in prices.columns}


def garch_var(returns: pd.Series, refit: int = 21) -> pd.DataFrame | None:
    """GARCH(1,1)-t VaR: refitted monthly on the last ``HISTORY`` returns, rolled daily between."""
    try:
        from arch import arch_model
    except ImportError:
        return None
    model = arch_model(100 * returns, vol="GARCH", p=1, q=1, dist="t")
    parts = []
    for start in range(HISTORY, len(returns), refit):
        fit = model.fit(
            first_obs=returns.index[start - HISTORY], last_obs=returns.index[start], disp="off"
        )
        # Row t of the forecast is the law of return t + 1 given returns up to t.
        forecast = fit.forecast(start=returns.index[start - 1], reindex=False)
        n = min(refit, len(returns) - start)
        mean = forecast.mean.iloc[:n, 0].to_numpy()
        sd = np.sqrt(forecast.variance.iloc[:n, 0].to_numpy())
        nu = fit.params["nu"]
        z = stats.t.ppf(list(LEVELS.values()), nu) * np.sqrt((nu - 2) / nu)  # unit variance
        var = -(mean[:, None] + sd[:, None] * z) / 100
        parts.append(
            pd.DataFrame(var, index=returns.index[start : start + n], columns=list(LEVELS))
        )
    return pd.concat(parts)


def kupiec_p(hits: np.ndarray, p: float) -> float:
    """Kupiec's unconditional-coverage likelihood-ratio test (chi-square, 1 d.f.)."""
    n, x = len(hits), int(hits.sum())

    def loglik(q: float) -> float:
        return (n - x) * np.log1p(-q) * (n > x) + (x * np.log(q) if x else 0.0)

    return float(stats.chi2.sf(max(-2 * (loglik(p) - loglik(x / n)), 0.0), 1))


def plot(returns: pd.DataFrame, ours: dict, garch: dict) -> None:
    """Returns, VaR bands of both models, and the forecaster's 99 % exceedances."""
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(len(returns.columns), 1, figsize=(10, 2.6 * len(returns.columns)))
    for ax, name in zip(np.atleast_1d(axes), returns.columns, strict=True):
        r, var = returns[name].loc[ours[name].index], ours[name]
        ax.plot(r.index, r, color="0.55", lw=0.7, label="log return")
        ax.plot(var.index, -var["VaR 95%"], color="tab:blue", lw=1, label="-VaR 95% (forecaster)")
        ax.plot(var.index, -var["VaR 99%"], color="tab:red", lw=1, label="-VaR 99% (forecaster)")
        if garch.get(name) is not None:
            g = garch[name]
            ax.plot(g.index, -g["VaR 99%"], color="k", lw=0.8, ls="--", label="-VaR 99% (GARCH-t)")
        hits = r < -var["VaR 99%"]
        ax.scatter(
            r.index[hits],
            r[hits],
            color="tab:red",
            marker="x",
            zorder=3,
            label="exceedance of VaR 99%",
        )
        ax.set_title(name, loc="left")
    np.atleast_1d(axes)[0].legend(loc="lower left", fontsize=7, ncol=3)
    fig.tight_layout()
    OUTPUT_DIR.mkdir(exist_ok=True)
    fig.savefig(OUTPUT_DIR / "value_at_risk.png", dpi=110)
    print(f"Saved {OUTPUT_DIR / 'value_at_risk.png'}")


def main() -> None:
    """Backtest both models' daily VaR on the held-out series and print the scores."""
    panel, prices = load()
    returns = np.log(prices).diff().iloc[1:]
    ours = forecaster_var(panel, prices)
    garch = {name: garch_var(returns[name]) for name in prices.columns}
    if all(g is None for g in garch.values()):
        print(f"(arch is not installed: {EXAMPLES_EXTRA} for the GARCH comparison)")
    rows = []
    for name in prices.columns:
        realised = returns[name].loc[ours[name].index]
        for model, var in (("forecaster", ours[name]), ("GARCH(1,1)-t", garch[name])):
            if var is None:
                continue
            row = {"series": name, "model": model}
            for level, p in LEVELS.items():
                hits = (realised < -var[level]).to_numpy()
                row[f"{level} exceedances"] = f"{hits.mean():.1%}"
                row[f"{level} Kupiec p"] = f"{kupiec_p(hits, p):.2f}"
            rows.append(row)
    print(format_table(pd.DataFrame(rows).set_index(["series", "model"])))
    print(
        "Nominal exceedance rates: 5% (VaR 95%) and 1% (VaR 99%); "
        "a Kupiec p below 0.05 rejects the rate."
    )
    plot(returns, ours, garch)


if __name__ == "__main__":
    main()
