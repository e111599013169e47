"""Stores that no row claims are swept: a duplicated create leaves no orphan after one sweep."""

from __future__ import annotations

import time
from typing import Any

import pytest

from common.db.psycopg_transport import PsycopgDatabase
from common.documents import ensure_vector_store
from common.openai import OpenAIGateway
from common.openai_orphans import sweep_orphan_stores
from tests.openai_layer.conftest import GatewayFactory
from tests.support.factories import make_document
from tests.support.users import UserFactory


@pytest.fixture(scope="module")
def own_standin(standin_factory: Any) -> Any:
    """A stand-in of this module alone: the sweep sees every store the service made on it."""
    return standin_factory()


@pytest.fixture(scope="module")
def sweeping_gateway(make_gateway: GatewayFactory, own_standin: Any) -> OpenAIGateway:
    return make_gateway(own_standin, timeout_seconds=1.0, max_retries=2)


def _stores(gateway: OpenAIGateway) -> dict[str, str | None]:
    return {s.vector_store_id: s.user_id for page in gateway.files.store_pages() for s in page}


def test_a_duplicated_store_create_leaves_no_orphan_after_one_sweep(
        psycopg_db: PsycopgDatabase, users: UserFactory, own_standin: Any, sweeping_gateway: OpenAIGateway) -> None:
    # given a first upload whose store create answers too late: OpenAI makes that store after the
    # lookup found nothing, so the second attempt makes another one, which the database records
    user = users.create()
    make_document(psycopg_db, user, status="uploading")  # the user's profile exists, as at a first upload
    own_standin.inject_fault(r"^/vector_stores$", method="POST", delay=1.5)
    recorded = ensure_vector_store(psycopg_db, sweeping_gateway.files, user.id, None)
    deadline = time.monotonic() + 5
    while len([s for s, owner in _stores(sweeping_gateway).items() if owner == user.id]) < 2:
        assert time.monotonic() < deadline, "the late create never finished"
        time.sleep(0.05)
    # when the registry refresh sweeps orphans (grace period over)
    figures = sweep_orphan_stores(psycopg_db, sweeping_gateway.files, grace_seconds=0)
    # then only the recorded store is left
    assert [s for s, owner in _stores(sweeping_gateway).items() if owner == user.id] == [recorded]
    assert figures.orphan_stores == figures.orphan_stores_deleted == 1
    # and a second sweep finds nothing more to do
    again = sweep_orphan_stores(psycopg_db, sweeping_gateway.files, grace_seconds=0)
    assert again.orphan_stores == 0 and again.stores_seen == figures.stores_seen - 1


def test_an_unrecorded_store_younger_than_the_grace_period_is_kept(
        psycopg_db: PsycopgDatabase, sweeping_gateway: OpenAIGateway) -> None:
    # given a store made moments ago and not yet recorded (its upload is still running)
    young = sweeping_gateway.files.create_store("00000000-0000-0000-0000-000000000001")
    # when the sweep runs with an hour's grace, then it is counted but left alone
    figures = sweep_orphan_stores(psycopg_db, sweeping_gateway.files, grace_seconds=3600)
    assert young in _stores(sweeping_gateway)
    assert figures.orphan_stores_in_grace >= 1 and figures.orphan_stores_deleted == 0


def test_the_unclaimed_store_query_refuses_bad_input(psycopg_db: PsycopgDatabase) -> None:
    from common.db.base import Identity
    from common.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        psycopg_db.call("find_unclaimed_vector_stores", {"p_vector_store_ids": [1, 2]}, Identity.service())
    assert psycopg_db.call("find_unclaimed_vector_stores", {"p_vector_store_ids": []}, Identity.service()) == []
