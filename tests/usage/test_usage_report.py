"""GET /usage: the figures are the sums of the recorded usage rows (UTC days, whatever the session's
time zone), every day of the range is listed, documents are costed by the turns that cited them
and by their storage (charged to the owner), and the budget's projection, thresholds and alerts follow the month's pace."""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import flask.testing
import psycopg
import pytest

from common.db.base import Database, Identity
from common.runtime import Runtime
from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from common.usage import BUDGET_ALERT_EVENT, record_budget_alerts
from tests.support.factories import begin_turn, finish_turn, make_document, share_with
from tests.support.functions import build_function_app
from tests.support.openapi import assert_matches_openapi
from tests.support.users import UserFactory
from tests.upload.conftest import auth
from tests.usage.seeding import Row, seed_usage, signed_in, utc_at, utc_today

OPENAPI = build_openapi(registered_functions())
ZONE = "Pacific/Kiritimati"  # UTC+14: most UTC evenings are the next day there


@pytest.fixture(scope="module", autouse=True)
def _sessions_in_a_far_time_zone(database_url: str) -> Iterator[None]:
    # every new session of this module's database runs in UTC+14, so a date_trunc in the session's
    # zone would put late-UTC rows on the wrong day or month
    with psycopg.connect(database_url, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(f'alter database "{name}" set timezone to \'{ZONE}\'')
    yield


def _sum(rows: list[Row], field: str) -> Any:
    return sum((getattr(r, field) for r in rows), Decimal(0) if field in ("cost", "quantity") else 0)


def test_figures_are_the_sums_of_the_rows_across_a_month_boundary_in_utc(
        client: flask.testing.FlaskClient, users: UserFactory, database_url: str, psycopg_db: Database) -> None:
    # given rows around the end of January (UTC), one of them 23:30 UTC on the 31st (February in
    # the session's zone), and another user's rows on the same days
    me, other = users.create(), users.create()
    signed_in(psycopg_db, me, other)
    jan30, jan31, feb1, feb3 = dt.date(2026, 1, 30), dt.date(2026, 1, 31), dt.date(2026, 2, 1), dt.date(2026, 2, 3)
    mine = [
        Row(me.id, utc_at(jan30, 10), "chat", "gpt-6-luna", Decimal("0.10"), input_tokens=1000, cached_tokens=200,
            cache_write_tokens=50, output_tokens=100, reasoning_tokens=30),
        Row(me.id, utc_at(jan31, 23, 30), "chat", "gpt-6-mini", Decimal("0.02"), input_tokens=400, output_tokens=40),
        Row(me.id, utc_at(feb1, 0, 30), "file_search", None, Decimal("0.005"), tool_calls=2),
        Row(me.id, utc_at(feb1, 1), "vector_storage", None, Decimal("0.05"), quantity=Decimal("0.5")),
        Row(me.id, utc_at(feb3, 9), "chat", "gpt-6-luna", Decimal("0.30"), input_tokens=3000, output_tokens=300),
    ]
    seed_usage(database_url, mine + [Row(other.id, utc_at(jan31, 12), "chat", "gpt-6-luna", Decimal("9"))])

    # when I ask for 29 January to 4 February
    got = client.get("/?from=2026-01-29&to=2026-02-04", headers=auth(me))

    # then the totals are the sums of my rows
    assert got.status_code == 200, got.json
    assert_matches_openapi(OPENAPI, "GET", "/usage", 200, got.json)
    report = got.json
    totals = report["totals"]
    assert Decimal(totals["cost_usd"]) == _sum(mine, "cost")
    for field in ("input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"):
        assert totals[field] == _sum(mine, field), field
    assert totals["turns"] == 3 and totals["file_search_calls"] == 2
    assert Decimal(totals["storage_gb_days"]) == Decimal("0.5") and Decimal(totals["storage_cost_usd"]) == Decimal("0.05")
    # and every day of the range is listed, the late-UTC row on 31 January, zeros on empty days
    by_day = {d["day"]: Decimal(d["cost_usd"]) for d in report["by_day"]}
    expected_days: dict[str, Decimal] = defaultdict(Decimal)
    for r in mine:
        expected_days[r.utc_day.isoformat()] += r.cost
    assert list(by_day) == [(dt.date(2026, 1, 29) + dt.timedelta(days=n)).isoformat() for n in range(7)]
    assert by_day == {day: expected_days.get(day, Decimal(0)) for day in by_day}
    assert by_day["2026-01-31"] == Decimal("0.02") and by_day["2026-02-02"] == 0
    # and by model and by service
    by_model = {m["model"]: Decimal(m["cost_usd"]) for m in report["by_model"]}
    assert by_model == {"gpt-6-luna": Decimal("0.40"), "gpt-6-mini": Decimal("0.02")}
    by_service = {s["service"]: Decimal(s["cost_usd"]) for s in report["by_service"]}
    assert by_service == {"chat": Decimal("0.42"), "file_search": Decimal("0.005"), "vector_storage": Decimal("0.05")}

    # when I ask for February only, January's rows (the 23:30 UTC one included) are out
    february = client.get("/?from=2026-02-01&to=2026-02-28", headers=auth(me)).json
    assert Decimal(february["totals"]["cost_usd"]) == Decimal("0.355")
    assert len(february["by_day"]) == 28


def test_admin_figures_are_utc_in_a_far_session_zone(runtime: Runtime, tmp_path: Path, users: UserFactory,
                                                      database_url: str, psycopg_db: Database) -> None:
    # given a row half an hour before this UTC month began (this month already in the session's
    # zone) and one at the start of today (UTC)
    admin, me = users.create(admin=True), users.create()
    signed_in(psycopg_db, admin, me)
    month_start = utc_today().replace(day=1)
    before = dt.datetime.combine(month_start, dt.time(), dt.UTC) - dt.timedelta(minutes=30)
    seed_usage(database_url, [Row(me.id, before, "chat", "gpt-6-luna", Decimal("7")),
                              Row(me.id, utc_at(utc_today(), 0, 0), "chat", "gpt-6-luna", Decimal("0.5"))])
    with psycopg.connect(database_url) as conn:
        assert conn.execute("show timezone").fetchone() == (ZONE,)
    admin_client = build_function_app(tmp_path, "admin", runtime).test_client()
    # when an admin lists the user, reads them, and reads this month's usage by user and by day
    listed = admin_client.get(f"/users?q={me.email}", headers=auth(admin)).json["items"]
    detail = admin_client.get(f"/users/{me.id}", headers=auth(admin)).json
    by_user = admin_client.get("/usage?group_by=user", headers=auth(admin)).json
    by_day = admin_client.get("/usage?group_by=day", headers=auth(admin)).json
    # then every figure is this UTC month's: the row before it began is not in it
    assert [Decimal(u["cost_this_month_usd"]) for u in listed] == [Decimal("0.5")]
    assert Decimal(detail["cost_this_month_usd"]) == Decimal("0.5")
    assert Decimal(detail["budget"]["spent_usd"]) == Decimal("0.5") and detail["budget"]["month"] == str(month_start)
    assert by_user["from"] == str(month_start) and by_user["to"] == str(utc_today())
    assert [Decimal(r["cost_usd"]) for r in by_user["rows"] if r["key"] == me.id] == [Decimal("0.5")]
    assert by_day["rows"][0]["key"] == str(month_start)
    assert Decimal(by_day["rows"][-1]["cost_usd"]) >= Decimal("0.5")
    assert Decimal(by_day["totals"]["cost_usd"]) == sum((Decimal(r["cost_usd"]) for r in by_day["rows"]), Decimal(0))


def test_documents_are_costed_by_the_turns_that_cited_them(client: flask.testing.FlaskClient, users: UserFactory,
                                                           psycopg_db: Database) -> None:
    # given two documents of mine, one cited by two turns, the other by one of them
    me = users.create()
    a = make_document(psycopg_db, me, name="a.txt")
    b = make_document(psycopg_db, me, name="b.txt")
    finish_turn(psycopg_db, me, begin_turn(psycopg_db, me), cost=Decimal("0.003"),
                citations=[{"document_id": a["id"], "filename": "a.txt"}, {"document_id": b["id"], "filename": "b.txt"}])
    finish_turn(psycopg_db, me, begin_turn(psycopg_db, me), cost=Decimal("0.002"),
                citations=[{"document_id": a["id"], "filename": "a.txt"}, {"document_id": a["id"], "filename": "a.txt"}])
    finish_turn(psycopg_db, me, begin_turn(psycopg_db, me), cost=Decimal("0.004"))

    # when I read this month's usage
    report = client.get("/", headers=auth(me)).json

    # then each document carries the turns that cited it (a turn citing one twice counts once)
    by_document = {d["document_id"]: (d["name"], d["turns"], Decimal(d["turn_cost_usd"])) for d in report["by_document"]}
    assert by_document == {a["id"]: ("a.txt", 2, Decimal("0.005")), b["id"]: ("b.txt", 1, Decimal("0.003"))}
    assert Decimal(report["totals"]["cost_usd"]) == Decimal("0.009")
    assert report["from"] == utc_today().replace(day=1).isoformat() and report["to"] == utc_today().isoformat()


def test_documents_carry_their_storage_charged_to_the_owner(client: flask.testing.FlaskClient, users: UserFactory,
                                                            psycopg_db: Database) -> None:
    # given two documents of mine of the same size in my store, the second shared with a reader
    # whose store holds it too, and a turn citing the first
    me, reader = users.create(), users.create()
    a = make_document(psycopg_db, me, name="a.txt")
    b = make_document(psycopg_db, me, name="b.txt")
    reader_store = psycopg_db.call("set_user_vector_store", {"p_vector_store_id": f"vs_{uuid.uuid4().hex[:16]}"},
                                   Identity.backend(reader.id))["vector_store_id"]
    share_with(psycopg_db, me, b, reader)
    finish_turn(psycopg_db, me, begin_turn(psycopg_db, me), cost=Decimal("0.003"),
                citations=[{"document_id": a["id"], "filename": "a.txt"}])
    # and two UTC days of storage recorded by the registry's accrual, per store
    day1, day2 = dt.date(2031, 5, 31), dt.date(2031, 6, 1)
    for day in (day1, day2):
        psycopg_db.call("registry_record_storage", {"p_day": day, "p_rows": [
            {"vector_store_id": a["vector_store_id"], "usage_bytes": 2000, "gb_days": "0.2", "cost_usd": "0.02"},
            {"vector_store_id": reader_store, "usage_bytes": 1000, "gb_days": "0.1", "cost_usd": "0.01"}]},
            Identity.service())
    # when I and the reader read those two days (the turn is today, outside them) and this month
    mine = client.get(f"/?from={day1}&to={day2}", headers=auth(me)).json
    theirs = client.get(f"/?from={day1}&to={day2}", headers=auth(reader)).json
    this_month = client.get("/", headers=auth(me)).json

    # then each document carries its share of my store (half each) and b also the reader's store,
    # charged to me, the owner; the reader pays nothing for it
    by_document = {d["document_id"]: (Decimal(d["storage_gb_days"]), Decimal(d["storage_cost_usd"]),
                                      d["turns"], Decimal(d["cost_usd"])) for d in mine["by_document"]}
    assert by_document == {a["id"]: (Decimal("0.2"), Decimal("0.02"), 0, Decimal("0.02")),
                           b["id"]: (Decimal("0.4"), Decimal("0.04"), 0, Decimal("0.04"))}
    assert Decimal(mine["totals"]["storage_cost_usd"]) == Decimal("0.06")
    assert Decimal(mine["totals"]["storage_gb_days"]) == Decimal("0.6")
    assert theirs["by_document"] == [] and Decimal(theirs["totals"]["storage_cost_usd"]) == 0
    # and this month shows the turn that cited a, without the storage of other months
    assert [(d["document_id"], d["turns"], Decimal(d["cost_usd"])) for d in this_month["by_document"]] == [
        (a["id"], 1, Decimal("0.003"))]


def _alerts(caplog: pytest.LogCaptureFixture, user_id: str) -> list[int]:
    return [r.json_fields["threshold"] for r in caplog.records  # type: ignore[attr-defined]
            if getattr(r, "json_fields", {}).get("event") == BUDGET_ALERT_EVENT
            and r.json_fields["user_id"] == user_id]  # type: ignore[attr-defined]


def test_budget_projection_thresholds_and_alerts_once_per_threshold(
        client: flask.testing.FlaskClient, users: UserFactory, database_url: str, psycopg_db: Database,
        caplog: pytest.LogCaptureFixture) -> None:
    # given 8.50 spent today of a 10.00 budget, and a turn still running
    me = users.create()
    signed_in(psycopg_db, me)
    today = utc_today()
    seed_usage(database_url, [Row(me.id, utc_at(today, 0, 1), "chat", "gpt-6-luna", Decimal("8.50"))])
    begin_turn(psycopg_db, me, max_cost=Decimal("0.01"))
    caplog.set_level(logging.WARNING, logger="docchat.usage")

    # when I read my usage twice
    first = client.get("/", headers=auth(me)).json["budget"]
    client.get("/", headers=auth(me))

    # then the budget says what is spent, held and left, when it resets, and the pace's month end
    month_days = calendar.monthrange(today.year, today.month)[1]
    assert Decimal(first["spent_usd"]) == Decimal("8.50")
    assert Decimal(first["reserved_usd"]) == Decimal("0.01")
    assert Decimal(first["remaining_usd"]) == Decimal("1.49")
    assert first["month"] == today.replace(day=1).isoformat()
    assert first["resets_on"] == (today.replace(day=1) + dt.timedelta(days=month_days)).isoformat()
    assert Decimal(first["projected_month_end_usd"]) == round(Decimal("8.50") / today.day * month_days, 8)
    assert first["thresholds_crossed"] == [80]
    # and the 80 % alert was logged once
    assert _alerts(caplog, me.id) == [80]

    # when the month passes 95 %
    seed_usage(database_url, [Row(me.id, utc_at(today, 0, 2), "chat", "gpt-6-luna", Decimal("1.10"))])
    second = client.get("/", headers=auth(me)).json["budget"]

    # then only the 95 % alert is new
    assert second["thresholds_crossed"] == [80, 95]
    assert _alerts(caplog, me.id) == [80, 95]


def test_two_instances_crossing_a_threshold_together_alert_once(users: UserFactory, database_url: str,
                                                                 psycopg_db: Database) -> None:
    # given a user past 95 % whose alerts nobody recorded yet
    me = users.create()
    signed_in(psycopg_db, me)
    seed_usage(database_url, [Row(me.id, utc_at(utc_today(), 0, 1), "chat", "gpt-6-luna", Decimal("9.70"))])
    # when eight backend calls record them at once
    barrier = threading.Barrier(8)
    found: list[list[dict[str, Any]]] = []

    def record() -> None:
        barrier.wait()
        found.append(record_budget_alerts(psycopg_db, me.id))

    threads = [threading.Thread(target=record) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then each threshold was recorded (and so logged) by exactly one of them
    assert sorted(alert["threshold"] for alerts in found for alert in alerts) == [80, 95]


def test_a_bad_range_is_a_clear_4xx(client: flask.testing.FlaskClient, users: UserFactory) -> None:
    me = users.create()
    backwards = client.get("/?from=2026-03-02&to=2026-03-01", headers=auth(me))
    too_long = client.get("/?from=2024-01-01&to=2026-01-01", headers=auth(me))
    not_a_date = client.get("/?from=yesterday", headers=auth(me))
    assert (backwards.status_code, backwards.json["code"]) == (400, "invalid_input")
    assert (too_long.status_code, too_long.json["code"]) == (400, "invalid_input")
    assert (not_a_date.status_code, not_a_date.json["code"]) == (422, "validation_failed")
    assert client.get("/").status_code == 401
