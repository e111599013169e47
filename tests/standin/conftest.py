"""Fixtures for the OpenAI stand-in's tests: one server per module, real SDK clients over loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from local.openai_standin import StandinServer
from local.openai_standin.state import DEFAULT_REASONING_SHARE
from tests.support.openapi import require_reference

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAPI_DOCUMENT = REPO_ROOT.parent / "shared" / "reference" / "openai-openapi.json"
MODEL = "gpt-6-luna"

ServerFactory = Callable[..., StandinServer]
ClientFactory = Callable[..., openai.OpenAI]


@pytest.fixture(scope="module")
def make_client(standin: StandinServer) -> Iterator[ClientFactory]:
    """Build SDK clients for the module's stand-in (``OpenAI`` keywords, ``max_retries=0`` by default)."""
    clients: list[openai.OpenAI] = []

    def make(server: StandinServer | None = None, **options: Any) -> openai.OpenAI:
        options.setdefault("max_retries", 0)
        client = openai.OpenAI(api_key="sk-local", base_url=(server or standin).base_url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def client(make_client: ClientFactory) -> openai.OpenAI:
    """An SDK client without retries, so errors surface as they are answered."""
    return make_client()


@pytest.fixture(autouse=True)
def _reset_standin(request: pytest.FixtureRequest) -> Iterator[None]:
    """Leave no fault, no recorded request, no processing delay and no changed reasoning share behind."""
    yield
    if "standin" in request.fixturenames:
        server: StandinServer = request.getfixturevalue("standin")
        server.clear_faults()
        server.clear_requests()
        server.processing_seconds = 0.0
        server.reasoning_share = DEFAULT_REASONING_SHARE


@pytest.fixture
def vector_store(client: openai.OpenAI) -> str:
    """A fresh, empty vector store's id."""
    return client.vector_stores.create(name="test store").id


@pytest.fixture
def add_document(client: openai.OpenAI) -> Callable[..., str]:
    """Upload a document, attach it to a store with attributes, wait until ingested; its file id."""

    def add(vector_store_id: str, filename: str, content: bytes | str, **attributes: Any) -> str:
        data = content.encode("utf-8") if isinstance(content, str) else content
        uploaded = client.files.create(file=(filename, data), purpose="assistants")
        attached = client.vector_stores.files.create_and_poll(uploaded.id, vector_store_id=vector_store_id,
                                                              attributes=attributes or None)
        assert attached.status == "completed", attached.last_error
        return uploaded.id

    return add


class OpenApiDocument:
    """Validates payloads against a schema of OpenAI's published OpenAPI document."""

    def __init__(self, path: Path) -> None:
        import jsonschema  # type: ignore[import-untyped]
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        with path.open(encoding="utf-8") as handle:
            document = json.load(handle)
        self._uri = "urn:openai:openapi"
        self._registry: Registry[Any] = Registry().with_resource(
            self._uri, Resource.from_contents(document, default_specification=DRAFT202012))
        self._validator_class = jsonschema.Draft202012Validator
        self.schemas: set[str] = set(document["components"]["schemas"])

    def errors(self, schema_name: str, payload: Any) -> list[str]:
        """Every way ``payload`` violates ``#/components/schemas/<schema_name>``."""
        assert schema_name in self.schemas, f"the OpenAPI document has no schema {schema_name}"
        validator = self._validator_class({"$ref": f"{self._uri}#/components/schemas/{schema_name}"},
                                          registry=self._registry)
        return [f"{list(error.absolute_path)}: {error.message[:300]}" for error in validator.iter_errors(payload)]


@pytest.fixture(scope="session")
def openapi() -> OpenApiDocument:
    """OpenAI's OpenAPI document beside the repository (``../shared/reference``), ready to validate.
    A missing document skips on a workstation and fails in CI (``require_reference``); jsonschema is
    pinned in requirements-dev.txt, so its absence is an error, not a skip."""
    return OpenApiDocument(require_reference(OPENAPI_DOCUMENT))
