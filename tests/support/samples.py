"""Real sample files of every allowed type, made by the tests (no binary fixtures in the repository)."""

from __future__ import annotations

import io
import json


def pdf(text: str) -> bytes:
    """A one-page PDF whose text layer says ``text`` (Helvetica, so any PDF reader extracts it)."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    content = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def docx(text: str) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def all_types(topic: str) -> dict[str, bytes]:
    """One file per allowed type, each about ``topic``; keyed by file name."""
    sentence = f"The {topic} report says the quarterly figure is 1234."
    return {
        f"{topic}.pdf": pdf(sentence),
        f"{topic}.docx": docx(sentence),
        f"{topic}.txt": sentence.encode(),
        f"{topic}.md": f"# {topic}\n\n{sentence}\n".encode(),
        f"{topic}.html": f"<!doctype html><html><body><p>{sentence}</p></body></html>".encode(),
        f"{topic}.json": json.dumps({"topic": topic, "summary": sentence}).encode(),
        f"{topic}.csv": f"topic,summary\n{topic},{sentence}\n".encode(),
    }
