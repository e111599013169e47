"""The upload function end to end: every allowed type, list, get, delete, limits, dedup and
idempotency, isolation between users, and sharing."""

from __future__ import annotations

import io
import threading
from typing import Any

import flask
import flask.testing
import pytest

from common.http.openapi import build_openapi
from common.http.registry import registered_functions
from common.runtime import Runtime
from tests.support import samples
from tests.support.openapi import assert_matches_openapi
from tests.support.users import UserFactory
from tests.upload.conftest import MAX_UPLOAD_BYTES, auth, file_of, store_of, upload

OPENAPI = build_openapi(registered_functions())


def _openai_calls(standin: Any) -> list[Any]:
    return [r for r in standin.requests if r.path.startswith("/v1/")]


@pytest.mark.parametrize("name", list(samples.all_types("alpha")))
def test_each_allowed_type_uploads_lists_gets_and_deletes(client: flask.testing.FlaskClient, users: UserFactory,
                                                          name: str) -> None:
    user = users.create()
    content = samples.all_types(f"topic{name.split('.')[-1]}")[name.replace("alpha", f"topic{name.split('.')[-1]}")]
    created = upload(client, user, name, content)
    assert created.status_code == 201, created.json
    doc = created.json
    assert_matches_openapi(OPENAPI, "POST", "/upload", 201, doc)
    assert doc["status"] in ("processing", "ready") and doc["size_bytes"] == len(content) and doc["shared"] is False
    assert doc["name"].rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1]
    got = client.get(f"/{doc['id']}", headers=auth(user))
    assert got.status_code == 200 and got.json["status"] == "ready"
    assert_matches_openapi(OPENAPI, "GET", "/upload/{id}", 200, got.json)
    listed = client.get("/", headers=auth(user))
    assert [d["id"] for d in listed.json["items"]] == [doc["id"]]
    assert_matches_openapi(OPENAPI, "GET", "/upload", 200, listed.json)
    assert client.delete(f"/{doc['id']}", headers=auth(user)).status_code == 204
    gone = client.get(f"/{doc['id']}", headers=auth(user))
    assert gone.status_code == 404 and gone.json["code"] == "not_found"
    assert client.delete(f"/{doc['id']}", headers=auth(user)).status_code == 404


def test_the_same_bytes_twice_are_one_document(client: flask.testing.FlaskClient, users: UserFactory,
                                               standin: Any) -> None:
    user = users.create()
    first = upload(client, user, "a.txt", b"identical bytes")
    standin.clear_requests()
    second = upload(client, user, "b.txt", b"identical bytes")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json["id"] == second.json["id"]
    assert _openai_calls(standin) == []


def test_the_same_idempotency_key_replays_the_first_response(client: flask.testing.FlaskClient, users: UserFactory,
                                                             standin: Any) -> None:
    user = users.create()
    standin.clear_requests()
    key = "upload-key-0001-abcdef"
    first = upload(client, user, "k.txt", b"keyed upload", **{"Idempotency-Key": key})
    second = upload(client, user, "k.txt", b"keyed upload", **{"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201 and first.json == second.json
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len([r for r in standin.requests if r.path == "/v1/files" and r.method == "POST"]) == 1
    other = upload(client, user, "other.txt", b"different bytes", **{"Idempotency-Key": key})
    assert other.status_code == 422 and other.json["code"] == "idempotency_key_reused"
    assert len(client.get("/", headers=auth(user)).json["items"]) == 1


def test_two_concurrent_uploads_of_the_same_bytes_make_one_document(upload_app: flask.Flask, users: UserFactory) -> None:
    user = users.create()
    results: list[Any] = []

    def send() -> None:
        with upload_app.test_client() as c:
            results.append(upload(c, user, "race.txt", b"raced bytes"))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200, 201]
    assert len({r.json["id"] for r in results}) == 1
    with upload_app.test_client() as c:
        assert len(c.get("/", headers=auth(user)).json["items"]) == 1


@pytest.mark.parametrize(("name", "content", "status", "code"), [
    ("fake.pdf", b"just some text pretending", 415, "unsupported_media_type"),
    ("empty.txt", b"", 400, "invalid_input"),
    ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 415, "unsupported_media_type"),
    ("data.json", b"{not json", 415, "unsupported_media_type"),
    ("archive.docx", b"PK\x03\x04not really a docx", 415, "unsupported_media_type"),
    ("latin1.txt", "café".encode("latin-1"), 415, "unsupported_media_type"),
])
def test_bad_files_are_refused_before_any_side_effect(client: flask.testing.FlaskClient, users: UserFactory,
                                                      standin: Any, name: str, content: bytes, status: int,
                                                      code: str) -> None:
    user = users.create()
    standin.clear_requests()
    response = upload(client, user, name, content)
    assert response.status_code == status and response.json["code"] == code
    assert response.headers["Content-Type"] == "application/problem+json"
    assert _openai_calls(standin) == []
    assert client.get("/", headers=auth(user)).json["items"] == []


def test_missing_file_field_and_non_multipart_are_refused(client: flask.testing.FlaskClient, users: UserFactory) -> None:
    user = users.create()
    no_file = client.post("/", headers=auth(user), content_type="multipart/form-data",
                          data={"title": "no file here"})
    assert no_file.status_code == 400 and no_file.json["code"] == "invalid_input"
    as_json = client.post("/", headers=auth(user), json={"file": "hello"})
    assert as_json.status_code == 415 and as_json.json["code"] == "unsupported_media_type"


class CountingStream(io.RawIOBase):
    """A request body of ``size`` bytes that counts how much the server read."""

    def __init__(self, size: int) -> None:
        self.size, self.position, self.read_bytes = size, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = {io.SEEK_SET: offset, io.SEEK_CUR: self.position + offset, io.SEEK_END: self.size + offset}[whence]
        return self.position

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), self.size - self.position))
        buffer[:n] = b"a" * n
        self.position += n
        self.read_bytes += n
        return n


def test_oversize_is_413_without_reading_past_the_limit(upload_app: flask.Flask, users: UserFactory) -> None:
    user = users.create()
    body = CountingStream(50 * MAX_UPLOAD_BYTES)
    boundary = "limit-boundary"
    with upload_app.test_client() as c:
        response = c.post("/", headers=auth(user), input_stream=body, content_length=body.size,
                          content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 413 and response.json["code"] == "payload_too_large"
    assert body.read_bytes <= MAX_UPLOAD_BYTES + 128 * 1024


def test_oversize_file_inside_a_small_declared_envelope_is_413(client: flask.testing.FlaskClient,
                                                               users: UserFactory) -> None:
    user = users.create()
    response = upload(client, user, "big.txt", b"x" * (MAX_UPLOAD_BYTES + 1))
    assert response.status_code == 413 and response.json["code"] == "payload_too_large"


def test_a_hostile_filename_is_stored_sanitised(client: flask.testing.FlaskClient, users: UserFactory) -> None:
    user = users.create()
    hostile = "../../etc/\x00pass\x1bwd\\..\\" + "A" * 10_000 + ".txt"
    response = upload(client, user, hostile, b"hostile name, harmless content")
    assert response.status_code == 201
    name = response.json["name"]
    assert "/" not in name and "\\" not in name and not any(ord(ch) < 32 for ch in name)
    assert len(name) <= 200 and name.endswith(".txt") and not name.startswith(".")


def test_another_user_cannot_see_get_or_delete_and_openai_is_never_asked(
        client: flask.testing.FlaskClient, users: UserFactory, standin: Any) -> None:
    owner, intruder = users.create(), users.create()
    doc = upload(client, owner, "private.txt", b"owner's private notes").json
    standin.clear_requests()
    assert client.get(f"/{doc['id']}", headers=auth(intruder)).status_code == 404
    assert client.delete(f"/{doc['id']}", headers=auth(intruder)).status_code == 404
    assert client.post(f"/{doc['id']}/access", headers=auth(intruder), json={"email": intruder.email}).status_code == 404
    assert client.get("/", headers=auth(intruder)).json["items"] == []
    assert client.get("/not-a-uuid", headers=auth(intruder)).status_code == 404
    assert _openai_calls(standin) == []
    assert client.get(f"/{doc['id']}", headers=auth(owner)).status_code == 200


def _invite(client: flask.testing.FlaskClient, owner: AppUser, doc_id: str, email: str) -> Any:
    return client.post(f"/{doc_id}/access", headers=auth(owner), json={"email": email})


def test_sharing_is_an_invitation_the_grantee_accepts(client: flask.testing.FlaskClient, users: UserFactory,
                                                      runtime: Runtime, database_url: str) -> None:
    # Given an owner's document and an invitation to another user's email
    owner, reader = users.create(), users.create()
    doc = upload(client, owner, "shared.txt", b"shared knowledge about comets").json
    invited = _invite(client, owner, doc["id"], reader.email)
    assert invited.status_code == 202 and invited.json["status"] == "invited"
    assert_matches_openapi(OPENAPI, "POST", "/upload/{id}/access", 202, invited.json)
    stranger = _invite(client, owner, doc["id"], "nobody-at-all@example.test")
    assert stranger.status_code == 202 and set(stranger.json) == set(invited.json)
    # Then nothing reaches the grantee before they accept
    file_id = file_of(runtime.database, owner, doc["id"])
    assert client.get(f"/{doc['id']}", headers=auth(reader)).status_code == 404
    assert store_of(database_url, reader.id) is None
    pending = client.get("/invitations", headers=auth(reader))
    assert pending.status_code == 200 and [i["share_id"] for i in pending.json["items"]] == [invited.json["share_id"]]
    assert_matches_openapi(OPENAPI, "GET", "/upload/invitations", 200, pending.json)
    # When they accept, it is theirs to read and in their store
    accepted = client.post(f"/invitations/{invited.json['share_id']}/accept", headers=auth(reader))
    assert accepted.status_code == 200 and accepted.json["status"] == "accepted"
    seen = client.get(f"/{doc['id']}", headers=auth(reader))
    assert seen.status_code == 200 and seen.json["shared"] is True
    assert [d["id"] for d in client.get("/", headers=auth(reader)).json["items"]] == [doc["id"]]
    reader_store = store_of(database_url, reader.id)
    assert reader_store and runtime.openai.files.status(reader_store, file_id) is not None
    # And a reader can neither delete nor share it
    assert client.delete(f"/{doc['id']}", headers=auth(reader)).status_code == 403
    assert _invite(client, reader, doc["id"], "x@example.test").status_code == 403
    # The owner sees emails and statuses only, and revoking takes the file out of the reader's store
    shares = client.get(f"/{doc['id']}/access", headers=auth(owner))
    assert shares.status_code == 200
    assert {(s["email"], s["status"]) for s in shares.json["items"]} == {
        (reader.email, "accepted"), ("nobody-at-all@example.test", "invited")}
    assert_matches_openapi(OPENAPI, "GET", "/upload/{id}/access", 200, shares.json)
    assert client.delete(f"/{doc['id']}/access/{invited.json['share_id']}", headers=auth(owner)).status_code == 204
    assert client.get(f"/{doc['id']}", headers=auth(reader)).status_code == 404
    assert runtime.openai.files.status(reader_store, file_id) is None


def test_a_grantee_declines_or_leaves(client: flask.testing.FlaskClient, users: UserFactory, runtime: Runtime,
                                      database_url: str) -> None:
    owner, decliner, leaver = users.create(), users.create(), users.create()
    unconfirmed = users.create(confirmed=False)
    doc = upload(client, owner, "maybe.txt", b"do you want to read this").json
    declined = _invite(client, owner, doc["id"], decliner.email).json
    assert client.delete(f"/invitations/{declined['share_id']}", headers=auth(decliner)).status_code == 204
    assert client.get("/invitations", headers=auth(decliner)).json["items"] == []
    assert client.post(f"/invitations/{declined['share_id']}/accept", headers=auth(decliner)).status_code == 404
    to_leave = _invite(client, owner, doc["id"], leaver.email).json
    assert client.post(f"/invitations/{to_leave['share_id']}/accept", headers=auth(leaver)).status_code == 200
    assert client.delete(f"/{doc['id']}/access/me", headers=auth(leaver)).status_code == 204
    assert client.get(f"/{doc['id']}", headers=auth(leaver)).status_code == 404
    assert runtime.openai.files.status(store_of(database_url, leaver.id), file_of(runtime.database, owner, doc["id"])) is None
    assert client.delete(f"/{doc['id']}/access/me", headers=auth(leaver)).status_code == 404
    _invite(client, owner, doc["id"], unconfirmed.email)
    refused = client.get("/invitations", headers=auth(unconfirmed))
    assert refused.status_code == 403 and refused.json["code"] == "email_unconfirmed"


def test_deleting_a_shared_document_removes_it_from_every_store(client: flask.testing.FlaskClient,
                                                                 users: UserFactory, runtime: Runtime,
                                                                 database_url: str) -> None:
    owner, reader = users.create(), users.create()
    doc = upload(client, owner, "both.txt", b"in two stores at once").json
    invited = _invite(client, owner, doc["id"], reader.email).json
    client.post(f"/invitations/{invited['share_id']}/accept", headers=auth(reader))
    owner_store, reader_store = store_of(database_url, owner.id), store_of(database_url, reader.id)
    file_id = file_of(runtime.database, owner, doc["id"])
    assert client.delete(f"/{doc['id']}", headers=auth(owner)).status_code == 204
    files = runtime.openai.files
    assert files.status(owner_store, file_id) is None and files.status(reader_store, file_id) is None
    assert all(f.file_id != file_id for page in files.file_pages() for f in page)


def test_unauthenticated_and_unknown_routes(client: flask.testing.FlaskClient) -> None:
    assert client.get("/").status_code == 401
    assert client.post("/", content_type="multipart/form-data", data={}).status_code == 401


def test_a_title_replaces_the_file_name_for_display(client: flask.testing.FlaskClient, users: UserFactory,
                                                    runtime: Runtime) -> None:
    user = users.create()
    response = client.post("/", headers=auth(user), content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"quarterly numbers"), "q3.txt"), "title": "  Q3/Q4\nreport  "})
    assert response.status_code == 201 and response.json["name"] == "Q3/Q4 report"
    file_id = file_of(runtime.database, user, response.json["id"])
    names = [f.filename for page in runtime.openai.files.file_pages() for f in page if f.file_id == file_id]
    assert names == [f"{response.json['id']}__q3.txt"]


@pytest.mark.parametrize(("raw", "kind", "expected"), [
    ("notes", "txt", "notes.txt"), ("page.htm", "html", "page.htm"), ("readme.markdown", "md", "readme.markdown"),
    ("report.pdf", "pdf", "report.pdf"), ("scan.PDF", "pdf", "scan.PDF"), ("letter.txt", "docx", "letter.docx"),
    ("../../x/.hidden", "txt", "hidden.txt"), ("", "pdf", "document.pdf"),
])
def test_file_names_are_cleaned_and_their_extension_says_what_the_bytes_are(raw: str, kind: str,
                                                                            expected: str) -> None:
    from common.uploads import clean_filename

    assert clean_filename(raw, kind) == expected


def test_a_user_over_their_document_quota_gets_413_quota_exceeded_before_any_openai_call(
        runtime: Runtime, users: UserFactory, standin: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Given an upload function whose users may keep one document
    import dataclasses

    from common.openai import build_gateway
    from tests.support.functions import build_function_app

    small = Runtime(dataclasses.replace(runtime.settings, max_documents_per_user=1), database=runtime.database,
                    openai_factory=lambda s: build_gateway(s.openai))
    client = build_function_app(tmp_path_factory.mktemp("quota"), "upload", small).test_client()
    try:
        user = users.create()
        assert upload(client, user, "one.txt", b"the only document allowed").status_code == 201
        standin.clear_requests()
        # When they upload a second one
        refused = upload(client, user, "two.txt", b"one document too many")
        # Then it is refused as over quota (not as a too-large file), and OpenAI never heard of it
        assert refused.status_code == 413 and refused.json["code"] == "quota_exceeded"
        assert _openai_calls(standin) == []
        assert len(client.get("/", headers=auth(user)).json["items"]) == 1
    finally:
        small.openai.client.close()
