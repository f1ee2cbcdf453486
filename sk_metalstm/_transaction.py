"""Calls that either complete or leave an estimator as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["restored_on_error"]


@contextlib.contextmanager
def restored_on_error(estimator: Any) -> Iterator[None]:
    """Put back every attribute of ``estimator`` if the block raises (Ctrl-C too).

    sktime's public methods record the new data (cutoff, input metadata,
    remembered ``y``) before the estimator's own code runs and can refuse the
    data after recording it: a refused ``update`` or ``pretrain`` left a
    fitted forecaster predicting a DataFrame for a Series, or not at all. The
    attributes are copied shallowly, and the contents of dict and list
    attributes one level deep: the package replaces what it changes, and
    sktime mutates those in place (``_converter_store_y``, which names the
    forecasts; ``_pretrained_attrs``).
    """
    saved = dict(vars(estimator))
    saved_dicts = {name: dict(value) for name, value in saved.items() if type(value) is dict}
    saved_lists = {name: list(value) for name, value in saved.items() if type(value) is list}
    try:
        yield
    except BaseException:
        attributes = vars(estimator)
        # One C-level update first: an interrupt during the restore leaves at
        # most some attributes the call added, never a half-restored one.
        attributes.update(saved)
        for name, contents in saved_dicts.items():
            attributes[name].clear()
            attributes[name].update(contents)
        for name, items in saved_lists.items():
            attributes[name][:] = items
        for name in [name for name in attributes if name not in saved]:
            del attributes[name]
        raise
