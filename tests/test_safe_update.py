"""pg-safeupdate's rule, enforced on every function in ``sql/``.

Supabase preloads pg-safeupdate for PostgREST's roles: an ``UPDATE`` or ``DELETE`` without a
``WHERE`` clause fails with SQLSTATE 21000, inside PL/pgSQL and SQL functions too. The extension
cannot be loaded into the embedded server, so the rule is checked here with PostgreSQL's own parser
(pglast): every function body is parsed (``parse_sql`` for SQL bodies, ``parse_plpgsql`` for
PL/pgSQL, whose embedded statements are parsed in turn) and every UPDATE/DELETE, however nested
(CTEs included), must carry a WHERE clause. Dynamic SQL (``EXECUTE``) cannot be checked statically
and is refused outright.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pglast
import pytest
from pglast import ast
from pglast.visitors import Visitor

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


class _UnguardedWrites(Visitor):
    """Collects ``UPDATE``/``DELETE`` statements without a WHERE clause."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def visit_UpdateStmt(self, ancestors: Any, node: ast.UpdateStmt) -> None:  # noqa: N802 (pglast's naming)
        if node.whereClause is None:
            self.found.append(f"UPDATE {node.relation.relname}")

    def visit_DeleteStmt(self, ancestors: Any, node: ast.DeleteStmt) -> None:  # noqa: N802
        if node.whereClause is None:
            self.found.append(f"DELETE FROM {node.relation.relname}")


def _unguarded(statement_sql: str) -> list[str]:
    visitor = _UnguardedWrites()
    visitor(pglast.parse_sql(statement_sql))
    return visitor.found


def _plpgsql_queries(node: Any) -> Iterator[str]:
    """Every SQL statement embedded in a parsed PL/pgSQL function; raises on dynamic SQL."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "PLpgSQL_stmt_dynexecute":
                raise AssertionError("dynamic SQL (EXECUTE) cannot be checked for pg-safeupdate's rule")
            if key == "PLpgSQL_expr" and value.get("parseMode", 0) == 0 and "query" in value:
                yield value["query"]
            else:
                yield from _plpgsql_queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from _plpgsql_queries(item)


def _function_option(stmt: ast.CreateFunctionStmt, name: str) -> Any:
    for option in stmt.options or ():
        if option.defname == name:
            return option.arg
    return None


def violations_in(script: str) -> list[str]:
    """``function: statement`` for every UPDATE/DELETE without WHERE in the functions ``script`` creates."""
    found: list[str] = []
    for raw in pglast.parse_sql(script):
        stmt = raw.stmt
        if not isinstance(stmt, ast.CreateFunctionStmt):
            continue
        name = ".".join(part.sval for part in stmt.funcname)
        language = _function_option(stmt, "language")
        language = language.sval if language is not None else "sql"
        text = script[raw.stmt_location: raw.stmt_location + raw.stmt_len] if raw.stmt_len else script[raw.stmt_location:]
        if language == "plpgsql":
            queries = list(_plpgsql_queries(pglast.parse_plpgsql(text)))
        elif language == "sql":
            body = _function_option(stmt, "as")
            queries = [body[0].sval] if body is not None else []
            if stmt.sql_body is not None:  # a "begin atomic" body is already parsed
                visitor = _UnguardedWrites()
                visitor(stmt.sql_body)
                found += [f"{name}: {v}" for v in visitor.found]
        else:
            continue
        for query in queries:
            found += [f"{name}: {v}" for v in _unguarded(query)]
    return found


def _sql_files() -> list[Path]:
    return sorted(SQL_DIR.glob("*.sql")) + sorted((SQL_DIR / "local").glob("*.sql"))


@pytest.mark.parametrize("path", _sql_files(), ids=lambda p: str(p.relative_to(SQL_DIR)))
def test_no_function_updates_or_deletes_without_where(path: Path) -> None:
    # given a migration file / when its function bodies are parsed
    found = violations_in(path.read_text(encoding="utf-8"))
    # then every UPDATE and DELETE names its rows
    assert found == [], f"{path.name}: pg-safeupdate refuses these on Supabase: {found}"


@pytest.mark.parametrize(("body", "expected"), [
    ("language sql as $$ update public.t set a = 1 $$", ["public.f: UPDATE t"]),
    ("language sql as $$ update public.t set a = 1 where a = 2 $$", []),
    ("language plpgsql as $$ begin delete from public.t; end $$", ["public.f: DELETE FROM t"]),
    ("language plpgsql as $$ begin delete from public.t where true; end $$", []),
    ("language plpgsql as $$ begin if p > 0 then with d as (update public.t set a = p returning 1)"
     " select 1 into p; end if; end $$", ["public.f: UPDATE t"]),
    ("language plpgsql as $$ begin return query delete from public.t returning a; end $$",
     ["public.f: DELETE FROM t"]),
    ("language plpgsql as $$ declare r record; begin for r in select 1 loop update public.t set a = 1; end loop; end $$",
     ["public.f: UPDATE t"]),
    ("begin atomic delete from public.t; end", ["public.f: DELETE FROM t"]),
])
def test_the_rule_finds_unguarded_writes_wherever_they_are(body: str, expected: list[str]) -> None:
    # given a function body / when checked / then exactly its unguarded writes are reported
    script = f"create function public.f(p int) returns setof int {body};"
    assert violations_in(script) == expected


def test_dynamic_sql_is_refused() -> None:
    script = "create function public.f(p int) returns void language plpgsql as $$ begin execute 'delete from t'; end $$;"
    with pytest.raises(AssertionError):
        violations_in(script)
