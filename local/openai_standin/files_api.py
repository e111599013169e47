"""``/v1/files``: upload, list, retrieve, download and delete files."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from .errors import invalid_request, not_found
from .listing import paginate, parse_list_params
from .state import State, new_id
from .validation import require_int
from .web import services

blueprint = Blueprint("files", __name__, url_prefix="/v1")

UPLOAD_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
MAX_LIST_LIMIT = 10_000


def render_file(record: dict[str, Any]) -> dict[str, Any]:
    """A file record as OpenAI's ``FileObject``."""
    payload = {key: record[key] for key in ("id", "bytes", "created_at", "filename", "purpose")}
    payload.update(object="file", status="processed")
    if record.get("expires_at") is not None:
        payload["expires_at"] = record["expires_at"]
    return payload


def get_file_record(state: State, file_id: str) -> dict[str, Any]:
    """The record of ``file_id``; 404 when there is none."""
    record = state.files.get(file_id)
    if record is None:
        raise not_found(f"No such File object: {file_id}", param="id")
    return record


@blueprint.post("/files")
def create_file() -> tuple[Response, int]:
    upload = request.files.get("file")
    if upload is None:
        raise invalid_request("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
    purpose = request.form.get("purpose")
    if not purpose:
        raise invalid_request("Missing required parameter: 'purpose'.", param="purpose",
                              code="missing_required_parameter")
    if purpose == "evals":
        purpose = "user_data"  # FileObject.purpose has no "evals": report such uploads as user data
    if purpose not in UPLOAD_PURPOSES:
        raise invalid_request(f"Invalid value for 'purpose': '{purpose}'. Expected one of "
                              f"{', '.join(sorted(UPLOAD_PURPOSES))}.", param="purpose", code="invalid_value")
    expires_seconds = _expires_after_seconds()
    data = upload.read()
    state = services().state
    file_id = new_id("file")
    state.put_blob(file_id, data)
    with state.changing():
        created_at = state.now()
        record = {
            "id": file_id, "seq": state.next_seq(f"file:{file_id}"), "bytes": len(data), "created_at": created_at,
            "filename": upload.filename or "upload", "purpose": purpose,
            "expires_at": created_at + expires_seconds if expires_seconds is not None else None,
        }
        state.files[file_id] = record
    return jsonify(render_file(record)), 200


@blueprint.get("/files")
def list_files() -> Response:
    params = parse_list_params(request.args, default_limit=MAX_LIST_LIMIT, max_limit=MAX_LIST_LIMIT)
    purpose = request.args.get("purpose")
    state = services().state
    with state.reading():
        records = [r for r in state.files.values() if purpose is None or r["purpose"] == purpose]
        return jsonify(paginate(records, params, cursor_seq=state.cursor_seq("file"), render=render_file))


@blueprint.get("/files/<file_id>")
def retrieve_file(file_id: str) -> Response:
    state = services().state
    with state.reading():
        return jsonify(render_file(get_file_record(state, file_id)))


@blueprint.get("/files/<file_id>/content")
def file_content(file_id: str) -> Response:
    state = services().state
    with state.reading():
        record = get_file_record(state, file_id)
        data = state.get_blob(file_id)
    headers = {"Content-Disposition": f'attachment; filename="{record["filename"]}"'}
    return Response(data, mimetype="application/octet-stream", headers=headers)


@blueprint.delete("/files/<file_id>")
def delete_file(file_id: str) -> Response:
    state = services().state
    with state.changing():
        get_file_record(state, file_id)
        del state.files[file_id]
        for attached in state.vs_files.values():
            attached.pop(file_id, None)
    state.delete_blob(file_id)
    return jsonify({"id": file_id, "object": "file", "deleted": True})


def _expires_after_seconds() -> int | None:
    anchor = request.form.get("expires_after[anchor]")
    seconds = request.form.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise invalid_request("Invalid value for 'expires_after.anchor': expected 'created_at'.",
                              param="expires_after.anchor", code="invalid_value")
    try:
        parsed = int(seconds or "")
    except ValueError:
        raise invalid_request("Invalid 'expires_after.seconds': expected an integer.",
                              param="expires_after.seconds", code="invalid_type") from None
    return require_int(parsed, "expires_after.seconds", minimum=3600, maximum=2_592_000)
