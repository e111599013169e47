"""Prerequisite checks of ``./deploy.sh``: every missing piece is one line, and nothing is a stack trace.

``python -m deploy.prereqs deploy`` checks the tools (gcloud, terraform), the gcloud login, the
application-default credentials and the project, every Terraform variable without a default (from
``terraform/terraform.tfvars``, or the file named by ``TFVARS``, and ``TF_VAR_<name>``), that no given
value is a placeholder, and ``DATABASE_URL`` for the migration (set, and the database answers). ``python -m deploy.prereqs migrate``
checks ``DATABASE_URL`` and that the database answers. Exit status 0 when all is there, else 1 after
printing one line per problem.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import hcl2
from lark.exceptions import LarkError

ROOT = Path(__file__).resolve().parents[1]
TERRAFORM_DIR = ROOT / "terraform"

# Values copied from terraform.tfvars.example or documentation and never filled in.
PLACEHOLDER = re.compile(
    r"your[-_]|replace[-_]?me|change[-_]?me|^<.*>$|^x{3,}$|^todo$|^placeholder$|@example\.(com|org)$|^sk-\.\.\.$",
    re.IGNORECASE,
)


def _run(argv: list[str], timeout: float = 60) -> tuple[int, str]:
    """Exit code and stripped stdout of a command; a command that cannot start or hangs counts as failed."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return done.returncode, done.stdout.strip()


def declared_variables(directory: Path = TERRAFORM_DIR) -> dict[str, bool]:
    """Every Terraform variable, in file order, mapped to whether it must be given (has no default)."""
    declared = {}
    for tf in sorted(directory.glob("*.tf")):
        with tf.open() as handle:
            for block in hcl2.load(handle).get("variable", []):
                for name, body in block.items():
                    declared[name.strip('"')] = "default" not in body
    return declared


def given_variables(tfvars: Path, env: Mapping[str, str]) -> tuple[dict[str, object], list[str]]:
    """(variable -> value from ``tfvars`` then ``TF_VAR_*``, problems reading the file)."""
    values: dict[str, object] = {}
    problems = []
    if tfvars.is_file():
        try:
            with tfvars.open() as handle:
                values.update({k: (v.strip('"') if isinstance(v, str) else v)
                              for k, v in hcl2.load(handle).items() if not k.startswith("__")})
        except (LarkError, UnicodeDecodeError) as exc:
            problems.append(f"{tfvars} cannot be parsed: {type(exc).__name__}")
    for key, value in env.items():
        if key.startswith("TF_VAR_"):
            values[key.removeprefix("TF_VAR_")] = value
    return values, problems


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


def variable_problems(tfvars: Path, env: Mapping[str, str], directory: Path = TERRAFORM_DIR) -> list[str]:
    """One line per required variable that is missing and per given value that is a placeholder."""
    values, problems = given_variables(tfvars, env)
    where = f"set it in {tfvars.relative_to(ROOT) if tfvars.is_relative_to(ROOT) else tfvars} or as TF_VAR_"
    declared = declared_variables(directory)
    for name in [n for n, required in declared.items() if required]:
        if not any(s.strip() for s in _strings(values.get(name))) and not isinstance(values.get(name), (int, float)):
            problems.append(f"terraform variable {name} is not set ({where}{name})")
    for name, value in sorted(values.items()):
        if any(PLACEHOLDER.search(s.strip()) for s in _strings(value)):
            problems.append(f"terraform variable {name} holds a placeholder value")
    problems += [f"terraform variable {name} is not declared in terraform/ (remove it)" for name in values if name not in declared]
    secret_key = values.get("supabase_secret_key")
    if isinstance(secret_key, str) and secret_key.startswith("sb_publishable_"):
        problems.append("terraform variable supabase_secret_key holds a publishable key; it needs the sb_secret_... key")
    publishable = values.get("supabase_publishable_key")
    if isinstance(publishable, str) and publishable.startswith("sb_secret_"):
        problems.append("terraform variable supabase_publishable_key holds a secret key, which would be a plain "
                        "environment variable; it needs the sb_publishable_... key")
    return problems


def gcloud_problems() -> list[str]:
    """One line per missing gcloud login, application-default credentials or project."""
    problems = []
    code, account = _run(["gcloud", "auth", "list", "--filter=status:ACTIVE", "--format=value(account)"])
    if code != 0 or not account:
        problems.append("gcloud is not logged in: run `gcloud auth login`")
    code, _ = _run(["gcloud", "auth", "application-default", "print-access-token"])
    if code != 0:
        problems.append("no application-default credentials for Terraform: run `gcloud auth application-default login`")
    code, project = _run(["gcloud", "config", "get-value", "project"])
    if code != 0 or not project or project == "(unset)":
        problems.append("no gcloud project is set: run `gcloud config set project PROJECT_ID`")
    return problems


def deploy_problems(env: Mapping[str, str]) -> list[str]:
    """Everything ``./deploy.sh deploy`` needs before it changes anything, one line per missing piece."""
    problems = []
    missing_tools = [tool for tool in ("gcloud", "terraform") if shutil.which(tool, path=env.get("PATH")) is None]
    hints = {"gcloud": "install the Google Cloud CLI", "terraform": "install Terraform >= 1.11"}
    problems += [f"{tool} is not installed or not on PATH ({hints[tool]})" for tool in missing_tools]
    if "gcloud" not in missing_tools:
        problems += gcloud_problems()
    tfvars = Path(env.get("TFVARS") or TERRAFORM_DIR / "terraform.tfvars")
    problems += variable_problems(tfvars, env)
    if not env.get("DATABASE_URL", "").strip():
        problems.append("DATABASE_URL is not set: the Supabase database to migrate (its session pooler URL, port 5432)")
    elif PLACEHOLDER.search(env["DATABASE_URL"]):
        problems.append("DATABASE_URL holds a placeholder value")
    else:
        problems += migrate_problems(env)
    return problems


def migrate_problems(env: Mapping[str, str]) -> list[str]:
    """``DATABASE_URL`` set and the database reachable (5 s), else one line saying which."""
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        return ["DATABASE_URL is not set: it names the database to migrate"]
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        # The server's message names host and cause; the URL itself (with its password) is never printed.
        return [f"the database in DATABASE_URL cannot be reached: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"]
    return []


CHECKS = {"deploy": deploy_problems, "migrate": migrate_problems}


def main(argv: list[str] | None = None) -> int:
    """Print one line per problem of the named subcommand's prerequisites; 1 when there are any."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in CHECKS:
        print(f"usage: python -m deploy.prereqs {{{'|'.join(CHECKS)}}}", file=sys.stderr)
        return 2
    problems = CHECKS[args[0]](os.environ)
    for problem in problems:
        print(f"missing: {problem}", file=sys.stderr)
    if problems:
        print(f"{args[0]}: {len(problems)} prerequisite(s) missing; nothing was changed", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
