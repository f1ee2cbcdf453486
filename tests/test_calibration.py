"""Calibration on held-out (later) query windows: location weights and residuals."""

from __future__ import annotations

import numpy as np
import pytest

from sk_metalstm.meta.calibration import location_weight


def _windows(signal: float, n: int = 4000, seed: int = 0):
    rng = np.random.default_rng(seed)
    location = rng.standard_normal((n, 2))
    scale = np.exp(rng.uniform(-1, 1, (n, 2)))
    target = signal * location + scale * rng.standard_normal((n, 2))
    return target, location, scale


def test_locations_that_predict_keep_their_weight():
    weight = location_weight(*_windows(signal=1.0))
    np.testing.assert_allclose(weight, 1.0, atol=0.05)


def test_locations_without_signal_shrink_to_the_random_walk():
    weight = location_weight(*_windows(signal=0.0))
    assert np.all(weight < 0.05)


@pytest.mark.parametrize("signal, expected", [(-1.0, 0.0), (3.0, 1.0)])
def test_weights_stay_between_zero_and_one(signal, expected):
    np.testing.assert_array_equal(location_weight(*_windows(signal)), expected)


def test_a_partial_signal_gets_a_partial_weight():
    target, location, scale = _windows(signal=0.4)
    assert location_weight(target, location, scale) == pytest.approx([0.4, 0.4], abs=0.05)


def test_all_zero_locations_keep_weight_one():
    target, location, scale = _windows(signal=0.0)
    location[:, 1] = 0.0
    weight = location_weight(target, location, scale)
    assert weight[1] == 1.0



def _next_step_weight(phi_range: tuple[float, float]) -> float:
    """The calibrated next-step location weight after pretraining on AR(1) returns."""
    from sk_metalstm import MetaLSTMForecaster
    from sk_metalstm.datasets import make_ar_returns_panel

    panel = make_ar_returns_panel(24, 400, phi_range=phi_range, random_state=0)
    forecaster = MetaLSTMForecaster(
        window_length=10, hidden_size=8, support_size=40, query_size=10,
        base_max_epochs=3, max_epochs=3, tasks_per_epoch=256, random_state=0, verbose=0,
    )
    return float(forecaster.pretrain(panel).pretrained_state_.location_weight[0])


def test_pretraining_keeps_locations_that_carry_signal():
    # Autoregressive returns: the location predicts the later tasks.
    assert _next_step_weight((0.5, 0.7)) > 0.8


def test_pretraining_on_a_random_walk_shrinks_its_locations():
    # Random-walk prices: nothing beyond "no change" (seeds 0-3 gave 0.15-0.28).
    assert _next_step_weight((0.0, 0.0)) < 0.5


def test_a_passed_deadline_stops_calibration_after_its_minimum_of_tasks(capsys, monkeypatch):
    # max_time bounded training only: with a gradient learner on a large panel
    # calibrating 2,000 tasks took half a minute after the budget, in silence.
    import time

    import sk_metalstm.meta.calibration as calibration
    from sk_metalstm import MetaLSTMForecaster
    from sk_metalstm.datasets import make_ar_returns_panel
    from sk_metalstm.meta.tasks import TaskDataset
    from sk_metalstm.windowing import TaskLayout, to_increments

    panel = make_ar_returns_panel(6, 300, random_state=0)
    forecaster = MetaLSTMForecaster(
        window_length=5, hidden_size=4, support_size=8, query_size=2, horizon=2,
        max_epochs=1, base_max_epochs=1, random_state=0, verbose=0,
    ).pretrain(panel)
    layout = TaskLayout(5, 2, 8, 2)
    series = [to_increments(g.to_numpy().ravel(), "log_return") for _, g in panel.groupby(level=0)]
    tasks = TaskDataset(series, layout, 2)
    learner = forecaster.pretrained_state_.learner
    monkeypatch.setattr(calibration, "_REPORT_EVERY", 0.0)
    full = calibration.calibrate(learner, tasks, batch_size=16)
    cut = calibration.calibrate(
        learner, tasks, batch_size=16, deadline=time.monotonic() - 1, min_tasks=40, verbose=1
    )
    assert len(full.residuals["step"]) == 2 * len(tasks)
    # Whole batches until at least 40 tasks (of 2 query windows each) are done.
    assert len(cut.residuals["step"]) == 2 * 48
    err = capsys.readouterr().err
    assert "[sk_metalstm] calibration: " in err
    # It ends by saying so, as the training phases do.
    assert f"calibration: finished on 48 of {len(tasks)} tasks (time budget reached)" in err
