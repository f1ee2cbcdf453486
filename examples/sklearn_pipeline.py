"""LSTMBaseRegressor in a scikit-learn Pipeline, tuned with GridSearchCV.

A generated AR(2) series (oscillating, so "tomorrow = today" is a poor forecast)
is turned into lag windows, the first 80% of the windows are used to tune and
fit ``StandardScaler -> LSTMBaseRegressor`` with time-ordered cross-validation,
and the last 20% are forecast one step ahead. The script prints the MAE and the
directional accuracy of the LSTM next to the last-value (naive) forecast and a
linear autoregression, and saves a plot to ``examples/output/``.

Run it with the package installed (``pip install -e ".[examples]"``); it takes about 20 s
on two cores::

    python examples/sklearn_pipeline.py
"""

from __future__ import annotations

import time

import numpy as np

# examples/_common.py, next to this script: the optional matplotlib import.
from _common import OUTPUT_DIR, pyplot
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sk_metalstm import LSTMBaseRegressor

WINDOW = 8


def ar2_series(n: int, phi: tuple[float, float] = (0.5, -0.6), seed: int = 0):
    """y_t = phi1 * y_{t-1} + phi2 * y_{t-2} + e_t around a level of 10."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n + 100)
    y = np.zeros(n + 100)
    for t in range(2, n + 100):
        y[t] = phi[0] * y[t - 1] + phi[1] * y[t - 2] + noise[t]
    return 10.0 + y[100:]  # drop the burn-in


def directional_accuracy(last, actual, predicted) -> float:
    """Share of steps where the forecast moves in the same direction as the data."""
    return float(np.mean(np.sign(predicted - last) == np.sign(actual - last)))


def main() -> None:
    start = time.perf_counter()
    series = ar2_series(1000)
    # Row i holds series[i : i + WINDOW] (oldest first); the target is the next value.
    X = np.lib.stride_tricks.sliding_window_view(series[:-1], WINDOW)
    y = series[WINDOW:]
    n_train = int(0.8 * len(X))
    X_train, y_train, X_test, y_test = (
        X[:n_train],
        y[:n_train],
        X[n_train:],
        y[n_train:],
    )

    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("lstm", LSTMBaseRegressor(max_epochs=40, batch_size=32, random_state=0)),
        ]
    )
    # The regressor standardises X and y itself; the scalers show that it
    # composes with scikit-learn's pipeline and target transformers.
    model = TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler())
    search = GridSearchCV(
        model,
        {
            "regressor__lstm__hidden_size": [8, 16],
            "regressor__lstm__lr": [3e-3, 1e-2],
        },
        cv=TimeSeriesSplit(n_splits=3),  # validation folds always follow training
        scoring="neg_mean_absolute_error",
    ).fit(X_train, y_train)
    print("Grid search (mean CV MAE):")
    for params, score in zip(
        search.cv_results_["params"],
        search.cv_results_["mean_test_score"],
        strict=True,
    ):
        print(
            f"  hidden_size={params['regressor__lstm__hidden_size']:>2}  "
            f"lr={params['regressor__lstm__lr']:<6}  MAE={-score:.3f}"
        )
    print(f"Best: {search.best_params_}\n")

    last = X_test[:, -1]
    forecasts = {
        "naive (last value)": last,
        "linear AR(8)": LinearRegression().fit(X_train, y_train).predict(X_test),
        "LSTM (tuned pipeline)": search.predict(X_test),
    }
    print(f"{'model':<24}{'MAE':>8}{'MAE / naive':>14}{'direction':>12}")
    naive_mae = np.mean(np.abs(last - y_test))
    for name, pred in forecasts.items():
        mae = np.mean(np.abs(pred - y_test))
        # The naive forecast never moves, so it has no direction to score.
        direction = (
            "n/a" if pred is last else f"{directional_accuracy(last, y_test, pred):.1%}"
        )
        print(f"{name:<24}{mae:>8.3f}{mae / naive_mae:>14.2f}{direction:>12}")

    plt = pyplot()
    if plt is None:
        return
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    shown = slice(-100, None)
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(y_test[shown], color="black", lw=1.5, label="actual")
    ax.plot(forecasts["naive (last value)"][shown], ls=":", label="naive")
    ax.plot(forecasts["LSTM (tuned pipeline)"][shown], label="LSTM")
    ax.set(
        title="One-step-ahead forecasts on the last 100 test points",
        xlabel="test step",
        ylabel="value",
    )
    ax.legend()
    fig.tight_layout()
    path = OUTPUT_DIR / "sklearn_pipeline.png"
    fig.savefig(path, dpi=100)
    print(f"\nPlot saved to {path} ({time.perf_counter() - start:.0f} s in total)")


if __name__ == "__main__":
    main()
