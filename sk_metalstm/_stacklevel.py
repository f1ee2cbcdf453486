"""Where a warning points: the user's line, past this package's and sktime's frames."""

from __future__ import annotations

import os
import sys

__all__ = ["caller_stacklevel"]

#: Packages whose frames a warning skips to reach the user's line.
_LIBRARIES = ("sk_metalstm", "sktime", "skbase")


def caller_stacklevel() -> int:
    """``stacklevel`` of the first frame outside this package and sktime, for the caller.

    ``fit``, ``update`` and panel calls reach a warning through different
    depths; a fixed level would point into the library for some of them.
    """
    roots = tuple(
        os.path.dirname(module.__file__) + os.sep
        for name in _LIBRARIES
        if (module := sys.modules.get(name)) is not None and module.__file__
    )
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(roots):
        frame, level = frame.f_back, level + 1
    return level
