"""Files through the real SDK: upload, list and paginate, retrieve, download, delete; auth and request ids."""

from __future__ import annotations

import httpx2
import openai
import pytest

from local.openai_standin import StandinServer


def test_upload_retrieve_and_download(client: openai.OpenAI) -> None:
    # given a document
    content = b"The quarterly report covers revenue and churn."
    # when it is uploaded
    uploaded = client.files.create(file=("report.txt", content), purpose="assistants")
    # then it reads back with OpenAI's fields and its exact bytes
    assert uploaded.id.startswith("file-")
    assert (uploaded.object, uploaded.filename, uploaded.bytes, uploaded.purpose, uploaded.status) == (
        "file", "report.txt", len(content), "assistants", "processed")
    assert client.files.retrieve(uploaded.id) == uploaded
    assert client.files.content(uploaded.id).read() == content


def test_list_paginates_newest_first_across_pages(client: openai.OpenAI, standin: StandinServer) -> None:
    # given more files than one page holds
    ids = [client.files.create(file=(f"page-{n}.txt", b"page text"), purpose="user_data").id for n in range(5)]
    # when the first page is asked for
    first = client.files.list(limit=2, purpose="user_data")
    # then it holds the two newest and says there is more
    assert [f.id for f in first.data] == ids[::-1][:2]
    assert first.has_more is True
    # and auto-pagination walks every page once, in order, following the `after` cursor
    standin.clear_requests()
    walked = [f.id for f in client.files.list(limit=2, purpose="user_data")]
    assert walked == ids[::-1]
    afters = [r.query.get("after") for r in standin.requests if r.path == "/v1/files"]
    assert afters == [None, [ids[3]], [ids[1]]]
    # and ascending order with `after` starts right after the cursor
    ascending = client.files.list(limit=10, order="asc", after=ids[1], purpose="user_data")
    assert [f.id for f in ascending.data] == ids[2:]
    assert ascending.has_more is False


def test_list_filters_by_purpose(client: openai.OpenAI) -> None:
    kept = client.files.create(file=("vision.txt", b"pixels"), purpose="vision").id
    listed = client.files.list(purpose="vision")
    assert [f.id for f in listed.data] == [kept]


def test_list_rejects_a_limit_out_of_range(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.list(limit=10_001)
    assert caught.value.code == "integer_above_max_value"
    assert caught.value.param == "limit"


def test_delete_removes_the_file_and_its_vector_store_entries(client: openai.OpenAI, vector_store: str) -> None:
    # given a file attached to a vector store
    file_id = client.files.create(file=("gone.txt", b"soon gone"), purpose="assistants").id
    client.vector_stores.files.create_and_poll(file_id, vector_store_id=vector_store)
    # when the file is deleted
    deleted = client.files.delete(file_id)
    # then it is gone everywhere
    assert (deleted.id, deleted.deleted, deleted.object) == (file_id, True, "file")
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(file_id)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.retrieve(file_id, vector_store_id=vector_store)
    assert client.vector_stores.retrieve(vector_store).file_counts.total == 0


def test_unknown_file_is_a_not_found_error_with_openai_body(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.files.retrieve("file-doesnotexist")
    assert caught.value.type == "invalid_request_error"
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")


def test_upload_without_purpose_is_a_bad_request(standin: StandinServer) -> None:
    answer = httpx2.post(f"{standin.base_url}/files", headers={"Authorization": "Bearer sk-local"},
                         files={"file": ("a.txt", b"text")})
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "purpose"


def test_requests_without_a_bearer_key_are_refused(standin: StandinServer) -> None:
    answer = httpx2.get(f"{standin.base_url}/files")
    assert answer.status_code == 401
    assert set(answer.json()["error"]) == {"message", "type", "param", "code"}
    assert answer.headers["x-request-id"].startswith("req_")


def test_every_response_carries_a_request_id(client: openai.OpenAI) -> None:
    raw = client.files.with_raw_response.list()
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.parse().data is not None


def test_unknown_routes_answer_openai_shaped_404(standin: StandinServer) -> None:
    answer = httpx2.get(f"{standin.base_url}/assistants", headers={"Authorization": "Bearer sk-local"})
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "invalid_request_error"
