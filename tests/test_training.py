"""Meta-training controls a user relies on: epoch size, early stopping, time budget, progress."""

from __future__ import annotations

import io
import re
import warnings
from types import SimpleNamespace

import pytest
import torch
from skorch.callbacks import EarlyStopping

from sk_metalstm import MetaLSTMForecaster
from sk_metalstm.callbacks import ProgressReport
from sk_metalstm.datasets import make_ar_returns_panel
from sk_metalstm.exceptions import InvalidParameterError


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


@pytest.mark.parametrize("meta_learner", ["ridge", "metasgd"])
def test_meta_training_that_never_beats_its_start_keeps_it(meta_learner, capsys):
    # With lr=0.05 every meta epoch scored worse than the pooled network it
    # started from, and the least bad epoch was kept: 90% intervals of 48% of
    # a stock's price where the starting weights gave 6%.
    panel = make_ar_returns_panel(6, 200, random_state=0)
    settings = dict(window_length=4, hidden_size=4, support_size=16, query_size=4, horizon=1)
    settings.update(meta_learner=meta_learner, base_max_epochs=2, lr=0.05, random_state=0)
    trained = MetaLSTMForecaster(**settings, max_epochs=2).pretrain(panel).pretrained_state_
    err = capsys.readouterr().err
    assert "no epoch beat the starting weights' valid loss" in err
    assert "lr=0.05 was set: a smaller one may help" in err  # the user chose it
    untrained = MetaLSTMForecaster(**settings, max_epochs=0).pretrain(panel).pretrained_state_
    kept, start = trained.learner.state_dict(), untrained.learner.state_dict()
    assert kept.keys() == start.keys()
    for name in kept:
        torch.testing.assert_close(kept[name], start[name], rtol=0, atol=0)
    start_loss = min(epoch["valid_loss"] for epoch in trained.history[0])
    assert min(epoch["valid_loss"] for epoch in trained.history[1]) > start_loss


@pytest.mark.parametrize("meta_learner", ["ridge", "metasgd", "none"])
def test_pretrained_state_holds_no_gradients(ar_panel, tiny, meta_learner):
    # The last training step's gradients stayed on the state's learner: a
    # second copy of every weight, for as long as the state lived.
    tiny.update(meta_learner=meta_learner)
    learner = MetaLSTMForecaster(horizon=1, **tiny).pretrain(ar_panel).pretrained_state_.learner
    assert [name for name, p in learner.named_parameters() if p.grad is not None] == []


@pytest.mark.parametrize("learner", ["none", "finetune"])
@pytest.mark.parametrize(("base_epochs", "max_epochs", "continues"), [(2, 0, True), (0, 1, False)])
def test_pooled_network_continues_pretraining_by_its_own_epochs(
    ar_panel, tiny, base_epochs, max_epochs, continues, learner
):
    # "none" ignores max_epochs, yet a second pretrain trained only when it was > 0;
    # "finetune" (whose pooled network is all it trains) never trained again.
    tiny.update(meta_learner=learner, base_max_epochs=base_epochs, max_epochs=max_epochs)
    forecaster = MetaLSTMForecaster(horizon=1, **tiny).pretrain(ar_panel)
    before = {k: v.clone() for k, v in forecaster.pretrained_state_.learner.state_dict().items()}
    phases = len(forecaster.pretrained_state_.history)
    state = forecaster.pretrain(ar_panel).pretrained_state_
    after = state.learner.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before) is continues
    assert len(state.history) == phases + continues  # no empty history for no training


def test_epoch_scoring_by_a_scorer_name_is_refused_before_training(ar_panel, tiny):
    # scikit-learn's scorers cannot read tasks: it failed after the pooled phase.
    from skorch.callbacks import EpochScoring

    named = MetaLSTMForecaster(horizon=1, callbacks=[EpochScoring("r2")], **tiny)
    with pytest.raises(InvalidParameterError, match="EpochScoring\\(scoring='r2'\\)"):
        named.pretrain(ar_panel)
    assert not hasattr(named, "pretrained_state_")
    scored = EpochScoring(lambda net, tasks, y: 1.0, name="one", on_train=True)
    state = MetaLSTMForecaster(horizon=1, callbacks=[scored], **tiny).pretrain(ar_panel)
    assert all("one" in epoch for epoch in state.pretrained_state_.history[-1])


def test_a_validation_fraction_that_rounds_to_no_task_warns(ar_panel, tiny):
    # 0.005 of each series' tasks rounds to none: early stopping was off and
    # the intervals calibrated in sample, without a word.
    with pytest.warns(UserWarning, match="rounds to no validation task per series"):
        MetaLSTMForecaster(horizon=1, validation_fraction=0.005, **tiny).pretrain(ar_panel)
    # A series too short for the default fraction is not the fraction's fault.
    short = ar_panel.loc[ar_panel.index.get_level_values(0)[0]].iloc[:30, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        MetaLSTMForecaster(horizon=1, **tiny).fit(short)


@pytest.mark.parametrize("learner", ["none", "finetune"])
def test_a_continued_pooled_network_never_ends_worse_than_it_started(learner, capsys):
    # The continued pooled phase did not score its starting weights: with a
    # learning rate that only hurts, a worse epoch was kept (valid 3.6 vs 0.65).
    panel = make_ar_returns_panel(4, 200, random_state=0)
    settings = dict(window_length=4, hidden_size=4, support_size=16, query_size=4, horizon=1)
    settings.update(meta_learner=learner, base_max_epochs=2, random_state=0)
    state = MetaLSTMForecaster(**settings).pretrain(panel).pretrained_state_
    before = {k: v.clone() for k, v in state.learner.state_dict().items()}
    again = MetaLSTMForecaster.from_pretrained(state, lr=3.0).pretrain(panel).pretrained_state_
    after = again.learner.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert "no epoch beat the starting weights' valid loss" in capsys.readouterr().err


def test_max_time_ends_pretrain_with_usable_weights(ar_panel, tiny, capsys):
    tiny.update(max_epochs=50, base_max_epochs=50)
    forecaster = MetaLSTMForecaster(horizon=1, max_time=1e-6, verbose=1, **tiny)
    state = forecaster.pretrain(ar_panel).pretrained_state_
    for history in state.history:
        assert len(history) == 1 and _batches(history[0]) == 1
    # Said, although short; and not blamed on the learning rate.
    err = capsys.readouterr().err
    assert "pooled: finished after 0 of 50 epochs (time budget reached)" in err
    assert re.search(r"0 of 50 epochs \(time budget reached\) in \d+s; the starting", err)
    assert "smaller lr" not in err
    y = ar_panel.loc[ar_panel.index.get_level_values(0)[0]].iloc[:, 0]
    assert forecaster.fit(y).predict(fh=[1]).notna().all()


def test_progress_bar_counts_the_tasks_an_epoch_draws(ar_panel, tiny, monkeypatch):
    # skorch sized the bar from the whole task set, so with tasks_per_epoch
    # below it every epoch's bar ended a fraction of the way.
    from skorch.callbacks import ProgressBar

    totals, begin = [], ProgressBar.on_epoch_begin

    def recording(self, net, **kw):
        totals.append(self.batches_per_epoch)
        return begin(self, net, **kw)

    monkeypatch.setattr(ProgressBar, "on_epoch_begin", recording)
    tiny.update(tasks_per_batch=4, tasks_per_epoch=8, max_epochs=1, base_max_epochs=1)
    MetaLSTMForecaster(horizon=1, validation_fraction=0.0, verbose=2, **tiny).pretrain(ar_panel)
    assert totals == [2, 2]  # pooled, meta: 8 tasks in batches of 4


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
    net = SimpleNamespace(max_epochs=20, history=[])
    stream = io.StringIO()
    report = ProgressReport("pooled", batches_per_epoch=4, stream=stream)
    report.on_train_begin(net)
    net.history.append({"epoch": 1, "train_loss": 1.25, "valid_loss": 0.5})
    report.on_epoch_end(net)
    net.history.append({"epoch": 2})  # skorch opens the next epoch's row
    report.on_batch_end(net, training=True)
    assert "pooled: epoch 2/20 (epoch 1: train loss 1.2500, valid loss 0.5000);" in (
        stream.getvalue()
    )


def _run_epochs(report, net, rows):
    """Drive ``report`` through ``rows`` as skorch would: one row per finished epoch."""
    report.on_train_begin(net)
    for row in rows:
        net.history.append(row)
        report.on_epoch_end(net)


def test_the_last_line_tells_early_stopping_from_an_interrupt_and_counts_this_run(monkeypatch):
    # Ctrl-C (or a callback) was reported as "stopped early: no better valid
    # loss", also without validation data; a resumed run counted the epochs
    # it loaded ("epoch 6/3", "all 6 epochs" after 3).
    monkeypatch.setattr(ProgressReport, "interval", 0.0)
    rows = [{"epoch": k, "train_loss": 1.0} for k in (1, 2)]
    net = SimpleNamespace(max_epochs=5, history=[], callbacks_=[])
    stream = io.StringIO()
    _run_epochs(ProgressReport("meta (ridge)", 4, stream=stream), net, rows)
    net.callbacks_ = []
    report = ProgressReport("meta (ridge)", 4, stream=stream)
    report.on_train_begin(net)  # resumed: two epochs already in the history
    for k in (3, 4):
        net.history.append({"epoch": k, "train_loss": 1.0})
        report.on_epoch_end(net)
    report.on_train_end(net)
    lines = stream.getvalue().splitlines()
    assert "meta (ridge): epoch 2/5 done" in lines[-2]
    assert "finished after 2 of 5 epochs (interrupted)" in lines[-1]


def test_early_stopping_past_the_deadline_is_not_called_the_time_budget(monkeypatch):
    # The budget's end was read off the clock: validation running past the
    # deadline made an early stop read "time budget reached".
    from sk_metalstm.callbacks import TimeBudget

    monkeypatch.setattr(ProgressReport, "interval", 0.0)
    stopper, budget = EarlyStopping(patience=1), TimeBudget(deadline=0.0)
    stopper.misses_ = 1
    budget.on_train_begin(None)
    net = SimpleNamespace(
        max_epochs=20, history=[], callbacks_=[("early_stopping", stopper), ("budget", budget)]
    )
    stream = io.StringIO()
    report = ProgressReport("pooled", batches_per_epoch=4, deadline=0.0, stream=stream)
    _run_epochs(report, net, [{"epoch": 1, "train_loss": 1.0, "valid_loss": 0.5}])
    report.on_train_end(net)
    assert "(stopped early: no better valid loss)" in stream.getvalue()


def test_a_user_lr_is_named_once_also_when_the_phase_printed_progress(monkeypatch, capsys):
    # The last line said the start was kept; the hint about the user's lr was lost.
    monkeypatch.setattr(ProgressReport, "interval", 0.0)
    panel = make_ar_returns_panel(6, 200, random_state=0)
    settings = dict(window_length=4, hidden_size=4, support_size=16, query_size=4, horizon=1)
    MetaLSTMForecaster(
        **settings, base_max_epochs=2, max_epochs=2, lr=0.05, random_state=0, verbose=1
    ).pretrain(panel)
    err = capsys.readouterr().err
    assert err.count("no epoch beat the starting weights' valid loss") == 1
    assert err.count("lr=0.05 was set: a smaller one may help") == 1


def test_kept_starting_weights_are_said_on_the_last_line_without_blaming_lr(monkeypatch):
    # The README's default example printed "best valid loss 0.4623 (epoch 2)",
    # then "no epoch beat the starting weights' valid loss 0.4613 ... (a smaller
    # lr may help)": two lines that read as a contradiction, with an lr the
    # user never set.
    from sk_metalstm.callbacks import KeepBestWeights

    monkeypatch.setattr(ProgressReport, "interval", 0.0)
    keep = KeepBestWeights(score_start=True).initialize()
    keep.start_score_ = keep.best_score_ = 0.4613
    net = SimpleNamespace(max_epochs=2, history=[], callbacks_=[("keep_best", keep)])
    stream = io.StringIO()
    report = ProgressReport("meta (ridge)", batches_per_epoch=4, stream=stream)
    _run_epochs(report, net, [{"epoch": k, "train_loss": 1.0, "valid_loss": 0.47} for k in (1, 2)])
    report.on_train_end(net)
    last = stream.getvalue().splitlines()[-1]
    assert last.endswith(
        "best valid loss 0.4700 (epoch 1); no epoch beat the starting weights' "
        "valid loss 0.4613: they are kept"
    )
    assert report.ended_  # so meta_train adds no second line


def test_a_phase_that_printed_progress_says_how_it_ended(monkeypatch):
    # Early stopping and the end of each phase printed nothing.
    monkeypatch.setattr(ProgressReport, "interval", 0.0)
    losses = [(1, 0.6), (2, 0.4), (3, 0.5)]
    rows = [{"epoch": k, "train_loss": 1.0, "valid_loss": v} for k, v in losses]
    stopper = EarlyStopping(patience=1)
    stopper.misses_ = 1  # what skorch's EarlyStopping holds when it stops training
    net = SimpleNamespace(max_epochs=20, history=[], callbacks_=[("early_stopping", stopper)])
    stream = io.StringIO()
    report = ProgressReport("meta (ridge)", batches_per_epoch=4, stream=stream)
    _run_epochs(report, net, rows)
    report.on_train_end(net)
    lines = stream.getvalue().splitlines()
    assert "meta (ridge): epoch 3/20 done, train loss 1.0000, valid loss 0.5000;" in lines[2]
    assert lines[2].endswith("left in this phase")
    assert lines[3].startswith(
        "[sk_metalstm] meta (ridge): finished after 3 of 20 epochs (stopped early: no better "
        "valid loss) in 0s; best valid loss 0.4000 (epoch 2)"
    )
    quiet = ProgressReport("pooled", batches_per_epoch=4, stream=io.StringIO())
    monkeypatch.setattr(ProgressReport, "interval", 1e9)
    net.history = []
    _run_epochs(quiet, net, rows)
    quiet.on_train_end(net)
    assert quiet.stream.getvalue() == ""  # short phases stay silent


def test_time_left_counts_validation_and_finished_epochs(monkeypatch):
    # Only training batches were counted: a metasgd phase whose validation
    # pass took half of each epoch said "at most ~4s left" and ran 12 s more.
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr("sk_metalstm.callbacks.time.monotonic", lambda: clock.now)
    monkeypatch.setattr(ProgressReport, "interval", 1e9)  # no lines: only the estimate
    net = SimpleNamespace(max_epochs=3, history=[])
    report = ProgressReport("meta", batches_per_epoch=4, valid_batches_per_epoch=4)
    report.on_train_begin(net)
    for training in [True] * 4:  # 1 s per batch, training and validation alike
        clock.now += 1.0
        report.on_batch_end(net, training=training)
    assert report.time_left(clock.now, 3) == pytest.approx(20.0)  # 3 epochs of 8 s, 4 s done
    for _ in range(4):
        clock.now += 1.0
        report.on_batch_end(net, training=False)
    report.on_epoch_end(net)
    assert report.time_left(clock.now, 3) == pytest.approx(16.0)
    clock.now += 2.0
    assert report.time_left(clock.now, 3) == pytest.approx(14.0)
    clock.now += 20.0  # a slow epoch: never below zero, the last epoch still counted
    assert report.time_left(clock.now, 3) == pytest.approx(8.0)
    report.deadline = clock.now + 3.0
    assert report.time_left(clock.now, 3) == pytest.approx(3.0)
