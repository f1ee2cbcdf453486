"""The examples' shared helpers on tiny known cases; the examples import without running."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = ["stocks_few_shot", "interest_rates", "exchange_rates"]


@pytest.fixture(scope="module")
def common():
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield importlib.import_module("_common")
    finally:
        sys.path.remove(str(EXAMPLES))


def test_scores_known_case(common):
    last = [10.0, 10.0, 10.0, 10.0]
    actual = [11.0, 9.0, 12.0, 10.0]  # up, down, up, flat
    pred = [10.5, 10.5, 10.5, 9.0]  # up, up, up, down
    s = common.scores(pred, actual, last)
    # Errors: model 0.5, 1.5, 1.5, 1.0 (mean 1.125); random walk 1, 1, 2, 0 (mean 1).
    assert s["MASE vs RW"] == pytest.approx(1.125)
    # Up/not-up matches: yes, no, yes, yes (a flat day is "not up").
    assert s["direction"] == pytest.approx(0.75)
    assert s["always up"] == pytest.approx(0.5)
    assert s["forecasts up"] == pytest.approx(0.75)


def test_random_walk_scores_one_and_perfect_forecast_zero(common):
    last = np.array([1.0, 2.0, 3.0])
    actual = np.array([2.0, 1.0, 3.5])
    assert common.scores(last, actual, last)["MASE vs RW"] == pytest.approx(1.0)
    perfect = common.scores(actual, actual, last)
    assert perfect["MASE vs RW"] == 0.0
    assert perfect["direction"] == 1.0


def test_scores_edge_cases(common):
    # A series that never moves gives the random walk zero error: MASE undefined.
    assert np.isnan(common.scores([1.0, 2.0], [1.0, 1.0], [1.0, 1.0])["MASE vs RW"])
    with pytest.raises(ValueError):
        common.scores([1.0], [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        common.scores([], [], [])


def _frame(y: pd.Series) -> pd.DataFrame:
    """Hand-made rolling forecasts: origins at positions 2 and 3, steps 1 and 2."""
    rows = []
    for origin in (2, 3):
        for step in (1, 2):
            rows.append(
                {
                    "cutoff": y.index[origin],
                    "step": step,
                    "time": y.index[origin + step],
                    "pred": y.iloc[origin] + 1.0,  # always forecasts a rise of 1
                    "last": y.iloc[origin],
                }
            )
    return pd.DataFrame(rows)


def test_score_frame_and_random_walk_rows(common):
    y = pd.Series(
        [0.0, 1.0, 2.0, 4.0, 3.0, 5.0], index=pd.period_range("2000-01", periods=6, freq="M")
    )
    frame = _frame(y)
    table = common.score_frame(frame, y)
    assert list(table.index) == [1, 2]
    # Step 1: origins 2 (2 -> 4) and 3 (4 -> 3). Model errors 1, 2; random walk 2, 1.
    assert table.loc[1, "MASE vs RW"] == pytest.approx(1.0)
    assert table.loc[1, "direction"] == pytest.approx(0.5)
    assert table.loc[1, "always up"] == pytest.approx(0.5)
    # Step 2: origins 2 (2 -> 3) and 3 (4 -> 5). Model errors 0, 0.
    assert table.loc[2, "MASE vs RW"] == 0.0
    assert table.loc[2, "direction"] == 1.0
    rw = common.random_walk_scores(frame, y)
    assert np.allclose(rw["MASE vs RW"], 1.0)
    assert rw["direction"].isna().all()


def test_results_table_summary_and_verdict(common):
    one = pd.DataFrame(
        {
            "MASE vs RW": [0.9, 1.1],
            "direction": [0.6, 0.4],
            "always up": [0.5, 0.5],
            "forecasts up": [0.5, 0.5],
        },
        index=pd.Index([1, 5], name="h"),
    )
    rw = one.assign(**{"MASE vs RW": 1.0, "direction": np.nan})
    parts = {
        ("B", "model"): one,
        ("B", common.RANDOM_WALK): rw,
        ("A", "model"): one * [1.0, 1.0, 1.0, 1.0],
        ("A", common.RANDOM_WALK): rw,
    }
    table = common.results_table(parts, ["series", "model"])
    assert table.index.names == ["series", "h", "model"]
    # Insertion order of series and models is kept, steps in between.
    assert list(table.index)[:4] == [
        ("B", 1, "model"),
        ("B", 1, common.RANDOM_WALK),
        ("B", 5, "model"),
        ("B", 5, common.RANDOM_WALK),
    ]
    means = common.summary(table)
    assert means.loc[(1, "model"), "series beating RW"] == 2
    assert means.loc[(5, "model"), "series beating RW"] == 0
    lines = common.verdict(means)
    assert len(lines) == 2  # none for the random walk itself
    assert "beats the random walk by 10.0%" in lines[0]
    assert "the random walk wins, by 10.0%" in lines[1]
    assert "-" in common.format_table(table)  # NaN shown as "-"


def test_rolling_forecasts_with_naive(common):
    from sktime.forecasting.naive import NaiveForecaster
    from sktime.split import ExpandingWindowSplitter

    y = pd.Series(
        np.arange(1.0, 13.0) ** 1.5, index=pd.period_range("2000-01", periods=12, freq="M")
    )
    cv = ExpandingWindowSplitter(initial_window=8, step_length=1, fh=[1, 2])
    frame = common.rolling_forecasts(NaiveForecaster(), y, cv, strategy="update")
    assert sorted(frame["step"].unique()) == [1, 2]
    assert len(frame) == 2 * cv.get_n_splits(y)
    assert np.allclose(frame["pred"], frame["last"])  # the naive forecast is the last value
    assert np.allclose(common.score_frame(frame, y)["MASE vs RW"], 1.0)


def test_save_plot(common, tmp_path):
    pytest.importorskip("matplotlib")
    y = pd.Series(np.arange(10.0), index=pd.period_range("2000-01", periods=10, freq="M"))
    path = common.save_plot(
        "tiny",
        [{"title": "t", "history": y, "forecasts": {"f": y.iloc[5:] + 0.5}, "start": y.index[4]}],
        output_dir=tmp_path,
    )
    assert path == tmp_path / "tiny.png" and path.stat().st_size > 0


def test_plots_are_skipped_naming_the_extra_without_matplotlib(common, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert common.pyplot() is None
    assert 'pip install "sk_metalstm[examples]"' in capsys.readouterr().out


@pytest.mark.parametrize("name", SCRIPTS)
def test_examples_import_without_matplotlib(name):
    # sklearn_pipeline.py imported it at the top and failed before any work.
    code = (
        "import sys; sys.modules['matplotlib'] = None; "
        f"sys.path.insert(0, {str(EXAMPLES)!r}); import {name}"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("name", SCRIPTS)
def test_examples_import_without_running(name):
    # Importing must not train anything: everything runs under __main__.
    code = (
        f"import sys, time; sys.path.insert(0, {str(EXAMPLES)!r}); t = time.time(); "
        f"import {name} as m; assert callable(m.main); assert time.time() - t < 60"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs(name, tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "MASE" in result.stdout
    assert (EXAMPLES / "output" / f"{name}.png").exists()
