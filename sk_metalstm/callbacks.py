"""skorch callbacks the estimators add, and the set-up both share.

Generic skorch callbacks, usable in any ``NeuralNet``: divergence stop, best
weights, progress with time left, time budget. ``training_callbacks`` builds the
list that ``LSTMBaseRegressor`` and meta-training both start from.
"""

from __future__ import annotations

import copy
import inspect
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    EpochScoring,
    GradientNormClipping,
    ProgressBar,
)
from skorch.dataset import get_len

from sk_metalstm.exceptions import InvalidParameterError, TrainingDiverged

__all__ = [
    "KeepBestWeights",
    "ProgressReport",
    "StopOnNonFiniteLoss",
    "TimeBudget",
    # Shared set-up of both estimators (public for them, not for users).
    "check_no_validation_monitor",
    "report_notice",
    "report_progress",
    "training_callbacks",
]


class StopOnNonFiniteLoss(Callback):
    """Stop training with a clear error as soon as a batch loss is NaN or inf.

    Continuing would only write NaN into the weights and, later, the
    predictions. A generic skorch callback: ``LSTMBaseRegressor`` and
    meta-training both use it by default.

    Parameters
    ----------
    hint : str, optional
        What to try instead, appended to the error message (by default: a
        lower lr, gradient clipping, or a look at the data).
    """

    def __init__(
        self,
        hint: str = "Lower lr, set gradient_clip, or check the data for extreme values.",
    ) -> None:
        self.hint = hint

    def on_batch_end(self, net: Any, batch: Any = None, training: bool = False, **kw: Any) -> None:
        """Check the loss skorch just recorded for this batch."""
        key = "train_loss" if training else "valid_loss"
        loss = net.history[-1, "batches", -1, key]
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"{key} became {loss} at epoch {len(net.history)}; training was stopped "
                f"and the model is not usable. {self.hint}"
            )


class KeepBestWeights(Callback):
    """Keep the module weights of the best epoch; restore them when training ends.

    Training also ends this way on Ctrl-C (skorch stops the loop on
    ``KeyboardInterrupt`` and still calls ``on_train_end``), so an interrupted
    meta-training run keeps its best state so far.

    Parameters
    ----------
    monitor : str, default="valid_loss"
        History key to minimise; falls back to ``"train_loss"`` for epochs
        without a validation loss.
    score_start : bool, default=False
        Score the starting weights on the validation data before the first
        epoch (``monitor`` must be ``"valid_loss"``), so that training which
        never beats them, e.g. with a learning rate too large, ends with them.
        ``kept_start_`` then says whether they were kept.
    """

    #: Works without validation data (``check_no_validation_monitor`` lets it pass).
    falls_back_to_train_loss = True

    def __init__(self, monitor: str = "valid_loss", score_start: bool = False) -> None:
        self.monitor = monitor
        self.score_start = score_start

    def initialize(self) -> KeepBestWeights:
        """Forget any previous run."""
        self.best_score_ = math.inf
        self.best_state_: dict[str, Any] | None = None
        self.start_score_: float | None = None
        return self

    def on_train_begin(self, net: Any, X: Any = None, y: Any = None, **kw: Any) -> None:
        """With ``score_start``, take the starting weights as the best so far."""
        if not self.score_start:
            return
        _, valid = net.get_split_datasets(X, y)
        if valid is None or len(valid) == 0:
            return
        # Each DataLoader iterator draws a seed from torch's RNG: without the
        # fork, scoring would change every later draw of a seeded run.
        with torch.random.fork_rng(devices=[]):
            score = _validation_loss(net, valid)
        if math.isfinite(score):
            self.start_score_ = self.best_score_ = score
            self.best_state_ = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}

    @property
    def kept_start_(self) -> bool:
        """Whether no epoch beat the starting weights' validation loss."""
        return self.start_score_ is not None and self.best_score_ == self.start_score_

    def on_epoch_end(self, net: Any, **kw: Any) -> None:
        """Snapshot the weights when the monitored loss improves."""
        epoch = net.history[-1]
        score = epoch.get(self.monitor, epoch.get("train_loss", math.inf))
        if math.isfinite(score) and score < self.best_score_:
            self.best_score_ = score
            self.best_state_ = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}

    def on_train_end(self, net: Any, **kw: Any) -> None:
        """Put the best weights back."""
        if self.best_state_ is not None:
            net.module_.load_state_dict(self.best_state_)


def _validation_loss(net: Any, dataset: Any) -> float:
    """``net``'s loss on ``dataset``, averaged over samples as skorch's ``valid_loss`` is."""
    total, count = 0.0, 0
    for batch in net.get_iterator(dataset, training=False):
        size = get_len(batch[0])
        total += float(net.validation_step(batch)["loss"]) * size
        count += size
    return total / count if count else math.inf


def _callbacks_of(net: Any, kind: type) -> list[Any]:
    """``net``'s initialised callbacks of class ``kind``."""
    return [c for _, c in getattr(net, "callbacks_", []) if isinstance(c, kind)]


def clock(seconds: float) -> str:
    """``seconds`` as a short duration: ``42s``, ``3m05s``."""
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ProgressReport(Callback):
    """Print a progress line with the time left, at most every ``interval`` seconds.

    Silent for runs that finish within ``interval`` seconds, so small fits stay
    quiet; longer ones print the phase, the epoch, the latest losses, the time
    spent and an estimate of the time left in the phase: every remaining epoch
    at the pace of those finished (validation included), so an upper bound when
    early stopping or a time budget may end the phase sooner. Before the first
    epoch ends, the pace is that of the batches seen, training and validation
    batches counted alike.

    Parameters
    ----------
    phase : str
        Name of the training phase shown in each line.
    batches_per_epoch : int
        Training batches in one epoch (for the time-left estimate).
    deadline : float or None, default=None
        ``time.monotonic()`` value at which a ``TimeBudget`` ends the phase.
    stream : file-like or None, default=None
        Where to print; ``None`` is standard error.
    valid_batches_per_epoch : int, default=0
        Validation batches after each epoch's training batches.
    """

    #: Seconds between lines (and before the first).
    interval: float = 5.0

    def __init__(
        self,
        phase: str,
        batches_per_epoch: int,
        deadline: float | None = None,
        stream: Any = None,
        valid_batches_per_epoch: int = 0,
    ) -> None:
        self.phase = phase
        self.batches_per_epoch = batches_per_epoch
        self.deadline = deadline
        self.stream = stream
        self.valid_batches_per_epoch = valid_batches_per_epoch

    def on_train_begin(self, net: Any, **kw: Any) -> None:
        """Start the clock."""
        self.start_ = self.last_ = time.monotonic()
        self.batches_ = 0
        self.epochs_ = 0
        self.epoch_end_ = self.start_
        self.reported_ = False
        self.ended_ = False  # whether the end-of-phase line was printed

    def on_train_end(self, net: Any, **kw: Any) -> None:
        """Say how the phase ended, once it has printed anything: no phase ends in silence.

        A phase that the time budget cut says so even when it was short: the
        user asked for more epochs than it ran.
        """
        now = time.monotonic()
        # This run's epochs: a resumed run (skorch's LoadInitState) has earlier
        # ones in its history, and max_epochs counts this run's.
        epochs = self.epochs_
        # The budget cut the phase only if it stopped it (early stopping may
        # end a phase whose validation ran past the deadline).
        cut = any(getattr(c, "stopped_", False) for c in _callbacks_of(net, TimeBudget))
        if not (self.reported_ or (cut and epochs < net.max_epochs)):
            return
        if epochs >= net.max_epochs:
            how = f"all {epochs} epochs" if epochs != 1 else "its 1 epoch"
        elif cut:
            how = f"{epochs} of {net.max_epochs} epochs (time budget reached)"
        elif any(c.misses_ >= c.patience for c in _callbacks_of(net, EarlyStopping)):
            how = f"{epochs} of {net.max_epochs} epochs (stopped early: no better valid loss)"
        else:  # Ctrl-C, or a callback that stopped training
            how = f"{epochs} of {net.max_epochs} epochs (interrupted)"
        scored = [row for row in net.history if "valid_loss" in row]
        best = ""
        if scored:
            row = min(scored, key=lambda r: r["valid_loss"])
            best = f"; best valid loss {row['valid_loss']:.4f} (epoch {row.get('epoch', '?')})"
        kept = [c for c in _callbacks_of(net, KeepBestWeights) if c.kept_start_]
        if kept:  # said here, so that this line does not read as the result
            start = f"the starting weights' valid loss {kept[0].start_score_:.4f}"
            best += f"; no epoch beat {start}: they are kept" if epochs else f"; {start}: kept"
        report_notice(
            f"{self.phase}: finished after {how} in {clock(now - self.start_)}{best}",
            self.stream,
        )
        self.ended_ = True

    def on_batch_end(self, net: Any, batch: Any = None, training: bool = False, **kw: Any) -> None:
        """Count batches, validation ones too (they can take half an epoch); report when due."""
        self.batches_ += 1
        self._maybe_report(net)

    def on_epoch_end(self, net: Any, **kw: Any) -> None:
        """Time the finished epoch; report its losses when ``interval`` has passed."""
        self.epochs_ += 1
        self.epoch_end_ = time.monotonic()
        self._maybe_report(net)

    def time_left(self, now: float, max_epochs: int) -> float:
        """Seconds the phase may still take, at the pace measured so far."""
        if self.epochs_ >= max_epochs:
            left = 0.0
        elif self.epochs_:
            per_epoch = (self.epoch_end_ - self.start_) / self.epochs_
            this_epoch = max(per_epoch - (now - self.epoch_end_), 0.0)
            left = this_epoch + per_epoch * (max_epochs - self.epochs_ - 1)
        else:
            per_batch = (now - self.start_) / max(self.batches_, 1)
            total = max_epochs * (self.batches_per_epoch + self.valid_batches_per_epoch)
            left = per_batch * max(total - self.batches_, 0)
        if self.deadline is not None:
            left = min(left, self.deadline - now)
        return max(left, 0.0)

    def _maybe_report(self, net: Any) -> None:
        now = time.monotonic()
        if now - self.last_ < self.interval:
            return
        # Mid-epoch lines show the latest finished epoch's losses: epoch-end
        # lines alone rarely came due, as batch-end lines used up the interval.
        latest = net.history[-1] if self.epochs_ else {}
        done = "train_loss" in latest  # at an epoch's end; else mid-epoch
        if not done and self.epochs_:
            latest = net.history[-2]  # the previous epoch's losses
        losses = ", ".join(
            f"{key.split('_')[0]} loss {latest[key]:.4f}"
            for key in ("train_loss", "valid_loss")
            if key in latest
        )
        # Epochs of this run (a resumed one has earlier epochs in its history).
        what = f"{self.phase}: epoch {self.epochs_ + (not done)}/{net.max_epochs}"
        if losses and done:
            what += f" done, {losses}"
        elif losses:  # mid-epoch: the losses are the previous epoch's
            what += f" (epoch {self.epochs_}: {losses})"
        self.last_ = now
        self.reported_ = True
        report_progress(what, now - self.start_, self.time_left(now, net.max_epochs), self.stream)


def report_progress(what: str, elapsed: float, left: float, stream: Any = None) -> None:
    """One progress line: what is being done, time spent and an upper bound of the time left."""
    print(
        f"[sk_metalstm] {what}; {clock(elapsed)} spent, at most ~{clock(left)} left in this phase",
        file=stream or sys.stderr,
        flush=True,
    )


def report_notice(what: str, stream: Any = None) -> None:
    """One line about the training that is not progress (e.g. which weights were kept)."""
    print(f"[sk_metalstm] {what}", file=stream or sys.stderr, flush=True)


class TimeBudget(Callback):
    """End training, keeping the best weights so far, once ``deadline`` has passed.

    Parameters
    ----------
    deadline : float
        A ``time.monotonic()`` value.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def on_train_begin(self, net: Any, **kw: Any) -> None:
        """Not stopped yet."""
        self.stopped_ = False

    def on_batch_end(self, net: Any, training: bool = False, **kw: Any) -> None:
        """Stop between batches (skorch ends training on ``KeyboardInterrupt``)."""
        if training and time.monotonic() > self.deadline:
            self.stopped_ = True
            raise KeyboardInterrupt


def training_callbacks(
    user_callbacks: Sequence[Any] | None,
    *,
    gradient_clip: float | None,
    progress_bar: bool,
    hint: str | None = None,
    own: Sequence[tuple[str, Callback]] = (),
    batches_per_epoch: int | str = "auto",
) -> list[Any]:
    """The callbacks every training run of the package uses, then the user's.

    A divergence stop first (never NaN weights), gradient clipping when
    ``gradient_clip`` is set, the caller's ``own`` callbacks, copies of the
    user's (skorch initialises callbacks in place, which must not leak into
    the user's objects or from one fit into the next), and skorch's progress
    bar when asked for and the user did not pass one, its length
    ``batches_per_epoch`` (skorch's "auto" counts the whole dataset, not the
    tasks a sampler draws).
    """
    stop = StopOnNonFiniteLoss() if hint is None else StopOnNonFiniteLoss(hint=hint)
    callbacks: list[Any] = [("stop_on_nonfinite", stop)]
    if gradient_clip is not None:
        callbacks.append(("gradient_clip", GradientNormClipping(gradient_clip_value=gradient_clip)))
    callbacks.extend(own)
    user = copy.deepcopy(list(user_callbacks or []))
    check_callback_entries(user, reserved=[name for name, _ in callbacks] + ["progress_bar"])
    if progress_bar and not any(_is_progress_bar(entry) for entry in user):
        callbacks.append(("progress_bar", ProgressBar(batches_per_epoch=batches_per_epoch)))
    return callbacks + user


def check_callback_entries(user: Sequence[Any] | None, reserved: Sequence[str]) -> None:
    """Refuse entries skorch would fail on later, with an unclear message.

    ``reserved``: names of the package's own callbacks, which a user's
    ``(name, callback)`` entry must not take (a progress bar may replace the
    package's).
    """
    for entry in user or []:
        callback = entry
        if isinstance(entry, tuple):
            if len(entry) != 2 or not isinstance(entry[0], str):
                raise InvalidParameterError(
                    f"callbacks entry {entry!r} is not a (name, callback) tuple."
                )
            name, callback = entry
            if name in reserved and not _is_progress_bar(entry):
                raise InvalidParameterError(
                    f"callbacks entry name {name!r} is used by the package's own "
                    f"callbacks ({reserved}); choose another name."
                )
        is_callback = isinstance(callback, Callback) or (
            isinstance(callback, type) and issubclass(callback, Callback)
        )
        if not is_callback:
            raise InvalidParameterError(
                f"callbacks entry {entry!r} is not a skorch Callback (an instance, a "
                "class, or a (name, callback) tuple)."
            )


def check_no_validation_monitor(
    user_callbacks: Sequence[Any] | None,
    why: str = "validation_fraction=0 holds out no validation data",
) -> None:
    """Refuse a callback watching ``valid_*`` when training holds out no validation data.

    skorch would fail after the first epoch with a bare KeyError. ``why`` says
    in the message why there is none.
    """
    for entry in user_callbacks or []:
        callback = _callback_of(entry)
        if getattr(callback, "falls_back_to_train_loss", False):
            continue  # e.g. KeepBestWeights: watches train_loss when there is no valid_loss
        if isinstance(callback, type):
            default = inspect.signature(callback).parameters.get("monitor")
            monitor = None if default is None else default.default
        else:
            monitor = getattr(callback, "monitor", None)
        if isinstance(monitor, str) and monitor.startswith("valid"):
            name = callback.__name__ if isinstance(callback, type) else type(callback).__name__
            raise InvalidParameterError(
                f"The callback {name} monitors {monitor!r}, but {why}; set "
                "validation_fraction > 0 (on enough data) or monitor='train_loss'."
            )


def check_task_scoring(user_callbacks: Sequence[Any] | None) -> None:
    """Refuse ``EpochScoring`` by a scikit-learn scorer name in meta-training.

    Its samples are tasks (batches of windows), which scikit-learn's scorers
    cannot read: it failed after the whole pooled phase had trained.
    """
    for entry in user_callbacks or []:
        callback = _callback_of(entry)
        if isinstance(callback, EpochScoring) and not callable(callback.scoring):
            raise InvalidParameterError(
                f"EpochScoring(scoring={callback.scoring!r}) scores with scikit-learn on "
                "the samples of training, which for the forecaster are tasks (batches of "
                "windows); pass a callable scoring(net, tasks, y) instead."
            )


def _callback_of(entry: Any) -> Any:
    """The callback of a user entry: itself, or the second item of a (name, callback) pair."""
    return entry[1] if isinstance(entry, tuple) and len(entry) == 2 else entry


def _is_progress_bar(entry: Any) -> bool:
    callback = _callback_of(entry)
    return isinstance(callback, ProgressBar) or callback is ProgressBar
