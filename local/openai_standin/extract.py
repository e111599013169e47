"""Text extraction from uploaded files, as vector-store ingestion does it.

The file type comes from the file name's extension, checked against the content where the format
has a signature (PDF, DOCX). Text formats must be UTF-8, UTF-16 (with a byte-order mark) or ASCII,
as OpenAI requires. A failure is an :class:`ExtractionError` whose ``code`` is what the vector
store file reports in ``last_error``: ``unsupported_file`` for a type file search cannot read,
``invalid_file`` for content that does not parse or holds no text.
"""

from __future__ import annotations

import codecs
import io
import logging
import zipfile
from html.parser import HTMLParser
from pathlib import PurePosixPath

logger = logging.getLogger(__name__)

# Plain-text formats read as-is: those on file_search's list of supported types (code and markup
# included). CSV, TSV, XML, YAML, LOG and RST are not on it: they end ``unsupported_file``, as at OpenAI.
TEXT_EXTENSIONS = frozenset({
    ".txt", ".md", ".json", ".c", ".cpp", ".cs", ".css", ".go", ".java", ".js", ".php", ".py", ".rb", ".sh",
    ".tex", ".ts",
})
HTML_EXTENSIONS = frozenset({".html", ".htm"})
PDF_EXTENSION = ".pdf"
DOCX_EXTENSION = ".docx"


class ExtractionError(Exception):
    """The file's text could not be extracted; ``code`` is the vector store file's ``last_error.code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def extract_text(filename: str, data: bytes) -> str:
    """The text of the file ``filename`` with content ``data``.

    Raises :class:`ExtractionError` (``unsupported_file`` or ``invalid_file``).
    """
    extension = PurePosixPath(filename.lower()).suffix
    if extension == PDF_EXTENSION or (not extension and data.startswith(b"%PDF-")):
        text = _pdf_text(data)
    elif extension == DOCX_EXTENSION:
        text = _docx_text(data)
    elif extension in HTML_EXTENSIONS:
        text = _html_text(decode_text(data))
    elif extension in TEXT_EXTENSIONS or not extension:
        text = decode_text(data)
    else:
        raise ExtractionError("unsupported_file", f"Files with extension [{extension}] are not supported "
                                                  f"for file search.")
    if not text.strip():
        raise ExtractionError("invalid_file", "The file contains no text that could be indexed.")
    return text


def decode_text(data: bytes) -> str:
    """Decode text bytes as UTF-16 (with a BOM), UTF-8 or ASCII; ``invalid_file`` otherwise."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ExtractionError("invalid_file",
                              "The file's text encoding must be one of utf-8, utf-16 or ascii.") from exc
    if "\x00" in text:
        raise ExtractionError("invalid_file", "The file contains binary data, not text.")
    return text


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    if not data.startswith(b"%PDF-"):
        raise ExtractionError("invalid_file", "The file is not a valid PDF document.")
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        # pypdf reports damaged documents through several exception types; all mean "unreadable".
        logger.info("PDF extraction failed: %s", exc)
        raise ExtractionError("invalid_file", "The PDF document could not be parsed.") from exc
    return "\n\n".join(page.strip() for page in pages if page.strip())


def _docx_text(data: bytes) -> str:
    from docx import Document
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ExtractionError("invalid_file", "The DOCX document could not be parsed.") from exc
    blocks = [paragraph.text for paragraph in document.paragraphs if paragraph.text.strip()]
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells if cell.text.strip()]
            if cells:
                blocks.append(" | ".join(cells))
    return "\n\n".join(blocks)


class _HtmlText(HTMLParser):
    """Collects the visible text of an HTML document, one block element per paragraph."""

    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section",
                         "article", "header", "footer", "table", "ul", "ol", "pre", "blockquote", "title"})
    _HIDDEN = frozenset({"script", "style", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth += 1
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN and self._hidden_depth:
            self._hidden_depth -= 1
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.parts.append(data)


def _html_text(markup: str) -> str:
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)
