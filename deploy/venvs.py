"""Virtual environments cached under ``.cache/`` and keyed by the hash of their requirements file.

One environment per distinct requirements file content: a changed pin makes a new environment, an
unchanged one is reused as is. Used for the bundle start test (``requirements.txt`` alone, as Cloud
Build installs it) and for checkov (``requirements-checkov.txt``, whose pins conflict with the project's).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"


class VenvError(RuntimeError):
    """A cached virtual environment could not be created or its requirements not installed."""


def requirements_hash(requirements: Path) -> str:
    """The first 16 hex digits of the SHA-256 of the requirements file's bytes."""
    return hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]


def cached_venv(requirements: Path, *, python: str = sys.executable) -> Path:
    """The directory of a virtual environment with exactly ``requirements`` installed, creating it on
    first use; raises VenvError (with pip's output) when the install fails. A half-built environment is
    never reused: the ``.complete`` marker is written only after pip succeeded."""
    target = CACHE / f"venv-{requirements.stem}-{requirements_hash(requirements)}"
    if (target / ".complete").is_file():
        return target
    if target.exists():
        shutil.rmtree(target)
    CACHE.mkdir(exist_ok=True)
    steps = [
        [python, "-m", "venv", str(target)],
        [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", str(requirements)],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise VenvError(f"{' '.join(step[:4])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    (target / ".complete").write_text(requirements.read_text())
    return target
