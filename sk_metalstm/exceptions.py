"""Exceptions raised by sk_metalstm's estimators."""

from __future__ import annotations

__all__ = ["AdaptationFallbackWarning", "InvalidParameterError", "TrainingDiverged"]


class TrainingDiverged(ValueError, RuntimeError):
    """Raised when a training loss, or adapted weights, become NaN or infinite.

    A ``ValueError`` as well as a ``RuntimeError``: its causes are the data
    (extreme values) or the settings (a learning rate too large), the things a
    ``ValueError`` names in scikit-learn. The estimator is left unfitted, so it
    never returns NaN forecasts.
    """


class InvalidParameterError(ValueError, TypeError):
    """Raised when a parameter has an unsupported type or value.

    Both a ``ValueError`` and a ``TypeError``, like scikit-learn's error of
    the same name: callers may catch either.
    """


class AdaptationFallbackWarning(UserWarning):
    """Warns that adapting made some series fit their own history worse.

    A gradient learner's update rule that raises a series' loss on the very
    windows it adapts to has overshot (too large an ``inner_lr``, too many
    steps); those series keep the learner's starting weights (pooled or
    meta-learned) instead.
    """
