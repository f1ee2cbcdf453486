"""Reliability: bad input, divergence, persistence, checkpoints, determinism.

Requirement -> test (file). "(here)" is this file; F = MetaLSTMForecaster,
R = LSTMBaseRegressor.

Bad input (a clear error naming the problem and the fix)
- NaN in y: F test_nan_in_y_raises (test_forecaster.py, sktime's message);
  R test_bad_input_raises_clear_error_and_leaves_arrays (case nan_y) (test_regressor.py)
- inf in y: F test_inf_in_y_raises (here); R test_regressor_inf_in_y_raises (here)
- NaN/inf in X: F test_bad_covariates_are_refused[nan] (test_exogenous.py, sktime's
  message), test_inf_in_X_raises_at_fit_and_predict (here); R
  test_bad_input_raises_clear_error_and_leaves_arrays (cases nan_X, inf_X;
  test_regressor.py)
- series shorter than window_length + horizon (says how long): F
  test_too_short_series_says_how_long (test_forecaster.py),
  test_too_short_panel_instance_is_named (here); R: no series length, only sequences;
  zero time steps: test_bad_input_raises_clear_error_and_leaves_arrays (case no_steps)
- empty input: F test_empty_y_raises (here); R
  test_bad_input_raises_clear_error_and_leaves_arrays (case empty_X; test_regressor.py)
- non-numeric columns: F test_non_numeric_y_raises (here, sktime's message),
  test_bad_covariates_are_refused[text] (test_exogenous.py); R
  test_bad_input_raises_clear_error_and_leaves_arrays (case strings_X;
  test_regressor.py)
- duplicated time index: F test_duplicated_index_raises (test_forecaster.py),
  test_duplicated_index_in_panel_instance_raises (here)
- unsorted time index: F test_unsorted_index_raises (here, sktime's message)
- constant series: F test_constant_series_raises (test_forecaster.py),
  test_constant_panel_instance_is_named (here)
- non-positive values with a log transform: F test_log_return_of_non_positive_values,
  test_update_with_non_positive_values_after_log_returns (test_forecaster.py)
- fh beyond horizon: F test_fh_beyond_horizon_raises (test_forecaster.py),
  test_fh_beyond_horizon_in_predict_interval_raises,
  test_fit_with_fh_beyond_the_pretrained_horizon_raises_at_fit (here)
- fh as timedeltas: F test_timedelta_fh_counts_steps_of_the_series_frequency (here)
- update revising past points (the cutoff and forecast dates stay consistent): F
  test_update_with_past_data_keeps_the_forecast_origin (here)
- update indexed by another kind of time (integers, another time zone): F
  test_update_with_another_kind_of_time_index_raises (here)
- update in another layout (a Series for a panel, a panel or several columns for
  a Series), refused and rolled back: F
  test_update_refused_in_another_layout_leaves_the_forecaster_as_it_was (here)
- a series that stopped moving (peg, stale quote, rate at its floor): F
  test_series_that_stopped_moving_gets_a_non_degenerate_interval,
  test_meta_training_that_ends_flat_calibrates_on_moving_tasks (here)
- series too large for a finite variance: F
  test_predict_var_of_a_huge_price_series_raises_a_clear_error (here)
- unknown / invalid option values: F test_bad_parameters_raise (meta_learner,
  transform, device; test_forecaster.py), test_forecaster_option_values_are_checked
  (every other option, here); R test_invalid_parameters_raise_at_fit (lag_order,
  optimizer, device, ...; test_regressor.py)
- predict before fit: F test_predict_before_fit (test_forecaster.py),
  test_forecaster_methods_before_fit_raise (here); R
  test_predict_before_fit_raises_not_fitted (test_regressor.py)
- X missing / misaligned at predict: F test_predict_without_x_says_what_is_missing,
  test_predict_with_x_missing_the_first_step_is_refused,
  test_misaligned_columns_are_refused, test_x_must_cover_y (test_exogenous.py); R
  test_predict_rejects_inputs_unlike_fit (test_regressor.py)
- panels with different frequencies: F test_panel_with_mixed_frequencies (here; sktime
  accepts such panels and predict then failed obscurely, so fit now checks)
- user objects never modified: F test_user_data_not_modified (test_forecaster.py),
  test_forecaster_never_modifies_y_or_X (pretrain, fit, update, predict,
  predict_interval, predict_quantiles; y and X; here); R
  test_float64_and_float32_inputs_are_not_modified (test_regressor.py),
  test_regressor_never_modifies_pandas_or_3d_inputs (here)

Property-based (hypothesis)
- windowing round trip: test_log_return_round_trip_property,
  test_difference_round_trip_property (test_windowing.py)
- no look-ahead: test_cut_task_query_targets_after_support_targets,
  test_cut_task_scaling_ignores_values_after_support, test_cut_task_matches_deployment
  (test_windowing.py)
- task construction (sizes, query after support, random layouts):
  test_task_dataset_construction_property (test_tasks.py)
- 2-D (exogenous) windows: test_sliding_windows_2d_property,
  test_cut_task_2d_query_after_support_and_finite (test_windowing.py)
- scaling uses support values only: test_cut_task_scaling_ignores_values_after_support
  (1-D), test_cut_task_2d_scaling_uses_support_only,
  test_support_for_adaptation_ignores_older_values (test_windowing.py)

Training divergence (TrainingDiverged, never NaN forecasts)
- F meta-training: test_forecaster_huge_lr_raises_training_diverged,
  test_forecaster_injected_inf_loss_raises_training_diverged (here);
  test_nonfinite_loss_stops_training_with_a_clear_error (MetaNet, test_meta_learners.py)
- F adaptation at fit/update: test_forecaster_diverging_adaptation_raises (here);
  an overshooting (finite) update falls back to the initial weights with a warning:
  test_forecaster_overshooting_adaptation_falls_back_to_the_initial_weights (here),
  test_an_overshooting_update_rule_keeps_the_initial_weights_and_warns (test_adaptation.py)
- R: test_regressor_divergence_raises_instead_of_nan_predictions (here; before, R
  returned NaN predictions, so StopOnNonFiniteLoss is now a default callback)
- gradient clipping on by default in meta-training:
  test_meta_training_clips_gradients_by_default (here)

Persistence
- pickle: F test_pickle_fitted_and_pretrained (test_forecaster.py); R
  test_pickle_round_trip_gives_identical_predictions (test_regressor.py)
- save/load: test_forecaster_round_trip_predicts_identically,
  test_regressor_round_trip_predicts_identically (test_persistence.py)
- pretrained in one process, loaded in another, identical predictions:
  test_pretrained_state_loads_in_another_process (test_persistence.py)
- safe sharing (save_pretrained/load_pretrained, save_regressor/load_regressor; no
  code runs on load), all in test_persistence.py: identical forecasts for every
  meta_learner test_pretrained_state_safe_round_trip_forecasts_identically; R
  test_regressor_safe_round_trip_predicts_identically; crafted pickle refused
  unrun test_safe_load_refuses_a_crafted_pickle_without_running_it; bad files
  test_safe_load_refuses_invalid_files_with_a_clear_error,
  test_safe_load_refuses_invalid_settings,
  test_safe_load_refuses_config_that_does_not_match_tensors; version
  test_safe_load_warns_on_version_mismatch; unstorable parameters
  test_save_regressor_refuses_parameters_it_cannot_store_safely; GPU files on CPU
  (simulated) test_safe_files_written_on_gpu_load_on_cpu
- GPU files load on CPU (simulated): F test_forecaster_saved_on_cuda_loads_on_cpu,
  R test_regressor_saved_on_cuda_loads_on_cpu (test_gpu.py); R
  test_unpickling_a_cuda_net_on_cpu_falls_back_to_cpu (pickle, test_regressor.py)
- GPU files load on CPU (real GPU, skipped without CUDA): F
  test_forecaster_fitted_on_gpu_loads_on_cpu (test_gpu.py); R
  test_fit_on_cuda_then_predict_on_cpu_after_pickle (test_regressor.py)

Checkpoints
- resume long meta-training (Checkpoint + LoadInitState):
  test_meta_training_resumes_from_checkpoint (here; recipe in docs/reliability.md)
- Ctrl-C keeps the best state so far: test_ctrl_c_keeps_best_weights_and_returns (here)

Determinism (same random_state and data -> identical results on CPU)
- within a process: F test_random_state_makes_fits_repeatable (test_forecaster.py),
  R test_random_state_repeatable_and_seed_dependent (test_regressor.py),
  pretrain: test_pretrain_is_repeatable_within_process (here)
- across processes (fit, pretrain, regressor; bitwise):
  test_identical_results_across_processes (here)
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    GradientNormClipping,
    LoadInitState,
)
from sktime.exceptions import NotFittedError
from sktime.forecasting.base import ForecastingHorizon

import sk_metalstm.meta.net as meta_net_module
from sk_metalstm import LSTMBaseRegressor, MetaLSTMForecaster
from sk_metalstm.callbacks import KeepBestWeights, ProgressReport, StopOnNonFiniteLoss
from sk_metalstm.datasets import make_ar_returns_panel
from sk_metalstm.exceptions import (
    AdaptationFallbackWarning,
    InvalidParameterError,
    TrainingDiverged,
)


def _regression_data(n: int = 64, length: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, length)), rng.normal(size=n)


def _timestamped(y: pd.Series) -> pd.Series:
    y = y.copy()
    y.index = y.index.to_timestamp()
    return y


# ======================================================================= bad input
def test_inf_in_y_raises(airline, tiny):
    airline.iloc[10] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        MetaLSTMForecaster(**tiny).fit(airline)


def test_regressor_inf_in_y_raises():
    X, y = _regression_data()
    y[3] = np.inf
    with pytest.raises(ValueError, match="(?i)infinity"):
        LSTMBaseRegressor(hidden_size=4, max_epochs=1).fit(X, y)


def _driven(n: int = 60, seed: int = 0) -> tuple[pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2021-01-01", periods=n, freq="D")
    y = pd.Series(100 * np.exp(np.cumsum(0.01 * rng.normal(size=n))), index=index, name="y")
    return y, pd.DataFrame({"x": rng.normal(size=n)}, index=index)


def test_inf_in_X_raises_at_fit_and_predict(tiny):
    y, X = _driven()
    bad = X.copy()
    bad.iloc[4, 0] = np.inf
    with pytest.raises(ValueError, match="X contains NaN or infinite"):
        MetaLSTMForecaster(horizon=1, **tiny).fit(y, X=bad)
    forecaster = MetaLSTMForecaster(horizon=1, **tiny).fit(y.iloc[:50], X=X.iloc[:50])
    future = X.iloc[50:51].copy()
    future.iloc[0, 0] = -np.inf
    with pytest.raises(ValueError, match="passed to predict contains NaN or infinite"):
        forecaster.predict(fh=[1], X=future)


def test_too_short_panel_instance_is_named(ar_panel, tiny):
    short = ar_panel.drop(ar_panel.loc["series_2"].index[5:].map(lambda t: ("series_2", t)))
    with pytest.raises(ValueError, match="instance 'series_2'.*5 points.*= 6"):
        MetaLSTMForecaster(horizon=1, **tiny).fit(short)


def test_empty_y_raises(tiny):
    with pytest.raises(ValueError, match="is empty.*at least window_length \\+ horizon"):
        MetaLSTMForecaster(**tiny).fit(pd.Series([], dtype=float))


def test_non_numeric_y_raises(airline, tiny):
    with pytest.raises(TypeError, match="do not support categorical"):
        MetaLSTMForecaster(**tiny).fit(airline.astype(str))
    frame = pd.DataFrame({"y": airline.to_numpy(), "label": "a"}, index=airline.index)
    with pytest.raises(TypeError, match="do not support categorical"):
        MetaLSTMForecaster(**tiny).fit(frame)


def test_unsigned_integer_index_raises_at_fit(airline, pretrained_forecaster):
    # sktime's forecast times for an unsigned index come back as floats, and
    # every predict failed after a fit that had accepted it.
    y = pd.Series(airline.to_numpy(), index=pd.Index(np.arange(len(airline)), dtype="uint64"))
    with pytest.raises(ValueError, match="unsigned integer index.*astype\\('int64'\\)"):
        pretrained_forecaster.fit(y)
    forecast = pretrained_forecaster.fit(y.set_axis(y.index.astype("int64"))).predict(fh=[1])
    assert list(forecast.index) == [len(airline)]


def test_duplicated_index_in_panel_instance_raises(ar_panel, tiny):
    doubled = pd.concat([ar_panel, ar_panel.loc[["series_1"]].iloc[-1:]])
    with pytest.raises(ValueError, match="instance .series_1.. has a duplicated time index"):
        MetaLSTMForecaster(horizon=1, **tiny).fit(doubled)


def test_unsorted_index_raises(airline, tiny):
    y = _timestamped(airline)
    shuffled = y.iloc[np.r_[0:50, 51, 50, 52 : len(y)]]
    # sktime's own check; its message names the problem among other mtypes'.
    with pytest.raises(TypeError, match="index of y must be sorted monotonically increasing"):
        MetaLSTMForecaster(**tiny).fit(shuffled)


def test_panel_instance_without_a_label_is_refused(ar_panel, pretrained_forecaster):
    # groupby dropped its rows: the panel was forecast without that instance.
    labels = ar_panel.index.get_level_values("series").to_numpy(dtype=object)
    labels[labels == "series_1"] = np.nan
    unlabelled = ar_panel.set_axis(
        pd.MultiIndex.from_arrays(
            [labels, ar_panel.index.get_level_values("time")], names=["series", "time"]
        )
    )
    with pytest.raises(ValueError, match="instance level 'series' .* missing \\(NaN\\) label"):
        pretrained_forecaster.fit(unlabelled)
    with pytest.raises(ValueError, match="missing \\(NaN\\) label"):
        pretrained_forecaster.pretrain(unlabelled)


def test_returns_passed_as_levels_are_warned_about(airline, ar_panel, pretrained_forecaster, tiny):
    # "auto" differences them, and the forecast is centred on yesterday's return.
    returns = np.log(airline).diff().dropna()
    with pytest.warns(UserWarning, match="y looks like returns or changes, not levels"):
        pretrained_forecaster.fit(returns)
    panel = np.log(ar_panel["price"]).groupby(level="series").diff().dropna().to_frame()
    with pytest.warns(UserWarning, match="6 series of y \\(first: instance 'series_0'\\)"):
        MetaLSTMForecaster(horizon=1, **tiny).pretrain(panel)


@pytest.mark.parametrize(
    "series",
    [
        lambda y: y,  # prices
        lambda y: y - 280.0,  # a persistent level that crosses zero
        lambda y: -0.5 + 0.001 * np.sign(np.sin(np.arange(len(y)) * 2.0)),  # a rate at its floor
        lambda y: np.log(y).diff().dropna(),  # returns, with the transform chosen
    ],
    ids=["prices", "negative_level", "noisy_floor", "explicit_transform"],
)
def test_levels_are_not_taken_for_returns(airline, pretrained_forecaster, series):
    y = pd.Series(series(airline))
    if len(y) != len(airline):
        pretrained_forecaster.set_params(transform="difference")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*like returns")
        pretrained_forecaster.fit(y.set_axis(airline.index[-len(y) :]))


def test_constant_panel_instance_is_named(ar_panel, tiny):
    flat = ar_panel.copy()
    flat.loc["series_3", "price"] = 5.0
    with pytest.raises(ValueError, match="instance 'series_3'.*constant"):
        MetaLSTMForecaster(horizon=1, **tiny).fit(flat)


@pytest.mark.parametrize("method", ["fit", "pretrain"])
def test_non_positive_panel_instance_under_log_returns_is_named(ar_panel, tiny, method):
    negative = ar_panel.copy()
    in_series_2 = negative.index.get_level_values("series") == "series_2"
    negative.loc[in_series_2, "price"] = -negative.loc[in_series_2, "price"]
    forecaster = MetaLSTMForecaster(horizon=1, transform="log_return", **tiny)
    with pytest.raises(ValueError, match="series \\(instance 'series_2'\\) has a minimum"):
        getattr(forecaster, method)(negative)


def test_instance_of_a_multicolumn_panel_is_named_plainly(ar_panel, tiny):
    # (instance, column) pairs were shown as "(np.str_('series_3'), 'price')".
    two_columns = ar_panel.assign(other=ar_panel["price"] * 2)
    two_columns.loc["series_3", "other"] = 5.0
    with pytest.raises(ValueError, match="instance \\('series_3', 'other'\\).*constant"):
        MetaLSTMForecaster(horizon=1, **tiny).pretrain(two_columns)


def test_fh_beyond_horizon_in_predict_interval_raises(pretrained_forecaster, airline):
    forecaster = pretrained_forecaster.fit(airline)
    # The pretrained state fixes the horizon: only pretraining again extends it.
    match = "pretrained state's horizon=2; pretrain again with horizon >= 3"
    with pytest.raises(ValueError, match=match):
        forecaster.predict_interval(fh=[1, 3])
    with pytest.raises(ValueError, match="horizon=2"):
        forecaster.predict_quantiles(fh=[3], alpha=[0.5])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"device": "gpu"}, "Unknown device 'gpu'; choose 'cpu', 'cuda'"),
        ({"num_threads": 0}, "num_threads must be None or an integer >= 1"),
        # torch's thread pool aborted the interpreter (libgomp) instead.
        ({"num_threads": 10**6}, "num_threads=1000000 is more threads than torch"),
        ({"verbose": -1}, "verbose must be True, False or an integer >= 0"),
        ({"verbose": "loud"}, "verbose must be True, False or an integer >= 0"),
        ({"lr": -1.0}, "lr must be None or a number in \\(0.0, inf\\)"),
        ({"lr": "fast"}, "lr must be None or a number in \\(0.0, inf\\)"),
        ({"inner_lr": 0.0}, "inner_lr must be a number in \\(0.0, inf\\)"),
        ({"gradient_clip": 0.0}, "gradient_clip must be None or a number"),
        ({"gradient_clip": float("nan")}, "gradient_clip must be None or a number"),
        ({"first_order": "yes"}, "first_order must be True or False"),
        ({"task_stride": 0}, "task_stride must be None or an integer >= 1"),
        ({"callbacks": "early_stopping"}, "callbacks must be None or a list"),
        ({"horizon": 0}, "horizon must be None or an integer >= 1"),
        ({"adapt_steps": -1}, "adapt_steps must be None or an integer >= 0"),
        ({"inner_steps": -1}, "inner_steps must be an integer >= 0"),
        ({"max_epochs": 1.5}, "max_epochs must be an integer >= 0"),
        ({"hidden_size": 2.5}, "hidden_size must be an integer >= 1"),
        ({"num_layers": 0}, "num_layers must be an integer >= 1"),
        ({"support_size": 0}, "support_size must be an integer >= 1"),
        ({"query_size": 0}, "query_size must be an integer >= 1"),
        ({"tasks_per_batch": 0}, "tasks_per_batch must be an integer >= 1"),
        ({"validation_fraction": -0.1}, "validation_fraction must be a number in \\[0.0, 1.0\\)"),
        ({"validation_fraction": 0.999}, "validation_fraction=0.999 of .* leaves no training"),
        ({"random_state": "seed"}, "random_state='seed' is not a valid seed"),
        ({"random_state": 2**40}, "random_state=1099511627776 is not a valid seed"),
        ({"device": "cpu:abc"}, "Unknown device 'cpu:abc'"),
    ],
)
def test_forecaster_option_values_are_checked(airline, ar_panel, tiny, params, match):
    forecaster = MetaLSTMForecaster(**{**tiny, **params})  # construction never raises
    with pytest.raises(ValueError, match=match):
        forecaster.fit(airline)
    with pytest.raises(ValueError, match=match):
        MetaLSTMForecaster(**{**tiny, **params}).pretrain(ar_panel)


def test_forecaster_accepts_numpy_integers_for_sizes(airline, tiny):
    # A grid built with np.arange hands np.int64; torch refused it for the LSTM's
    # size and the task batch ("batch_size should be a positive integer value, but got 8").
    sizes = {"hidden_size": np.int64(4), "tasks_per_batch": np.int64(4)}
    forecaster = MetaLSTMForecaster(**{**tiny, **sizes, "tasks_per_epoch": np.int64(8)})
    forecaster.fit(airline, fh=[1])
    assert forecaster.pretrained_state_.config["hidden_size"] == 4
    assert type(forecaster.pretrained_state_.config["hidden_size"]) is int


@pytest.mark.parametrize("verbose", [True, False])
def test_forecaster_accepts_a_bool_verbose(ar_panel, tiny, capsys, monkeypatch, verbose):
    # scikit-learn and skorch take verbose=True; it means 1 here as there:
    # progress lines (shown at once here) but not skorch's epoch table.
    monkeypatch.setattr(ProgressReport, "interval", 0.0)
    MetaLSTMForecaster(**{**tiny, "verbose": verbose}).pretrain(ar_panel)
    printed = capsys.readouterr()
    assert bool(printed.err) is verbose
    assert "train_loss" not in printed.out


def test_forecaster_methods_before_fit_raise(airline, tiny):
    forecaster = MetaLSTMForecaster(**tiny)
    with pytest.raises(NotFittedError):
        forecaster.predict_interval(fh=[1])
    with pytest.raises(NotFittedError):
        forecaster.update(airline)


def _mixed_frequency_panel() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    parts = {
        name: pd.Series(
            100 + np.cumsum(rng.normal(size=60)),
            index=pd.date_range("2020-01-01", periods=60, freq=freq),
        )
        for name, freq in (("daily", "D"), ("weekly", "W"), ("daily_2", "D"))
    }
    return pd.concat(parts, names=["id", "time"]).to_frame("y")


def test_panel_with_mixed_frequencies(tiny):
    panel = _mixed_frequency_panel()
    # sktime accepts the panel itself (checked here so a change in sktime shows up).
    from sktime.datatypes import check_is_mtype

    assert check_is_mtype(panel, "pd-multiindex")
    with pytest.raises(ValueError, match="different frequencies.*'D'.*'W-SUN'.*resample"):
        MetaLSTMForecaster(horizon=1, **tiny).fit(panel)
    # Pretraining only cuts tasks from each series alone: mixing frequencies is fine.
    forecaster = MetaLSTMForecaster(horizon=1, **tiny).pretrain(panel)
    daily = panel.loc[["daily", "daily_2"]]
    pred = forecaster.fit(daily).predict(fh=[1])
    assert np.all(np.isfinite(pred.to_numpy()))


def test_forecaster_never_modifies_y_or_X(tiny):
    series = [_driven(90, seed) for seed in range(3)]
    y_panel = pd.concat({f"s{i}": s[0] for i, s in enumerate(series)}, names=["id", "time"])
    y_panel = y_panel.to_frame("y")
    X_panel = pd.concat({f"s{i}": s[1] for i, s in enumerate(series)}, names=["id", "time"])
    y, X = _driven(90, seed=7)
    inputs = {
        "y_panel": y_panel,
        "X_panel": X_panel,
        "y_fit": y.iloc[:70],
        "X_fit": X.iloc[:70],
        "y_new": y.iloc[70:75],
        "X_new": X.iloc[70:75],
        "X_future": X.iloc[75:77],
    }
    copies = copy.deepcopy(inputs)

    forecaster = MetaLSTMForecaster(horizon=2, **tiny)
    forecaster.pretrain(inputs["y_panel"], X=inputs["X_panel"])
    forecaster.fit(inputs["y_fit"], X=inputs["X_fit"])
    forecaster.update(inputs["y_new"], X=inputs["X_new"])
    forecaster.predict(fh=[1, 2], X=inputs["X_future"])
    forecaster.predict_interval(fh=[1, 2], X=inputs["X_future"], coverage=0.9)
    forecaster.predict_quantiles(fh=[1, 2], X=inputs["X_future"], alpha=[0.1, 0.9])
    # Without pretrain (fit meta-trains on y itself), on a panel.
    MetaLSTMForecaster(horizon=1, **tiny).fit(inputs["y_panel"], X=inputs["X_panel"])

    for name, value in inputs.items():
        assert_equal = (
            pd.testing.assert_series_equal
            if isinstance(value, pd.Series)
            else pd.testing.assert_frame_equal
        )
        assert_equal(value, copies[name], check_freq=True, obj=name)


def test_regressor_never_modifies_pandas_or_3d_inputs():
    X, y = _regression_data(40, 4)
    X_df, y_s = pd.DataFrame(X, columns=list("abcd")), pd.Series(y, name="t")
    X3 = np.stack([X, 2 * X], axis=-1)
    X3.flags.writeable = False  # a read-only array must work too (and stay untouched)
    copies = X_df.copy(), y_s.copy(), X3.copy()
    reg = LSTMBaseRegressor(hidden_size=4, max_epochs=1, lag_order="newest_first")
    reg.fit(X_df, y_s).predict(X_df)
    LSTMBaseRegressor(hidden_size=4, max_epochs=1).fit(X3, y_s).predict(X3)
    pd.testing.assert_frame_equal(X_df, copies[0])
    pd.testing.assert_series_equal(y_s, copies[1])
    np.testing.assert_array_equal(X3, copies[2])


# ============================================================== training divergence
def test_forecaster_huge_lr_raises_training_diverged(airline, tiny):
    forecaster = MetaLSTMForecaster(horizon=1, **{**tiny, "lr": 1e6})
    with pytest.raises(TrainingDiverged, match="train_loss became (inf|nan).*Lower lr"):
        forecaster.fit(airline)
    with pytest.raises(NotFittedError):
        forecaster.predict(fh=[1])


def test_forecaster_injected_inf_loss_raises_training_diverged(airline, tiny, monkeypatch):
    original = meta_net_module.MetaNet.get_loss
    calls = []

    def poisoned(self, y_pred, y_true, X=None, training=False):
        loss = original(self, y_pred, y_true, X=X, training=training)
        calls.append(training)
        return loss * float("inf") if training and len(calls) == 3 else loss

    monkeypatch.setattr(meta_net_module.MetaNet, "get_loss", poisoned)
    forecaster = MetaLSTMForecaster(horizon=1, **{**tiny, "base_max_epochs": 0})
    with pytest.raises(TrainingDiverged, match="train_loss became inf at epoch 1"):
        forecaster.pretrain(make_ar_returns_panel(3, 60, random_state=0))
    assert not hasattr(forecaster, "pretrained_state_")


def test_forecaster_diverging_adaptation_falls_back_with_a_warning(airline, tiny):
    # Fine-tuning is not meta-trained, so nothing bounds its SGD steps at fit
    # time. Overflowing weights raised at fit, while pretrain's calibration
    # kept the starting weights for the same tasks: now both fall back.
    settings = {**tiny, "meta_learner": "finetune", "inner_lr": 1e6, "inner_steps": 5}
    forecaster = MetaLSTMForecaster(horizon=2, **settings)
    with pytest.warns(AdaptationFallbackWarning, match="1 of 1 series.*non-finite weights"):
        forecaster.fit(airline)
    unadapted = MetaLSTMForecaster(horizon=2, adapt_steps=0, **settings).fit(airline)
    pd.testing.assert_series_equal(forecaster.predict(fh=[1, 2]), unadapted.predict(fh=[1, 2]))
    # update: a diverging adaptation keeps the starting weights for the new data too.
    sane = MetaLSTMForecaster(
        horizon=2, **{**tiny, "meta_learner": "finetune", "inner_steps": 5}
    ).fit(airline[:120])
    sane.pretrained_state_.learner.inner_lr = 1e6
    with pytest.warns(AdaptationFallbackWarning, match="non-finite weights"):
        sane.update(airline[120:125])
    assert sane.cutoff[0] == airline.index[124]
    assert np.all(np.isfinite(sane.predict(fh=[1, 2])))


def test_forecaster_overshooting_adaptation_falls_back_to_the_initial_weights(airline, tiny):
    # Finite weights but a worse fit of the series' own windows: before, such a
    # step silently widened a stock's 90% interval fourfold.
    settings = {**tiny, "meta_learner": "finetune", "inner_lr": 30.0, "inner_steps": 5}
    forecaster = MetaLSTMForecaster(horizon=2, **settings)
    advice = "1 of 1 series.*lower adapt_steps, or pretrain again with a smaller inner_lr"
    with pytest.warns(AdaptationFallbackWarning, match=advice) as seen:
        forecaster.fit(airline)
    # The warning points at the caller's line, not into the library.
    assert [w.filename for w in seen if w.category is AdaptationFallbackWarning] == [__file__]
    unadapted = MetaLSTMForecaster(horizon=2, adapt_steps=0, **settings).fit(airline)
    pd.testing.assert_frame_equal(
        forecaster.predict_interval(fh=[1, 2], coverage=0.9),
        unadapted.predict_interval(fh=[1, 2], coverage=0.9),
    )


def test_regressor_divergence_raises_instead_of_nan_predictions():
    X, y = _regression_data()
    params = dict(hidden_size=4, max_epochs=10, lr=1e8, optimizer="sgd", random_state=0)
    reg = LSTMBaseRegressor(**params)
    with pytest.raises(TrainingDiverged, match="train_loss became (inf|nan).*Lower lr"):
        reg.fit(X, 1e3 * y)
    assert not hasattr(reg, "net_")  # not fitted, so no NaN predictions either
    # A failing refit does not leave the previous net behind.
    reg.set_params(lr=1e-3, optimizer="adam").fit(X, y)
    with pytest.raises(TrainingDiverged):
        reg.set_params(**params).fit(X, 1e3 * y)
    with pytest.raises(SklearnNotFittedError):
        reg.predict(X)
    _assert_unfitted(reg)
    names = dict(LSTMBaseRegressor(hidden_size=4, max_epochs=1).fit(X, y).net_.callbacks_)
    assert isinstance(names["stop_on_nonfinite"], StopOnNonFiniteLoss)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"device": "cuda"}, id="missing_gpu"),
        pytest.param({"device": "mps"}, id="missing_mps"),
        pytest.param({"validation_fraction": 0.5}, id="too_few_rows_to_split"),
    ],
)
def test_regressor_refit_failing_before_training_leaves_it_unfitted(failure):
    # The old net once survived with the new data's scaling: predictions in the
    # wrong units, silently.
    if failure.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    if failure.get("device") == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has an MPS device")
    X, y = _regression_data()
    reg = LSTMBaseRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError):
        reg.set_params(**failure).fit(1000 * X[:1] + 500, 100 * y[:1] + 7)
    with pytest.raises(SklearnNotFittedError):
        reg.predict(X)
    _assert_unfitted(reg)


def test_regressor_refit_on_refused_data_leaves_no_fitted_attributes():
    # validate_data had already set n_features_in_ (to the refused data's 0)
    # and the earlier fit's scaling stayed: check_is_fitted passed, predict
    # raised NotFittedError, and a pipeline looked fitted too.
    X, y = _regression_data()
    reg = LSTMBaseRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X, y)
    pipe = make_pipeline(FunctionTransformer(), reg)
    pipe.fit(X, y)
    with pytest.raises(ValueError):
        pipe.fit(np.zeros((len(X), 0, 1)), y)
    _assert_unfitted(reg)
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(pipe)


def _assert_unfitted(reg):
    """Nothing of a fit is left: scikit-learn's fitted check agrees with predict."""
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(reg)
    assert not [name for name in vars(reg) if name.endswith("_") and not name.startswith("__")]


@pytest.mark.parametrize(
    ("callbacks", "match"),
    [
        (["early_stopping"], "is not a skorch Callback"),
        ([("stopper", 1)], "is not a skorch Callback"),
        ([("a", Checkpoint(dirname="x"), 3)], "is not a \\(name, callback\\) tuple"),
        ([("stop_on_nonfinite", EarlyStopping(monitor="train_loss"))], "package.s own callbacks"),
    ],
    ids=["string", "not_a_callback", "three_tuple", "reserved_name"],
)
def test_bad_callbacks_entries_are_named(callbacks, match):
    # skorch failed later with "'str' object has no attribute 'set_params'".
    X, y = _regression_data()
    with pytest.raises(InvalidParameterError, match=match):
        LSTMBaseRegressor(hidden_size=4, max_epochs=1, callbacks=callbacks).fit(X, y)


@pytest.mark.parametrize(
    ("callbacks", "match"),
    [
        ([1], "is not a skorch Callback"),
        ([("a",)], "is not a \\(name, callback\\) tuple"),
        ([("keep_best", EarlyStopping(monitor="train_loss"))], "package.s own callbacks"),
        ([("early_stopping", EarlyStopping())], "'early_stopping' is used by the package"),
        ([("gradient_clip", EarlyStopping())], "'gradient_clip' is used by the package"),
    ],
    ids=["not_a_callback", "one_tuple", "reserved_name", "early_stopping", "gradient_clip"],
)
def test_forecaster_refuses_bad_callback_entries_before_training(callbacks, match, monkeypatch):
    # They were checked when the meta phase's net was built, after the whole
    # pooled phase had trained (minutes with the defaults on a real panel).
    import sk_metalstm.meta.training as training

    phases = []
    build = training.build_meta_net
    monkeypatch.setattr(
        training, "build_meta_net", lambda *a, **k: phases.append(k["phase"]) or build(*a, **k)
    )
    y = pd.Series(np.cumsum(np.random.default_rng(0).normal(size=80)) + 50.0)
    forecaster = MetaLSTMForecaster(
        window_length=5, hidden_size=4, support_size=8, query_size=2, max_epochs=1,
        base_max_epochs=2, verbose=0, callbacks=callbacks,
    )
    with pytest.raises(InvalidParameterError, match=match):
        forecaster.fit(y)
    assert phases == []


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("progress", {"verbose": 0}),
        ("time_budget", {"max_time": None}),
        ("gradient_clip", {"gradient_clip": None}),
        ("early_stopping", {"validation_fraction": 0.0}),
    ],
)
def test_forecaster_accepts_names_its_own_callbacks_do_not_take(name, settings):
    # The early check reserves only what this configuration's meta phase adds.
    y = pd.Series(np.cumsum(np.random.default_rng(0).normal(size=80)) + 50.0)
    forecaster = MetaLSTMForecaster(
        window_length=5, hidden_size=4, support_size=8, query_size=2, max_epochs=1,
        base_max_epochs=1, **{"verbose": 0, **settings},
        callbacks=[(name, EarlyStopping(monitor="train_loss"))],
    )
    assert np.isfinite(forecaster.fit(y).predict(fh=[1])).all()


@pytest.mark.parametrize("callback", [EarlyStopping(), EarlyStopping], ids=["instance", "class"])
def test_validation_monitor_without_validation_split_raises_up_front(callback):
    # skorch failed after a full epoch with KeyError: 'valid_loss'.
    X, y = _regression_data()
    reg = LSTMBaseRegressor(hidden_size=4, max_epochs=1, callbacks=[callback])
    with pytest.raises(InvalidParameterError, match="monitors 'valid_loss'.*validation_fraction"):
        reg.fit(X, y)
    reg.set_params(validation_fraction=0.2).fit(X, y)


@pytest.mark.parametrize(
    ("fraction", "match"),
    [(0.0, "validation_fraction=0.0 holds out"), (0.1, "of 2 meta-training tasks leaves no")],
)
def test_forecaster_validation_monitor_without_validation_tasks_raises_up_front(fraction, match):
    # skorch failed with KeyError: 'valid_loss' after the pooled phase had trained;
    # a short series leaves no validation task even at the default fraction.
    y = pd.Series(np.cumsum(np.random.default_rng(0).normal(size=20)) + 50.0)
    forecaster = MetaLSTMForecaster(
        window_length=5, hidden_size=4, support_size=8, query_size=2, horizon=2,
        max_epochs=2, base_max_epochs=1, validation_fraction=fraction, verbose=0,
        callbacks=[EarlyStopping(monitor="valid_loss")],
    )
    with pytest.raises(InvalidParameterError, match=f"monitors 'valid_loss'.*{match}"):
        forecaster.fit(y)


class _RecordCallbacks(Callback):
    seen: list = []  # class-level: meta-training deep-copies user callbacks

    def on_train_begin(self, net, **kwargs):
        _RecordCallbacks.seen.append(dict(net.callbacks_))


def test_meta_training_clips_gradients_by_default(airline, tiny):
    _RecordCallbacks.seen.clear()
    forecaster = MetaLSTMForecaster(horizon=1, callbacks=[_RecordCallbacks()], **tiny)
    assert forecaster.gradient_clip == 1.0
    forecaster.fit(airline)
    (callbacks,) = _RecordCallbacks.seen  # user callbacks go to the meta phase only
    clip = callbacks["gradient_clip"]
    assert isinstance(clip, GradientNormClipping) and clip.gradient_clip_value == 1.0
    assert isinstance(callbacks["stop_on_nonfinite"], StopOnNonFiniteLoss)
    _RecordCallbacks.seen.clear()
    MetaLSTMForecaster(horizon=1, callbacks=[_RecordCallbacks()], gradient_clip=None, **tiny).fit(
        airline
    )
    assert "gradient_clip" not in _RecordCallbacks.seen[0]


@pytest.mark.parametrize("meta_learner", ["none", "finetune"])
def test_user_callbacks_join_the_pooled_phase_when_nothing_is_meta_trained(
    airline, tiny, meta_learner
):
    # Without a meta phase they went nowhere: a user's logger or checkpoint never ran.
    _RecordCallbacks.seen.clear()
    MetaLSTMForecaster(
        horizon=1, callbacks=[_RecordCallbacks()], **{**tiny, "meta_learner": meta_learner}
    ).fit(airline)
    (callbacks,) = _RecordCallbacks.seen
    assert "progress" in callbacks or "gradient_clip" in callbacks  # the package's own kept


# ===================================================================== checkpoints
class _RecordStartWeights(Callback):
    seen: list = []

    def on_train_begin(self, net, **kwargs):
        state = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}
        _RecordStartWeights.seen.append(state)


RESUME = {"horizon": 1, "max_epochs": 4, "lr": 1e-2}


def test_meta_training_resumes_from_checkpoint(airline, tiny, tmp_path):
    def callbacks():
        # The recipe of docs/reliability.md: the same two callbacks in every run.
        checkpoint = Checkpoint(monitor="train_loss_best", dirname=str(tmp_path / "ckpt"))
        return [checkpoint, LoadInitState(checkpoint), _RecordStartWeights()]

    _RecordStartWeights.seen.clear()
    first = MetaLSTMForecaster(callbacks=callbacks(), **{**tiny, **RESUME}).fit(airline)
    assert (tmp_path / "ckpt" / "params.pt").exists()
    losses_1 = first.pretrained_state_.history[-1][:, "train_loss"]
    # Training must make clear progress for the resume checks below to mean anything.
    assert len(losses_1) == 4 and losses_1[-1] < 0.9 * losses_1[0]

    # A second run (a new process would do the same) picks up the checkpoint.
    second = MetaLSTMForecaster(callbacks=callbacks(), **{**tiny, **RESUME}).fit(airline)
    start = _RecordStartWeights.seen[1]
    final_1 = first.pretrained_state_.learner.state_dict()
    for name, value in final_1.items():
        torch.testing.assert_close(start[name], value, rtol=0, atol=0, msg=name)
    history = second.pretrained_state_.history[-1]
    losses_2 = history[:, "train_loss"]
    assert len(losses_2) == 8  # the loaded history plus the new epochs
    np.testing.assert_allclose(losses_2[:4], losses_1)
    resumed = losses_2[4]
    assert abs(resumed - losses_1[-1]) < abs(resumed - losses_1[0])
    assert resumed < losses_1[0] - 0.5 * (losses_1[0] - losses_1[-1])


class _CtrlC(Callback):
    """Press Ctrl-C in the middle of epoch 3, after recording every epoch's weights."""

    snapshots: list = []
    at_interrupt: dict = {}

    def on_epoch_end(self, net, **kwargs):
        state = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}
        _CtrlC.snapshots.append((net.history[-1, "train_loss"], state))

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training and len(net.history) == 3 and len(net.history[-1, "batches"]) == 2:
            _CtrlC.at_interrupt.update(
                {k: v.detach().clone() for k, v in net.module_.state_dict().items()}
            )
            raise KeyboardInterrupt


def test_ctrl_c_keeps_best_weights_and_returns(airline, tiny):
    _CtrlC.snapshots.clear()
    _CtrlC.at_interrupt.clear()
    forecaster = MetaLSTMForecaster(
        callbacks=[_CtrlC()], **{**tiny, **RESUME, "max_epochs": 10, "task_stride": 2}
    )
    forecaster.fit(airline)  # returns normally: skorch ends training on KeyboardInterrupt
    assert len(_CtrlC.snapshots) == 2 and _CtrlC.at_interrupt
    best_loss, best = min(_CtrlC.snapshots, key=lambda item: item[0])
    final = forecaster.pretrained_state_.learner.state_dict()
    for name, value in final.items():
        torch.testing.assert_close(value, best[name], rtol=0, atol=0, msg=name)
    assert any(not torch.equal(final[k], _CtrlC.at_interrupt[k]) for k in final)
    assert len(forecaster.pretrained_state_.history[-1]) == 3  # stopped in epoch 3
    assert np.all(np.isfinite(forecaster.predict(fh=[1]).to_numpy()))


# ===================================================================== determinism
_DETERMINISM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from sktime.datasets import load_airline
    from sk_metalstm import LSTMBaseRegressor, MetaLSTMForecaster
    from sk_metalstm.datasets import make_ar_returns_panel

    def run(tiny):
        y = load_airline()
        out = {}
        fitted = MetaLSTMForecaster(horizon=2, **tiny).fit(y)
        out["fit_predict"] = fitted.predict(fh=[1, 2]).to_numpy()
        iv = fitted.predict_interval(fh=[1, 2], coverage=0.9)
        out["fit_interval"] = iv.to_numpy()
        panel = make_ar_returns_panel(4, 60, random_state=0)
        pre = MetaLSTMForecaster(horizon=2, **tiny).pretrain(panel)
        out["pretrain_weights"] = np.concatenate(
            [p.detach().numpy().ravel() for p in pre.pretrained_state_.learner.parameters()]
        )
        out["pretrain_predict"] = pre.fit(y).predict(fh=[1, 2]).to_numpy()
        rng = np.random.default_rng(0)
        X, t = rng.normal(size=(64, 5)), rng.normal(size=64)
        reg = LSTMBaseRegressor(hidden_size=4, max_epochs=2, random_state=0).fit(X, t)
        out["regressor"] = reg.predict(X)
        return out

    if __name__ == "__main__":
        np.savez(sys.argv[1], **run(json.loads(sys.argv[2])))
    """
)


def _determinism_run(tiny: dict) -> dict:
    namespace: dict = {"__name__": "not_main"}
    exec(compile(_DETERMINISM_SCRIPT, "determinism", "exec"), namespace)
    return namespace["run"](tiny)


def test_pretrain_is_repeatable_within_process(ar_panel, airline, tiny):
    a = MetaLSTMForecaster(horizon=2, **tiny).pretrain(ar_panel)
    b = MetaLSTMForecaster(horizon=2, **tiny).pretrain(ar_panel)
    for (name, p), q in zip(
        a.pretrained_state_.learner.named_parameters(),
        b.pretrained_state_.learner.parameters(),
        strict=True,
    ):
        assert torch.equal(p, q), name
    pd.testing.assert_series_equal(
        a.fit(airline).predict(fh=[1, 2]), b.fit(airline).predict(fh=[1, 2]), check_exact=True
    )


def test_seeded_fits_in_threads_equal_sequential_ones_and_leave_torch_alone():
    # torch's RNG and thread count are process-wide: fits overlapping in
    # threads (sktime's backend="threading", a thread pool) seeded and restored
    # each other's, and the results changed from run to run.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 10)).astype(np.float32)
    y = 0.5 * X[:, -1] + 0.1 * rng.normal(size=200).astype(np.float32)

    def fit(seed: int) -> np.ndarray:
        model = LSTMBaseRegressor(hidden_size=8, max_epochs=3, random_state=seed)
        return model.fit(X, y).predict(X[:5])

    seeds = [0, 1, 0, 1]
    expected = [fit(seed) for seed in seeds]
    torch.manual_seed(123)
    rng_before, threads_before = torch.get_rng_state().clone(), torch.get_num_threads()
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(fit, seeds))
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.get_num_threads() == threads_before


_FORK_SCRIPT = """
import os, threading, time
from sk_metalstm._torch_runtime import torch_runtime

held, release = threading.Event(), threading.Event()

def background():  # a long fit in another thread, holding the runtime's lock
    with torch_runtime(0, 1):
        held.set()
        release.wait()

threading.Thread(target=background, daemon=True).start()
held.wait()
pid = os.fork()
if pid == 0:  # the forked child computes, as a joblib "multiprocessing" worker
    with torch_runtime(0, 1):
        pass
    os._exit(0)
for _ in range(200):
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print("child finished", os.waitstatus_to_exitcode(status))
        break
    time.sleep(0.05)
else:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    print("child hung")
release.set()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_process_forked_while_another_thread_computes_can_compute(tmp_path):
    # The child inherited the runtime's lock held by a thread it does not have,
    # and its first fit or predict waited forever.
    script = tmp_path / "fork.py"
    script.write_text(_FORK_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    ).stdout
    assert "child finished 0" in out, out


def test_identical_results_across_processes(tiny, tmp_path):
    script = tmp_path / "determinism.py"
    script.write_text(_DETERMINISM_SCRIPT)
    procs = []
    for k, hash_seed in enumerate(("0", "12345")):  # and different hash seeds
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = tmp_path / f"run{k}.npz"
        cmd = [sys.executable, str(script), str(out), json.dumps(tiny)]
        procs.append((out, subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)))
    try:
        here = _determinism_run(tiny)  # this process, meanwhile
        runs = []
        for out, proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()[-2000:]
            runs.append(dict(np.load(out)))
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for name, value in here.items():
        assert np.all(np.isfinite(value)), name
        for run in runs:
            # Bitwise: same bytes, not merely close.
            assert run[name].tobytes() == np.asarray(value).tobytes(), name


# --------------------------------------------------------------- odd updates and fh
def _daily(n: int = 80) -> pd.Series:
    rng = np.random.default_rng(0)
    values = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.Series(values, index=pd.date_range("2021-01-01", periods=n, freq="D"))


@pytest.mark.parametrize("revision", ["one_revised_point", "only_past_points", "before_the_kept"])
def test_update_with_past_data_keeps_the_forecast_origin(pretrained_forecaster, revision):
    # A vendor revising a past quote must not move the forecast origin back,
    # and the reported cutoff must agree with the dates of the forecasts.
    y = _daily()
    forecaster = pretrained_forecaster.fit(y.iloc[:60], fh=[1])
    forecaster.update(y.iloc[60:63])
    before = forecaster.predict()
    past = {
        "one_revised_point": y.iloc[61:62] * 1.01,
        "only_past_points": y.iloc[40:50],
        # Older than the points the state keeps: they cannot change a forecast
        # (this was refused as "an irregular DatetimeIndex").
        "before_the_kept": y.iloc[:5] * 1.5,
    }[revision]
    forecaster.update(past)
    if revision == "before_the_kept":
        pd.testing.assert_series_equal(forecaster.predict(), before)
    assert forecaster.cutoff[0] == y.index[62]
    forecast = forecaster.predict()
    assert forecast.index[0] == y.index[62] + pd.Timedelta(days=1)
    assert forecast.index.equals(forecaster.fh.to_absolute_index(forecaster.cutoff))


def test_numpy_update_of_new_rows_is_refused_not_dropped(pretrained_forecaster):
    # sktime indexes a numpy update's rows 0, 1, ...: they were taken as
    # revisions of the series' start and dropped without a word.
    y = _daily().to_numpy()
    forecaster = pretrained_forecaster.fit(y[:60], fh=[1])
    before = forecaster.predict()
    with pytest.raises(ValueError, match=r"numpy array of 5 time point.*index=range\(60, 65\)"):
        forecaster.update(y[60:65])
    assert forecaster.cutoff[0] == 59
    np.testing.assert_array_equal(forecaster.predict(), before)
    # The whole history as one array reaches past the cutoff and appends.
    forecaster.update(y[:65])
    assert forecaster.cutoff[0] == 64
    # A panel as a numpy3D array (instances, 1, time) the same.
    panel = np.stack([y, 2 * y])[:, None, :]
    forecaster = pretrained_forecaster.fit(panel[:, :, :60], fh=[1])
    with pytest.raises(ValueError, match="numpy array of 5 time point"):
        forecaster.update(panel[:, :, 60:65])
    assert forecaster.cutoff[0] == 59


@pytest.mark.parametrize("n_new", [1, 3, 4])
def test_update_without_freq_keeps_the_series_business_day_frequency(pretrained_forecaster, n_new):
    # Dates read from a file carry no freq; sktime infers the cutoff's from the
    # update's rows alone, and three weekdays in a row look daily.
    dates = pd.bdate_range("2022-01-03", periods=80)
    y = pd.Series(_daily().to_numpy(), index=pd.DatetimeIndex(dates.to_numpy()))
    forecaster = pretrained_forecaster.fit(y.iloc[:-n_new])
    forecaster.update(y.iloc[-n_new:])
    forecast = forecaster.predict(fh=[1, 2])
    expected = pd.bdate_range(dates[-1], periods=3)[1:]
    assert list(forecast.index) == list(expected)
    assert forecaster.predict_interval(fh=[1, 2]).index.equals(forecast.index)


def test_update_predict_on_business_days_without_freq(pretrained_forecaster):
    # update_predict checks its fh against sktime's cutoff before _update
    # runs: "Frequencies from two sources do not coincide".
    from sktime.split import ExpandingWindowSplitter

    dates = pd.bdate_range("2022-01-03", periods=80)
    values = _daily().to_numpy()
    cv = ExpandingWindowSplitter(initial_window=1, step_length=1, fh=[1, 2])
    forecasts = []
    for index in (dates, pd.DatetimeIndex(dates.to_numpy())):  # with and without freq
        y = pd.Series(values, index=index)
        forecaster = pretrained_forecaster.clone().fit(y.iloc[:-5])
        forecasts.append(forecaster.update_predict(y.iloc[-5:], cv=cv))
    pd.testing.assert_frame_equal(forecasts[1], forecasts[0], check_freq=False)


def test_update_predict_from_origins_inside_the_fitted_history_is_refused(pretrained_forecaster):
    # sktime moves the cutoff back to each origin in y; the forecaster cannot,
    # so origins before its cutoff were all forecast from it (here 79
    # forecasts came back under 20 labels).
    from sktime.split import ExpandingWindowSplitter

    y = _daily()
    forecaster = pretrained_forecaster.fit(y.iloc[:60])
    cutoff = forecaster.cutoff
    with pytest.raises(ValueError, match="first forecast origin is .* already seen the series"):
        forecaster.update_predict(y)
    assert forecaster.cutoff.equals(cutoff)
    # Origins from the cutoff on are forecast as plain updates would.
    plain = copy.deepcopy(forecaster)
    expected = [plain.update(y.iloc[i : i + 1]).predict(fh=[1]) for i in range(60, 65)]
    from_cutoff = forecaster.update_predict(y.iloc[59:66])
    assert from_cutoff.index.is_unique and len(from_cutoff) == 6
    np.testing.assert_allclose(from_cutoff.iloc[0], forecaster.predict(fh=[1]).iloc[0])
    np.testing.assert_allclose(from_cutoff.iloc[1:6], pd.concat(expected), rtol=1e-12)
    # A splitter whose first window ends at the cutoff, though y starts before it.
    cv = ExpandingWindowSplitter(initial_window=5, fh=1)
    windowed = forecaster.update_predict(y.iloc[55:66], cv=cv)
    np.testing.assert_allclose(windowed.iloc[1:6], pd.concat(expected), rtol=1e-12)


def test_a_refused_backtest_without_reset_leaves_the_cutoff(pretrained_forecaster):
    # Without reset_forecaster sktime moves the cutoff to y's start before
    # the first update: a refused update must not leave it there, past the data.
    y = _daily()
    forecaster = pretrained_forecaster.fit(y.iloc[:60])
    cutoff, before = forecaster.cutoff, forecaster.predict(fh=[1, 2])
    with pytest.raises(ValueError, match="update data start at"):
        forecaster.update_predict(y.iloc[64:70], reset_forecaster=False)
    assert forecaster.cutoff.equals(cutoff)
    pd.testing.assert_series_equal(forecaster.predict(fh=[1, 2]), before)


def test_a_refused_update_predict_single_leaves_the_cutoff(pretrained_forecaster):
    # sktime moves the cutoff before the update is checked: a refused one left
    # it three points on, and an absolute fh of the next dates was "in-sample".
    y = _daily()
    forecaster = pretrained_forecaster.fit(y.iloc[:60])
    cutoff, before = forecaster.cutoff, forecaster.predict(fh=[1, 2])
    with pytest.raises(ValueError, match="update data start at"):
        forecaster.update_predict_single(y.iloc[62:65], fh=[1])
    assert forecaster.cutoff.equals(cutoff)
    pd.testing.assert_series_equal(forecaster.predict(fh=[1, 2]), before)


def test_timedelta_fh_counts_steps_of_the_series_frequency(pretrained_forecaster):
    y = _daily()
    forecaster = pretrained_forecaster.fit(y.iloc[:60])
    by_timedelta = forecaster.predict(fh=pd.to_timedelta([1, 2], unit="D"))
    pd.testing.assert_series_equal(by_timedelta, forecaster.predict(fh=[1, 2]))
    # Months have no fixed length: pandas' TypeError became the package's message.
    months = pd.period_range("2000-01", periods=60, freq="M")
    monthly = pretrained_forecaster.fit(y.iloc[:60].set_axis(months))
    with pytest.raises(ValueError, match=r"\(time spans\) cannot be counted in steps"):
        monthly.predict(fh=pd.to_timedelta([1, 2], unit="D"))


def test_absolute_fh_across_daylight_saving_or_in_another_zone(pretrained_forecaster):
    # sktime counts absolute steps through tz-dropping periods: these valid
    # times came back a step off and were refused as "not on the grid".
    index = pd.date_range(end="2021-03-14 01:00", periods=80, freq="h", tz="US/Eastern")
    y = pd.Series(_daily().to_numpy(), index=index)  # DST starts at 02:00
    forecaster = pretrained_forecaster.fit(y, fh=[1, 2])
    by_step = forecaster.predict()
    times = pd.date_range(index[-1], periods=3, freq="h")[1:]  # 03:00 and 04:00 EDT
    np.testing.assert_array_equal(forecaster.predict(fh=times).to_numpy(), by_step.to_numpy())
    in_utc = forecaster.predict(fh=times[1:].tz_convert("UTC"))
    assert in_utc.iloc[0] == by_step.iloc[1]
    with pytest.raises(ValueError, match="cannot be counted in whole steps"):
        forecaster.predict(fh=times[:1] + pd.Timedelta(minutes=30))
    # Daily at 02:30: the wall-clock grid has no 2021-03-14 02:30 (sktime's count is kept).
    days = pd.date_range(end="2021-03-13 02:30", periods=80, freq="D", tz="US/Eastern")
    daily = pretrained_forecaster.fit(pd.Series(_daily().to_numpy(), index=days))
    target = pd.DatetimeIndex([pd.Timestamp("2021-03-15 02:30", tz="US/Eastern")])
    # Two days on: the same value as the second step of the series without a zone.
    naive = pretrained_forecaster.clone().fit(
        pd.Series(_daily().to_numpy(), index=days.tz_localize(None))
    )
    assert daily.predict(fh=target).iloc[0] == naive.predict(fh=[2]).iloc[0]


@pytest.mark.parametrize(
    ("reindex", "match"),
    [
        (lambda s: s.reset_index(drop=True), "indexed by integer index, but fit saw DatetimeIndex"),
        (lambda s: s.tz_localize("UTC"), r"DatetimeIndex \(time zone UTC\), but fit saw"),
    ],
    ids=["integer", "time_zone"],
)
def test_update_with_another_kind_of_time_index_raises(pretrained_forecaster, reindex, match):
    y = _daily()
    forecaster = pretrained_forecaster.fit(y.iloc[:60], fh=[1])
    before = forecaster.predict()
    with pytest.raises(ValueError, match=match):
        forecaster.update(reindex(y.iloc[60:63]))
    pd.testing.assert_series_equal(forecaster.predict(), before)


def test_dated_update_after_an_integer_fit_is_refused_and_leaves_the_cutoff(
    pretrained_forecaster,
):
    # Setting sktime's cutoff read a frequency from integer states: an
    # AttributeError, raised before the rollback, left a dated cutoff behind.
    y = _daily()
    forecaster = pretrained_forecaster.fit(y.iloc[:60].reset_index(drop=True), fh=[1])
    with pytest.raises(ValueError, match="indexed by DatetimeIndex, but fit saw integer index"):
        forecaster.update(y.iloc[60:63])
    assert list(forecaster.cutoff) == [59]


def _two_instances(y: pd.Series) -> pd.DataFrame:
    frames = {k: y.to_frame("y") * f for k, f in [("a", 1.0), ("b", 2.0)]}
    return pd.concat(frames, names=["id", "t"])


@pytest.mark.parametrize(
    ("fitted", "new", "match"),
    [
        ("panel", lambda y: y.iloc[60:61], "got a single series, but fit got a panel"),
        ("series", lambda y: _two_instances(y.iloc[60:61]), "got a panel, but fit got a single"),
        ("series", lambda y: pd.DataFrame({"u": y.iloc[60:61], "v": y.iloc[60:61]}), "columns"),
        ("series", lambda y: y.iloc[60:61].to_frame("y") * -1, "non-positive"),
        ("series", lambda y: pd.concat([y.iloc[60:62], y.iloc[[61]] * 1.1]).sort_index(),
         "duplicated time index"),
    ],
    ids=["series_for_panel", "panel_for_series", "two_columns", "refused_dataframe", "repeated"],
)
def test_update_refused_in_another_layout_leaves_the_forecaster_as_it_was(
    pretrained_forecaster, fitted, new, match
):
    # sktime records the new data's type before _update refuses it; predict
    # then failed ("No valid mtype") or returned a DataFrame for a Series.
    y = _daily()
    forecaster = pretrained_forecaster.fit(
        y.iloc[:60] if fitted == "series" else _two_instances(y.iloc[:60]), fh=[1]
    )
    before = forecaster.predict()
    with pytest.raises(ValueError, match=match):
        forecaster.update(new(y))
    after = forecaster.predict()
    assert type(after) is type(before)
    pd.testing.assert_index_equal(after.index, before.index)
    np.testing.assert_array_equal(np.asarray(after), np.asarray(before))


def _hierarchy(y: pd.Series) -> pd.DataFrame:
    return pd.concat({"north": _two_instances(y)}, names=["region"])


@pytest.mark.parametrize(
    ("fitted", "new", "match"),
    [
        (_hierarchy, _two_instances, "2 index levels .*but fit got 3"),
        (_two_instances, _hierarchy, "3 index levels .*but fit got 2"),
    ],
    ids=["panel_for_hierarchy", "hierarchy_for_panel"],
)
def test_update_with_other_index_levels_says_so(pretrained_forecaster, fitted, new, match):
    # Was "update got an instance 'a' that fit did not see".
    y = _daily()
    forecaster = pretrained_forecaster.fit(fitted(y.iloc[:60]), fh=[1])
    with pytest.raises(ValueError, match=match):
        forecaster.update(new(y.iloc[60:61]))


def test_categorical_instance_level_comes_back_categorical(pretrained_forecaster):
    # sktime's own forecasters keep it; the rebuilt index made it str.
    panel = _two_instances(_daily().iloc[:60])
    dtype = pd.CategoricalDtype(["a", "b", "unused"])
    panel.index = panel.index.set_levels(panel.index.levels[0].astype(dtype), level=0)
    forecaster = pretrained_forecaster.fit(panel, fh=[1, 2])
    outputs = [
        forecaster.predict(),
        forecaster.predict_interval(),
        forecaster.predict_quantiles(),
        forecaster.predict_var(),
    ]
    for output in outputs:
        assert output.index.levels[0].dtype == dtype
        assert list(output.index.get_level_values(0)) == ["a", "a", "b", "b"]


def test_panel_instance_named_like_the_internal_single_series_key(pretrained_forecaster):
    # A string key for the single series made this panel look like one.
    y = _daily()
    panel = _two_instances(y.iloc[:60]).rename(index={"a": "__single_series__"}, level="id")
    forecaster = pretrained_forecaster.fit(panel, fh=[1])
    assert list(forecaster.adapted_params_) == ["__single_series__", "b"]
    with pytest.raises(ValueError, match="instance 'zz' that fit did not see"):
        forecaster.update(_two_instances(y.iloc[60:61]).rename(index={"a": "zz"}, level="id"))
    single = pretrained_forecaster.fit(y.iloc[:60], fh=[1])
    assert list(single.adapted_params_) == [None]


@pytest.mark.parametrize("index", ["dates", "periods", "integers"])
def test_update_leaving_a_gap_names_the_missing_point(pretrained_forecaster, index):
    # The new points are regular themselves: the problem is the gap after the
    # cutoff, not "an irregular DatetimeIndex" (periods and integers passed
    # silently, and the forecasts then came one step per index unit).
    y = _daily()
    if index == "periods":
        y.index = y.index.to_period("D")
    if index == "integers":
        y = y.reset_index(drop=True)
    forecaster = pretrained_forecaster.fit(y.iloc[:60], fh=[1])
    before = forecaster.predict()
    expected = f"start at {y.index[65]}, but the point after the last one seen " + (
        f"\\({y.index[59]}\\) is {y.index[60]}: update must continue the series"
    )
    with pytest.raises(ValueError, match=expected):
        forecaster.update(y.iloc[65:70])
    assert forecaster.cutoff[0] == y.index[59]
    pd.testing.assert_series_equal(forecaster.predict(), before)
    forecaster.update(y.iloc[60:70])  # with the missing points it goes on
    assert forecaster.cutoff[0] == y.index[69]


def test_a_jump_far_beyond_the_support_scale_is_forecast_without_covariates(
    pretrained_forecaster,
):
    # The covariate bound read a univariate window's later lags as covariates:
    # a move of more than 20 support-scale units, kept without re-adapting,
    # raised numpy's AxisError at predict (found by sktime's update_predict check).
    y = _daily()
    forecaster = pretrained_forecaster.fit(y.iloc[:60], fh=[1])
    jump = y.iloc[60:61] * 3.0
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="X.*standard deviations")
        forecaster.update(jump, update_params=False)
        assert np.isfinite(forecaster.predict()).all()


def test_a_refused_fh_is_not_reused_by_the_next_fit(pretrained_forecaster, airline):
    # sktime keeps fit's fh while the forecaster is pretrained: after a refused
    # fit(y, fh=[3]), every fit(y) failed with "fh reaches 3 steps ahead".
    with pytest.raises(ValueError, match="beyond the pretrained state's horizon=2"):
        pretrained_forecaster.fit(airline, fh=[3])
    forecaster = pretrained_forecaster.fit(airline)
    assert np.isfinite(forecaster.predict(fh=[1, 2])).all()


def test_fit_with_fh_beyond_the_pretrained_horizon_raises_at_fit(pretrained_forecaster, airline):
    with pytest.raises(ValueError, match="pretrain again with horizon >= 3"):
        pretrained_forecaster.fit(airline, fh=[1, 2, 3])


def test_absolute_fh_beyond_the_horizon_names_the_panel_series(pretrained_forecaster):
    # With series ending on different dates, one absolute date is a different
    # number of steps for each: the error must say which series is out of reach.
    y = _daily()
    panel = pd.concat({"early": y.iloc[:55], "late": y.iloc[:60]}).to_frame("price")
    forecaster = pretrained_forecaster.fit(panel)
    fh = ForecastingHorizon(y.index[60:62], is_relative=False)
    with pytest.raises(ValueError, match=r"reaches 7 steps ahead \(instance 'early'\)"):
        forecaster.predict(fh=fh)


def test_predict_var_of_a_huge_price_series_raises_a_clear_error(pretrained_forecaster):
    forecaster = pretrained_forecaster.fit(_daily() * 1e158, fh=[1])
    with pytest.raises(ValueError, match="not finite in float64"):
        forecaster.predict_var()


def _stopped_moving(flat_points: int) -> pd.Series:
    y = _daily(80).iloc[:60].copy()
    y.iloc[-flat_points:] = y.iloc[-flat_points - 1]
    return y


def test_series_that_stopped_moving_gets_a_non_degenerate_interval(pretrained_forecaster):
    # A peg, a stale quote, a rate at its floor: adaptation sees zero residuals,
    # but the forecast distribution must not collapse to a point.
    forecaster = pretrained_forecaster.fit(_stopped_moving(30), fh=[1, 2])
    with pytest.warns(UserWarning, match="barely moved lately"):
        interval = forecaster.predict_interval(coverage=0.99)
    assert np.all(interval.iloc[:, 1] - interval.iloc[:, 0] > 0)
    assert np.all(forecaster.predict_var().to_numpy() > 0)


def test_meta_training_that_ends_flat_calibrates_on_moving_tasks(tiny):
    # Its held-out (latest) tasks never move: calibrating on them alone gave
    # residuals of exactly zero, and zero-width intervals.
    forecaster = MetaLSTMForecaster(horizon=2, **tiny).fit(_stopped_moving(30), fh=[1, 2])
    with pytest.warns(UserWarning, match="barely moved lately"):
        interval = forecaster.predict_interval(coverage=0.99)
    assert np.all(interval.iloc[:, 1] - interval.iloc[:, 0] > 0)


def test_stale_latest_queries_do_not_calibrate_intervals_to_a_point():
    # The held-out tasks' supports still moved but their queries did not: the
    # location weight fell to 0, every residual was 0, and every interval, VaR
    # and predict_var was exactly zero (log_pdf +inf) despite the warning.
    rng = np.random.default_rng(0)
    price = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    price[-40:] = price[-40]
    y = pd.Series(price, index=pd.date_range("2020-01-01", periods=300, freq="D"))
    forecaster = MetaLSTMForecaster(
        window_length=5, hidden_size=4, support_size=16, query_size=4, horizon=3,
        max_epochs=1, base_max_epochs=1, tasks_per_epoch=16, random_state=0, verbose=0,
    ).fit(y)
    residuals = forecaster.pretrained_state_.residuals["step"]
    assert np.mean(residuals == 0) < 0.5
    with pytest.warns(UserWarning, match="barely moved lately"):
        interval = forecaster.predict_interval(fh=[1, 2, 3], coverage=0.9)
    assert np.all(interval.iloc[:, 1] - interval.iloc[:, 0] > 0)


def test_series_flat_in_every_support_set_is_refused_by_what_fit_did(tiny):
    # fit (no pretrained state) trains on y itself: the message told it to
    # "pretrain on series that move", of a series that moved at its end.
    y = pd.Series([100.0] * 79 + [101.0], index=pd.date_range("2020-01-01", periods=80))
    with pytest.raises(ValueError, match="support windows are flat.*trains on y itself"):
        MetaLSTMForecaster(horizon=2, **tiny).fit(y)


def test_series_whose_only_query_is_flat_still_calibrates():
    # Skipping flat queries must not refuse a short series whose one task has a
    # moving support but a repeated last quote (the fuzz test found it).
    y = pd.Series([100.0, 101, 100.5, 102, 101, 101.5, 102.5, 102.5])
    forecaster = MetaLSTMForecaster(
        window_length=2, support_size=4, query_size=1, horizon=1, hidden_size=4,
        max_epochs=1, base_max_epochs=1, random_state=0, verbose=0,
    ).fit(y)
    interval = forecaster.predict_interval(fh=[1], coverage=0.9)
    assert np.all(interval.iloc[:, 1] > interval.iloc[:, 0])


def test_keep_best_weights_trains_without_validation_data():
    # The package's own callback falls back to train_loss, yet the check for
    # callbacks watching valid_loss refused it with validation_fraction=0.
    X, y = _regression_data()
    reg = LSTMBaseRegressor(
        hidden_size=4, max_epochs=3, validation_fraction=0, random_state=0,
        callbacks=[KeepBestWeights()],
    ).fit(X, y)
    best = min(reg.history_[:, "train_loss"])
    assert dict(reg.net_.callbacks_)["KeepBestWeights"].best_score_ == best
