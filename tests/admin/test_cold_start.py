"""Cold start: importing the usage and admin entry points imports neither the OpenAI SDK nor the
Cloud Scheduler client (each is imported on first use)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import runpy, sys
runpy.run_path(sys.argv[1], run_name="main")
heavy = sorted(name for name in sys.modules if name == "openai" or name.startswith(("openai.", "google.cloud.scheduler")))
print(",".join(heavy))
"""


@pytest.mark.parametrize("function", ["usage", "admin"])
def test_importing_the_entry_point_does_not_import_openai(function: str) -> None:
    # given a fresh interpreter; when it loads functions/<name>/main.py as functions-framework does
    found = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "functions" / function / "main.py")],
                           capture_output=True, text=True, timeout=60, cwd=ROOT, check=True)
    # then neither SDK is in sys.modules
    assert found.stdout.strip() == "", found.stdout
    assert "Traceback" not in found.stderr
