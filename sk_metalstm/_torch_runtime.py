"""Per-call torch settings: seeding, thread count and device.

Estimators enter ``torch_runtime`` around fit/predict so that ``random_state``
and ``num_threads`` apply to that call only; global torch state is restored on
exit and nothing is changed on import.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from sk_metalstm.exceptions import InvalidParameterError

__all__ = ["torch_runtime", "float32_default", "check_device", "resolve_device", "seed_from"]

_DEVICE_TYPES = ("auto", "cpu", "cuda", "mps")


def seed_from(random_state: int | np.random.RandomState | None) -> int:
    """Draw a torch seed from a scikit-learn style ``random_state``.

    Raises
    ------
    InvalidParameterError
        Naming ``random_state`` when it is not None, an int in [0, 2**32 - 1]
        or a ``numpy.random.RandomState``.
    """
    try:
        generator = check_random_state(random_state)
    except ValueError as error:  # numpy's and scikit-learn's messages do not name it
        raise InvalidParameterError(
            f"random_state={random_state!r} is not a valid seed: {error}. Pass None, an "
            "int in [0, 2**32 - 1] or a numpy.random.RandomState."
        ) from None
    return int(generator.randint(0, 2**31 - 1))


#: More threads than any machine has cores for; torch's thread pool aborts the
#: interpreter when it cannot start them (near 30,000 on Linux).
_MAX_THREADS = 1024


def _check_thread_count(num_threads: int) -> None:
    if num_threads > _MAX_THREADS:
        raise InvalidParameterError(
            f"num_threads={num_threads} is more threads than torch can be trusted to "
            f"start (at most {_MAX_THREADS}; this machine has {os.cpu_count()} CPUs). "
            "Use 1 for small networks, or None for torch's default."
        )


def check_device(device: Any) -> None:
    """Raise ``InvalidParameterError`` unless ``device`` names a torch device type.

    The one place where device strings are validated; availability is checked
    only when a device is used (``resolve_device``), so a model saved on a GPU
    machine stays loadable without one.
    """
    name = device.type if isinstance(device, torch.device) else device
    if not isinstance(name, str) or not _parses_as_device(name):
        raise InvalidParameterError(
            f"Unknown device {device!r}; choose 'cpu', 'cuda' (or 'cuda:N'), 'mps' or 'auto'."
        )


def _parses_as_device(name: str) -> bool:
    """Whether ``name`` is one of our device types, with an optional ``:N`` index."""
    kind, colon, index = name.partition(":")
    return kind in _DEVICE_TYPES and (not colon or (index.isdigit() and kind != "auto"))


def resolve_device(device: str | torch.device) -> str:
    """Check ``device`` and turn ``"auto"`` into ``"cuda"`` when a GPU is visible."""
    check_device(device)
    if str(device) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but torch sees no CUDA device; "
            "use device='cpu' or device='auto'."
        )
    if str(device).startswith("mps") and not torch.backends.mps.is_available():
        raise ValueError(
            f"device={device!r} was requested but torch sees no Apple MPS device; "
            "use device='cpu' or device='auto'."
        )
    return str(device)


#: torch's RNG and thread count are process-wide: blocks running at once in
#: several threads (sktime's backend="threading", a ThreadPoolExecutor) seeded
#: and restored each other's, so seeded fits differed from sequential ones and
#: the caller's RNG and thread count were left changed. They run one at a time;
#: a block nested in another (same thread) enters at once.
_RUNTIME_LOCK = threading.RLock()


def _new_lock_in_forked_child() -> None:
    # A child forked while another thread held the lock (a pretrain in the
    # background, joblib's "multiprocessing" backend) inherits it held by a
    # thread that does not exist there, and its first block waited forever.
    global _RUNTIME_LOCK
    _RUNTIME_LOCK = threading.RLock()


if hasattr(os, "register_at_fork"):  # POSIX; Windows does not fork
    os.register_at_fork(after_in_child=_new_lock_in_forked_child)


@contextlib.contextmanager
def float32_default() -> Iterator[None]:
    """Build tensors in float32 inside the block, whatever the caller's default dtype.

    The networks compute in float32 and are fed float32 data: under a caller's
    ``torch.set_default_dtype(torch.float64)`` they were built in float64 and
    the first forward pass failed with torch's "input dtype does not match
    weight dtype". The caller's default is restored on exit.
    """
    previous = torch.get_default_dtype()
    try:  # set inside: an interrupt right after it still restores
        torch.set_default_dtype(torch.float32)
        yield
    finally:
        torch.set_default_dtype(previous)


@contextlib.contextmanager
def torch_runtime(seed: int | None, num_threads: int | None, device: str = "cpu") -> Iterator[None]:
    """Run a block with a seeded RNG and a given intra-op thread count, then restore both.

    Blocks in different Python threads run one after the other (torch's RNG
    and thread count are process-wide); parallel work wants processes. Other
    code drawing from torch's RNG in another thread meanwhile is not held
    back: it shifts the block's draws (and gets some of its seeded stream).

    Parameters
    ----------
    seed : int or None
        Seed for torch's RNGs inside the block; ``None`` leaves them as they are.
        The caller's RNG state is restored afterwards either way.
    num_threads : int or None
        Intra-op threads inside the block; ``None`` keeps torch's setting. Small
        LSTMs gain nothing from threads, and on a busy machine torch's default
        (one thread per core) can be many times slower than one thread.
    device : str, default="cpu"
        The (resolved) device the block computes on. The GPUs' RNGs are seeded
        and restored only for a CUDA block or when the process already uses
        CUDA: reading their state starts CUDA on every visible GPU (memory,
        seconds, and no CUDA in processes forked afterwards).
    """
    if num_threads is not None:
        _check_thread_count(num_threads)
    cuda = str(device).startswith("cuda") or torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if seed is not None and cuda else []
    with _RUNTIME_LOCK, float32_default():
        previous_threads = torch.get_num_threads()
        # Grad mode too: an interrupt inside a no_grad block's exit (the
        # learners' inference) left gradients off for the whole process.
        grad_enabled = torch.is_grad_enabled()
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            try:  # settings made inside: an interrupt right after one still restores it
                if seed is not None and (cuda or str(device).startswith("mps")):
                    torch.manual_seed(seed)
                elif seed is not None:
                    # torch.manual_seed would also queue a seed for CUDA's first use.
                    torch.random.default_generator.manual_seed(seed)
                if num_threads is not None:
                    torch.set_num_threads(num_threads)
                yield
            finally:
                if num_threads is not None:
                    torch.set_num_threads(previous_threads)
                torch.set_grad_enabled(grad_enabled)
