"""Meta-training controls a user relies on: epoch size, early stopping, time budget, progress."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from sk_metalstm import MetaLSTMForecaster
from sk_metalstm.callbacks import ProgressReport


def _batches(epoch) -> int:
    return sum(1 for batch in epoch["batches"] if "train_loss" in batch)


def test_tasks_per_epoch_bounds_every_epoch(ar_panel, tiny):
    tiny.update(tasks_per_batch=4, tasks_per_epoch=8, max_epochs=2, base_max_epochs=2)
    forecaster = MetaLSTMForecaster(horizon=1, validation_fraction=0.0, **tiny)
    state = forecaster.pretrain(ar_panel).pretrained_state_
    assert len(state.history) == 2  # pooled, then meta
    for history in state.history:
        assert [_batches(epoch) for epoch in history] == [2, 2]


def test_n_iter_no_change_stops_a_phase_without_progress(ar_panel, tiny):
    tiny.update(max_epochs=10, base_max_epochs=10)
    forecaster = MetaLSTMForecaster(
        horizon=1, lr=1e-9, validation_fraction=0.5, n_iter_no_change=1, **tiny
    )
    for history in forecaster.pretrain(ar_panel).pretrained_state_.history:
        assert 1 < len(history) < 10


def test_max_time_ends_pretrain_with_usable_weights(ar_panel, tiny):
    tiny.update(max_epochs=50, base_max_epochs=50)
    forecaster = MetaLSTMForecaster(horizon=1, max_time=1e-6, **tiny)
    state = forecaster.pretrain(ar_panel).pretrained_state_
    for history in state.history:
        assert len(history) == 1 and _batches(history[0]) == 1
    y = ar_panel.loc[ar_panel.index.get_level_values(0)[0]].iloc[:, 0]
    assert forecaster.fit(y).predict(fh=[1]).notna().all()


def test_progress_lines_show_time_left_and_verbose_zero_is_silent(
    ar_panel, tiny, monkeypatch, capsys
):
    monkeypatch.setattr(ProgressReport, "interval", 0.0)
    MetaLSTMForecaster(horizon=1, verbose=1, **tiny).pretrain(ar_panel)
    err = capsys.readouterr().err
    assert "[sk_metalstm] pooled: epoch" in err and "left" in err
    assert "meta (metasgd)" in err
    MetaLSTMForecaster(horizon=1, verbose=0, **tiny).pretrain(ar_panel)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "params, match",
    [
        ({"tasks_per_epoch": 0}, "tasks_per_epoch must be None or an integer >= 1"),
        ({"n_iter_no_change": 1.5}, "n_iter_no_change must be None or an integer >= 1"),
        ({"max_time": -1.0}, "max_time must be None or a number in \\(0.0, inf\\)"),
    ],
)
def test_training_control_options_are_checked(airline, tiny, params, match):
    with pytest.raises(ValueError, match=match):
        MetaLSTMForecaster(**{**tiny, **params}).fit(airline)


def test_progress_lines_between_epochs_show_the_last_finished_epochs_losses(monkeypatch):
    # Mid-epoch lines carried no losses and used up the interval, so the
    # documented "train loss ..., valid loss ..." almost never appeared.
    monkeypatch.setattr(ProgressReport, "interval", 0.0)
    net = SimpleNamespace(
        max_epochs=20, history=[{"epoch": 1, "train_loss": 1.25, "valid_loss": 0.5}, {"epoch": 2}]
    )
    stream = io.StringIO()
    report = ProgressReport("pooled", batches_per_epoch=4, stream=stream)
    report.on_train_begin(net)
    report.on_batch_end(net, training=True)
    assert "pooled: epoch 2/20, train loss 1.2500, valid loss 0.5000;" in stream.getvalue()
