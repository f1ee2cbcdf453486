"""Increments, windows and tasks: exact inverses and no look-ahead."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sk_metalstm.windowing import (
    TaskLayout,
    cut_task,
    from_increments,
    resolve_transform,
    sliding_windows,
    support_for_adaptation,
    task_starts,
    to_increments,
)

SETTINGS = settings(max_examples=60, deadline=None)


# ----------------------------------------------------------------- transforms
@pytest.mark.parametrize("kind", ["log_return", "difference"])
def test_round_trip_reproduces_levels(kind):
    levels = np.array([100.0, 101.5, 99.2, 99.2, 130.0, 0.5])
    z = to_increments(levels, kind)
    assert len(z) == len(levels) - 1
    np.testing.assert_allclose(from_increments(levels[0], z, kind), levels[1:], rtol=1e-12)


def test_round_trip_none_is_identity_and_copies():
    levels = np.array([-1.0, 0.0, 2.5])
    z = to_increments(levels, "none")
    np.testing.assert_array_equal(z, levels)
    z[0] = 99.0
    assert levels[0] == -1.0  # a copy, not a view of the user's data
    np.testing.assert_array_equal(from_increments(123.0, levels, "none"), levels)


def test_forecast_increments_map_to_levels_from_the_last_level():
    # Forecast log-returns of +10% and -10% after a level of 50.
    out = from_increments(50.0, np.log([1.1, 1 / 1.1]), "log_return")
    np.testing.assert_allclose(out, [55.0, 50.0])
    np.testing.assert_allclose(from_increments(3.0, [1.0, -0.5], "difference"), [4.0, 3.5])


@SETTINGS
@given(arrays(np.float64, st.integers(2, 50), elements=st.floats(1e-3, 1e4)))
def test_log_return_round_trip_property(levels):
    z = to_increments(levels, "log_return")
    np.testing.assert_allclose(from_increments(levels[0], z, "log_return"), levels[1:], rtol=1e-9)


@SETTINGS
@given(arrays(np.float64, st.integers(2, 50), elements=st.floats(-1e4, 1e4)))
def test_difference_round_trip_property(levels):
    z = to_increments(levels, "difference")
    back = from_increments(levels[0], z, "difference")
    np.testing.assert_allclose(back, levels[1:], rtol=0, atol=1e-8 * (1 + np.abs(levels).max()))


def test_resolve_transform_auto():
    assert resolve_transform(np.array([1.0, 2.0]), "auto") == "log_return"
    assert resolve_transform(np.array([1.0, 0.0]), "auto") == "difference"
    assert resolve_transform(np.array([-1.0, 2.0]), "auto") == "difference"
    assert resolve_transform(np.array([-1.0, 2.0]), "none") == "none"


def test_resolve_transform_errors():
    with pytest.raises(ValueError, match="Unknown transform 'sqrt'"):
        resolve_transform(np.array([1.0]), "sqrt")
    with pytest.raises(ValueError, match="strictly positive.*minimum of 0.0"):
        resolve_transform(np.array([1.0, 0.0]), "log_return")
    with pytest.raises(ValueError, match="Unknown transform"):
        to_increments(np.array([1.0, 2.0]), "auto")
    with pytest.raises(ValueError, match="Unknown transform"):
        from_increments(1.0, np.array([1.0]), "auto")


# -------------------------------------------------------------------- windows
def test_sliding_windows_layout():
    x, y = sliding_windows(np.arange(7.0), window_length=3, horizon=2)
    np.testing.assert_array_equal(x, [[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    np.testing.assert_array_equal(y, [[3, 4], [4, 5], [5, 6]])
    x, y = sliding_windows(np.arange(4.0), window_length=3, horizon=2)
    assert x.shape == (0, 3) and y.shape == (0, 2)


def test_task_span_and_starts():
    layout = TaskLayout(window_length=3, horizon=2, support_size=4, query_size=2)
    # S + h - 1 windows before the first query window, Q query windows of L + h.
    assert layout.query_offset == 5
    assert layout.span == 5 + 2 + 3 + 2 - 1
    np.testing.assert_array_equal(task_starts(layout.span, layout, 1), [0])
    assert len(task_starts(layout.span - 1, layout, 1)) == 0
    np.testing.assert_array_equal(task_starts(layout.span + 5, layout, 2), [0, 2, 4])


# ---------------------------------------------------------------------- tasks
layouts = st.builds(
    TaskLayout,
    window_length=st.integers(1, 5),
    horizon=st.integers(1, 3),
    support_size=st.integers(1, 6),
    query_size=st.integers(1, 4),
    centre=st.booleans(),
)


def _positions(values, loc, scale, offset):
    """Undo scaling of values that were ``position + offset``; return positions."""
    return np.rint(np.asarray(values, dtype=np.float64) * scale + loc - offset).astype(int)


@SETTINGS
@given(layout=layouts, start=st.integers(0, 5), extra=st.integers(0, 5))
def test_cut_task_query_targets_after_support_targets(layout, start, extra):
    # Values encode their own position so windows can be traced back.
    offset = 1000.0
    z = np.arange(start + layout.span + extra, dtype=np.float64) + offset
    task = cut_task(z, start, layout)
    loc, scale = float(task["loc"]), float(task["scale"])
    sy = _positions(task["support_y"], loc, scale, offset)
    qy = _positions(task["query_y"], loc, scale, offset)
    qx = _positions(task["query_x"], loc, scale, offset)
    sx = _positions(task["support_x"], loc, scale, offset)
    assert task["support_x"].shape == (layout.support_size, layout.window_length)
    assert task["query_y"].shape == (layout.query_size, layout.horizon)
    assert qy.min() > sy.max()  # no query target is seen while adapting
    assert sx.min() == start
    # The first query window reads exactly up to the last support target: the
    # window a forecaster predicts from right after adapting on the support set.
    assert qx[0, -1] == sy.max()
    assert qy.max() < start + layout.span


@SETTINGS
@given(
    layout=layouts,
    start=st.integers(0, 5),
    seed=st.integers(0, 2**16),
    junk=st.floats(-1e6, 1e6, allow_nan=False),
)
def test_cut_task_scaling_ignores_values_after_support(layout, start, seed, junk):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=start + layout.span + 3)
    support_end = start + layout.support_size - 1 + layout.window_length + layout.horizon
    changed = z.copy()
    changed[support_end:] = junk  # everything the support set must not see
    changed[:start] = junk  # and everything before the task
    a, b = cut_task(z, start, layout), cut_task(changed, start, layout)
    for key in ("support_x", "support_y", "loc", "scale"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # The support values themselves do matter.
    changed[support_end - 1] += 10.0
    c = cut_task(changed, start, layout)
    assert c["scale"] != a["scale"] or c["loc"] != a["loc"]


def test_cut_task_scale_is_support_rms():
    layout = TaskLayout(window_length=2, horizon=1, support_size=2, query_size=1)
    z = np.array([3.0, -4.0, 3.0, -4.0, 100.0, 100.0])
    task = cut_task(z, 0, layout)
    assert task["loc"] == 0.0
    np.testing.assert_allclose(task["scale"], np.sqrt(12.5), rtol=1e-6)
    np.testing.assert_allclose(
        task["support_x"][0], np.array([3.0, -4.0]) / np.sqrt(12.5), rtol=1e-6
    )
    centred = cut_task(z, 0, TaskLayout(2, 1, 2, 1, centre=True))
    np.testing.assert_allclose(centred["loc"], -0.5, rtol=1e-6)
    for key in ("support_x", "support_y", "query_x", "query_y"):
        assert task[key].dtype == np.float32


@SETTINGS
@given(layout=layouts, start=st.integers(0, 5), seed=st.integers(0, 2**16))
def test_cut_task_matches_deployment(layout, start, seed):
    """Meta-training's first query equals what adaptation sees at fit time."""
    z = np.random.default_rng(seed).normal(size=start + layout.span)
    task = cut_task(z, start, layout)
    observed = z[: start + layout.support_size - 1 + layout.window_length + layout.horizon]
    deploy = support_for_adaptation(observed[start:], layout)
    for key in ("support_x", "support_y", "loc", "scale"):
        np.testing.assert_allclose(task[key], deploy[key], rtol=1e-6, err_msg=key)
    np.testing.assert_allclose(task["query_x"][:1], deploy["query_x"], rtol=1e-6)


def test_support_for_adaptation_uses_most_recent_windows():
    layout = TaskLayout(window_length=3, horizon=2, support_size=4, query_size=1)
    z = np.arange(1.0, 21.0)  # 20 increments, 16 complete windows
    out = support_for_adaptation(z, layout)
    scale = float(out["scale"])
    sx = out["support_x"] * scale
    sy = out["support_y"] * scale
    assert sx.shape == (4, 3) and sy.shape == (4, 2)
    np.testing.assert_allclose(sy[-1], [19.0, 20.0], rtol=1e-6)  # the last observed values
    np.testing.assert_allclose(sx[0], [13.0, 14.0, 15.0], rtol=1e-6)
    np.testing.assert_allclose(out["query_x"] * scale, [[18.0, 19.0, 20.0]], rtol=1e-6)
    # Scale from the values those windows cover (13..20) only.
    np.testing.assert_allclose(scale, np.sqrt(np.mean(np.arange(13.0, 21.0) ** 2)), rtol=1e-6)


def test_support_for_adaptation_short_series_and_error():
    layout = TaskLayout(window_length=3, horizon=2, support_size=10, query_size=1)
    out = support_for_adaptation(np.arange(1.0, 8.0), layout)  # 7 -> 3 windows
    assert out["support_x"].shape == (3, 3)
    with pytest.raises(ValueError, match="at least window_length \\+ horizon = 5"):
        support_for_adaptation(np.arange(4.0), layout)


# --------------------------------------------- 2-D (exogenous) windows and tasks
@SETTINGS
@given(
    n=st.integers(0, 30),
    n_features=st.integers(1, 3),
    window_length=st.integers(1, 5),
    horizon=st.integers(1, 3),
)
def test_sliding_windows_2d_property(n, n_features, window_length, horizon):
    # Column c of row t holds 100 * c + t: windows can be traced back exactly.
    z = np.arange(n, dtype=np.float64)[:, None] + 100.0 * np.arange(1 + n_features)
    x, y = sliding_windows(z, window_length, horizon)
    x1, y1 = sliding_windows(z[:, 0], window_length, horizon)
    n_windows = max(0, n - window_length - horizon + 1)
    assert x.shape == (n_windows, window_length, 1 + n_features)
    assert y.shape == (n_windows, horizon)
    np.testing.assert_array_equal(x[..., 0], x1)  # the target column is the 1-D windowing
    np.testing.assert_array_equal(y, y1)  # targets come from column 0 only
    for i in range(n_windows):
        for c in range(1 + n_features):
            np.testing.assert_array_equal(x[i, :, c], 100.0 * c + np.arange(i, i + window_length))
        # No input row (of any column) is at or after the first target.
        assert x[i, :, :].max() % 100 < y[i, 0]


def _exogenous_z(n: int, n_features: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = np.column_stack([rng.normal(size=n), rng.normal(3.0, 2.0, size=(n, n_features))])
    z[-1, 1:] = np.nan  # covariates of the next, unobserved, time point (as at fit time)
    return z


@SETTINGS
@given(layout=layouts, start=st.integers(0, 5), n_features=st.integers(1, 3))
def test_cut_task_2d_query_after_support_and_finite(layout, start, n_features):
    n = start + layout.span
    z = np.column_stack(
        [np.arange(n, dtype=np.float64) + 1000.0]
        + [np.arange(n, dtype=np.float64) + 1000.0 * (c + 2) for c in range(n_features)]
    )
    z[-1, 1:] = np.nan  # the last task of a series ends on this row
    task = cut_task(z, start, layout)
    S, Q, L, h = layout.support_size, layout.query_size, layout.window_length, layout.horizon
    assert task["support_x"].shape == (S, L, 1 + n_features)
    assert task["query_x"].shape == (Q, L, 1 + n_features)
    assert task["support_y"].shape == (S, h) and task["query_y"].shape == (Q, h)
    for key in ("support_x", "support_y", "query_x", "query_y"):
        assert np.all(np.isfinite(task[key])), key  # the NaN row is never an input
    loc, scale = float(task["loc"]), float(task["scale"])
    sy = np.rint(task["support_y"].astype(np.float64) * scale + loc)
    qy = np.rint(task["query_y"].astype(np.float64) * scale + loc)
    qx = np.rint(task["query_x"][..., 0].astype(np.float64) * scale + loc)
    assert qy.min() > sy.max()
    assert qx[0, -1] == sy.max()  # first query window = deployment window after adapting


@SETTINGS
@given(
    layout=layouts,
    start=st.integers(0, 5),
    n_features=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    junk=st.floats(-1e6, 1e6, allow_nan=False),
)
def test_cut_task_2d_scaling_uses_support_only(layout, start, n_features, seed, junk):
    z = _exogenous_z(start + layout.span + 2, n_features, seed)
    support_end = start + layout.support_size - 1 + layout.window_length + layout.horizon
    changed = z.copy()
    changed[support_end:-1] = junk  # every column, after the support set
    changed[:start] = junk  # and before the task
    a, b = cut_task(z, start, layout), cut_task(changed, start, layout)
    for key in ("support_x", "support_y", "loc", "scale"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # Covariates are standardised with the support rows' mean and std, exactly.
    support_rows = z[start:support_end, 1:]
    mean, std = np.nanmean(support_rows, axis=0), np.nanstd(support_rows, axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    x, _ = sliding_windows(z[start : start + layout.span], layout.window_length, layout.horizon)
    expected = (x[: layout.support_size, :, 1:] - mean) / std
    np.testing.assert_allclose(a["support_x"][..., 1:], expected, rtol=1e-5, atol=1e-5)


@SETTINGS
@given(
    layout=layouts,
    extra=st.integers(0, 20),
    n_features=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_support_for_adaptation_ignores_older_values(layout, extra, n_features, seed):
    L, h, S = layout.window_length, layout.horizon, layout.support_size
    n = S + L + h - 1 + extra  # exactly S complete windows after `extra` older values
    z = (
        _exogenous_z(n, n_features, seed)
        if n_features
        else np.random.default_rng(seed).normal(size=n)
    )
    older = z.copy()
    older[:extra] = 1e6  # values before the S most recent windows must not matter
    a, b = support_for_adaptation(z, layout), support_for_adaptation(older, layout)
    for key in ("support_x", "support_y", "query_x", "loc", "scale"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert len(a["support_x"]) == S
