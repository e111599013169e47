"""./deploy.sh: every missing prerequisite of `deploy` is one line, and nothing is a stack trace."""

from __future__ import annotations

import os
import re
import socket
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy.prereqs import declared_variables

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy.sh"
WITHOUT_CLOUD_TOOLS = ("gcloud", "terraform")


@pytest.fixture
def bare_path(tmp_path: Path) -> str:
    """A PATH with the system's commands but neither gcloud nor terraform."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in ("/usr/bin", "/bin"):
        for tool in Path(directory).iterdir():
            if tool.name not in WITHOUT_CLOUD_TOOLS and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    return str(bin_dir)


def run_script(*args: str, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TF_VAR_") and k not in {"DATABASE_URL", "TFVARS"}}
    return subprocess.run([str(SCRIPT), *args], env={**clean, "PATH": path, **env}, capture_output=True,
                          text=True, timeout=120, check=False)


def missing_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("missing: ")]


def test_deploy_without_tools_or_variables_lists_each_missing_piece(bare_path: str, tmp_path: Path) -> None:
    # Given no gcloud, no terraform, no tfvars file and no TF_VAR_* or DATABASE_URL
    assert shutil.which("gcloud", path=bare_path) is None and shutil.which("terraform", path=bare_path) is None
    # When deploy runs
    done = run_script("deploy", path=bare_path, TFVARS=str(tmp_path / "absent.tfvars"))
    lines = missing_lines(done.stderr)
    # Then it exits non-zero before changing anything, one line per missing piece, no traceback
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert any(line.startswith("missing: gcloud is not installed") for line in lines)
    assert any(line.startswith("missing: terraform is not installed") for line in lines)
    for variable in ("project_id", "supabase_url", "supabase_publishable_key", "supabase_secret_key", "openai_api_key",
                     "alert_email"):
        assert f"missing: terraform variable {variable} is not set (set it in {tmp_path / 'absent.tfvars'} or as TF_VAR_{variable})" in lines
    assert any(line.startswith("missing: DATABASE_URL is not set") for line in lines)
    assert "nothing was changed" in done.stderr
    assert "== building bundles" not in done.stderr


def test_deploy_refuses_the_example_placeholders(bare_path: str) -> None:
    # Given the example tfvars, unfilled
    done = run_script("deploy", path=bare_path, TFVARS=str(ROOT / "terraform" / "terraform.tfvars.example"),
                      DATABASE_URL="postgresql://postgres.your-project-ref:pw@pooler.example:5432/postgres")
    lines = missing_lines(done.stderr)
    # Then every placeholder is named, required variables count as given, and it stops
    assert done.returncode == 1
    for variable in ("project_id", "supabase_url", "supabase_publishable_key", "supabase_secret_key", "openai_api_key",
                     "alert_email"):
        assert f"missing: terraform variable {variable} holds a placeholder value" in lines
        assert not any(line.startswith(f"missing: terraform variable {variable} is not set") for line in lines)
    assert "missing: DATABASE_URL holds a placeholder value" in lines


def test_deploy_with_everything_given_gets_past_the_variables(bare_path: str, tmp_path: Path) -> None:
    # Given real-looking values in TF_VAR_* and a declared-nowhere variable in the file
    tfvars = tmp_path / "terraform.tfvars"
    tfvars.write_text('project_id = "docchat-prod-4711"\nsupabase_anon_key = "sb_publishable_abc"\n')
    done = run_script("deploy", path=bare_path, TFVARS=str(tfvars), TF_VAR_supabase_url="https://abcdefgh.supabase.co",
                      TF_VAR_supabase_secret_key="sb_publishable_wrong", TF_VAR_openai_api_key="sk-proj-abc123",
                      TF_VAR_supabase_publishable_key="sb_secret_wrong",
                      TF_VAR_alert_email="oncall@docchat.dev", TF_VAR_cors_origins='["https://app.docchat.dev"]',
                      DATABASE_URL=unreachable_database_url())
    lines = missing_lines(done.stderr)
    # Then only the tools, the stale variable, the wrong kinds of key and the unreachable database are
    # reported, the latter without its password
    assert done.returncode == 1
    assert "s3cret" not in done.stderr
    unreachable = [line for line in lines if line.startswith("missing: the database in DATABASE_URL cannot be reached: ")]
    assert len(unreachable) == 1
    assert sorted(set(lines) - set(unreachable)) == sorted([
        "missing: gcloud is not installed or not on PATH (install the Google Cloud CLI)",
        "missing: terraform is not installed or not on PATH (install Terraform >= 1.11)",
        "missing: terraform variable supabase_anon_key is not declared in terraform/ (remove it)",
        "missing: terraform variable supabase_secret_key holds a publishable key; it needs the sb_secret_... key",
        "missing: terraform variable supabase_publishable_key holds a secret key, which would be a plain "
        "environment variable; it needs the sb_publishable_... key",
    ])


@pytest.mark.parametrize(("args", "message"), [
    (("token",), "usage: ./deploy.sh token EMAIL"),
    (("migrate",), "missing: DATABASE_URL is not set"),
    (("migrate", "DATABASE_URL"), "missing: the database in DATABASE_URL cannot be reached"),
    (("nonsense",), "unknown command: nonsense"),
])
def test_other_subcommands_fail_with_a_message_not_a_traceback(args: tuple[str, ...], message: str, bare_path: str) -> None:
    # Given a subcommand missing what it needs (the "DATABASE_URL" case gives an unreachable one)
    env = {"DATABASE_URL": unreachable_database_url()} if args[1:] == ("DATABASE_URL",) else {}
    # When it runs, then it fails with the message and no traceback
    done = run_script(*args[:1], path=bare_path, **env)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def closed_port() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def unreachable_database_url() -> str:
    return f"postgresql://postgres:s3cret@127.0.0.1:{closed_port()}/postgres"


def test_refresh_without_the_local_stack_says_so(bare_path: str) -> None:
    port = closed_port()
    done = run_script("refresh", path=bare_path, PORT=port)
    assert done.returncode == 1
    assert f"the local stack is not running on port {port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_lists_every_subcommand(bare_path: str) -> None:
    done = run_script("--help", path=bare_path)
    assert done.returncode == 0
    for command in ("local", "test", "migrate", "token", "refresh", "bench", "build", "deploy"):
        assert f"./deploy.sh {command}" in done.stdout


def test_the_tfvars_example_names_every_variable() -> None:
    # Given every variable terraform/ declares
    example = (ROOT / "terraform" / "terraform.tfvars.example").read_text()
    # Then the example lists each one, set or commented with its default
    assert [name for name in declared_variables() if not re.search(rf"^#?\s*{name}\s*=", example, re.M)] == []


def test_deploy_names_each_missing_gcloud_piece(tmp_path: Path, bare_path: str) -> None:
    # Given a gcloud with no account, no application-default credentials and no project (an external
    # tool, stood in by a script ahead of the system's commands)
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "gcloud").write_text("#!/bin/sh\ncase \"$*\" in\n  *print-access-token*) exit 1 ;;\n  *get-value*) echo '(unset)' ;;\nesac\n")
    (tools / "gcloud").chmod(0o755)
    # When deploy runs
    done = run_script("deploy", path=f"{tools}:{bare_path}", TFVARS=str(tmp_path / "absent.tfvars"))
    lines = missing_lines(done.stderr)
    # Then each is its own line, and gcloud is not reported as missing
    assert "missing: gcloud is not logged in: run `gcloud auth login`" in lines
    assert "missing: no application-default credentials for Terraform: run `gcloud auth application-default login`" in lines
    assert "missing: no gcloud project is set: run `gcloud config set project PROJECT_ID`" in lines
    assert not any(line.startswith("missing: gcloud is not installed") for line in lines)
