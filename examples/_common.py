"""Helpers shared by the examples: rolling backtests, scores against the random walk, plots.

Every example compares forecasts with the random walk (the last observed value
carried forward), the bar any forecaster of prices, rates or exchange rates has
to clear. The scores, for one series and one forecast step ``h``:

``MASE vs RW``
    Mean absolute error of the forecasts divided by that of the random walk on
    the same forecast origins (a MASE whose scale is the naive forecast's
    out-of-sample error). Below 1: better than the random walk.
``direction``
    Share of origins where the forecast's move (forecast > last value) matches
    the actual move (actual > last value). A flat or falling actual counts as
    "not up".
``always up``
    The directional accuracy of a forecaster that always says "up": the share
    of origins where the series actually rose. A directional accuracy is only
    worth something if it beats ``max(always up, 1 - always up)``.
``forecasts up``
    Share of origins where the forecast is above the last value. Near 1 (or 0)
    the model is predicting a drift rather than the day's direction, and its
    directional accuracy is just ``always up`` (or ``1 - always up``).

The module only imports numpy and pandas at the top; sktime and matplotlib are
imported where they are used, so the examples (and the tests of these helpers)
import quickly.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

OUTPUT_DIR = Path(__file__).resolve().parent / "output"
#: What installs the examples' optional packages (matplotlib, statsmodels, arch).
EXAMPLES_EXTRA = 'pip install "sk_metalstm[examples]"'


def pyplot() -> Any | None:
    """matplotlib's ``pyplot``, writing files only; None, saying so, without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # write the file only; no display needed
        import matplotlib.pyplot as plt
    except ImportError:  # an optional extra
        print(f"matplotlib is not installed ({EXAMPLES_EXTRA}); no plot saved.")
        return None
    return plt
RANDOM_WALK = "random walk"
_COLOURS = ["tab:red", "tab:blue", "tab:green", "tab:orange"]


# ----------------------------------------------------------------- backtests
def rolling_forecasts(
    forecaster: Any, y: pd.Series, cv: Any, strategy: str = "update"
) -> pd.DataFrame:
    """Forecasts of ``forecaster`` at every origin of ``cv``, via sktime ``evaluate``.

    Returns one row per (origin, forecast time) with columns ``cutoff`` (the
    origin), ``step`` (1-based steps after it), ``time``, ``pred`` and ``last``
    (the value at the origin, i.e. the random walk's forecast).
    """
    from sktime.forecasting.model_evaluation import evaluate

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(forecaster, cv, y, strategy=strategy, return_data=True)
    _replay(caught)
    position = pd.Series(np.arange(len(y)), index=y.index)
    rows = []
    for _, fold in result.iterrows():
        cutoff = fold["cutoff"]
        cutoff = cutoff[0] if isinstance(cutoff, pd.Index) else cutoff
        last = float(y.loc[cutoff])
        for t, pred in fold["y_pred"].items():
            step = int(position.loc[t] - position.loc[cutoff])
            rows.append({"cutoff": cutoff, "step": step, "time": t, "pred": pred, "last": last})
    return pd.DataFrame(rows)


# sktime 1.2 announces a change of default on every forecaster it constructs
# (evaluate clones at each fold). A plain ``warnings.simplefilter("ignore")``
# does not hold: sktime's own pandas-warning suppressor resets the FutureWarning
# filter to "default" on exit. So these are recorded and dropped here.
_SKTIME_NOISE = ("The default of config ``remember_data`` will change",)


def hide_sktime_notice() -> None:
    """Hide sktime's ``remember_data`` notice (sktime's, harmless) and nothing else.

    Outside ``evaluate`` the filter holds; inside it, ``rolling_forecasts``
    records and drops the notice (see above).
    """
    warnings.filterwarnings("ignore", message=_SKTIME_NOISE[0], category=FutureWarning)


def _replay(caught: list[warnings.WarningMessage]) -> None:
    """Show recorded warnings once each, except sktime's known notices."""
    seen = set()
    for w in caught:
        text = str(w.message)
        if text.startswith(_SKTIME_NOISE) or (w.category, text) in seen:
            continue
        seen.add((w.category, text))
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def scores(pred: Sequence[float], actual: Sequence[float], last: Sequence[float]) -> dict:
    """``MASE vs RW``, ``direction`` and ``always up`` of forecasts ``pred``.

    ``last`` is the value at each forecast origin (the random walk's forecast).
    If the random walk's error is zero (the series never moved), MASE is NaN.
    """
    pred, actual, last = (np.asarray(a, dtype=np.float64) for a in (pred, actual, last))
    if not pred.shape == actual.shape == last.shape or pred.size == 0:
        raise ValueError("pred, actual and last must be non-empty and of equal length.")
    rw_error = np.mean(np.abs(last - actual))
    up = actual > last
    return {
        "MASE vs RW": float(np.mean(np.abs(pred - actual)) / rw_error) if rw_error else np.nan,
        "direction": float(np.mean(up == (pred > last))),
        "always up": float(np.mean(up)),
        "forecasts up": float(np.mean(pred > last)),
    }


def score_frame(frame: pd.DataFrame, y: pd.Series) -> pd.DataFrame:
    """Scores per forecast step of a ``rolling_forecasts`` frame (index ``h``)."""
    rows = {}
    for step, part in frame.groupby("step"):
        rows[step] = scores(part["pred"], y.loc[part["time"]].to_numpy(), part["last"])
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("h")


def random_walk_scores(frame: pd.DataFrame, y: pd.Series) -> pd.DataFrame:
    """The random walk's own row: MASE 1 by definition, no direction to score."""
    table = score_frame(frame.assign(pred=frame["last"]), y)
    table[["direction", "forecasts up"]] = np.nan  # it never predicts a move
    return table


def results_table(parts: Mapping[tuple, pd.DataFrame], names: Sequence[str]) -> pd.DataFrame:
    """Stack per-step score frames keyed by e.g. ``(series, model)`` into one table.

    ``names`` names the key levels (the last one is the model); rows are ordered
    by the other levels, then the step ``h``, then the models in insertion order.
    """
    table = pd.concat(parts, names=list(names))
    order = [*names[:-1], "h", names[-1]]
    table = table.reorder_levels(order)
    keys = table.index.to_frame(index=False)
    rank = [pd.factorize(keys[level])[0] for level in order]
    return table.iloc[np.lexsort(rank[::-1])]


def summary(table: pd.DataFrame, by: Sequence[str] = ("h", "model")) -> pd.DataFrame:
    """Mean scores over series per ``by`` (keeps the order models appear in)."""
    out = table.groupby(level=list(by), sort=False).mean()
    out["series beating RW"] = (table["MASE vs RW"] < 1).groupby(level=list(by), sort=False).sum()
    out["of"] = table["MASE vs RW"].groupby(level=list(by), sort=False).size()
    return out


def verdict(summary_table: pd.DataFrame) -> list[str]:
    """One honest line per (h, model): does it beat the random walk on average?"""
    lines = []
    for key, row in summary_table.iterrows():
        h, model = key
        if model == RANDOM_WALK:
            continue
        ratio = row["MASE vs RW"]
        margin = abs(1 - ratio)
        if margin < 5e-5:  # its forecasts are the random walk's (location weight 0)
            claim = f"ties with the random walk (MASE {ratio:.4f})"
        elif ratio < 1:
            claim = f"beats the random walk by {margin:.1%} (MASE {ratio:.4f})"
        else:
            claim = f"the random walk wins, by {margin:.1%} (MASE {ratio:.4f})"
        direction = row["direction"]
        bar = max(row["always up"], 1 - row["always up"])
        # Means over series of shares: equal rates may differ in the last bits.
        hit = "above" if direction > bar + 1e-9 else "not above"
        lines.append(
            f"h={h} {model}: {claim}; direction {direction:.1%} is {hit} the "
            f"{bar:.1%} of always guessing the more frequent move."
        )
    return lines


def format_table(table: pd.DataFrame) -> str:
    """Three decimals; blank where a score does not apply."""
    return table.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-")


# --------------------------------------------------------------------- plots
def save_plot(
    name: str,
    panels: Sequence[Mapping[str, Any]],
    output_dir: Path | None = None,
) -> Path | None:
    """Save stacked panels of history and forecasts to ``output_dir/<name>.png``.

    Each panel is a mapping with ``title``, ``history`` (a ``pd.Series``),
    ``forecasts`` (``{label: pd.Series}``, e.g. one-step forecasts at their
    target times) and optionally ``start`` (a time drawn as a dotted line, where
    the backtest begins). Returns the path, or None without matplotlib.
    """
    plt = pyplot()
    if plt is None:
        return None
    output_dir = OUTPUT_DIR if output_dir is None else Path(output_dir)
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.3 * len(panels)), squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        history = panel["history"]
        ax.plot(_x(history.index), history.to_numpy(), color="black", lw=1, label="actual")
        for i, (label, forecast) in enumerate(panel["forecasts"].items()):
            colour = _COLOURS[i % len(_COLOURS)]
            ax.plot(_x(forecast.index), forecast.to_numpy(), color=colour, lw=0.9, label=label)
        if panel.get("start") is not None:
            ax.axvline(_x(pd.Index([panel["start"]]))[0], color="grey", ls=":", lw=1)
        ax.set_title(panel["title"], fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{name}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"plot saved to {path}")
    return path


def _x(index: pd.Index) -> Any:
    """Matplotlib-friendly x values (periods become timestamps)."""
    if isinstance(index, pd.PeriodIndex):
        return index.to_timestamp()
    return index
