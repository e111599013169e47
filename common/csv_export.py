"""CSV exports: streamed, RFC 4180 (comma, CRLF line ends, quotes doubled), a header row first, and
spreadsheet formulas neutralised.

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is what a spreadsheet
would run as a formula, so it gets a leading single quote (OWASP's advice for CSV injection). That
applies to text only: numbers (money as :class:`~decimal.Decimal`, counts) are written as they are,
so a negative figure stays a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> str:
    """A cell's text: None -> "", numbers as they are, text starting like a formula prefixed with '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_lines(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The header row, then one line per row (its ``columns``, in order), each produced as it is
    needed so a long export is never held in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel", lineterminator="\r\n")

    def line(cells: Iterable[Any]) -> str:
        writer.writerow(cells)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(neutralise(name) for name in columns)
    for row in rows:
        yield line(neutralise(row.get(name)) for name in columns)
