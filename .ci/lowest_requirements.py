"""Print pip requirements pinning every runtime dependency to its declared floor.

CI installs these in a second virtual environment to prove the floors in
pyproject.toml. torch is the exception: only the local CPU build (2.13.0)
installs cheaply here; older torch releases come as multi-GB CUDA builds, so the
torch floor was proven once by hand (see docs/installation.md).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

TORCH_HERE = "torch==2.13.0"


def main() -> None:
    """Print one pinned requirement per line."""
    root = Path(__file__).resolve().parents[1]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    for requirement in pyproject["project"]["dependencies"]:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([^,;\s]+)\s*", requirement)
        if match is None:
            sys.exit(f"Cannot read a floor from {requirement!r}; declare it as 'name>=version'.")
        name, floor = match.groups()
        print(TORCH_HERE if name == "torch" else f"{name}=={floor}")


if __name__ == "__main__":
    sys.exit(main())
