"""Searches and backtests on a Dask cluster give the sequential results.

One ``LocalCluster`` (2 worker processes, 1 thread each) serves the whole
module; it is closed in the fixture's teardown whatever the tests do. Each test
runs the same search or backtest twice, in-process and on the cluster, with a
fixed ``random_state``, and compares scores and forecasts. The task stream
shows that the work really ran on the workers, and a probe callback records the
torch intra-op thread count inside ``fit`` on the workers.
"""

from __future__ import annotations

import dataclasses
import os

import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.dataframe")  # sktime's evaluate(backend="dask") builds a dask frame

import dask  # noqa: E402
import joblib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from conftest import TINY, airline_copies  # noqa: E402
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402
from sktime.forecasting.model_evaluation import evaluate  # noqa: E402
from sktime.forecasting.model_selection import ForecastingGridSearchCV  # noqa: E402
from sktime.performance_metrics.forecasting import MeanAbsoluteError  # noqa: E402
from sktime.split import ExpandingWindowSplitter  # noqa: E402

from sk_metalstm import LSTMBaseRegressor, MetaLSTMForecaster  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """A 2-process local cluster, closed on teardown even when a test fails."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        # Workers unpickle this module's probes by reference; they can import it
        # because spawned worker processes inherit this process's sys.path.
        yield client


def _ran_on_workers(stream: list[dict], client) -> set[str]:
    """Addresses of the workers that executed tasks in a ``get_task_stream`` record."""
    workers = set(client.scheduler_info()["workers"])
    used = {task["worker"] for task in stream}
    assert used and used <= workers, (used, workers)
    return used


def _in_task_threads(client, fn, *args) -> dict[str, object]:
    """Run ``fn`` as a task on every worker and collect the results.

    torch's intra-op thread count is per OS thread: ``client.run`` would reach
    the worker's event-loop thread, not the executor thread that runs fits.
    """
    futures = {
        worker: client.submit(fn, *args, workers=[worker], allow_other_workers=False, pure=False)
        for worker in client.scheduler_info()["workers"]
    }
    return {worker: future.result() for worker, future in futures.items()}


# ----------------------------------------------------------- scikit-learn
class RecordRuntime(Callback):
    """Record torch's intra-op thread count and the process id during ``fit``."""

    def on_epoch_end(self, net, **kwargs):
        net.history.record("torch_threads", torch.get_num_threads())
        net.history.record("pid", os.getpid())


def fit_threads(estimator, X, y) -> float:
    """Scorer: the largest torch thread count seen while ``estimator`` was fitted."""
    return float(max(estimator.history_[:, "torch_threads"]))


def fit_pid(estimator, X, y) -> float:
    """Scorer: the process that fitted ``estimator``."""
    return float(estimator.history_[-1, "pid"])


def _sine_windows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    series = np.sin(np.arange(170) / 5) + 0.1 * rng.standard_normal(170)
    X = np.lib.stride_tricks.sliding_window_view(series[:-1], 8)
    return X, series[8:]


def _regressor_search(**params) -> GridSearchCV:
    return GridSearchCV(
        LSTMBaseRegressor(
            hidden_size=4, batch_size=32, random_state=0, callbacks=[RecordRuntime()], **params
        ),
        param_grid={"lr": [1e-2, 3e-2], "max_epochs": [2, 3]},
        cv=TimeSeriesSplit(n_splits=3),
        scoring={"mse": "neg_mean_squared_error", "threads": fit_threads, "pid": fit_pid},
        refit="mse",
    )


def test_sklearn_grid_search_on_dask_matches_sequential(client):
    X, y = _sine_windows()
    sequential = _regressor_search().fit(X, y)
    # A worker whose torch default is 2 threads: num_threads=1 must still apply in fit.
    _in_task_threads(client, torch.set_num_threads, 2)
    try:
        assert set(_in_task_threads(client, torch.get_num_threads).values()) == {2}
        with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
            on_dask = _regressor_search().set_params(n_jobs=-1).fit(X, y)
        after_fit = _in_task_threads(client, torch.get_num_threads)
    finally:
        _in_task_threads(client, torch.set_num_threads, 1)
    _ran_on_workers(stream.data, client)

    for key in ("mean_test_mse", "split0_test_mse", "split2_test_mse", "rank_test_mse"):
        np.testing.assert_array_equal(on_dask.cv_results_[key], sequential.cv_results_[key])
    assert on_dask.best_params_ == sequential.best_params_
    np.testing.assert_array_equal(on_dask.predict(X), sequential.predict(X))

    # Every fit ran in a worker process, with one torch thread...
    worker_pids = set(client.run(os.getpid).values())
    fitted_in = {int(p) for k in range(3) for p in on_dask.cv_results_[f"split{k}_test_pid"]}
    assert fitted_in <= worker_pids and os.getpid() not in fitted_in
    assert set(on_dask.cv_results_["mean_test_threads"]) == {1.0}
    # ...and the worker's own setting came back afterwards.
    assert set(after_fit.values()) == {2}


def test_dask_workers_start_with_one_torch_thread(client):
    """Dask's nanny sets OMP_NUM_THREADS=1 in workers, so torch's default is 1 there too."""
    assert set(_in_task_threads(client, torch.get_num_threads).values()) == {1}
    assert set(client.run(os.environ.get, "OMP_NUM_THREADS").values()) == {"1"}


# ------------------------------------------------------------------ sktime
@pytest.fixture(scope="module")
def state(_airline):
    """A tiny meta-learner pretrained on a panel of rescaled airline copies (horizon 2)."""
    forecaster = MetaLSTMForecaster(horizon=2, **TINY)
    return forecaster.pretrain(airline_copies(_airline)).pretrained_state_


def _assert_same_backtest(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert len(a) == len(b)
    np.testing.assert_array_equal(
        a["test_MeanAbsoluteError"].to_numpy(), b["test_MeanAbsoluteError"].to_numpy()
    )
    for pred_a, pred_b in zip(a["y_pred"], b["y_pred"], strict=True):
        pd.testing.assert_series_equal(pred_a, pred_b)


@pytest.mark.parametrize("pretrained", [False, True], ids=["meta-train-per-fold", "pretrained"])
def test_evaluate_on_dask_matches_sequential(client, airline, state, pretrained):
    if pretrained:
        forecaster = MetaLSTMForecaster.from_pretrained(state, random_state=0)
    else:
        forecaster = MetaLSTMForecaster(horizon=2, **TINY)
    kwargs = dict(
        forecaster=forecaster,
        cv=ExpandingWindowSplitter(initial_window=110, step_length=10, fh=[1, 2]),
        y=airline,
        scoring=MeanAbsoluteError(),
        return_data=True,
        error_score="raise",
    )
    sequential = evaluate(**kwargs, backend=None)
    # sktime collects the folds in a dask DataFrame; dask's default string
    # conversion would turn the y_train/y_test/y_pred columns into str.
    with (
        distributed.get_task_stream(client) as stream,
        dask.config.set({"dataframe.convert-string": False}),
    ):
        on_dask = evaluate(**kwargs, backend="dask")
    assert len(_ran_on_workers(stream.data, client)) >= 1
    assert len(on_dask) == 4
    _assert_same_backtest(on_dask, sequential)


def _forecaster_search(forecaster, grid, backend) -> ForecastingGridSearchCV:
    return ForecastingGridSearchCV(
        forecaster,
        cv=ExpandingWindowSplitter(initial_window=110, step_length=12, fh=[1, 2]),
        param_grid=grid,
        scoring=MeanAbsoluteError(),
        error_score="raise",
        backend=backend,
    )


@pytest.mark.parametrize(
    "pretrained, grid",
    [
        (True, {"adapt_steps": [0, 1, 4]}),
        (False, {"inner_lr": [0.05, 0.2]}),
    ],
    ids=["pretrained-adapt_steps", "meta-train-inner_lr"],
)
def test_forecasting_grid_search_on_dask_matches_sequential(
    client, airline, state, pretrained, grid
):
    if pretrained:
        # The tiny state's calibrated location weight may be 0 (its locations
        # carry no signal), which would make every adapt_steps score equal.
        unshrunk = dataclasses.replace(state, location_weight=np.ones(state.config["horizon"]))
        forecaster = MetaLSTMForecaster.from_pretrained(unshrunk, random_state=0)
    else:
        forecaster = MetaLSTMForecaster(horizon=2, **TINY)
    sequential = _forecaster_search(forecaster, grid, backend=None).fit(airline)
    with distributed.get_task_stream(client) as stream:
        on_dask = _forecaster_search(forecaster, grid, backend="dask").fit(airline)
    _ran_on_workers(stream.data, client)

    score = "mean_test_MeanAbsoluteError"
    np.testing.assert_array_equal(on_dask.cv_results_[score], sequential.cv_results_[score])
    assert on_dask.cv_results_["params"].tolist() == sequential.cv_results_["params"].tolist()
    assert on_dask.best_params_ == sequential.best_params_
    if pretrained:
        assert len(set(np.round(on_dask.cv_results_[score], 8))) == 3  # the setting matters
    pd.testing.assert_series_equal(on_dask.predict(fh=[1, 2]), sequential.predict(fh=[1, 2]))
