"""GET /admin/usage and /admin/usage.csv: figures from the daily rollup grouped five ways, and the
CSV (streamed, RFC 4180, a header row, formulas neutralised) parses back to the same figures."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import flask.testing
import pytest

from common.csv_export import csv_lines, neutralise
from common.db.base import Database, Identity
from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from tests.support.factories import begin_turn, finish_turn, make_document
from tests.support.users import UserFactory
from tests.upload.conftest import auth
from tests.usage.seeding import Row, seed_usage, signed_in, utc_at, utc_today

OPENAPI = build_openapi(registered_functions())
DAY1, DAY2 = dt.date(2025, 11, 3), dt.date(2025, 11, 5)
RANGE = "from=2025-11-01&to=2025-11-07"


def test_each_grouping_sums_the_rows_and_the_csv_says_the_same(client: flask.testing.FlaskClient,
                                                               users: UserFactory, psycopg_db: Database,
                                                               database_url: str) -> None:
    # given two users' rows in early November 2025, one user's email made to look like a formula
    admin = users.create(admin=True)
    plain, sneaky = users.create(), users.create(email='=HYPERLINK("http://evil.test","x")@x.io')
    signed_in(psycopg_db, plain, sneaky)
    rows = [Row(plain.id, utc_at(DAY1), "chat", "gpt-6-luna", Decimal("0.125"), input_tokens=100, output_tokens=10),
            Row(plain.id, utc_at(DAY2), "file_search", None, Decimal("0.0025"), tool_calls=1),
            Row(sneaky.id, utc_at(DAY2, 23, 59), "chat", "gpt-6-mini", Decimal("0.5"), input_tokens=7, output_tokens=3),
            Row(sneaky.id, utc_at(DAY1), "vector_storage", None, Decimal("0.01"), quantity=Decimal("0.1"))]
    seed_usage(database_url, rows)
    expected = {
        "user": {plain.id: Decimal("0.1275"), sneaky.id: Decimal("0.51")},
        "model": {"gpt-6-luna": Decimal("0.125"), "gpt-6-mini": Decimal("0.5"), "": Decimal("0.0125")},
        "service": {"chat": Decimal("0.625"), "file_search": Decimal("0.0025"), "vector_storage": Decimal("0.01")},
        "day": {(dt.date(2025, 11, 1) + dt.timedelta(days=n)).isoformat(): Decimal(0) for n in range(7)}
               | {"2025-11-03": Decimal("0.135"), "2025-11-05": Decimal("0.5025")},
    }
    for group_by, figures in expected.items():
        # when the report is read as JSON and as CSV
        report = client.get(f"/usage?{RANGE}&group_by={group_by}", headers=auth(admin)).json
        exported = client.get(f"/usage.csv?{RANGE}&group_by={group_by}", headers=auth(admin), buffered=False)
        assert exported.is_streamed and exported.mimetype == "text/csv"
        assert exported.mimetype in OPENAPI["paths"]["/admin/usage.csv"]["get"]["responses"]["200"]["content"]
        body = exported.get_data(as_text=True)
        # then the JSON is the sums of the rows, and the CSV parses back to the same figures
        assert {r["key"]: Decimal(r["cost_usd"]) for r in report["rows"]} == figures, group_by
        assert Decimal(report["totals"]["cost_usd"]) == sum(r.cost for r in rows)
        assert body.endswith("\r\n") and "\r\n" in body
        header, *lines = list(csv.reader(io.StringIO(body, newline="")))
        assert header[:3] == ["group_by", "key", "label"] and header[-1] == "cost_usd"
        parsed = {line[1]: Decimal(line[header.index("cost_usd")]) for line in lines}
        assert parsed == figures, group_by
        assert [int(line[header.index("input_tokens")]) for line in lines] == [r["input_tokens"] for r in report["rows"]]
    # and the formula-like email is neutralised in the CSV
    body = client.get(f"/usage.csv?{RANGE}&group_by=user", headers=auth(admin)).get_data(as_text=True)
    labels = {line[1]: line[2] for line in csv.reader(io.StringIO(body, newline=""))}
    assert labels[sneaky.id] == "'" + sneaky.email and labels[plain.id] == plain.email


def test_documents_are_grouped_by_the_turns_that_cited_them_and_their_storage(
        client: flask.testing.FlaskClient, users: UserFactory, psycopg_db: Database) -> None:
    # given a user's document cited by a turn, and today's storage of the user's store
    admin, user = users.create(admin=True), users.create()
    doc = make_document(psycopg_db, user, name="report.txt")
    finish_turn(psycopg_db, user, begin_turn(psycopg_db, user), cost=Decimal("0.0042"),
                citations=[{"document_id": doc["id"], "filename": "report.txt"}])
    psycopg_db.call("registry_record_storage", {"p_day": utc_today(), "p_rows": [
        {"vector_store_id": doc["vector_store_id"], "usage_bytes": 1000, "gb_days": "0.3", "cost_usd": "0.03"}]},
        Identity.service())
    # when an admin reads this month by document, as JSON and as CSV
    rows = client.get("/usage?group_by=document", headers=auth(admin)).json["rows"]
    exported = client.get("/usage.csv?group_by=document", headers=auth(admin)).get_data(as_text=True)
    # then the document carries its turn and its storage, charged to its owner
    figures = ("turns", "turn_cost_usd", "storage_gb_days", "storage_cost_usd", "cost_usd")
    assert [(r["label"], r["user_id"], r["turns"], *(Decimal(r[f]) for f in figures[1:]))
            for r in rows if r["key"] == doc["id"]] == [
        ("report.txt", user.id, 1, Decimal("0.0042"), Decimal("0.3"), Decimal("0.03"), Decimal("0.0342"))]
    header, *lines = list(csv.reader(io.StringIO(exported, newline="")))
    assert header == ["group_by", "key", "label", "user_id", *figures]
    assert [(line[:5], [Decimal(v) for v in line[5:]]) for line in lines if line[1] == doc["id"]] == [
        (["document", doc["id"], "report.txt", user.id, "1"],
         [Decimal("0.0042"), Decimal("0.3"), Decimal("0.03"), Decimal("0.0342")])]


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_starting_like_a_formula_gets_a_quote(text: str) -> None:
    assert neutralise(text) == "'" + text


def test_quotes_commas_and_line_breaks_round_trip_and_numbers_stay_numbers() -> None:
    rows = [{"a": 'say "hi", then\r\nleave', "b": Decimal("-0.5"), "c": None, "d": 3}]
    text = "".join(csv_lines(("a", "b", "c", "d"), rows))
    assert list(csv.reader(io.StringIO(text, newline=""))) == [["a", "b", "c", "d"],
                                                             ['say "hi", then\r\nleave', "-0.5", "", "3"]]
