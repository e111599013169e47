"""Read both sides of the settings/Terraform agreement: what the code reads, what Terraform gives.

* :func:`settings_variables` parses ``common/settings.py`` (never imports it) and returns, per field of
  ``Settings``, the environment variables that flow into it through ``Settings.from_env``.
* :func:`terraform_environment` parses ``terraform/*.tf`` with python-hcl2 and returns, per function,
  the plain and the secret variables ``locals.tf`` gives it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_FILE = ROOT / "common" / "settings.py"
TERRAFORM_DIR = ROOT / "terraform"


class AgreementError(RuntimeError):
    """A file does not have the shape this module reads (for example a renamed local)."""


def _env_names(node: ast.AST) -> set[str]:
    """The variable names read inside ``node``: first string argument of every ``r.<reader>(...)``."""
    names = set()
    for call in ast.walk(node):
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and isinstance(call.func.value, ast.Name) and call.func.value.id == "r"
                and call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
            names.add(call.args[0].value)
    return names


def _helper_name(call: ast.Call) -> str | None:
    """``f`` for ``f(...)``, ``Class.method`` for ``Class.method(...)``; None for anything else."""
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
        return f"{call.func.value.id}.{call.func.attr}"
    return None


def _helpers(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """Module-level functions by name, and the methods of module-level classes as ``Class.method``."""
    found = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        found.update({f"{cls.name}.{m.name}": m for m in cls.body if isinstance(m, ast.FunctionDef)})
    return found


def _flow(node: ast.AST, assigned: dict[str, set[str]], helpers: dict[str, ast.FunctionDef]) -> set[str]:
    """Variables read in ``node`` directly, through local names assigned earlier in from_env, or in a
    module-level helper function or class method it calls."""
    found = _env_names(node)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in assigned:
            found |= assigned[sub.id]
        if isinstance(sub, ast.Call) and _helper_name(sub) in helpers:
            found |= _env_names(helpers[_helper_name(sub)])  # type: ignore[index]
    return found


def _settings_call(node: ast.AST) -> ast.Call | None:
    """The ``cls(...)`` call that builds the Settings, if ``node`` is one."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "cls":
        return node
    return None


def settings_fields(path: Path = SETTINGS_FILE) -> list[str]:
    """The field names of the ``Settings`` dataclass, in order; raises AgreementError if absent."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            return [s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
    raise AgreementError(f"{path}: no class Settings")


def settings_variables(path: Path = SETTINGS_FILE) -> tuple[dict[str, set[str]], set[str]]:
    """(field -> variables flowing into it, every variable read anywhere in the module).

    A variable read in ``from_env`` reaches a field when it is read inside the keyword argument of
    that name in the final ``cls(...)`` call, or inside a local name that argument uses (e.g.
    ``database = DatabaseSettings(supabase_url=supabase_url, ...)``, ``supabase_url = r.url(...)``).
    Raises AgreementError when ``Settings.from_env`` or its ``cls(...)`` call is not found."""
    tree = ast.parse(path.read_text())
    every = _env_names(tree)
    from_env = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "from_env"), None)
    if from_env is None:
        raise AgreementError(f"{path}: no Settings.from_env")
    helpers = _helpers(tree)
    assigned: dict[str, set[str]] = {}
    fields: dict[str, set[str]] | None = None
    for statement in from_env.body:
        built = _settings_call(statement.value) if isinstance(statement, (ast.Assign, ast.Return)) and statement.value else None
        if built is not None:
            fields = {kw.arg: _flow(kw.value, assigned, helpers) for kw in built.keywords if kw.arg}
        elif isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
            assigned[statement.targets[0].id] = _flow(statement.value, assigned, helpers)
        elif isinstance(statement, ast.If):
            # e.g. ``if api_key: openai_settings = OpenAISettings(...)``: the branch's names count.
            for inner in ast.walk(statement):
                if isinstance(inner, ast.Assign) and len(inner.targets) == 1 and isinstance(inner.targets[0], ast.Name):
                    name = inner.targets[0].id
                    assigned[name] = (assigned.get(name, set()) | _flow(inner.value, assigned, helpers)
                                      | _flow(statement.test, assigned, helpers))
    if fields is None:
        raise AgreementError(f"{path}: Settings.from_env builds no `cls(...)`")
    return fields, every


@dataclass(frozen=True)
class FunctionEnvironment:
    """What Terraform gives one function: plain variables and secret variables, by name."""

    plain: frozenset[str]
    secret: frozenset[str]


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items()}
    return value


def terraform_blocks(directory: Path = TERRAFORM_DIR) -> dict[str, list[dict[str, Any]]]:
    """Every top-level block of ``directory/*.tf`` by type (``locals``, ``resource``, …), unquoted."""
    blocks: dict[str, list[dict[str, Any]]] = {}
    for tf in sorted(directory.glob("*.tf")):
        with tf.open() as handle:
            for kind, entries in hcl2.load(handle).items():
                blocks.setdefault(kind, []).extend(_unquote(entries) if isinstance(entries, list) else [_unquote(entries)])
    return blocks


def terraform_locals(directory: Path = TERRAFORM_DIR) -> dict[str, Any]:
    """Every ``locals`` value of the configuration, merged into one mapping."""
    merged: dict[str, Any] = {}
    for block in terraform_blocks(directory).get("locals", []):
        merged.update(block)
    return merged


def terraform_resource(kind: str, name: str, directory: Path = TERRAFORM_DIR) -> dict[str, Any]:
    """The body of ``resource "<kind>" "<name>"``; raises AgreementError when it does not exist."""
    for block in terraform_blocks(directory).get("resource", []):
        if kind in block and name in block[kind]:
            return block[kind][name]
    raise AgreementError(f"terraform: no resource {kind}.{name}")


def terraform_environment(directory: Path = TERRAFORM_DIR) -> dict[str, FunctionEnvironment]:
    """Per function, the variables ``locals.env_groups``/``function_env_groups`` give it (before the
    optional secrets are dropped for empty values); raises AgreementError when a group is unknown."""
    local = terraform_locals(directory)
    try:
        groups, by_function = local["env_groups"], local["function_env_groups"]
    except KeyError as exc:
        raise AgreementError(f"terraform: locals.{exc.args[0]} is missing") from exc
    result = {}
    for function, names in by_function.items():
        unknown = [g for g in names if g not in groups]
        if unknown:
            raise AgreementError(f"terraform: {function} uses unknown env group(s) {unknown}")
        result[function] = FunctionEnvironment(
            plain=frozenset(v for g in names for v in groups[g]["plain"]),
            secret=frozenset(v for g in names for v in groups[g]["secret"]),
        )
    return result
