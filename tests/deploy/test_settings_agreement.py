"""Terraform gives each function exactly the environment its code reads, and secrets only as secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deploy.agreement import settings_fields, terraform_blocks, settings_variables, terraform_environment, terraform_locals, terraform_resource
from deploy.manifest import (FUNCTION_SETTINGS, NOT_PROVISIONED, PLATFORM_VARIABLES, PUBLIC_VARIABLES, SECRET_NAME_PATTERN,
                             SECRET_VARIABLES)

ROOT = Path(__file__).resolve().parents[2]
FIELDS, EVERY_VARIABLE = settings_variables()
TERRAFORM = terraform_environment()


def reads(function: str) -> set[str]:
    """Every variable ``function``'s code reads: the variables of the settings fields it uses."""
    return set().union(*(FIELDS[field] for field in FUNCTION_SETTINGS[function]))


def test_every_settings_field_is_placed_and_every_variable_reaches_a_field() -> None:
    # Given the Settings dataclass and the variables its from_env reads
    # When they are compared with the table of what each function uses
    placed = set().union(*FUNCTION_SETTINGS.values())
    reached = set().union(*FIELDS.values())
    # Then every field is used by some function (a new one must be placed), no unknown field is
    # named, and no variable is read without reaching a field
    assert placed == set(settings_fields())
    assert set(FIELDS) == set(settings_fields())
    assert reached == EVERY_VARIABLE


def test_terraform_configures_the_six_functions_the_table_knows() -> None:
    assert set(TERRAFORM) == set(FUNCTION_SETTINGS) == set(terraform_locals()["function_defaults"])


@pytest.mark.parametrize("function", sorted(FUNCTION_SETTINGS))
def test_every_variable_a_function_reads_is_given_or_deliberately_left_at_its_default(function: str) -> None:
    # Given what the function's code reads and what Terraform gives it
    given = TERRAFORM[function].plain | TERRAFORM[function].secret
    # Then nothing it reads is forgotten (except the variables left unset for a stated reason)
    assert reads(function) - given - set(NOT_PROVISIONED) == set()
    # And nothing is given that its code does not read
    assert given - reads(function) == set()
    # And a variable left unset on purpose is never given after all
    assert given & set(NOT_PROVISIONED) == set()


def test_the_deliberately_unset_variables_are_all_read_by_the_code() -> None:
    # A stale entry would hide a variable that later starts to be read.
    assert set(NOT_PROVISIONED) <= EVERY_VARIABLE
    assert all(reason.strip() for reason in NOT_PROVISIONED.values())


def test_the_publishable_key_is_provisioned_because_code_uses_it_and_only_under_its_new_name() -> None:
    # Given every use of the settings field outside the settings module itself
    users = [p.relative_to(ROOT).as_posix() for p in (ROOT / "common").rglob("*.py")
             if p.name != "settings.py" and "supabase_publishable_key" in p.read_text()]
    # Then the supabase-py transport uses it, so every function (all reach the database) is given it
    assert "common/db/__init__.py" in users
    assert all("SUPABASE_PUBLISHABLE_KEY" in env.plain for env in TERRAFORM.values())
    # And the legacy name is never provisioned
    assert all("SUPABASE_ANON_KEY" not in env.plain | env.secret for env in TERRAFORM.values())
    assert "supabase_anon_key" not in (ROOT / "terraform" / "variables.tf").read_text()


def test_no_secret_is_ever_a_plain_environment_variable() -> None:
    # Given every name the code reads that looks like a secret
    looks_secret = {name for name in EVERY_VARIABLE if re.search(SECRET_NAME_PATTERN, name)}
    # Then the list of secrets covers them, but for the values public by design (each with a reason)
    assert looks_secret - set(PUBLIC_VARIABLES) <= SECRET_VARIABLES
    assert set(PUBLIC_VARIABLES) <= EVERY_VARIABLE and all(r.strip() for r in PUBLIC_VARIABLES.values())
    assert set(PUBLIC_VARIABLES) & SECRET_VARIABLES == set()
    locals_ = terraform_locals()
    plain_names = set(locals_["plain_values"]) | set(PLATFORM_VARIABLES)
    for group in locals_["env_groups"].values():
        plain_names |= set(group["plain"])
    # And none of them is a plain variable anywhere, and every secret group entry has a secret value
    assert plain_names & SECRET_VARIABLES == set()
    secret_names = {name for group in locals_["env_groups"].values() for name in group["secret"]}
    assert secret_names <= SECRET_VARIABLES
    assert secret_names == set(locals_["secret_values"])


def test_the_function_resource_uses_the_agreed_locals() -> None:
    # Given the one function resource
    fn = terraform_resource("google_cloudfunctions2_function", "fn")
    service = fn["service_config"][0]
    # Then its plain variables are local.function_env, its secrets local.function_secrets, and the
    # plain values are keyed by exactly the names the groups list (plus the platform's)
    assert service["environment_variables"] == "${local.function_env[each.key]}"
    secrets = service["dynamic"][0]["secret_environment_variables"]
    assert secrets["for_each"] == "${local.function_secrets[each.key]}"
    assert secrets["content"][0]["key"] == "${env.value}"
    assert service["service_account_email"] == "${google_service_account.fn[each.key].email}"
    locals_ = terraform_locals()
    listed = {name for group in locals_["env_groups"].values() for name in group["plain"]}
    assert set(locals_["plain_values"]) == listed
    assert "THREADS" in locals_["function_env"] and set(PLATFORM_VARIABLES) == {"THREADS"}


def test_each_function_reads_only_its_own_secrets_and_the_scheduler_invokes_only_the_refresh() -> None:
    # Given the secret grants and the invoker grants
    locals_ = terraform_locals()
    grant = terraform_resource("google_secret_manager_secret_iam_member", "function")
    scheduler = terraform_resource("google_cloud_run_service_iam_member", "scheduler_invoker")
    # Then secret access is granted per (function, secret) pair to that function's own account
    assert grant["for_each"] == "${local.secret_grants}"
    assert grant["member"] == "serviceAccount:${google_service_account.fn[each.value.function].email}"
    assert "for key, names in local.function_secrets" in locals_["secret_grants"]
    # And the scheduler's account is the invoker of registry_refresh alone
    assert scheduler["service"] == '${google_cloudfunctions2_function.fn["registry_refresh"].name}'
    assert scheduler["role"] == "roles/run.invoker"
    members = [
        body for block in terraform_blocks().get("resource", [])
        for kind, named in block.items() if kind.endswith("_iam_member") for body in named.values()
    ]
    scheduler_members = [m for m in members if "google_service_account.scheduler" in str(m.get("member", ""))]
    assert scheduler_members == [scheduler]


def test_the_reader_follows_locals_branches_and_helpers_and_notices_a_stray_variable(tmp_path: Path) -> None:
    # Given a settings module shaped like common/settings.py with a new field read through a helper,
    # one read through a class method
    # and a variable read but never stored
    module = tmp_path / "settings.py"
    module.write_text(
        "from dataclasses import dataclass\n"
        "def _chat(r):\n    return r.integer('CHAT_NEW_BOUND', 1, 0, 9)\n"
        "@dataclass(frozen=True)\nclass Settings:\n    database: object\n    chat: object\n    admin: object\n"
        "    @classmethod\n    def from_env(cls, env=None):\n"
        "        r = Reader(env)\n        url = r.url('SUPABASE_URL')\n"
        "        if url:\n            database = Db(url=url, key=r.optional('SUPABASE_SECRET_KEY'))\n"
        "        r.optional('STRAY')\n"
        "        return cls(database=database, chat=_chat(r), admin=Admin.from_reader(r))\n"
        "class Admin:\n    @classmethod\n    def from_reader(cls, r):\n        return r.optional('ADMIN_FLAG')\n")
    # When it is read
    fields, every = settings_variables(module)
    # Then each field has its variables and the stray one is read but reaches no field
    assert settings_fields(module) == ["database", "chat", "admin"]
    assert fields == {"database": {"SUPABASE_URL", "SUPABASE_SECRET_KEY"}, "chat": {"CHAT_NEW_BOUND"},
                      "admin": {"ADMIN_FLAG"}}
    assert every - set().union(*fields.values()) == {"STRAY"}


def test_the_openai_key_goes_where_openai_is_called_and_not_to_usage() -> None:
    # Given the secrets each function is given
    with_key = {fn for fn, env in TERRAFORM.items() if "OPENAI_API_KEY" in env.secret}
    # Then usage (database rows only) never gets the OpenAI key; chat, the registry (it settles turns
    # and pages through files), sessions (conversation deletes) and admin (health, deletes) do
    assert "usage" not in with_key
    assert {"chat", "registry_refresh", "sessions", "admin", "upload"} <= with_key
    # And chat can read everything its turn needs: the database key, the OpenAI key, its limits
    assert {"SUPABASE_SECRET_KEY", "OPENAI_API_KEY"} <= TERRAFORM["chat"].secret
    assert {"CHAT_TIMEOUT_SECONDS", "CHAT_MAX_INPUT_TOKENS", "OPENAI_REASONING_EFFORT"} <= TERRAFORM["chat"].plain
