"""Steps 1 and 2 of the method: pooled base training, then meta-training.

Both run through skorch (``MetaNet``), so users get its history, callbacks,
progress bar and device handling for free.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from skorch.callbacks import EarlyStopping
from skorch.helper import predefined_split
from torch.utils.data import RandomSampler, Subset

from sk_metalstm._stacklevel import caller_stacklevel
from sk_metalstm.callbacks import (
    KeepBestWeights,
    ProgressReport,
    TimeBudget,
    check_callback_entries,
    check_no_validation_monitor,
    check_task_scoring,
    report_notice,
    training_callbacks,
)
from sk_metalstm.distribution import GaussianNLL, n_outputs
from sk_metalstm.meta import META_LEARNERS, make_meta_learner
from sk_metalstm.meta.base import MetaLearner
from sk_metalstm.meta.calibration import calibrate
from sk_metalstm.meta.net import MetaNet
from sk_metalstm.meta.pooled import PooledLearner
from sk_metalstm.meta.state import MetaState
from sk_metalstm.meta.tasks import TaskDataset
from sk_metalstm.networks import LSTMNetwork
from sk_metalstm.windowing import TaskLayout

__all__ = ["meta_train", "build_meta_net"]

_DEFAULT_LR = 1e-3
_DIVERGED_HINT = "Lower lr or inner_lr, reduce inner_steps, or check the data for extreme values."
#: Validation tasks scored each epoch, at most (a fixed random subset of the latest tasks).
_MAX_VALID_TASKS = 512


def build_meta_net(
    learner: MetaLearner,
    *,
    max_epochs: int,
    batch_size: int,
    lr: float | None,
    gradient_clip: float | None,
    valid: TaskDataset | Subset | None,
    callbacks: Sequence[Any] | None,
    device: str,
    verbose: int,
    train: TaskDataset | None = None,
    tasks_per_epoch: int | None = None,
    n_iter_no_change: int | None = None,
    deadline: float | None = None,
    phase: str = "meta",
    keep_start: bool | None = None,
) -> MetaNet:
    """A ``MetaNet`` that trains ``learner`` with the package's defaults.

    ``tasks_per_epoch`` draws that many tasks of ``train`` per epoch (all
    tasks when ``None`` or when there are fewer); ``n_iter_no_change`` stops after
    that many epochs without a better validation loss; ``deadline`` (a
    ``time.monotonic()`` value) ends training when passed. ``keep_start``:
    score the starting weights before the first epoch and keep them if no
    epoch beats them (default: for every phase but a fresh ``"pooled"`` one).
    ``verbose=1`` prints progress lines with the time left; ``verbose>=2``
    adds skorch's epoch table and progress bar.
    """
    optimizer = getattr(learner, "outer_optimizer", torch.optim.Adam)
    if lr is None:
        lr = getattr(learner, "default_outer_lr", _DEFAULT_LR)
    has_valid = valid is not None and len(valid) > 0
    n_tasks = len(train) if train is not None else tasks_per_epoch or 1
    net_options: dict[str, Any] = {"iterator_train__shuffle": True}
    if train is not None and tasks_per_epoch is not None and tasks_per_epoch < n_tasks:
        # Epochs of a fixed size: cost no longer grows with the panel.
        n_tasks = tasks_per_epoch
        net_options = {"iterator_train__sampler": RandomSampler(train, num_samples=n_tasks)}
    # Meta-training starts from weights worth keeping (the pooled network, or a
    # state trained before): it must never end worse than them on validation.
    keep_start = phase != "pooled" if keep_start is None else keep_start
    own: list[Any] = [("keep_best", KeepBestWeights(score_start=keep_start))]
    batches = math.ceil(n_tasks / batch_size)
    valid_batches = math.ceil(len(valid) / batch_size) if has_valid else 0
    if verbose >= 1:
        # Before the callbacks that stop training: it counts the epoch they stop after.
        progress = ProgressReport(
            phase, batches, deadline=deadline, valid_batches_per_epoch=valid_batches
        )
        own.append(("progress", progress))
    if has_valid and n_iter_no_change is not None:
        own.append(("early_stopping", EarlyStopping(patience=n_iter_no_change, sink=_silent)))
    if deadline is not None:
        own.append(("time_budget", TimeBudget(deadline)))
    callbacks = training_callbacks(
        callbacks,
        gradient_clip=gradient_clip,
        progress_bar=verbose >= 2,
        hint=_DIVERGED_HINT,
        own=own,
        # Without train, skorch's "auto" counts the dataset that fit is given.
        batches_per_epoch="auto" if train is None else batches + valid_batches,
    )
    multipliers = getattr(learner, "outer_lr_multipliers", {})
    groups = [(name, {"lr": lr * factor}) for name, factor in multipliers.items()]
    if groups:
        net_options["optimizer__param_groups"] = groups
    return MetaNet(
        learner,
        criterion=GaussianNLL,
        optimizer=optimizer,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        # Validation tasks are the latest of each series, never a random draw.
        train_split=predefined_split(valid) if has_valid else None,
        callbacks=callbacks,
        device=device,
        verbose=max(verbose - 1, 0),
        **net_options,
    )


#: The forecaster's default validation_fraction (a smaller one can hold out nothing).
_DEFAULT_FRACTION = 0.1


def _silent(*args: Any, **kwargs: Any) -> None:
    """EarlyStopping's message sink when progress is shown by ``ProgressReport``."""


def _capped(valid: TaskDataset, seed: int = 0) -> TaskDataset | Subset:
    """At most ``_MAX_VALID_TASKS`` validation tasks, a fixed subset (same every epoch)."""
    if len(valid) <= _MAX_VALID_TASKS:
        return valid
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(valid), size=_MAX_VALID_TASKS, replace=False))
    return Subset(valid, keep.tolist())


def meta_train(
    series: Sequence[np.ndarray],
    *,
    layout: TaskLayout,
    config: dict[str, Any],
    callbacks: Sequence[Any] | None,
    device: str,
    warm_start: MetaState | None = None,
) -> MetaState:
    """Train the pooled base network, then the meta-learner, on tasks from ``series``.

    Parameters
    ----------
    series : sequence of 1-D arrays
        Increments of every training series.
    layout : TaskLayout
        Task sizes.
    config : dict
        Forecaster parameters (``hidden_size``, ``meta_learner``, ...), stored
        in the returned state.
    callbacks : sequence or None
        User skorch callbacks for the meta-training phase (copied, not mutated);
        for the pooled phase when no meta-training follows it (``"none"``,
        ``"finetune"``, ``max_epochs=0``).
    device : str
        torch device for training; the returned learner lives on CPU.
    warm_start : MetaState or None
        Continue from this state (``pretrain`` called again) instead of
        starting over.

    Raises
    ------
    ValueError
        If no series is long enough for a single task.
    """
    check_task_scoring(callbacks)
    stride = config["task_stride"] or layout.query_size
    tasks = TaskDataset(series, layout, stride)
    if len(tasks) == 0:
        longest = max((len(z) for z in series), default=0)
        # Increments lose a series' first point, except with transform="none" (levels).
        lost = 0 if config.get("transform") == "none" else 1
        raise ValueError(
            f"No series is long enough to cut one meta-training task: a task spans "
            f"{layout.span} increments (support_size + query_size + window_length + "
            f"2 * horizon - 2), i.e. {layout.span + lost} points, but the longest series "
            f"has {longest + lost}. Use a longer series, pretrain on a panel, or lower "
            f"support_size / query_size / window_length / horizon (now {layout.horizon}; "
            "horizon=None takes the largest step of fh)."
        )
    train, valid = tasks, None
    if config["validation_fraction"] > 0:
        train, valid = tasks.split_by_time(config["validation_fraction"])
        if len(train) == 0:  # torch's sampler would say "num_samples=0"
            raise ValueError(
                f"validation_fraction={config['validation_fraction']} of {len(tasks)} "
                "meta-training tasks leaves no training task (each series' latest tasks "
                "are held out); lower validation_fraction or use longer series."
            )
    scored_valid = _capped(valid) if valid is not None and len(valid) else None
    fraction = config["validation_fraction"]
    longest = int(np.bincount(tasks.index[:, 0]).max()) if len(tasks) else 0
    if scored_valid is None and 0 < fraction and round(_DEFAULT_FRACTION * longest) >= 1:
        # The series are long enough to hold tasks out; the fraction chosen is not.
        warnings.warn(
            f"validation_fraction={fraction} rounds to no validation task per series (the "
            f"longest has {longest} tasks): early stopping is off and the intervals are "
            "calibrated on the training tasks (in sample). Raise validation_fraction.",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
    if scored_valid is None:  # fail before training, not with skorch's KeyError after it
        check_no_validation_monitor(
            callbacks,
            f"validation_fraction={fraction} holds out no validation data"
            if fraction == 0
            else f"validation_fraction={fraction} of {len(tasks)} meta-training tasks "
            "leaves no validation task",
        )
    budget = config.get("max_time")
    # Before any training: the meta phase's net, which checks the user's
    # entries, is built only after the whole pooled phase. The names its own
    # callbacks take (build_meta_net):
    reserved = ["stop_on_nonfinite", "keep_best", "progress_bar"]
    reserved += ["gradient_clip"] if config["gradient_clip"] is not None else []
    reserved += ["progress"] if config["verbose"] >= 1 else []
    if scored_valid is not None and config.get("n_iter_no_change") is not None:
        reserved.append("early_stopping")
    reserved += ["time_budget"] if budget is not None else []
    check_callback_entries(callbacks, reserved=reserved)
    start = time.monotonic()
    base_epochs, meta_epochs = config["base_max_epochs"], config["max_epochs"]

    def fit(learner: MetaLearner, epochs: int, user_callbacks: Any, phase: str) -> MetaLearner:
        deadline = None
        if budget is not None:
            # The pooled phase may use its share of the budget; the meta phase the rest.
            share = (
                1.0
                if phase != "pooled" or not meta_phase_follows
                else base_epochs / max(base_epochs + meta_epochs, 1)
            )
            deadline = start + budget * share
        net = build_meta_net(
            learner,
            max_epochs=epochs,
            batch_size=config["tasks_per_batch"],
            lr=config["lr"],
            gradient_clip=config["gradient_clip"],
            train=train,
            valid=scored_valid,
            tasks_per_epoch=config.get("tasks_per_epoch"),
            n_iter_no_change=config.get("n_iter_no_change"),
            deadline=deadline,
            phase=phase,
            # Weights trained before (a continued pretrain) are worth keeping.
            keep_start=phase != "pooled" or warm_start is not None,
            callbacks=user_callbacks,
            device=device,
            verbose=config["verbose"],
        )
        net.fit(train, None)
        histories.append(net.history)
        own = dict(net.callbacks_)
        keep_best = own["keep_best"]
        ended = getattr(own.get("progress"), "ended_", False)  # its last line said it
        if keep_best.kept_start_ and config["verbose"] >= 1:
            if any("train_loss" in row for row in net.history):
                why = "no epoch beat the starting weights' valid loss"
                # Nothing says the step size is to blame unless the user chose it.
                hint = (
                    f"lr={config['lr']} was set: a smaller one may help"
                    if config["lr"] is not None
                    else None
                )
            else:  # the time budget (or Ctrl-C) ended the phase within its first epoch
                why = (
                    "no epoch finished (max_time or an interrupt); "
                    "the starting weights' valid loss is"
                )
                hint = "raise max_time to train them"
            if not ended:
                said = hint or "nothing learnt held up on the held-out tasks"
                report_notice(
                    f"{phase}: {why} {keep_best.start_score_:.4f}; they are kept ({said})"
                )
            elif hint:  # the phase's last line said the weights are kept, not why
                report_notice(f"{phase}: {hint}")
        return net.module_.cpu()

    histories: list[Any] = list(warm_start.history) if warm_start is not None else []
    name = config["meta_learner"]
    # "none" and "finetune" train nothing after the pooled phase: it gets the whole budget.
    meta_phase_follows = name != "none" and META_LEARNERS[name].trainable and meta_epochs > 0

    def new_network() -> LSTMNetwork:
        return LSTMNetwork(
            tasks.n_features, config["hidden_size"], config["num_layers"], n_outputs(layout.horizon)
        )

    def take_weights(network: LSTMNetwork, source: MetaLearner) -> LSTMNetwork:
        network.load_state_dict({n: p.detach() for n, p in source.initial_params().items()})
        return network

    if warm_start is not None:
        learner = copy.deepcopy(warm_start.learner)
        if name == "finetune" and config["base_max_epochs"] > 0:
            # Its pooled network is all "finetune" trains: continue it, as "none" does.
            network = take_weights(new_network(), learner)
            pooled = fit(PooledLearner(network), config["base_max_epochs"], callbacks, "pooled")
            learner = make_meta_learner(
                name,
                take_weights(network, pooled),
                inner_steps=learner.inner_steps,
                first_order=learner.first_order,
                inner_lr=learner.inner_lr,
            )
    else:
        network = new_network()
        learner = PooledLearner(network)
        if config["base_max_epochs"] > 0:
            # With nothing meta-trained after it, the pooled phase is the user's training.
            own = None if meta_phase_follows else callbacks
            learner = fit(learner, config["base_max_epochs"], own, "pooled")
        if name != "none":
            learner = make_meta_learner(
                name,
                take_weights(network, learner),
                inner_steps=config["inner_steps"],
                first_order=config["first_order"],
                inner_lr=config["inner_lr"],
            )
    # The pooled network ("none") continues with its own epoch count, not max_epochs.
    epochs = config["base_max_epochs"] if name == "none" else config["max_epochs"]
    if learner.trainable and epochs > 0 and (warm_start is not None or name != "none"):
        learner = fit(learner, epochs, callbacks, "pooled" if name == "none" else f"meta ({name})")
    learner.eval()
    # The last step's gradients are a second copy of the weights, of no use after training.
    learner.zero_grad(set_to_none=True)
    # Held-out (later) tasks calibrate locations and intervals when there are any.
    calibration = None
    # max_time bounds calibration too (beyond a minimum of tasks); on the training device.
    options = {
        "device": device,
        "deadline": None if budget is None else start + budget,
        "verbose": config["verbose"],
    }
    if valid is not None and len(valid):
        calibration = calibrate(learner, valid, **options)
    if calibration is None:  # no held-out tasks, or only flat ones
        calibration = calibrate(learner, tasks, **options)
    if calibration is None:  # every query flat: a series that rarely moves at all
        calibration = calibrate(learner, tasks, moving_queries_only=False, **options)
    if calibration is None:
        raise ValueError(
            "Every meta-training task's support windows are flat (the series did not "
            "move over any of them), so nothing calibrates the forecasts; train on series "
            "that move throughout (fit without a pretrained state trains on y itself)."
        )
    return MetaState(
        learner=learner,
        config=dict(config),
        history=histories,
        residuals=calibration.residuals,
        location_weight=calibration.location_weight,
    )
