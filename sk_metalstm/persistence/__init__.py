"""Save and load fitted or pretrained estimators.

Two formats:

- ``save`` / ``load`` store a whole estimator (any state: new, pretrained,
  fitted) with ``pickle``. Convenient, but **loading unpickles arbitrary Python
  objects and can run code**: only ``load`` files you wrote yourself or fully
  trust.
- ``save_pretrained`` / ``load_pretrained`` (a ``MetaState``, what ``pretrain``
  produces) and ``save_regressor`` / ``load_regressor`` (a fitted
  ``LSTMBaseRegressor``) store plain tensors and a JSON description, and read
  them with ``torch.load(..., weights_only=True)``: loading runs no code from
  the file, so these are the formats to share models in.

Both record the package version they were written with, and files written on a
GPU machine load on a CPU-only one.

The safe format is one ``torch.save`` file holding a dict of exactly four
entries: ``"format"`` (``"sk_metalstm.meta_state/3"`` or
``"sk_metalstm.regressor/1"``), ``"version"`` (the package version),
``"config"`` (a JSON string: architecture, settings, fitted attributes,
training history) and ``"tensors"`` (a flat ``{name: Tensor}`` dict). One file,
rather than a JSON file beside a tensor file, cannot be split or mismatched when
passed around; and ``torch``'s weights-only unpickler, which refuses every
Python object but tensors and plain containers, is already a dependency.
"""

from sk_metalstm.persistence._pretrained import load_pretrained, save_pretrained
from sk_metalstm.persistence._regressor import load_regressor, save_regressor
from sk_metalstm.persistence._trusted import load, save

__all__ = ["save", "load", "save_pretrained", "load_pretrained", "save_regressor", "load_regressor"]
