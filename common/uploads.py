"""Checks on an uploaded file before any side effect: size (streamed), type by content, clean name;
and how each accepted type is sent to OpenAI.

The allow-list is :data:`ACCEPTED_TYPES`: PDF, DOCX, plain text, Markdown, HTML, JSON and CSV. The
declared type and the name's extension are hints only: the bytes decide, and a name that promises
another format than the bytes hold (a ``.pdf`` holding text) is refused. Each entry also says how
the type is sent: as it is when ``file_search`` reads it, or converted to a text form it reads (CSV
is not on its list of supported types: it is sent as Markdown, one line per row with its headers).
The document keeps its own name and type; only the OpenAI file differs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from common.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError

_CHUNK = 64 * 1024
_SNIFF = 8192


def csv_as_markdown(data: bytes) -> bytes:
    """A CSV file as Markdown ``file_search`` can read: one line per row naming each cell's header,
    so a retrieved passage says what its values are. Raises UnsupportedMediaTypeError for a CSV
    the csv module cannot parse."""
    text = data.decode("utf-8-sig")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:_SNIFF], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = [row for row in csv.reader(io.StringIO(text), dialect, strict=True) if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise UnsupportedMediaTypeError("The CSV file cannot be parsed.") from exc
    if not rows:
        raise UnsupportedMediaTypeError("The CSV file has no rows.")
    headers = [cell.strip() or f"column {n + 1}" for n, cell in enumerate(rows[0])]
    lines = ["# Table", "", "Columns: " + "; ".join(headers), ""]
    for number, row in enumerate(rows[1:], start=1):
        cells = [f"{headers[n] if n < len(headers) else f'column {n + 1}'}: {cell.strip()}"
                 for n, cell in enumerate(row)]
        lines.append(f"- Row {number}: " + "; ".join(cells))
    return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True)
class AcceptedType:
    """One accepted kind: its MIME type, and the extension and MIME type its OpenAI file is sent with
    (``convert`` turns the bytes into that form; None sends them as they are)."""

    mime_type: str
    sent_extension: str
    sent_mime_type: str
    convert: Callable[[bytes], bytes] | None = None


# The one table of what is accepted and how it reaches file_search (whose supported types are .pdf,
# .docx, .txt, .md, .html, .json and source code; not .csv).
ACCEPTED_TYPES: dict[str, AcceptedType] = {
    "pdf": AcceptedType("application/pdf", "pdf", "application/pdf"),
    "docx": AcceptedType("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx",
                         "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "txt": AcceptedType("text/plain", "txt", "text/plain"),
    "md": AcceptedType("text/markdown", "md", "text/markdown"),
    "html": AcceptedType("text/html", "html", "text/html"),
    "json": AcceptedType("application/json", "json", "application/json"),
    "csv": AcceptedType("text/csv", "md", "text/markdown", csv_as_markdown),
}
MIME_TYPES = {kind: accepted.mime_type for kind, accepted in ACCEPTED_TYPES.items()}
_KIND_BY_MIME = {accepted.mime_type: kind for kind, accepted in ACCEPTED_TYPES.items()}


def as_sent_to_openai(name: str, content: bytes | IO[bytes], mime_type: str) -> tuple[str, bytes | IO[bytes], str]:
    """(file name, content, MIME type) of the OpenAI file for a document of ``mime_type``: unchanged
    for a type ``file_search`` reads, else converted (``data.csv`` goes as ``data.csv.md``).
    Raises UnsupportedMediaTypeError for a MIME type outside the allow-list."""
    kind = _KIND_BY_MIME.get(mime_type)
    if kind is None:
        raise UnsupportedMediaTypeError(f"Documents of type {mime_type} are not supported.")
    accepted = ACCEPTED_TYPES[kind]
    if accepted.convert is None:
        return name, content, mime_type
    data = content if isinstance(content, bytes) else content.read()
    return f"{name}.{accepted.sent_extension}", accepted.convert(data), accepted.sent_mime_type


_TEXT_KINDS = {"txt": "txt", "text": "txt", "md": "md", "markdown": "md", "html": "html", "htm": "html",
               "json": "json", "csv": "csv", "": "txt"}
_HTML = re.compile(rb"<(!doctype\s+html|html|head|body|p|div|h[1-6]|table|ul|ol|span|a)\b", re.IGNORECASE)


@dataclass(frozen=True)
class CheckedFile:
    """A file that passed every check: its clean name, kind, MIME type, size and sha256."""

    name: str
    kind: str
    mime_type: str
    size: int
    sha256: str


def _single_line(text: str) -> str:
    """Runs of white space (line breaks included) folded to one space, other control and format
    characters removed."""
    text = re.sub(r"\s+", " ", text)
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()


def clean_title(raw: str | None) -> str | None:
    """A display title: one line, at most 200 characters; None when nothing is left."""
    title = _single_line(unicodedata.normalize("NFC", raw or ""))[:200].strip()
    return title or None


def clean_filename(raw: str | None, kind: str | None = None) -> str:
    """A display name safe to store and show: no path, no control characters, bounded length; the
    extension matches the detected kind."""
    name = _single_line(re.split(r"[/\\]", unicodedata.normalize("NFC", raw or ""))[-1]).strip(" .")
    stem, ext = os.path.splitext(name)
    if not stem:
        stem, ext = (ext.lstrip(".") or "document"), ""
    declared = ext.lower().lstrip(".")
    if kind is not None and (not declared or _TEXT_KINDS.get(declared, declared) != kind):
        ext = "." + kind  # OpenAI detects the format by the extension: it must say what the bytes are
    stem = stem[: max(1, 200 - len(ext))].rstrip(" .") or "document"
    return stem + ext


def _declared_extension(name: str | None) -> str:
    return os.path.splitext(name or "")[1].lower().lstrip(".")


def _is_docx(stream: IO[bytes]) -> bool:
    stream.seek(0)
    try:
        with zipfile.ZipFile(stream) as archive:
            return "word/document.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _text_kind(head: bytes, stream: IO[bytes], declared: str) -> str:
    if b"\x00" in head:
        raise UnsupportedMediaTypeError("Binary content of an unsupported type.")
    stream.seek(0)
    data = stream.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnsupportedMediaTypeError("Text files must be UTF-8.") from None
    if declared in ("pdf", "docx", "doc"):
        raise UnsupportedMediaTypeError(f"The name says .{declared} but the content is text.")
    kind = _TEXT_KINDS.get(declared)
    if kind is None:
        raise UnsupportedMediaTypeError(f"Files of type .{declared} are not supported.")
    if kind == "json":
        try:
            json.loads(text)
        except ValueError:
            raise UnsupportedMediaTypeError("The name says .json but the content is not JSON.") from None
    if kind == "html" and not _HTML.search(head):
        raise UnsupportedMediaTypeError("The name says .html but the content is not HTML.")
    converter = ACCEPTED_TYPES[kind].convert
    if converter is not None:
        converter(data)  # refuse what cannot be converted now, before any side effect
    return kind


def check_file(stream: IO[bytes], filename: str | None, *, max_bytes: int) -> CheckedFile:
    """Measure, hash and classify ``stream`` (read once in chunks, never whole into memory except
    text files up to the size limit). Raises 400 for empty, 413 beyond ``max_bytes``, 415 for a type
    outside the allow-list."""
    digest = hashlib.sha256()
    size = 0
    stream.seek(0)
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(f"Files are limited to {max_bytes} bytes.")
        digest.update(chunk)
    if size == 0:
        raise InvalidInputError("The file is empty.")
    stream.seek(0)
    head = stream.read(_SNIFF)
    declared = _declared_extension(filename)
    if head.startswith(b"%PDF-"):
        kind = "pdf"
    elif head.startswith(b"PK\x03\x04"):
        if not _is_docx(stream):
            raise UnsupportedMediaTypeError("Only DOCX archives are supported.")
        kind = "docx"
    else:
        kind = _text_kind(head, stream, declared)
    stream.seek(0)
    return CheckedFile(name=clean_filename(filename, kind), kind=kind, mime_type=MIME_TYPES[kind], size=size,
                       sha256=digest.hexdigest())
