"""The safe file: one ``torch.save`` dict of a format name, a version, JSON and tensors.

Read with ``torch.load(..., weights_only=True)``, which refuses every Python
object but tensors and plain containers, and checked entry by entry.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
import zipfile
from typing import Any

import torch

import sk_metalstm
from sk_metalstm.persistence._formats import (
    PICKLE_FORMAT,
    SAFE_FORMATS,
    SAFE_KEYS,
    check_version,
)


def write_safe(
    path: str | os.PathLike[str],
    fmt: str,
    description: dict[str, Any],
    tensors: dict[str, torch.Tensor],
) -> None:
    """Write ``description`` (as JSON) and ``tensors`` to ``path`` as format ``fmt``.

    Raises ``ValueError``, writing nothing, if a tensor holds NaN or infinite
    values: the loaders refuse such files.
    """
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"Cannot save: tensor {name!r} holds NaN or infinite values (the model's "
                "training diverged, or its weights were edited); nothing was written."
            )
    payload = {
        "format": fmt,
        "version": sk_metalstm.__version__,
        "config": json.dumps(description, allow_nan=True),
        "tensors": tensors,
    }
    check_destination(path)
    torch.save(payload, path)


def file_path(path: Any) -> str:
    """``path`` as a str, or a ``TypeError`` naming what was passed instead.

    torch's own messages for a bytes path or an open file (a missing ``seek``,
    ``expected 'f' to be string``) do not say the file name is the problem.
    """
    if not isinstance(path, (str, os.PathLike)) or isinstance(os.fspath(path), bytes):
        raise TypeError(
            f"path must be a file name (a str or a pathlib.Path), got {type(path).__name__}."
        )
    return os.fspath(path)


def check_destination(path: str | os.PathLike[str]) -> None:
    """Name the problem with a destination torch.save would report as a raw RuntimeError."""
    target = file_path(path)
    if os.path.isdir(target):
        raise IsADirectoryError(f"{target!r} is a folder: give a file name inside it.")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"The folder {folder!r} of {target!r} does not exist.")


def check_archive(path: str | os.PathLike[str]) -> None:
    """Refuse a file whose stored checksums fail (a flipped byte, a bad copy).

    ``torch.save`` writes a zip archive with a CRC-32 of every part, but
    ``torch.load`` does not check them: a corrupted weight loaded silently
    and changed the predictions. Files that are not zip archives are left to
    ``torch.load``, which names what it cannot read.
    """
    if not isinstance(path, (str, os.PathLike)):
        return  # an open file object: torch.load reads it as it is
    target = os.fspath(path)
    if os.path.exists(target) and not (os.path.isfile(target) or os.path.isdir(target)):
        # A device or a pipe (a link to /dev/zero) is read without end.
        raise ValueError(
            f"{target!r} is not a regular file (a device, a pipe or a link to one); "
            "sk_metalstm reads models only from files."
        )
    if not zipfile.is_zipfile(target):
        if _starts_like_a_zip(target):
            # A copy cut short loses the archive's directory, stored at its end.
            raise ValueError(
                f"{target!r} cannot be read as a safe sk_metalstm file: it looks truncated "
                "or corrupt (a zip archive without its end). Copy the file again."
            )
        return
    try:
        with zipfile.ZipFile(target) as archive:
            # torch.save stores every part uncompressed: a compressed one can
            # inflate a small file to gigabytes before anything is checked.
            parts = archive.infolist()
            packed = [i.filename for i in parts if i.compress_type != zipfile.ZIP_STORED]
            bad = None if packed else archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        packed, bad = [], f"unreadable ({type(error).__name__}: {error})"
    if packed:
        raise ValueError(
            f"{target!r} was not written by sk_metalstm: its parts {packed[:3]} are "
            "compressed, and torch.save compresses none."
        )
    if bad is not None:
        raise ValueError(
            f"{target!r} is corrupt: its part {bad!r} does not match the checksum stored "
            "when it was saved. Save the model again, or copy the file again."
        )


def _starts_like_a_zip(path: str) -> bool:
    """Whether ``path`` begins as ``torch.save``'s zip archives do."""
    try:
        with open(path, "rb") as file:
            return file.read(4) == b"PK\x03\x04"
    except OSError:
        return False  # missing or unreadable: torch.load names it


def _last_line(error: Exception) -> str:
    """The last non-empty line of an error message (torch's are long)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"


def read_safe(
    path: str | os.PathLike[str], fmt: str, map_location: str = "cpu"
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON description and tensors of a safe file of format ``fmt``, checked."""
    where = repr(file_path(path))
    check_archive(path)
    try:
        with warnings.catch_warnings():
            # torch's notice about the pickle protocol of a foreign pickle.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except OSError as error:
        # torch's zip reader raises a bare "[Errno 22] Invalid argument" for a
        # file cut short.
        raise ValueError(
            f"{where} cannot be read as a safe sk_metalstm file: it looks truncated or "
            f"corrupt ({type(error).__name__}: {error})."
        ) from error
    except pickle.UnpicklingError as error:
        reason = next(
            (line.strip() for line in str(error).splitlines() if "global" in line.lower()),
            None,
        )
        if reason is None:  # not a pickle of objects, e.g. random or foreign bytes
            raise ValueError(
                f"{where} is not a safe sk_metalstm file: torch.load cannot read it "
                f"({_last_line(error)})."
            ) from error
        raise ValueError(
            f"{where} is not a safe sk_metalstm file: it holds Python objects that could "
            f"run code when loaded, so it was not loaded ({reason}). Files written by "
            "sk_metalstm.persistence.save are pickles: open them with "
            "sk_metalstm.persistence.load only if you trust their source."
        ) from error
    except Exception as error:  # torch raises many types for a file that is not its own
        raise ValueError(
            f"{where} is not a safe sk_metalstm file: torch.load cannot read it "
            f"({type(error).__name__}: {error})."
        ) from error
    if not isinstance(payload, dict):
        raise ValueError(
            f"{where} is not a safe sk_metalstm file: it holds a {type(payload).__name__}, "
            "not a dict."
        )
    found = payload.get("format")
    if found != fmt:
        if found in SAFE_FORMATS:
            what, reader = SAFE_FORMATS[found]
            raise ValueError(f"{where} holds {what}; read it with {reader}.")
        if found == PICKLE_FORMAT:
            raise ValueError(
                f"{where} was written by sk_metalstm.persistence.save (a pickle); open it "
                "with sk_metalstm.persistence.load, only if you trust its source."
            )
        if isinstance(found, str) and found.split("/")[0] == fmt.split("/")[0]:
            raise ValueError(
                f"{where} is a safe sk_metalstm file of another format version ({found!r}; "
                f"this version reads {fmt!r}): it was written by an older or newer "
                "sk_metalstm. Pretrain (or fit) the model again with this version."
            )
        raise ValueError(
            f"{where} is not a safe sk_metalstm file of format {fmt!r}: its format is {found!r}."
        )
    missing = [k for k in SAFE_KEYS if k not in payload]
    if missing:
        raise ValueError(f"{where} is an incomplete sk_metalstm file: it lacks {missing}.")
    extra = sorted(str(k) for k in payload if k not in SAFE_KEYS)
    if extra:
        raise ValueError(f"{where} holds unexpected entries {extra}.")
    if not isinstance(payload["version"], str):
        raise ValueError(f"{where}: 'version' must be a string, got {payload['version']!r}.")
    check_version(path, payload["version"], stacklevel=4)
    if not isinstance(payload["config"], str):
        raise ValueError(f"{where}: 'config' must be a JSON string.")
    try:
        description = json.loads(payload["config"])
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deep
        raise ValueError(f"{where}: 'config' is not valid JSON ({error}).") from error
    if not isinstance(description, dict):
        raise ValueError(f"{where}: 'config' must be a JSON object.")
    tensors = payload["tensors"]
    if not isinstance(tensors, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()
    ):
        raise ValueError(f"{where}: 'tensors' must map names to tensors.")
    for name, tensor in tensors.items():
        _check_saved_tensor(where, name, tensor)
    return description, tensors


def _check_saved_tensor(where: str, name: str, tensor: torch.Tensor) -> None:
    """Refuse a tensor of a kind the save functions never write.

    They write dense, finite float32/float64 values. Anything else was made by
    hand: loading it converted it silently (integer weights), failed deep in
    torch (bfloat16, sparse, meta) or passed NaN on to blame the user's data.
    """
    plain = (
        tensor.layout == torch.strided
        and tensor.device.type != "meta"
        and tensor.dtype in (torch.float32, torch.float64)
        and not tensor.requires_grad
    )
    if not plain:
        raise ValueError(
            f"{where}: tensor {name!r} is {tensor.dtype} ({tensor.layout}, on "
            f"{tensor.device.type}{', requiring grad' if tensor.requires_grad else ''}); "
            "sk_metalstm saves only dense float32 or float64 tensors."
        )
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(
            f"{where}: tensor {name!r} holds NaN or infinite values, which sk_metalstm "
            "never saves; the file is corrupt or was edited."
        )


def check_sizes(
    path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], sizes: dict[str, int]
) -> None:
    """Refuse sizes in a file's settings that its own tensors are too small to hold.

    Built before its weights are loaded, a network of a crafted size (a
    7 KB file claiming horizon=5e7) took gigabytes and minutes. Each bound
    holds for any file the save functions write: ``hidden_size`` h has a
    recurrent weight of 4 h^2 numbers, each of ``num_layers`` layers has its
    own tensors, and every other size (outputs, input features) is at most
    the number of stored numbers.
    """
    numbers = sum(t.numel() for t in tensors.values())
    for key, value in sizes.items():
        needed, held, unit = value, numbers, "numbers"
        if key == "hidden_size":
            needed = 4 * value**2
        elif key == "num_layers":
            held, unit = len(tensors), "tensors"
        if needed > held:
            raise ValueError(
                f"{os.fspath(path)!r} is inconsistent: its setting {key}={value} needs "
                f"more than the {held} {unit} it stores."
            )


def field(
    mapping: dict[str, Any],
    key: str,
    kind: type,
    path: str | os.PathLike[str],
    default: Any = None,
) -> Any:
    """``mapping[key]``, which must be a ``kind`` (or absent when a default is given)."""
    if key not in mapping and default is not None:
        return default
    if key not in mapping:
        raise ValueError(f"{os.fspath(path)!r} is an incomplete sk_metalstm file: no {key!r}.")
    value = mapping[key]
    if not isinstance(value, kind):
        raise ValueError(f"{os.fspath(path)!r}: {key!r} must be a {kind.__name__}, got {value!r}.")
    return value


def plain_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """A compact CPU copy (no shared storage, no autograd)."""
    return tensor.detach().to("cpu", copy=True).contiguous()


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], path: Any) -> None:
    """Load ``weights`` into ``module`` (strictly); a mismatch is the file's fault."""
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"{os.fspath(path)!r}: its tensors do not match the architecture its config "
            f"describes: {error}"
        ) from error


def is_int(value: Any) -> bool:
    """An integer read from JSON (a bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A number read from JSON (a bool is not one)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
